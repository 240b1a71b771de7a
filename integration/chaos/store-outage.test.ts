/**
 * Chaos (issue #5): the store fails every write for 20 s in the middle of a continuous capture. Nothing may
 * be acked while it fails (the messages stay unacknowledged on the server), blocks retry with backoff, and
 * once the store is back everything is stored and acked, each message exactly once.
 */
import type { ConsumerInfo } from '@nats-io/jetstream';
import { expect, it } from 'vitest';
import { createCapture } from '../../machines/create-capture.js';
import type { CaptureEvent } from '../../src/capture/events.js';
import { StoreError } from '../../src/errors.js';
import { FileStore } from '../../src/stores/fs.js';
import type { Store } from '../../src/stores/store.js';
import { useNatsEnv } from '../helpers/nats-env.js';
import { uniqueName } from '../helpers/nats-server.js';
import { mixedMessages, publishAll } from '../helpers/streams.js';
import { auditArchive, expectExactlyOnce, recordChaos, restoreAndCompare } from './support.js';

const OUTAGE_MS = 20_000;
const BEFORE = 10_000;
const DURING = 10_000;

const env = useNatsEnv('chaos-store');

/** A FileStore whose writes fail (as an unreachable store's would) while `failing` is set. */
function outageStore(real: FileStore) {
  const state = { failing: false, refusedPuts: 0 };
  const store: Store = {
    description: `outage+${real.description}`,
    put: async (key, body, options) => {
      if (state.failing) {
        state.refusedPuts++;
        throw new StoreError('JV_STORE_UNAVAILABLE', `injected outage: cannot put ${key}`);
      }
      return real.put(key, body, options);
    },
    get: (key, options) => real.get(key, options),
    list: (prefix) => real.list(prefix),
    exists: (key) => real.exists(key),
    delete: (key) => real.delete(key),
  };
  return { store, state };
}

it('retries through a 20 s store outage without acking anything, then stores everything once', { timeout: 85_000 }, async () => {
  const { server, nc } = env;
  const dir = env.tempDir();
  const stream = uniqueName('STOREOUT');
  const subject = stream.toLowerCase();
  const consumer = `jetvault-${stream}`;
  const subjects = ['eu', 'us', 'apac', 'latam'].map((r) => `${subject}.${r}`);
  const jsm = env.jsm;
  await jsm.streams.add({ name: stream, subjects: [`${subject}.>`] });
  const source = mixedMessages(BEFORE + DURING, subjects);
  const outage = outageStore(new FileStore(dir));

  const events: Array<CaptureEvent & { at: number }> = [];
  let acked = 0;
  let sealed = 0;
  const waiters: Array<{ done: () => boolean; resolve: () => void }> = [];
  const until = (done: () => boolean, timeoutMs: number, what: string) =>
    new Promise<void>((resolve, reject) => {
      if (done()) return resolve();
      const timer = setTimeout(() => reject(new Error(`${what} not reached in ${timeoutMs} ms (acked ${acked}, sealed ${sealed})`)), timeoutMs);
      waiters.push({ done, resolve: () => (clearTimeout(timer), resolve()) });
    });
  const capture = createCapture({ servers: server.url, stream, store: outage.store, maxMessages: 2_000, idleMs: 1_000, retryBaseMs: 100, retryMaxMs: 1_000 });
  capture.subscribe((e) => {
    events.push({ ...e, at: Date.now() });
    if (e.type === 'block.acked') acked += e.messages;
    if (e.type === 'block.sealed') sealed += e.messages;
    for (const w of waiters.splice(0)) if (w.done()) w.resolve();
    else waiters.push(w);
  });
  await until(() => events.some((e) => e.type === 'consumer.bound'), 10_000, 'consumer bound');

  // Before the outage: captured, stored and acked as usual.
  await publishAll(nc, stream, source.slice(0, BEFORE));
  await until(() => acked === BEFORE, 20_000, `${BEFORE} acked`);

  // The outage: every write fails for 20 s while new messages arrive and their blocks seal.
  outage.state.failing = true;
  const failedAt = Date.now();
  const firstOutageEvent = events.length;
  await publishAll(nc, stream, source.slice(BEFORE));
  await until(() => sealed === BEFORE + DURING, 15_000, 'blocks of the outage sealed');
  const during: Array<{ ackPending: number; ackFloor: number }> = [];
  while (Date.now() - failedAt < OUTAGE_MS) {
    const info = await jsm.consumers.info(stream, consumer);
    during.push({ ackPending: info.num_ack_pending, ackFloor: info.ack_floor.stream_seq });
    await new Promise((r) => setTimeout(r, Math.min(500, Math.max(0, OUTAGE_MS - (Date.now() - failedAt)))));
  }
  const lastDuring = await jsm.consumers.info(stream, consumer);
  outage.state.failing = false;
  const restoredAt = Date.now();
  const firstEventAfter = events.length;
  const refusedPuts = outage.state.refusedPuts;

  // After: everything stored and acked.
  await until(() => acked === BEFORE + DURING, 20_000, 'everything acked after the outage');
  const allAckedAt = Date.now();
  let info: ConsumerInfo;
  const deadline = Date.now() + 10_000;
  for (;;) {
    info = await jsm.consumers.info(stream, consumer);
    if (info.num_ack_pending === 0 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const report = await capture.drain();

  const inOutage = events.slice(firstOutageEvent, firstEventAfter);
  const retries = events.filter((e): e is Extract<CaptureEvent, { type: 'block.retry' }> & { at: number } => e.type === 'block.retry');
  const firstStoredAfter = events.slice(firstEventAfter).find((e) => e.type === 'block.stored');
  const audit = await auditArchive(dir);
  const round = await restoreAndCompare(dir, nc, stream);
  recordChaos({
    fault: `store put() failing for ${OUTAGE_MS / 1000} s mid-capture (${DURING} messages arriving)`,
    reaction:
      `sealed blocks retried with backoff (${retries.length} block.retry, retryBase 100 ms, retryMax 1 s), nothing acked while failing ` +
      `(${lastDuring.num_ack_pending} unacked on the server), all stored and acked after the store came back`,
    messages: round.source.length,
    // Restore publishes each archived sequence once (duplicates skipped), so the restored stream is the distinct set.
    lost: round.source.length - round.restored.length,
    duplicateObjects: audit.duplicateObjects,
    recoveryMs: allAckedAt - restoredAt,
    extra: {
      firstStoreAfterOutageMs: (firstStoredAfter?.at ?? Number.NaN) - restoredAt,
      allAckedAfterOutageMs: allAckedAt - restoredAt,
      retries: retries.length,
      refusedPuts,
      maxRetryDelayMs: Math.max(...retries.map((r) => r.delayMs)),
      unackedDuringOutage: lastDuring.num_ack_pending,
      blocks: audit.blocks,
      duplicateMessages: audit.duplicateMessages,
      restoreSkippedDuplicates: round.skippedDuplicates,
    },
  });

  // While failing: no block stored or acked, every message of the outage unacknowledged on the server.
  expect(inOutage.filter((e) => e.type === 'block.acked' || e.type === 'block.stored')).toEqual([]);
  expect(during.length).toBeGreaterThan(10);
  expect(Math.max(...during.map((d) => d.ackPending))).toBe(DURING);
  expect(lastDuring.num_ack_pending).toBe(DURING);
  expect(lastDuring.ack_floor.stream_seq).toBe(BEFORE);
  expect(Math.max(...during.map((d) => d.ackFloor))).toBe(BEFORE);
  // Retried with backoff all along (capped at retryMaxMs), never given up or abandoned.
  expect(retries.length).toBeGreaterThanOrEqual(DURING / 2_000);
  expect(retries.every((r) => r.delayMs <= 1_000 && /injected outage/.test(r.error))).toBe(true);
  expect(retries.filter((r) => r.at >= failedAt + OUTAGE_MS - 2_000).length).toBeGreaterThan(0);
  expect(events.filter((e) => e.type === 'block.failed' || e.type === 'block.abandoned' || e.type === 'capture.error')).toEqual([]);
  // Back: stored within one retry delay or so, all acked.
  expect(firstStoredAfter).toBeDefined();
  expect(firstStoredAfter!.at - restoredAt).toBeLessThan(2_500);
  expect({ pending: info.num_pending, ackPending: info.num_ack_pending }).toEqual({ pending: 0, ackPending: 0 });
  expect(report).toMatchObject({ messages: BEFORE + DURING, abandonedBlocks: 0 });
  expectExactlyOnce(audit, round, BEFORE + DURING);
});
