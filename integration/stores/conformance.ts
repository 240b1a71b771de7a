/**
 * The store conformance suite: the same behaviour checked for every Store (file system, S3, Azure Blob),
 * including a full capture → restore → verify round trip through it. A store's test file calls `storeConformance(name, makeStore)`; the suite opens one store for
 * all its tests and gives each test its own key prefix, so it also runs against a shared bucket.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { createCapture } from '../../machines/create-capture.js';
import { restore } from '../../restore/restore.js';
import { verify } from '../../restore/verify.js';
import type { Store, StoredObject } from '../../src/stores/store.js';
import { startNatsServer, uniqueName, type NatsServer } from '../helpers/nats-server.js';
import { differences, mixedMessages, publishAll, readStream } from '../helpers/streams.js';
import { prefixedStore } from './prefixed-store.js';

export interface StoreUnderTest {
  store: Store;
  cleanup(): Promise<void>;
}

async function collect(iterable: AsyncIterable<StoredObject>): Promise<StoredObject[]> {
  const out: StoredObject[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

async function keysOf(store: Store, prefix: string): Promise<string[]> {
  return (await collect(store.list(prefix))).map((o) => o.key);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** Runs `task` over `items` with at most `limit` in flight: fast, without opening thousands of files at once. */
async function forEachLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export function storeConformance(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`${name} store conformance`, () => {
    let subject: StoreUnderTest | undefined;
    // One run id per suite run: prefixes never meet data left by an earlier run in a shared bucket.
    const run = `conformance-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
    let testNumber = 0;
    /** A fresh prefix for one test, ending in '/'. */
    const freshPrefix = (label: string) => `${run}/${String(++testNumber).padStart(2, '0')}-${label}/`;
    const store = (): Store => {
      if (!subject) throw new Error('store not created');
      return subject.store;
    };

    beforeAll(async () => {
      subject = await makeStore();
    });

    afterAll(async () => {
      await subject?.store.close?.();
      await subject?.cleanup();
    });

    it('has a description that names where it stores', () => {
      expect(store().description).toMatch(/^[a-z][a-z0-9+.-]*:\/\/\S/);
    });

    it.each([
      ['0 B', 0],
      ['1 B', 1],
      ['5 MiB', 5 * 1024 * 1024],
      // Past any multipart threshold: S3 uploads it in parts, Azure in blocks.
      ['40 MiB', 40 * 1024 * 1024],
    ])('puts and gets %s byte-identical', { timeout: 120_000 }, async (label, size) => {
      const key = `${freshPrefix('roundtrip')}${label.replace(' ', '')}.bin`;
      const body = randomBytes(size);
      await store().put(key, body, { contentType: 'application/octet-stream', metadata: { 'jv-size': String(size) } });
      const got = await store().get(key);
      expect(Buffer.isBuffer(got)).toBe(true);
      expect(got.length).toBe(size);
      // Buffer.equals, not toEqual: a 5 MiB diff would swamp the report.
      expect(got.equals(body)).toBe(true);
      expect(await collect(store().list(key))).toEqual([{ key, size }]);
    });

    it('overwrites a key: the content is that of the last put, and putting it again changes nothing', async () => {
      const key = `${freshPrefix('overwrite')}block.jv.gz`;
      const longer = randomBytes(4096);
      const shorter = randomBytes(100);
      await store().put(key, longer);
      await store().put(key, shorter);
      expect((await store().get(key)).equals(shorter)).toBe(true);
      await store().put(key, shorter);
      expect((await store().get(key)).equals(shorter)).toBe(true);
      expect(await collect(store().list(key))).toEqual([{ key, size: 100 }]);
    });

    it('rejects get of a missing key with JV_STORE_NOT_FOUND', async () => {
      const prefix = freshPrefix('missing');
      expect(await rejection(store().get(`${prefix}never-written.jv`))).toMatchObject({ code: 'JV_STORE_NOT_FOUND' });
      await store().put(`${prefix}present.jv`, Buffer.from('x'));
      expect(await rejection(store().get(`${prefix}absent.jv`))).toMatchObject({ code: 'JV_STORE_NOT_FOUND' });
      expect(await rejection(store().get(`${prefix}present.jv.manifest.json`))).toMatchObject({ code: 'JV_STORE_NOT_FOUND' });
    });

    it('lists in ascending byte order and filters by prefix, also mid-segment', async () => {
      const prefix = freshPrefix('order');
      // Written out of order. '-' < '.' < '/' < '0' in byte order, so `a.b.jv` sorts before `a/…`
      // and `a/1.jv` before `a/1/x.jv`: a naive directory walk gets these wrong.
      const written = ['b.jv', 'a/2.jv', 'c/d/e/f.jv', 'a/10.jv', 'a.b.jv', 'a/1/x.jv', 'ab.jv', 'A.jv', 'a-z.jv', 'a/1.jv'];
      for (const [i, key] of written.entries()) await store().put(`${prefix}${key}`, Buffer.alloc(i + 1, i));
      const sizeOf = (key: string) => written.indexOf(key) + 1;
      const expectList = async (listPrefix: string, expected: string[]) => {
        expect(await collect(store().list(`${prefix}${listPrefix}`)), listPrefix).toEqual(
          expected.map((key) => ({ key: `${prefix}${key}`, size: sizeOf(key) })),
        );
      };

      const all = ['A.jv', 'a-z.jv', 'a.b.jv', 'a/1.jv', 'a/1/x.jv', 'a/10.jv', 'a/2.jv', 'ab.jv', 'b.jv', 'c/d/e/f.jv'];
      // The expectation really is byte order, not an accident of how it was typed.
      expect([...all].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))).toEqual(all);
      await expectList('', all);
      await expectList('a', ['a-z.jv', 'a.b.jv', 'a/1.jv', 'a/1/x.jv', 'a/10.jv', 'a/2.jv', 'ab.jv']);
      await expectList('a/', ['a/1.jv', 'a/1/x.jv', 'a/10.jv', 'a/2.jv']);
      await expectList('a/1', ['a/1.jv', 'a/1/x.jv', 'a/10.jv']);
      await expectList('a/1/', ['a/1/x.jv']);
      await expectList('a/1/x.jv', ['a/1/x.jv']);
      await expectList('c/d/', ['c/d/e/f.jv']);
      await expectList('c/d', ['c/d/e/f.jv']);
      await expectList('zzz', []);
      await expectList('a/3/', []);
      expect(await keysOf(store(), `${run}/no-such-test/`)).toEqual([]);
    });

    it('lists past 1,000 keys', async () => {
      const prefix = freshPrefix('many');
      const keys = Array.from({ length: 1100 }, (_, i) => `${prefix}obj-${String(i).padStart(5, '0')}.jv`);
      // Put in reverse so list order cannot come from write order.
      await forEachLimited([...keys].reverse(), 32, (key) => store().put(key, Buffer.from(key.slice(-9))));
      const listed = await collect(store().list(prefix));
      expect(listed).toHaveLength(1100);
      expect(listed.map((o) => o.key)).toEqual(keys);
      expect(listed.every((o) => o.size === 9)).toBe(true);
      // A prefix that splits the set after the first page boundary.
      expect(await keysOf(store(), `${prefix}obj-0105`)).toEqual(keys.slice(1050, 1060));
    });

    it('tells whether a key exists and deletes exactly that key', async () => {
      const prefix = freshPrefix('delete');
      const key = `${prefix}block.jv`;
      const neighbours = [`${prefix}block.jv.manifest.json`, `${prefix}block.jv2`, `${prefix}block`];
      expect(await store().exists(key)).toBe(false);
      for (const k of [key, ...neighbours]) await store().put(k, Buffer.from(k));
      expect(await store().exists(key)).toBe(true);
      expect(await store().exists(`${prefix}block.j`)).toBe(false);

      await store().delete(key);
      expect(await store().exists(key)).toBe(false);
      expect(await rejection(store().get(key))).toMatchObject({ code: 'JV_STORE_NOT_FOUND' });
      expect(await keysOf(store(), prefix)).toEqual([...neighbours].sort());
      // Deleting what is not there succeeds.
      await store().delete(key);
      await store().delete(`${prefix}never/written.jv`);
      for (const k of neighbours) await store().delete(k);
      expect(await keysOf(store(), prefix)).toEqual([]);
    });

    it('refuses unsafe keys with JV_UNSAFE_KEY in every operation', async () => {
      const prefix = freshPrefix('unsafe');
      for (const key of [`${prefix}../escape.jv`, '/abs.jv', `${prefix}a//b.jv`, `${prefix}a\u0000b.jv`, '']) {
        expect(await rejection(store().put(key, Buffer.from('x'))), JSON.stringify(key)).toMatchObject({ code: 'JV_UNSAFE_KEY' });
        expect(await rejection(store().get(key))).toMatchObject({ code: 'JV_UNSAFE_KEY' });
        expect(await rejection(store().exists(key))).toMatchObject({ code: 'JV_UNSAFE_KEY' });
        expect(await rejection(store().delete(key))).toMatchObject({ code: 'JV_UNSAFE_KEY' });
      }
      expect(await keysOf(store(), prefix)).toEqual([]);
    });

    describe('capture → restore → verify through this store', () => {
      let source: NatsServer;
      let target: NatsServer;
      beforeAll(async () => {
        [source, target] = await Promise.all([startNatsServer(), startNatsServer()]);
      });
      afterAll(async () => {
        await Promise.all([source?.dispose(), target?.dispose()]);
      });

      it('round-trips 3,000 mixed messages identically', { timeout: 120_000 }, async () => {
        const archive = prefixedStore(store(), freshPrefix('round-trip'));
        const stream = uniqueName('CONF');
        const subject = stream.toLowerCase();
        const [a, b] = await Promise.all([connect({ servers: source.url }), connect({ servers: target.url })]);
        try {
          await (await jetstreamManager(a)).streams.add({ name: stream, subjects: [`${subject}.>`] });
          await publishAll(a, stream, mixedMessages(3_000, [`${subject}.x`, `${subject}.y`, `${subject}.z`]));
          const report = await createCapture({ connection: a, stream, store: archive, compression: 'gzip', maxMessages: 400, once: true }).done;
          expect(report.messages).toBe(3_000);
          const restored = await restore({ from: archive, connection: b });
          expect(restored).toMatchObject({ messages: 3_000, targetStream: stream });
          expect(differences(await readStream(a, stream), await readStream(b, stream))).toEqual([]);
          expect(await verify({ from: archive, connection: b, stream })).toMatchObject({ ok: true, matched: 3_000 });
        } finally {
          await Promise.all([a.close(), b.close()]);
        }
      });
    });

    it('rejects a put whose signal is already aborted with its reason and stores nothing', async () => {
      const key = `${freshPrefix('abort')}block.jv`;
      const controller = new AbortController();
      const reason = new Error('capture stopping');
      controller.abort(reason);
      expect(await rejection(store().put(key, Buffer.from('x'), { signal: controller.signal }))).toBe(reason);
      expect(await store().exists(key)).toBe(false);
    });
  });
}
