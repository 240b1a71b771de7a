/**
 * restore() against real nats-servers: a source server holding the original streams and a target
 * server receiving the restores (restoring next to the source would overlap its subjects).
 */
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StreamConfig } from '@nats-io/jetstream';
import { connect, headers, nanos } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../src/archive/envelope.js';
import { CorruptBlockError } from '../src/errors.js';
import { FileStore } from '../src/stores/fs.js';
import { TARGET_LOST_MESSAGE } from '../restore/republisher.js';
import { restore, type RestoreReport } from '../restore/restore.js';
import { readEnvelopes, useServerPair, writeArchive } from './helpers/archive.js';
import { startJetvault } from './helpers/cli.js';
import { startNatsServer, uniqueName } from './helpers/nats-server.js';
import { differences, readStream } from './helpers/streams.js';

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

  describe('a lost target', () => {
    const mixedEnvelopes = (stream: string, count: number) =>
      synthetic(stream, count, (seq) => (seq % 4 === 0 ? { headers: [['x-k', [`v${seq}`, 'second']]] } : seq % 9 === 0 ? { data: new Uint8Array() } : {}));

    it('rides through a target restart on a connection the caller owns: nats.js reconnects it, restore waits and continues', { timeout: 40_000 }, async () => {
      const server = await startNatsServer();
      const nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
      try {
        const stream = uniqueName('GIVEN');
        const store = new FileStore(tempDir());
        const envelopes = mixedEnvelopes(stream, 10_000);
        await writeArchive(store, envelopes, { streamConfig: configFor(stream), maxMessages: 2_000 });
        let restarted: Promise<void> | undefined;
        const waiting: boolean[] = [];
        const report = await restore({
          from: store,
          connection: nc,
          onProgress: (p) => {
            if (p.waitingForTarget !== (waiting.at(-1) ?? false)) waiting.push(p.waitingForTarget);
            if (!restarted && p.messagesDone >= 3_000) restarted = server.restart();
          },
        });
        await restarted;
        expect(restarted).toBeDefined();
        expect(report).toMatchObject({ messages: 10_000, reconnects: 1 });
        expect(waiting).toEqual([true, false]);
        // Restore neither closed nor replaced the caller's connection.
        expect(nc.isClosed()).toBe(false);
        const restored = await readStream(nc, stream);
        expect(differences(envelopes, restored)).toEqual([]);
        expect(restored.at(-1)?.seq).toBe(10_000);
      } finally {
        await nc.close();
        await server.dispose();
      }
    });

    it('gives up with JV_CONNECT_FAILED when the target stays away longer than reconnectTimeoutMs', async () => {
      const server = await startNatsServer();
      try {
        const stream = uniqueName('GONE');
        const store = new FileStore(tempDir());
        await writeArchive(store, mixedEnvelopes(stream, 20_000), { streamConfig: configFor(stream), maxMessages: 5_000 });
        let killed: Promise<void> | undefined;
        let killedAt = 0;
        const error = await restore({
          from: store,
          servers: server.url,
          reconnectTimeoutMs: 1_500,
          onProgress: (p) => {
            if (!killed && p.messagesDone >= 2_000) {
              killedAt = performance.now();
              killed = server.kill();
            }
          },
        }).catch((e: unknown) => e);
        const failedAfterMs = performance.now() - killedAt;
        await killed;
        expect(error).toMatchObject({
          code: 'JV_CONNECT_FAILED',
          message: expect.stringMatching(new RegExp(`target stream ${stream} could not be reached for 1.5 s \\(reconnect timeout\\) after losing it: .*holds the first \\d+ messages`)),
        });
        expect(failedAfterMs).toBeGreaterThanOrEqual(1_500);
        expect(failedAfterMs).toBeLessThan(1_500 + 2_500);
      } finally {
        await server.dispose();
      }
    });

    it('CLI: restores through a target restart mid-publish, one warn line for the loss, the summary says so (needs npm run build)', { timeout: 40_000 }, async () => {
      const server = await startNatsServer();
      try {
        const stream = uniqueName('CLIRS');
        const dir = tempDir();
        const envelopes = mixedEnvelopes(stream, 20_000);
        await writeArchive(new FileStore(dir), envelopes, { streamConfig: configFor(stream), maxMessages: 5_000 });
        // Restart once the target has received 2,000 of the 20,000 messages: a plain subscription sees them arrive.
        const watcher = await connect({ servers: server.url });
        const arrived = watcher.subscribe(`${stream.toLowerCase()}.>`, { max: 2_000 });
        await watcher.flush();
        const cli = startJetvault(['restore', '--from', dir, '--server', server.url, '--reconnect-timeout', '20s']);
        let seen = 0;
        for await (const _ of arrived) seen++;
        expect(seen).toBe(2_000);
        await watcher.close();
        await server.restart();
        const run = await cli.done;
        expect(run.code, run.stderr).toBe(0);
        // At the default log level the loss is the only log line.
        const logLines = run.stderr
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as { level: number; msg: string; confirmed: number });
        expect(logLines.map((l) => [l.level, l.msg])).toEqual([[40, TARGET_LOST_MESSAGE]]);
        expect(logLines[0]?.confirmed).toBeGreaterThan(0);
        expect(run.stdout).toMatch(new RegExp(`^restored 20000 messages from \\d+ blocks into ${stream} \\(created\\) in [\\d.]+ s; the target was lost once, restore waited [\\d.]+ s for it\\n$`));
        // The final progress line.
        expect(run.stderr).toMatch(/restore: 20000\/20000 messages \(100%\)/);
        const nc = await connect({ servers: server.url });
        try {
          const restored = await readStream(nc, stream);
          expect(differences(envelopes, restored)).toEqual([]);
          expect(restored.at(-1)?.seq).toBe(20_000);
        } finally {
          await nc.close();
        }
      } finally {
        await server.dispose();
      }
    });
  });
});
