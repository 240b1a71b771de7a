/**
 * restore() against real nats-servers: a source server holding the original streams and a target
 * server receiving the restores (restoring next to the source would overlap its subjects).
 */
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StreamConfig } from '@nats-io/jetstream';
import { headers, nanos } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../src/archive/envelope.js';
import { CorruptBlockError } from '../src/errors.js';
import { FileStore } from '../src/stores/fs.js';
import { restore, type RestoreReport } from '../restore/restore.js';
import { readEnvelopes, useServerPair, writeArchive } from './helpers/archive.js';
import { uniqueName } from './helpers/nats-server.js';

const pair = useServerPair('restore');
const { tempDir } = pair;

const content = (messages: Array<{ subject: string; headers: Array<[string, string[]]> | null; data: Uint8Array }>) =>
  messages.map((m) => ({ subject: m.subject, headers: m.headers ?? [], data: Buffer.from(m.data).toString('hex') }));

/** Archives a source stream as it is now. */
async function archiveStream(stream: string, options: { maxMessages?: number; format?: string; compression?: string } = {}) {
  const dir = tempDir();
  const store = new FileStore(dir);
  const info = await pair.source.jsm.streams.info(stream);
  const stored = await readEnvelopes(pair.source.jsm, stream);
  const blocks = await writeArchive(store, stored, { ...options, streamConfig: info.config as unknown as Record<string, unknown> });
  return { dir, store, stored, blocks };
}

/** A source stream with interleaved subjects, multi-valued and lower-case headers, empty and non-UTF-8 payloads. */
async function sourceStream(count = 60, extra: Partial<StreamConfig> = {}): Promise<{ stream: string; subjects: string[] }> {
  const stream = uniqueName('SRC');
  const prefix = stream.toLowerCase();
  await pair.source.jsm.streams.add({ name: stream, subjects: [`${prefix}.>`], ...extra });
  const subjects = [`${prefix}.orders.eu`, `${prefix}.orders.us`, `${prefix}.audit`];
  for (let i = 0; i < count; i++) {
    const subject = subjects[(i * 7) % 3] as string;
    let h;
    if (i % 4 === 0) {
      h = headers();
      h.append('x-lower-case', `v${i}`);
      h.append('x-lower-case', 'second value');
      h.append('X-Mixed-Case', '');
    } else if (i % 4 === 1) {
      h = headers();
      h.append('Nats-Msg-Id', `${stream}-${i}`);
    }
    const data = i % 5 === 0 ? new Uint8Array() : i % 5 === 1 ? Buffer.from([0xff, 0xfe, 0x00, 0xc3, i & 0xff]) : Buffer.from(`message ${i} ü`);
    await pair.source.js.publish(subject, data, h ? { headers: h } : undefined);
  }
  return { stream, subjects: [`${prefix}.>`] };
}

function synthetic(stream: string, count: number, make: (seq: number) => Partial<Envelope> = () => ({})): Envelope[] {
  const base = BigInt(Date.now()) * 1_000_000n;
  return Array.from({ length: count }, (_, i) => ({
    subject: `${stream.toLowerCase()}.s${i % 4}`,
    headers: null,
    data: Buffer.from(`payload ${i + 1}`),
    stream,
    seq: i + 1,
    timeNs: base + BigInt(i),
    deliveryCount: 1,
    ...make(i + 1),
  }));
}

const configFor = (stream: string, extra: Record<string, unknown> = {}) => ({
  name: stream,
  subjects: [`${stream.toLowerCase()}.>`],
  retention: 'limits',
  storage: 'file',
  num_replicas: 1,
  duplicate_window: 120_000_000_000,
  ...extra,
});

describe('restore', () => {
  it('restores interleaved blocks in exact original order, every message identical, into a stream created from the archived config', async () => {
    const { stream, subjects } = await sourceStream(60);
    const { store, stored, blocks } = await archiveStream(stream);
    // Split by subject with 7 messages per block: the block ranges really interleave.
    expect(blocks.length).toBeGreaterThan(6);
    expect(blocks.some((a) => blocks.some((b) => a !== b && a.manifest.firstSeq < b.manifest.firstSeq && b.manifest.firstSeq < a.manifest.lastSeq))).toBe(true);

    const progress: number[] = [];
    const report = await restore({ from: store, connection: pair.target.nc, onProgress: (p) => progress.push(p.messagesDone) });
    expect(report).toMatchObject<Partial<RestoreReport>>({
      sourceStream: stream,
      targetStream: stream,
      createdStream: true,
      blocks: blocks.length,
      messages: 60,
      skippedDuplicates: 0,
    });
    expect(progress.at(-1)).toBe(60);
    // Restore did not close a connection it was given.
    expect(pair.target.nc.isClosed()).toBe(false);

    const restored = await readEnvelopes(pair.target.jsm, stream);
    expect(restored).toHaveLength(stored.length);
    for (let i = 0; i < stored.length; i++) {
      expect({ i, ...content([restored[i] as Envelope])[0] }).toEqual({ i, ...content([stored[i] as Envelope])[0] });
    }
    // Spot checks of what must survive byte for byte.
    expect(restored[0]?.headers).toEqual([
      ['x-lower-case', ['v0', 'second value']],
      ['X-Mixed-Case', ['']],
    ]);
    expect(restored[0]?.data.length).toBe(0);
    expect(restored[1]?.data).toEqual(Buffer.from([0xff, 0xfe, 0x00, 0xc3, 1]));
    expect(restored[1]?.headers).toEqual([['Nats-Msg-Id', [`${stream}-1`]]]);
    expect(restored[2]?.headers).toBeNull(); // no header of restore's own

    const info = await pair.target.jsm.streams.info(stream);
    expect(info.config.subjects).toEqual(subjects);
  });

  for (const [format, compression] of [
    ['ndjson', 'snappy'],
    ['csv', 'none'],
  ] as const) {
    it(`restores a ${format}/${compression} archive given as a path`, async () => {
      const { stream } = await sourceStream(20);
      const { dir, stored } = await archiveStream(stream, { format, compression, maxMessages: 3 });
      const report = await restore({ from: dir, servers: pair.target.server.url });
      expect(report.messages).toBe(20);
      expect(content(await readEnvelopes(pair.target.jsm, stream))).toEqual(content(stored));
    });
  }

  it('refuses a target that holds messages unless appending', async () => {
    const stream = uniqueName('APP');
    const dir = tempDir();
    const store = new FileStore(dir);
    await writeArchive(store, synthetic(stream, 10), { streamConfig: configFor(stream) });
    await restore({ from: store, connection: pair.target.nc });
    await expect(restore({ from: store, connection: pair.target.nc })).rejects.toMatchObject({ code: 'JV_TARGET_NOT_EMPTY', message: expect.stringContaining(stream) });
    expect((await pair.target.jsm.streams.info(stream)).state.messages).toBe(10);
    const report = await restore({ from: store, connection: pair.target.nc, append: true });
    expect(report).toMatchObject({ createdStream: false, messages: 10 });
    expect((await pair.target.jsm.streams.info(stream)).state.messages).toBe(20);
  });

  it('restores into a differently named existing stream; create:false with a missing one is JV_TARGET_MISSING', async () => {
    const stream = uniqueName('NAMED');
    const store = new FileStore(tempDir());
    await writeArchive(store, synthetic(stream, 5), { streamConfig: configFor(stream) });
    const missing = uniqueName('MISSING');
    await expect(restore({ from: store, connection: pair.target.nc, stream: missing, create: false })).rejects.toMatchObject({ code: 'JV_TARGET_MISSING' });
    await expect(pair.target.jsm.streams.info(missing)).rejects.toThrow();

    const existing = uniqueName('EXISTING');
    await pair.target.jsm.streams.add({ name: existing, subjects: [`${stream.toLowerCase()}.>`] });
    const report = await restore({ from: store, connection: pair.target.nc, stream: existing, create: false });
    expect(report).toMatchObject({ sourceStream: stream, targetStream: existing, createdStream: false, messages: 5 });
  });

  it('republishes a Nats-Msg-Id the source repeated, although the archived duplicate window is 2 min, and puts the window back', async () => {
    const stream = uniqueName('DUPWIN');
    const store = new FileStore(tempDir());
    const ids = ['a', 'b', 'a', 'c', 'b', 'a'];
    const envelopes = synthetic(stream, 8, (seq) => (seq <= ids.length ? { headers: [['Nats-Msg-Id', [ids[seq - 1] as string]]] } : {}));
    await writeArchive(store, envelopes, { streamConfig: configFor(stream), maxMessages: 3 });
    const report = await restore({ from: store, connection: pair.target.nc });
    expect(report.messages).toBe(8);
    const restored = await readEnvelopes(pair.target.jsm, stream);
    expect(content(restored)).toEqual(content(envelopes));
    const info = await pair.target.jsm.streams.info(stream);
    expect(info.config.duplicate_window).toBe(nanos(120_000));
  });

  it('restores a real source that accepted the same Nats-Msg-Id twice, more than its 1 s window apart', async () => {
    const stream = uniqueName('DUPREAL');
    const subject = `${stream.toLowerCase()}.x`;
    await pair.source.jsm.streams.add({ name: stream, subjects: [subject], duplicate_window: nanos(1_000) });
    const first = await pair.source.js.publish(subject, 'one', { msgID: 'same-id' });
    expect((await pair.source.js.publish(subject, 'in between', { msgID: 'same-id' })).duplicate).toBe(true);
    await pair.source.js.publish(subject, 'other');
    // The window is a time span: it has to pass on the server's clock.
    await new Promise((r) => setTimeout(r, 1_300));
    const second = await pair.source.js.publish(subject, 'two', { msgID: 'same-id' });
    expect(second.duplicate).toBe(false);
    expect(second.seq).toBe(first.seq + 2);

    const { store, stored } = await archiveStream(stream);
    expect(stored).toHaveLength(3);
    const report = await restore({ from: store, connection: pair.target.nc });
    expect(report.messages).toBe(3);
    expect(content(await readEnvelopes(pair.target.jsm, stream))).toEqual(content(stored));
    expect((await pair.target.jsm.streams.info(stream)).config.duplicate_window).toBe(nanos(1_000));
  });

  it('restores overlapping duplicate blocks (left by a crash) without duplicates', async () => {
    const stream = uniqueName('OVERLAP');
    const store = new FileStore(tempDir());
    const envelopes = synthetic(stream, 12);
    await writeArchive(store, envelopes.slice(0, 10), { streamConfig: configFor(stream), maxMessages: 100, splitKey: () => 'x' });
    // The same messages 6..10 stored again in another block, plus 11 and 12.
    await writeArchive(store, envelopes.slice(5), { streamConfig: configFor(stream), maxMessages: 100, splitKey: () => 'y' });
    const report = await restore({ from: store, connection: pair.target.nc });
    expect(report).toMatchObject({ messages: 12, skippedDuplicates: 5, blocks: 2 });
    expect(content(await readEnvelopes(pair.target.jsm, stream))).toEqual(content(envelopes));
  });

  for (const damage of ['flipped byte', 'truncated'] as const) {
    it(`rejects a ${damage} block with a CorruptBlockError naming it and publishes nothing`, async () => {
      const stream = uniqueName('CORRUPT');
      const dir = tempDir();
      const store = new FileStore(dir);
      const blocks = await writeArchive(store, synthetic(stream, 40), { streamConfig: configFor(stream), maxMessages: 5 });
      // The block holding the last message: without the precheck, everything before it would be published.
      const victim = blocks.reduce((a, b) => (b.manifest.lastSeq > a.manifest.lastSeq ? b : a));
      const path = join(dir, victim.key);
      if (damage === 'truncated') truncateSync(path, victim.body.length - 3);
      else {
        const bytes = readFileSync(path);
        bytes[5] = (bytes[5] as number) ^ 0x20;
        writeFileSync(path, bytes);
      }
      const error = await restore({ from: store, connection: pair.target.nc }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CorruptBlockError);
      expect(error).toMatchObject({ code: 'JV_BLOCK_CORRUPT', blockKey: victim.key, message: expect.stringContaining(victim.key) });
      // Nothing published: the target was not even created.
      await expect(pair.target.jsm.streams.info(stream)).rejects.toThrow(/stream not found/);

      if (damage === 'truncated') {
        // Without the precheck the block is still checked before any of its own messages is used.
        const late = await restore({ from: store, connection: pair.target.nc, precheck: false }).catch((e: unknown) => e);
        expect(late).toMatchObject({ code: 'JV_BLOCK_CORRUPT', blockKey: victim.key });
        const { state } = await pair.target.jsm.streams.info(stream);
        expect(state.messages).toBeLessThan(40);
        expect(state.last_seq).toBeLessThan(victim.manifest.firstSeq + 5);
      }
    });
  }

  it('stops when aborted and reports the abort reason', async () => {
    const stream = uniqueName('ABORT');
    const store = new FileStore(tempDir());
    await writeArchive(store, synthetic(stream, 3_000), { streamConfig: configFor(stream), maxMessages: 500 });
    const controller = new AbortController();
    const reason = new Error('user pressed ctrl-c');
    const error = await restore({
      from: store,
      connection: pair.target.nc,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.messagesDone >= 1_000) controller.abort(reason);
      },
    }).catch((e: unknown) => e);
    expect(error).toBe(reason);
    const { state } = await pair.target.jsm.streams.info(stream);
    expect(state.messages).toBeGreaterThanOrEqual(1_000);
    expect(state.messages).toBeLessThan(3_000);
  });

  it('measures restore throughput for 20,000 messages of 100 bytes', async () => {
    const stream = uniqueName('BULK');
    const store = new FileStore(tempDir());
    const payload = Buffer.alloc(100, 0x61);
    await writeArchive(store, synthetic(stream, 20_000, () => ({ data: payload })), { streamConfig: configFor(stream), maxMessages: 5_000 });
    const started = performance.now();
    const report = await restore({ from: store, servers: pair.target.server.url });
    const seconds = (performance.now() - started) / 1000;
    expect(report.messages).toBe(20_000);
    expect((await pair.target.jsm.streams.info(stream)).state.messages).toBe(20_000);
    // Printed for the report; the assertion only guards against a pathological slowdown.
    process.stdout.write(`restore throughput: ${Math.round(20_000 / seconds)} msgs/s (${seconds.toFixed(2)} s for 20,000 x 100 B, durationMs ${Math.round(report.durationMs)})\n`);
    expect(seconds).toBeLessThan(30);
  });
});
