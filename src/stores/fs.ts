/**
 * A store in a local directory: one file per object, key segments as sub-directories.
 *
 * put() is atomic and durable: the body goes to a temp file in the destination directory (same file
 * system, so the rename is atomic), is fsynced, renamed into place, and the directory is fsynced. A crash
 * leaves either the old object, the new one, or a stray `.<name>.<pid>.<random>.tmp` that list() ignores.
 *
 * Keys are checked with assertSafeKey (the one place keys are made safe). On top of that, as defence in
 * depth, every resolved path must stay inside the root, lexically and after resolving symbolic links:
 * a symlinked directory under the root that points outside it is refused (JV_UNSAFE_KEY). The check and
 * the write are not one atomic step (Node has no openat), so this guards against mistakes and stale
 * links, not against a local attacker racing the process. list() never follows symbolic links.
 *
 * File systems that cannot hold both `a` and `a/b` as objects, or that fold case (macOS, Windows), keep
 * those limits; jetvault's own keys never need either.
 */
import { randomBytes } from 'node:crypto';
import { constants, type Dirent } from 'node:fs';
import { lstat, mkdir, open, readdir, realpath, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { assertSafeKey } from '../archive/keys.js';
import { JetvaultError, StoreError } from '../errors.js';
import type { PutOptions, Store, StoredObject } from './store.js';

/**
 * Errno codes that retrying will not fix: the block fails at once instead of backing off forever.
 * EEXIST is here because mkdir -p reports it when a file sits where a directory of the key must go.
 */
const PERMANENT_CODES = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EISDIR', 'EEXIST', 'ELOOP', 'ENAMETOOLONG', 'EINVAL']);

/** Temp files are hidden and end in `.tmp`: list() skips them, so a half-written object is never seen. */
export function isTempFileName(name: string): boolean {
  return name.startsWith('.') && name.endsWith('.tmp');
}

/**
 * Turns a Node file-system error into a StoreError naming the store and the key (JetvaultErrors pass
 * through). Exported for the tests: most errno codes (ENOSPC, EIO) cannot be produced on demand.
 */
export function fsStoreError(description: string, action: string, key: string, error: unknown): JetvaultError {
  if (error instanceof JetvaultError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const permanent = code !== undefined && PERMANENT_CODES.has(code);
  return new StoreError(
    permanent ? 'JV_STORE_FAILED' : 'JV_STORE_UNAVAILABLE',
    `${description}: cannot ${action} ${JSON.stringify(key)}${code ? ` (${code})` : ''}`,
    { cause: error, transient: !permanent },
  );
}

function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** UTF-8 byte order, the order S3 and Azure list in; differs from JS string order only past U+FFFF. */
function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function isInside(root: string, candidate: string): boolean {
  if (candidate === root) return true;
  const rootWithSep = root.endsWith(path.sep) ? root : root + path.sep;
  return candidate.startsWith(rootWithSep);
}

// O_NOFOLLOW makes open() fail with ELOOP on a symlinked final component; Windows lacks it.
const READ_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0);
const LIST_STAT_BATCH = 64;

export class FileStore implements Store {
  /** Absolute root directory; created on the first put. */
  readonly root: string;
  readonly description: string;

  constructor(rootDir: string) {
    this.root = path.resolve(rootDir);
    this.description = `file://${this.root}`;
  }

  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    const target = this.pathOf(key);
    const signal = options?.signal;
    if (signal?.aborted) throw signal.reason;
    const dir = path.dirname(target);
    // Long basenames would push the temp name past NAME_MAX (255) where the final name still fits.
    const tempPath = path.join(
      dir,
      `.${path.basename(target).slice(0, 100)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`,
    );
    let tempCreated = false;
    try {
      const rootCreated = await mkdir(this.root, { recursive: true });
      // Checked before mkdir so a symlink pointing outside is never followed to create directories there.
      await this.assertContained(dir, key);
      const dirCreated = await mkdir(dir, { recursive: true });
      // The topmost directory this put created: its entry, and every one below it, must reach the disk.
      const topCreated = rootCreated ?? dirCreated;
      await this.assertContained(dir, key);

      const file = await open(tempPath, 'wx', 0o644);
      tempCreated = true;
      try {
        await file.writeFile(body);
        await file.sync();
      } finally {
        await file.close();
      }
      // Last point where an abort leaves nothing behind; after the rename the object is stored.
      if (signal?.aborted) throw signal.reason;
      await rename(tempPath, target);
      tempCreated = false;

      // The rename lives in the directory; new directories live in their parents: fsync each of them.
      await syncDirectory(dir);
      if (topCreated !== undefined) {
        const last = path.dirname(topCreated);
        for (let d = path.dirname(dir); isInside(last, d); d = path.dirname(d)) {
          await syncDirectory(d);
          if (d === last) break;
        }
      }
    } catch (error) {
      if (tempCreated) await unlink(tempPath).catch(() => undefined);
      if (signal?.aborted) throw signal.reason;
      throw fsStoreError(this.description, 'put', key, error);
    }
  }

  async get(key: string, options?: { signal?: AbortSignal }): Promise<Buffer> {
    const target = this.pathOf(key);
    const signal = options?.signal;
    if (signal?.aborted) throw signal.reason;
    try {
      await this.assertContained(path.dirname(target), key);
      const file = await open(target, READ_FLAGS);
      try {
        return await file.readFile(signal ? { signal } : undefined);
      } finally {
        await file.close();
      }
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      // ENOTDIR: a parent is a file; EISDIR: the key names a directory. Neither is an object.
      const code = errnoCode(error);
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') {
        throw new StoreError('JV_STORE_NOT_FOUND', `${this.description}: object ${JSON.stringify(key)} not found`, {
          cause: error,
          transient: false,
        });
      }
      if (code === 'ELOOP') {
        throw new StoreError(
          'JV_STORE_FAILED',
          `${this.description}: object ${JSON.stringify(key)} is a symbolic link, which the store does not follow`,
          { cause: error, transient: false },
        );
      }
      throw fsStoreError(this.description, 'get', key, error);
    }
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    // Walk from the root, descending only into directories the prefix can reach: never through a symlink
    // (readdir would follow one given as a starting path), and a prefix like `../` simply matches nothing.
    yield* this.walk('', prefix);
  }

  async exists(key: string): Promise<boolean> {
    const target = this.pathOf(key);
    try {
      await this.assertContained(path.dirname(target), key);
      return (await lstat(target)).isFile();
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') return false;
      throw fsStoreError(this.description, 'check', key, error);
    }
  }

  async delete(key: string): Promise<void> {
    const target = this.pathOf(key);
    try {
      await this.assertContained(path.dirname(target), key);
      const stats = await lstat(target);
      // A directory is not an object; there is nothing to delete under this key.
      if (stats.isDirectory()) return;
      await unlink(target);
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw fsStoreError(this.description, 'delete', key, error);
    }
  }

  /** Key → absolute path, refusing unsafe keys and, in depth, any path that resolves outside the root. */
  private pathOf(key: string): string {
    assertSafeKey(key);
    const target = path.resolve(this.root, ...key.split('/'));
    if (!isInside(this.root, target) || target === this.root) {
      throw new StoreError('JV_UNSAFE_KEY', `${this.description}: key ${JSON.stringify(key)} resolves outside the store root`, {
        transient: false,
      });
    }
    return target;
  }

  /**
   * Refuses when `dir` (or its deepest existing ancestor) resolves, through symbolic links, outside the
   * real root. Missing directories below that ancestor will be created by us as plain directories.
   */
  private async assertContained(dir: string, key: string): Promise<void> {
    let realRoot: string;
    try {
      realRoot = await realpath(this.root);
    } catch (error) {
      // No root yet: nothing under it exists, so nothing can point outside.
      if (errnoCode(error) === 'ENOENT') return;
      throw error;
    }
    for (let current = dir; ; current = path.dirname(current)) {
      let real: string;
      try {
        real = await realpath(current);
      } catch (error) {
        if (errnoCode(error) !== 'ENOENT' || current === this.root) throw error;
        // A dangling symlink also reports ENOENT; mkdir -p must not be pointed at its target.
        const stats = await lstat(current).catch(() => undefined);
        if (stats?.isSymbolicLink()) throw this.escapeError(key, current);
        continue;
      }
      if (!isInside(realRoot, real)) throw this.escapeError(key, current);
      return;
    }
  }

  private escapeError(key: string, where: string): StoreError {
    return new StoreError(
      'JV_UNSAFE_KEY',
      `${this.description}: refused key ${JSON.stringify(key)}: ${JSON.stringify(path.relative(this.root, where))} is a symbolic link leading outside the store root`,
      { transient: false },
    );
  }

  /** Depth-first in key order: directory names sort as `name/`, so `a.b` comes before `a/x` as in S3. */
  private async *walk(dirKey: string, prefix: string): AsyncGenerator<StoredObject> {
    const dir = dirKey === '' ? this.root : path.join(this.root, ...dirKey.split('/'));
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      const code = errnoCode(error);
      // A missing root or prefix directory holds no objects.
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw fsStoreError(this.description, 'list', prefix, error);
    }
    const children: { key: string; sortKey: string; isDir: boolean }[] = [];
    for (const entry of entries) {
      const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
      if (entry.isDirectory()) {
        // Descend only where a key could still start with the prefix.
        if (`${key}/`.startsWith(prefix) || prefix.startsWith(`${key}/`)) children.push({ key, sortKey: `${key}/`, isDir: true });
      } else if (entry.isFile() && !isTempFileName(entry.name) && key.startsWith(prefix)) {
        children.push({ key, sortKey: key, isDir: false });
      }
      // Symbolic links and special files are not objects: never followed, never listed.
    }
    children.sort((a, b) => compareBytes(a.sortKey, b.sortKey));

    for (let i = 0; i < children.length; ) {
      // Stat runs of consecutive files in parallel batches; directories are walked in place, in order.
      const child = children[i]!;
      if (child.isDir) {
        yield* this.walk(child.key, prefix);
        i++;
        continue;
      }
      const batch: string[] = [];
      while (i < children.length && !children[i]!.isDir && batch.length < LIST_STAT_BATCH) batch.push(children[i++]!.key);
      const sizes = await Promise.all(
        batch.map(async (key) => {
          try {
            return (await lstat(path.join(this.root, ...key.split('/')))).size;
          } catch (error) {
            // Deleted between readdir and stat: no longer an object.
            if (errnoCode(error) === 'ENOENT') return undefined;
            throw fsStoreError(this.description, 'list', key, error);
          }
        }),
      );
      for (let j = 0; j < batch.length; j++) {
        const size = sizes[j];
        if (size !== undefined) yield { key: batch[j]!, size };
      }
    }
  }
}

/** fsync a directory so a rename or a new entry in it survives a crash. */
async function syncDirectory(dir: string): Promise<void> {
  // Windows cannot open a directory for fsync; NTFS journals the rename itself.
  if (process.platform === 'win32') return;
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch (error) {
    // Some file systems (certain FUSE and network mounts) do not support fsync on directories.
    if (errnoCode(error) !== 'EINVAL') throw error;
  } finally {
    await handle.close();
  }
}
