/**
 * The live capture path against a real nats-server: quiet streams flush on idle, a failing store is
 * retried without early acks, and the archive always verifies against the stream.
 */
import { AckPolicy } from '@nats-io/jetstream';
import { pino } from 'pino';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCapture } from '../machines/create-capture.js';
import { restore } from '../restore/restore.js';
import { verify } from '../restore/verify.js';
import type { Envelope } from '../src/archive/envelope.js';
import { csvFormat } from '../src/formats/index.js';
import type { CaptureEvent } from '../src/capture/events.js';
import { StoreError } from '../src/errors.js';
import { FileStore } from '../src/stores/fs.js';
import type { Store } from '../src/stores/store.js';
import { useNatsEnv } from './helpers/nats-env.js';
import { startNatsServer, uniqueName } from './helpers/nats-server.js';
import { mixedMessages, publishAll } from './helpers/streams.js';

const env = useNatsEnv('capture');

async function newStream(prefix: string, subjects = 4): Promise<{ stream: string; subjects: string[] }> {
  const stream = uniqueName(prefix);
  await env.jsm.streams.add({ name: stream, subjects: [`${stream.toLowerCase()}.>`] });
  return { stream, subjects: Array.from({ length: subjects }, (_, i) => `${stream.toLowerCase()}.s${i}`) };
}

describe('capture', () => {
  it('flushes a quiet stream: 10 messages, then nothing, stored and acked within idle time + 1 s', async () => {
    const { stream, subjects } = await newStream('QUIET', 1);
    const dir = env.tempDir();
    const idleMs = 1_000;
    const capture = createCapture({ servers: env.server.url, stream, store: dir, idleMs });
    const acked = new Promise<number>((resolve) => capture.on('block.acked', () => resolve(Date.now())));
    const sealed = new Promise<CaptureEvent>((resolve) => capture.on('block.sealed', resolve));
    await new Promise<void>((resolve) => capture.on('consumer.bound', () => resolve()));
    await publishAll(env.nc, stream, mixedMessages(10, subjects));
    const lastPublishAt = Date.now();
    const ackedAt = await acked;
    expect(await sealed).toMatchObject({ reason: 'idle', messages: 10 });
    expect(ackedAt - lastPublishAt).toBeLessThanOrEqual(idleMs + 1_000);
    const info = await env.jsm.consumers.info(stream, `jetvault-${stream}`);
    expect(info.num_ack_pending).toBe(0);
    expect(info.num_pending).toBe(0);
    const report = await capture.drain();
    expect(report.messages).toBe(10);
    const check = await verify({ from: dir, connection: env.nc, stream });
    expect(check.ok).toBe(true);
    expect(check.archivedMessages).toBe(10);
  });

  it('retries a store that fails 3 times: nothing acked before it succeeds, nothing lost', async () => {
    const { stream, subjects } = await newStream('FLAKY', 1);
    const dir = env.tempDir();
    const real = new FileStore(dir);
    let blockPuts = 0;
    let consumerDuringFailures: { ackPending: number; ackFloor: number } | undefined;
    const flaky: Store = {
      description: 'flaky+' + real.description,
      put: async (key, body, options) => {
        if (!key.endsWith('.manifest.json') && ++blockPuts <= 3) {
          const info = await env.jsm.consumers.info(stream, `jetvault-${stream}`);
          consumerDuringFailures = { ackPending: info.num_ack_pending, ackFloor: info.ack_floor.stream_seq };
          throw new StoreError('JV_STORE_UNAVAILABLE', `injected outage ${blockPuts}`);
        }
        return real.put(key, body, options);
      },
      get: (key, options) => real.get(key, options),
      list: (prefix) => real.list(prefix),
      exists: (key) => real.exists(key),
      delete: (key) => real.delete(key),
    };
    await publishAll(env.nc, stream, mixedMessages(500, subjects));
    const events: CaptureEvent[] = [];
    const capture = createCapture({ servers: env.server.url, stream, store: flaky, once: true, retryBaseMs: 50, retryMaxMs: 200 });
    capture.subscribe((e) => events.push(e));
    const report = await capture.done;
    const retries = events.filter((e) => e.type === 'block.retry');
    expect(retries.map((e) => (e as { attempt: number }).attempt)).toEqual([1, 2, 3]);
    expect(retries[0]).toMatchObject({ error: expect.stringContaining('injected outage 1') });
    // While the store was failing, all 500 messages were still unacknowledged on the env.server.
    expect(consumerDuringFailures).toEqual({ ackPending: 500, ackFloor: 0 });
    const stored = events.findIndex((e) => e.type === 'block.stored');
    const firstAck = events.findIndex((e) => e.type === 'block.acked');
    expect(stored).toBeGreaterThan(events.lastIndexOf(retries[2]!));
    expect(firstAck).toBeGreaterThan(stored);
    expect(report).toMatchObject({ messages: 500, blocks: 1, abandonedBlocks: 0 });
    const check = await verify({ from: dir, connection: env.nc, stream });
    expect(check).toMatchObject({ ok: true, archivedMessages: 500, matched: 500 });
  });

  it('splits by header, seals at max messages, and seals the rest at the end of --once', async () => {
    const { stream, subjects } = await newStream('SPLIT', 2);
    const dir = env.tempDir();
    await publishAll(env.nc, stream, mixedMessages(1_000, subjects));
    const sealed: Array<{ reason: string; messages: number }> = [];
    const capture = createCapture({ servers: env.server.url, stream, store: dir, once: true, splitBy: 'header:x-tag', maxMessages: 150 });
    capture.on('block.sealed', (e) => sealed.push({ reason: e.reason, messages: e.messages }));
    const report = await capture.done;
    expect(report.messages).toBe(1_000);
    expect(sealed.filter((s) => s.reason === 'max-messages').every((s) => s.messages === 150)).toBe(true);
    expect(sealed.some((s) => s.reason === 'drain')).toBe(true);
    expect(sealed.reduce((n, s) => n + s.messages, 0)).toBe(1_000);
    const check = await verify({ from: dir, connection: env.nc, stream });
    expect(check.ok).toBe(true);
  });

  it('fails with JV_STREAM_NOT_FOUND for a stream that does not exist', async () => {
    const capture = createCapture({ servers: env.server.url, stream: uniqueName('MISSING'), store: env.tempDir(), once: true });
    await expect(capture.done).rejects.toMatchObject({ code: 'JV_STREAM_NOT_FOUND' });
  });

  it('fails with JV_CONNECT_FAILED when no server listens', async () => {
    const gone = await startNatsServer();
    const url = gone.url;
    await gone.dispose();
    const capture = createCapture({ servers: url, stream: 'ANY', store: env.tempDir(), once: true });
    await expect(capture.done).rejects.toMatchObject({ code: 'JV_CONNECT_FAILED' });
  });

  it('writes custom values with a user decoder and a flattening CSV writer, split by a payload field', async () => {
    const { stream, subjects } = await newStream('CUSTOM', 1);
    const orders = Array.from({ length: 30 }, (_, i) => ({ id: i, region: ['eu', 'us', 'apac'][i % 3]!, total: i * 10 }));
    await publishAll(env.nc, stream, orders.map((o) => ({ subject: subjects[0]!, headers: null, data: Buffer.from(JSON.stringify(o)) })));
    const dir = env.tempDir();
    type Order = { id: number; region: string; total: number; seq: number };
    const capture = createCapture<Order>({
      servers: env.server.url,
      stream,
      store: dir,
      once: true,
      decoder: (e: Envelope) => {
        const order = JSON.parse(Buffer.from(e.data).toString('utf8')) as Omit<Order, 'seq'>;
        return { value: { ...order, seq: e.seq }, splitKey: order.region };
      },
      format: csvFormat<Order>({ columns: ['seq', 'id', 'region', 'total'], flatten: (o) => [[String(o.seq), String(o.id), o.region, String(o.total)]] }),
    });
    expect(await capture.done).toMatchObject({ messages: 30, blocks: 3 });
    const written = readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith('.csv'));
    expect(written.map((f) => f.split('/')[1]).sort()).toEqual(['apac', 'eu', 'us']);
    const eu = readFileSync(join(dir, written.find((f) => f.includes('/eu/'))!), 'utf8').trim().split('\n');
    expect(eu[0]).toBe('seq,id,region,total');
    expect(eu.slice(1)).toEqual(orders.filter((o) => o.region === 'eu').map((o) => `${o.id + 1},${o.id},eu,${o.total}`));
    // Flattened rows cannot become messages again: restore says so instead of guessing.
    await expect(restore({ from: dir, connection: env.nc, stream: `${stream}_R` })).rejects.toMatchObject({ code: 'JV_FORMAT_NOT_RESTORABLE' });
  });

  it('with dead-lettering off, stops loudly on a message the decoder rejects, after storing and acking what came before it', async () => {
    const { stream, subjects } = await newStream('POISON', 1);
    const good = Array.from({ length: 20 }, (_, i) => ({ subject: subjects[0]!, headers: null, data: Buffer.from(JSON.stringify({ i })) }));
    await publishAll(env.nc, stream, [...good, { subject: subjects[0]!, headers: null, data: Buffer.from('not json') }]);
    const dir = env.tempDir();
    const capture = createCapture<Envelope>({
      servers: env.server.url,
      stream,
      store: dir,
      once: true,
      deadLetter: false,
      decoder: (e) => {
        JSON.parse(Buffer.from(e.data).toString('utf8'));
        return { value: e };
      },
    });
    const undecodable: number[] = [];
    capture.on('message.undecodable', (e) => undecodable.push(e.seq));
    await expect(capture.done).rejects.toMatchObject({ code: 'JV_DECODE_FAILED', message: expect.stringContaining('message 21') });
    expect(undecodable).toEqual([21]);
    const info = await env.jsm.consumers.info(stream, `jetvault-${stream}`);
    expect(info.ack_floor.stream_seq).toBe(20);
    const check = await verify({ from: dir, connection: env.nc, stream });
    // The archive holds exactly the 20 good messages; the poison one is still in the stream, unacked.
    expect(check).toMatchObject({ ok: true, archivedMessages: 20, matched: 20 });
    expect(info.num_ack_pending + info.num_pending).toBe(1);
  });

  it('warns once, with the numbers, when blocks seal early at half of max_ack_pending', async () => {
    const { stream, subjects } = await newStream('ACKPENDING', 2);
    await publishAll(env.nc, stream, mixedMessages(1_000, subjects));
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const capture = createCapture({ servers: env.server.url, stream, store: env.tempDir(), once: true, maxAckPending: 100, logger });
    const sealedBy: string[] = [];
    capture.on('block.sealed', (e) => sealedBy.push(e.reason));
    const report = await capture.done;
    expect(report.messages).toBe(1_000);
    expect(sealedBy.filter((r) => r === 'ack-pending').length).toBeGreaterThan(5);
    const warnings = lines.filter((l) => String(l.msg).includes('max_ack_pending'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ maxAckPending: 100, msg: expect.stringContaining("half of the consumer's max_ack_pending (100)") });
  });

  it("stops with JV_CONSUMER_DELETED when a consumer it did not create is deleted (unless --recreate-consumer)", async () => {
    const { stream, subjects } = await newStream('USERCONS', 1);
    await env.jsm.consumers.add(stream, { durable_name: 'theirs', ack_policy: AckPolicy.Explicit });
    const capture = createCapture({ servers: env.server.url, stream, consumer: 'theirs', store: env.tempDir(), idleMs: 200 });
    const acked = new Promise<void>((resolve) => capture.on('block.acked', () => resolve()));
    await publishAll(env.nc, stream, mixedMessages(10, subjects));
    await acked;
    await env.jsm.consumers.delete(stream, 'theirs');
    await expect(capture.done).rejects.toMatchObject({ code: 'JV_CONSUMER_DELETED', message: expect.stringContaining('--recreate-consumer') });
    await expect(env.jsm.consumers.info(stream, 'theirs')).rejects.toThrow(/consumer not found/);
  });

  it('with recreateConsumer, re-creates a deleted consumer with its settings, after what it captured', async () => {
    const { stream, subjects } = await newStream('RECREATE', 1);
    await env.jsm.consumers.add(stream, { durable_name: 'theirs', ack_policy: AckPolicy.Explicit, max_ack_pending: 777 });
    const dir = env.tempDir();
    const capture = createCapture({ servers: env.server.url, stream, consumer: 'theirs', store: dir, idleMs: 200, recreateConsumer: true });
    let acked = 0;
    const ackedUpTo = (n: number) => new Promise<void>((resolve) => capture.on('block.acked', (e) => (acked += e.messages) >= n && resolve()));
    const first = ackedUpTo(10);
    await publishAll(env.nc, stream, mixedMessages(10, subjects));
    await first;
    const bound = new Promise<void>((resolve) => capture.on('consumer.bound', () => resolve()));
    await env.jsm.consumers.delete(stream, 'theirs');
    await bound;
    const recreated = await env.jsm.consumers.info(stream, 'theirs');
    expect(recreated.config).toMatchObject({ max_ack_pending: 777, deliver_policy: 'by_start_sequence', opt_start_seq: 11 });
    const second = ackedUpTo(20);
    await publishAll(env.nc, stream, mixedMessages(10, subjects, 7));
    await second;
    const report = await capture.drain();
    expect(report.messages).toBe(20);
    const check = await verify({ from: dir, connection: env.nc, stream });
    expect(check).toMatchObject({ ok: true, archivedMessages: 20, matched: 20 });
  });

  it('dead-letters a poison message after its attempts (bounded by max_deliver), acks it and goes on', async () => {
    const { stream, subjects } = await newStream('DEADLETTER', 1);
    // max_deliver 2 on a consumer the user made: jetvault must dead-letter at the 2nd delivery, not wait for a 3rd.
    await env.jsm.consumers.add(stream, { durable_name: 'poisoned', ack_policy: AckPolicy.Explicit, max_deliver: 2 });
    const good = (i: number) => ({ subject: subjects[0]!, headers: null, data: Buffer.from(JSON.stringify({ i })) });
    const poison = { subject: subjects[0]!, headers: [['Trace', ['x1']]] as Array<[string, string[]]>, data: Buffer.from('not json {') };
    await publishAll(env.nc, stream, [good(1), good(2), poison, good(3)]);
    const dir = env.tempDir();
    const capture = createCapture<Envelope>({
      servers: env.server.url,
      stream,
      consumer: 'poisoned',
      store: dir,
      once: true,
      poisonRetryDelayMs: 100,
      decoder: (e) => {
        JSON.parse(Buffer.from(e.data).toString('utf8'));
        return { value: e };
      },
    });
    const undecodable: Array<{ seq: number; deliveries: number; action: string }> = [];
    capture.on('message.undecodable', (e) => undecodable.push({ seq: e.seq, deliveries: e.deliveries, action: e.action }));
    const report = await capture.done;
    expect(undecodable).toEqual([
      { seq: 3, deliveries: 1, action: 'retry' },
      { seq: 3, deliveries: 2, action: 'dead-letter' },
    ]);
    expect(report).toMatchObject({ messages: 3, deadLettered: 1 });
    expect(capture.stats()).toMatchObject({ messagesUndecodable: 2, messagesDeadLettered: 1 });
    const info = await env.jsm.consumers.info(stream, 'poisoned');
    expect({ pending: info.num_pending, ackPending: info.num_ack_pending, floor: info.ack_floor.stream_seq }).toEqual({ pending: 0, ackPending: 0, floor: 4 });

    const files = readdirSync(dir, { recursive: true }).map(String);
    const dead = files.filter((f) => f.startsWith('_dead-letter/') && f.endsWith('.ndjson'));
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatch(new RegExp(`^_dead-letter/${stream}/\\d{4}/\\d{2}/\\d{2}/\\d{2}/${stream}-000000000003-000000000003\\.ndjson$`));
    const [line, ...rest] = readFileSync(join(dir, dead[0]!), 'utf8').trim().split('\n');
    expect(rest).toEqual([]);
    const letter = JSON.parse(line!) as { error: string; deliveries: number; message: { subject: string; header: Record<string, string[]>; data: string; metadata: { sequence: { stream_seq: number } } } };
    expect(letter.error).toMatch(/JSON/);
    expect(letter.deliveries).toBe(2);
    expect(letter.message.subject).toBe(subjects[0]);
    expect(letter.message.header).toEqual({ Trace: ['x1'] });
    expect(Buffer.from(letter.message.data, 'base64').toString()).toBe('not json {');
    expect(letter.message.metadata.sequence.stream_seq).toBe(3);
    expect(files.some((f) => f.startsWith('_dead-letter/') && f.endsWith('.ndjson.manifest.json'))).toBe(true);

    // The archive proper holds the three good messages; the archive reader (restore, verify) skips dead letters.
    const check = await verify({ from: dir, connection: env.nc, stream });
    expect(check).toMatchObject({ archivedMessages: 3, matched: 3 });
  });
});
