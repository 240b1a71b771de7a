import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { blockKey } from '../src/archive/keys.js';
import { StoreError } from '../src/errors.js';
import { FileStore, fsStoreError, isTempFileName } from '../src/stores/fs.js';
import { createStore, describeStoreUri } from '../src/stores/uri.js';
import type { StoredObject } from '../src/stores/store.js';

const T = BigInt(Date.UTC(2026, 10, 25, 14, 0, 0)) * 1_000_000n;

/** Every regular file and symlink under `dir`, as absolute paths. */
async function walkFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walkFiles(full)));
    else out.push(full);
  }
  return out;
}

function tempFilesUnder(dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true, recursive: true });
  } catch {
    return [];
  }
  return entries.filter((e) => e.isFile() && isTempFileName(e.name)).map((e) => path.join(e.parentPath, e.name));
}

async function collect(iterable: AsyncIterable<StoredObject>): Promise<StoredObject[]> {
  const out: StoredObject[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** Root (uid 0) ignores directory permissions; the read-only case cannot be shown there. */
const chmodBlocksWrites = (() => {
  const dir = mkdtempSync(path.join(tmpdir(), 'jv-chmod-probe-'));
  try {
    chmodSync(dir, 0o500);
    try {
      writeFileSync(path.join(dir, 'probe'), 'x');
      return false;
    } catch {
      return true;
    }
  } finally {
    chmodSync(dir, 0o700);
    rmSync(dir, { recursive: true, force: true });
  }
})();

let parent: string;
let root: string;
let store: FileStore;

beforeEach(async () => {
  parent = await mkdtemp(path.join(tmpdir(), 'jv-fs-store-'));
  // Nested six deep so that a key escaping upwards by up to six levels still lands inside `parent`,
  // where the walk below sees it, and never in a real system directory.
  root = path.join(parent, 'l1', 'l2', 'l3', 'l4', 'l5', 'root');
  store = new FileStore(root);
});

afterEach(async () => {
  await chmod(root, 0o700).catch(() => undefined);
  await rm(parent, { recursive: true, force: true });
});

describe('FileStore containment', () => {
  it('keeps blocks named after hostile subjects, headers and streams inside the root', async () => {
    const splits = ['../../../../tmp/evil', '/etc/passwd', '..', '.', 'a/../../b', '\u0000', '%2e%2e', '..\\..\\x', ''];
    const streams = ['..', 'ORDERS', '../../l1'];
    const keys = new Set<string>();
    for (const stream of streams) {
      for (const splitKey of splits) {
        const key = blockKey({ stream, splitKey, firstSeq: 1, lastSeq: 2, firstTimeNs: T, extension: 'jv.gz' });
        keys.add(key);
        await store.put(key, Buffer.from(key));
      }
    }

    const files = await walkFiles(parent);
    const outside = files.filter((f) => !f.startsWith(root + path.sep));
    expect(outside).toEqual([]);
    // One file per distinct key, each exactly where its key says, holding its own bytes.
    expect(files).toHaveLength(keys.size);
    for (const key of keys) expect(await readFile(path.join(root, ...key.split('/')), 'utf8')).toBe(key);
    expect((await collect(store.list(''))).map((o) => o.key)).toEqual([...keys].sort());
  });

  it('refuses raw hostile keys with JV_UNSAFE_KEY and creates nothing', async () => {
    // An absolute key aimed into `parent`, so an escape would be seen by the walk (and never hit /).
    const absolute = path.join(parent, 'abs-escape');
    const hostile = ['../x', '../../../../../../escape', absolute, 'a/../../x', 'a\u0000b', 'a\\..\\..\\x', 'a//b', './x', ''];
    for (const key of hostile) {
      for (const attempt of [
        () => store.put(key, Buffer.from('evil')),
        () => store.get(key),
        () => store.exists(key),
        () => store.delete(key),
      ]) {
        expect(await rejection(attempt()), JSON.stringify(key)).toMatchObject({ code: 'JV_UNSAFE_KEY' });
      }
    }
    expect(await walkFiles(parent)).toEqual([]);
  });

  it('refuses to write, read or delete through a symlinked directory pointing outside the root', async () => {
    const outside = path.join(parent, 'outside');
    await mkdir(outside);
    await writeFile(path.join(outside, 'secret'), 'secret');
    await mkdir(path.join(root, 'S'), { recursive: true });
    // One link at the top level, one as the final directory of a key.
    await symlink(outside, path.join(root, 'ORDERS'));
    await symlink(outside, path.join(root, 'S', 'split'));

    for (const key of ['ORDERS/x/y.jv', 'ORDERS/y.jv', 'S/split/y.jv', 'S/split/new/deeper/y.jv']) {
      expect(await rejection(store.put(key, Buffer.from('evil'))), key).toMatchObject({ code: 'JV_UNSAFE_KEY' });
    }
    expect(await rejection(store.get('ORDERS/secret'))).toMatchObject({ code: 'JV_UNSAFE_KEY' });
    expect(await rejection(store.delete('S/split/secret'))).toMatchObject({ code: 'JV_UNSAFE_KEY' });
    expect(await rejection(store.exists('S/split/secret'))).toMatchObject({ code: 'JV_UNSAFE_KEY' });

    // Nothing new outside, the secret untouched, and list() does not follow the links.
    expect(await readdir(outside)).toEqual(['secret']);
    expect(await readFile(path.join(outside, 'secret'), 'utf8')).toBe('secret');
    expect(await collect(store.list(''))).toEqual([]);
    expect(await collect(store.list('ORDERS/'))).toEqual([]);
  });

  it('refuses a dangling symlink that mkdir -p would otherwise follow', async () => {
    const target = path.join(parent, 'not-yet');
    await mkdir(root, { recursive: true });
    await symlink(target, path.join(root, 'D'));
    expect(await rejection(store.put('D/x/y.jv', Buffer.from('evil')))).toMatchObject({ code: 'JV_UNSAFE_KEY' });
    expect(await walkFiles(parent)).toEqual([path.join(root, 'D')]);
  });

  it('replaces a symlink at the final name instead of writing through it, and never reads through one', async () => {
    const outside = path.join(parent, 'outside-file');
    await writeFile(outside, 'secret');
    await mkdir(root, { recursive: true });
    await symlink(outside, path.join(root, 'link.jv'));

    expect(await rejection(store.get('link.jv'))).toMatchObject({ code: 'JV_STORE_FAILED' });
    expect(await store.exists('link.jv')).toBe(false);
    await store.put('link.jv', Buffer.from('mine'));
    expect(await readFile(outside, 'utf8')).toBe('secret');
    expect((await store.get('link.jv')).toString()).toBe('mine');
  });
});

describe('FileStore writes', () => {
  it('describes itself by its absolute root', () => {
    expect(store.description).toBe(`file://${root}`);
    const relative = new FileStore('some/rel');
    expect(relative.description).toBe(`file://${path.resolve(process.cwd(), 'some/rel')}`);
  });

  it('leaves no temp file behind after a put', async () => {
    await store.put('S/k/a.jv', Buffer.from('a'));
    await store.put('S/k/b.jv', Buffer.alloc(1024 * 1024, 7));
    expect((await readdir(path.join(root, 'S', 'k'))).sort()).toEqual(['a.jv', 'b.jv']);
  });

  it('replaces the content when the same key is put again', async () => {
    await store.put('S/k/a.jv', Buffer.from('a longer first version'));
    await store.put('S/k/a.jv', Buffer.from('second'));
    expect((await store.get('S/k/a.jv')).toString()).toBe('second');
    expect(await collect(store.list('S/'))).toEqual([{ key: 'S/k/a.jv', size: 6 }]);
    expect(tempFilesUnder(root)).toEqual([]);
  });

  it('aborted while the temp file exists: rejects with the reason and leaves neither temp nor final file', async () => {
    const reason = new Error('stop now');
    let sawTempFile = false;
    // A signal that turns aborted as soon as the store has a temp file on disk, i.e. mid-write and
    // before the rename: deterministic, with no timers.
    const signal = {
      get aborted() {
        sawTempFile ||= tempFilesUnder(root).length > 0;
        return sawTempFile;
      },
      reason,
      addEventListener() {},
      removeEventListener() {},
      onabort: null,
      dispatchEvent: () => true,
    } as unknown as AbortSignal;

    expect(await rejection(store.put('S/k/aborted.jv', Buffer.alloc(64 * 1024, 1), { signal }))).toBe(reason);
    expect(sawTempFile).toBe(true);
    expect(tempFilesUnder(root)).toEqual([]);
    expect(await store.exists('S/k/aborted.jv')).toBe(false);
    expect(await walkFiles(root)).toEqual([]);
  });

  it('aborted before it starts: rejects with the reason and writes nothing', async () => {
    const controller = new AbortController();
    const reason = new Error('cancelled');
    controller.abort(reason);
    expect(await rejection(store.put('S/k/a.jv', Buffer.from('a'), { signal: controller.signal }))).toBe(reason);
    expect(await walkFiles(parent)).toEqual([]);
  });

  it('maps a file standing where a directory must go to a permanent JV_STORE_FAILED naming the store and key', async () => {
    await store.put('S/file', Buffer.from('x'));
    // mkdir -p reports EEXIST when the file is the last directory, ENOTDIR when it is further up.
    for (const [key, errno] of [
      ['S/file/child.jv', 'EEXIST'],
      ['S/file/deeper/child.jv', 'ENOTDIR'],
    ] as const) {
      const error = await rejection(store.put(key, Buffer.from('y')));
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ code: 'JV_STORE_FAILED', transient: false, cause: { code: errno } });
      expect((error as Error).message).toContain(store.description);
      expect((error as Error).message).toContain(key);
    }
    expect(tempFilesUnder(root)).toEqual([]);
  });

  it.skipIf(!chmodBlocksWrites)(
    'maps a read-only root to a permanent JV_STORE_FAILED (skipped when running as root: chmod 0o500 does not stop uid 0)',
    async () => {
      await mkdir(root, { recursive: true });
      await chmod(root, 0o500);
      const error = await rejection(store.put('S/k/a.jv', Buffer.from('a')));
      expect(error).toMatchObject({ code: 'JV_STORE_FAILED', transient: false, cause: { code: 'EACCES' } });
      expect((error as Error).message).toContain(store.description);
      expect((error as Error).message).toContain('S/k/a.jv');
    },
  );
});

describe('FileStore reads', () => {
  it('rejects a missing key with JV_STORE_NOT_FOUND, also when the root does not exist yet', async () => {
    const missingRoot = await rejection(store.get('S/k/none.jv'));
    expect(missingRoot).toMatchObject({ code: 'JV_STORE_NOT_FOUND', transient: false });
    expect((missingRoot as Error).message).toContain('S/k/none.jv');
    expect((missingRoot as Error).message).toContain(store.description);
    await store.put('S/k/a.jv', Buffer.from('a'));
    expect(await rejection(store.get('S/k/none.jv'))).toMatchObject({ code: 'JV_STORE_NOT_FOUND' });
    // A directory and a path through a file are not objects either.
    expect(await rejection(store.get('S/k'))).toMatchObject({ code: 'JV_STORE_NOT_FOUND' });
    expect(await rejection(store.get('S/k/a.jv/x'))).toMatchObject({ code: 'JV_STORE_NOT_FOUND' });
    expect(await store.exists('S/k')).toBe(false);
    expect(await store.exists('S/k/a.jv/x')).toBe(false);
  });

  it('lists nothing for a missing root and skips temp files and symlinks', async () => {
    expect(await collect(store.list(''))).toEqual([]);
    await store.put('S/k/a.jv', Buffer.from('abc'));
    await writeFile(path.join(root, 'S', 'k', '.a.jv.123.abcdef.tmp'), 'half');
    await symlink(path.join(root, 'S', 'k', 'a.jv'), path.join(root, 'S', 'k', 'b.jv'));
    expect(await collect(store.list(''))).toEqual([{ key: 'S/k/a.jv', size: 3 }]);
  });

  it('lists with a prefix ending mid-segment', async () => {
    for (const key of ['ORDERS/orders.us/x.jv', 'ORDERS/orders.eu/y.jv', 'ORDERS/orders.eu2/z.jv', 'ORDERS/ordersX/w.jv']) {
      await store.put(key, Buffer.from(key));
    }
    expect((await collect(store.list('ORDERS/orders.e'))).map((o) => o.key)).toEqual(['ORDERS/orders.eu/y.jv', 'ORDERS/orders.eu2/z.jv']);
    // Prefixes no safe key can start with match nothing instead of walking out of the root.
    expect(await collect(store.list('../'))).toEqual([]);
    expect(await collect(store.list('/'))).toEqual([]);
  });

  it('deletes without error when the key or the root is missing', async () => {
    await store.delete('S/k/none.jv');
    await store.put('S/k/a.jv', Buffer.from('a'));
    await store.delete('S/k/a.jv');
    await store.delete('S/k/a.jv');
    await store.delete('S/k');
    expect(await store.exists('S/k/a.jv')).toBe(false);
  });
});

describe('fsStoreError', () => {
  it.each([
    ['EACCES', 'JV_STORE_FAILED', false],
    ['EPERM', 'JV_STORE_FAILED', false],
    ['EROFS', 'JV_STORE_FAILED', false],
    ['ENOTDIR', 'JV_STORE_FAILED', false],
    ['ENOSPC', 'JV_STORE_UNAVAILABLE', true],
    ['EIO', 'JV_STORE_UNAVAILABLE', true],
    ['EMFILE', 'JV_STORE_UNAVAILABLE', true],
    ['EAGAIN', 'JV_STORE_UNAVAILABLE', true],
    ['EBUSY', 'JV_STORE_UNAVAILABLE', true],
  ])('maps %s to %s (transient: %s)', (errno, code, transient) => {
    const cause = Object.assign(new Error(`${errno}: boom`), { code: errno });
    const error = fsStoreError('file:///data', 'put', 'S/k/a.jv', cause);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ code, transient, cause });
    expect(error.message).toContain('file:///data');
    expect(error.message).toContain('"S/k/a.jv"');
  });

  it('treats an error without errno code as transient and passes jetvault errors through', () => {
    expect(fsStoreError('file:///d', 'get', 'k', new Error('odd'))).toMatchObject({ code: 'JV_STORE_UNAVAILABLE', transient: true });
    const own = new StoreError('JV_STORE_NOT_FOUND', 'missing');
    expect(fsStoreError('file:///d', 'get', 'k', own)).toBe(own);
  });
});

describe('createStore', () => {
  it('opens a FileStore for file:// URIs and plain paths', () => {
    expect(createStore('file:///var/tmp/jv archive').description).toBe('file:///var/tmp/jv archive');
    expect(createStore('file:///var/tmp/jv%20x').description).toBe('file:///var/tmp/jv x');
    expect(createStore('FILE://localhost/var/tmp/jv').description).toBe('file:///var/tmp/jv');
    expect(createStore('/var/tmp/jv').description).toBe('file:///var/tmp/jv');
    expect(createStore('rel/dir').description).toBe(`file://${path.resolve(process.cwd(), 'rel/dir')}`);
    expect(createStore('./a:b').description).toBe(`file://${path.resolve(process.cwd(), 'a:b')}`);
    expect(createStore('/var/tmp/jv')).toBeInstanceOf(FileStore);
  });

  it.each(['file://relative/dir', 'file:relative', 'file:///tmp/a?x=1', 'file:///tmp/a#frag', 'file:///tmp/a%2Fb', ''])(
    'refuses %j with a usage error',
    (uri) => {
      expect(() => createStore(uri)).toThrow(expect.objectContaining({ code: 'JV_USAGE' }));
    },
  );

  it.each([
    ['ftp://x', 'ftp:'],
    ['foo:bar', 'foo:'],
    ['https://acct.blob.core.windows.net/c', 'https:'],
  ])('refuses the unknown scheme of %j', (uri, scheme) => {
    expect(() => createStore(uri)).toThrow(
      expect.objectContaining({ code: 'JV_USAGE', message: `unknown store scheme "${scheme}" (supported: file://, s3://, azure://, az://, or a plain path)` }),
    );
  });
});

describe('describeStoreUri', () => {
  it.each([
    ['s3://AKIAX:se/cr@et@bucket/prefix', 's3://***@bucket/prefix'],
    ['s3://bucket/prefix', 's3://bucket/prefix'],
    [
      'azure://acct/container?sv=2024-01-01&se=2026-01-01&sig=abc%2Fdef&sp=rw',
      'azure://acct/container?sv=2024-01-01&se=2026-01-01&sig=***&sp=rw',
    ],
    ['az://c?SAS=xyz&token=t&AccountKey=k&password=p&x-amz-signature=s&region=eu', 'az://c?SAS=***&token=***&AccountKey=***&password=***&x-amz-signature=***&region=eu'],
    ['s3://user:pass@bucket?secret=s#frag', 's3://***@bucket?secret=***#frag'],
    ['/plain/path@host', '/plain/path@host'],
    ['file:///dir/with@sign', 'file:///dir/with@sign'],
  ])('describes %j as %j', (uri, described) => {
    expect(describeStoreUri(uri)).toBe(described);
  });
});
