/**
 * Chaos (issue #5): the nats-server is restarted three times (SIGTERM, then started again on the same port
 * with the same JetStream store) while a continuous library capture works through 100,000 messages. The
 * capture must ride through every restart in-process (nats.js reconnects, the subscription resumes) and
 * end with every message stored once and acked.
 *
 * Messages the server had handed out when it stopped can vanish with the connection; the server delivers
 * them again only after ack_wait. The capture therefore runs with ackWaitMs 10 s (default: maxAge + 1 min,
 * 16 min) so those redeliveries happen within the test.
 */
import { jetstreamManager, type ConsumerInfo } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createCapture } from '../../machines/create-capture.js';
import type { CaptureEvent } from '../../src/capture/events.js';
import { startNatsServer, uniqueName, type NatsServer } from '../helpers/nats-server.js';
import { mixedMessages, publishAll } from '../helpers/streams.js';
import { auditArchive, expectExactlyOnce, recordChaos, restoreAndCompare } from './support.js';

const MESSAGES = 100_000;
/** A restart is started as soon as this many messages are acked (one per threshold). */
const RESTART_AT = [15_000, 40_000, 65_000];
const ACK_WAIT_MS = 10_000;

let server: NatsServer;
let nc: NatsConnection;
let dir: string;

beforeAll(async () => {
  server = await startNatsServer();
  // The test's own connection must outlive the restarts too.
  nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  dir = mkdtempSync(join(tmpdir(), 'jv-chaos-restarts-'));
});
afterAll(async () => {
  await nc?.close();
  await server?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Polls consumer info until `done` holds; the last info read is returned (or the deadline error thrown). */
async function pollConsumer(stream: string, consumer: string, done: (info: ConsumerInfo) => boolean, timeoutMs: number): Promise<ConsumerInfo> {
  const deadline = Date.now() + timeoutMs;
  let last: ConsumerInfo | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await (await jetstreamManager(nc)).consumers.info(stream, consumer);
      if (done(last)) return last;
    } catch (error) {
      lastError = error; // the server may be restarting
    }
    if (Date.now() > deadline) {
      throw new Error(`consumer ${consumer} not done in ${timeoutMs} ms: ${JSON.stringify(last ? { pending: last.num_pending, ackPending: last.num_ack_pending, delivered: last.delivered, ackFloor: last.ack_floor } : String(lastError))}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

it('rides through 3 nats-server restarts during a 100k-message capture: everything stored once and acked', { timeout: 85_000 }, async () => {
  const stream = uniqueName('RESTARTS');
  const subject = stream.toLowerCase();
  const consumer = `jetvault-${stream}`;
  await (await jetstreamManager(nc)).streams.add({ name: stream, subjects: [`${subject}.>`] });
  await publishAll(nc, stream, mixedMessages(MESSAGES, ['eu', 'us', 'apac', 'latam'].map((r) => `${subject}.${r}`)));

  const events: Array<CaptureEvent & { at: number }> = [];
  let acked = 0;
  const restarts: Array<{ ackedAtStart: number; startedAt: number; readyAt?: number; ackedWhenReady?: number; firstAckAfterReady?: number }> = [];
  let restarting: Promise<void> = Promise.resolve();
  let restartError: unknown;

  const t0 = Date.now();
  // maxAckPending bounds what the server hands out ahead of storing, so each restart lands mid-capture.
  // ackWaitMs 10 s instead of the default 16 min: a delivery the restart swallowed comes back within the test.
  const capture = createCapture({ servers: server.url, stream, store: dir, maxMessages: 5_000, idleMs: 2_000, maxAckPending: 10_000, ackWaitMs: ACK_WAIT_MS });
  capture.subscribe((e) => {
    const at = Date.now();
    events.push({ ...e, at });
    if (e.type !== 'block.acked') return;
    acked += e.messages;
    const current = restarts.at(-1);
    if (current?.readyAt !== undefined && current.firstAckAfterReady === undefined) current.firstAckAfterReady = at;
    // One restart per threshold, never two at once: the next threshold waits for the previous restart.
    const next = RESTART_AT[restarts.length];
    if (next !== undefined && acked >= next && (current === undefined || current.readyAt !== undefined)) {
      const r: (typeof restarts)[number] = { ackedAtStart: acked, startedAt: at };
      restarts.push(r);
      restarting = server.restart().then(
        () => {
          r.readyAt = Date.now();
          r.ackedWhenReady = acked;
        },
        (error: unknown) => {
          restartError = error;
        },
      );
    }
  });

  // Everything acked on the server, and the capture said so itself.
  const finished = (i: ConsumerInfo) =>
    restarts.length === RESTART_AT.length && restarts.at(-1)!.firstAckAfterReady !== undefined && i.num_pending === 0 && i.num_ack_pending === 0 && acked >= MESSAGES;
  const info = await pollConsumer(stream, consumer, finished, 45_000).catch((error: unknown) => {
    const counts: Record<string, number> = {};
    for (const e of events) counts[e.type] = (counts[e.type] ?? 0) + 1;
    const unfinished = new Map<string, string[]>();
    for (const e of events) {
      if (!('blockId' in e)) continue;
      if (e.type === 'block.acked') unfinished.delete(e.blockId);
      else unfinished.set(e.blockId, [...(unfinished.get(e.blockId) ?? []), `${e.type}@${e.at - t0}${'messages' in e ? `:${e.messages}` : ''}${'key' in e ? `:${e.key?.split('/').pop()}` : ''}`]);
    }
    const t = events.filter((e) => e.type === 'connection.status').map((e) => `${(e as { status: string }).status}@${e.at - t0}`);
    throw new Error(`${String(error)}; acked ${acked}; restarts ${JSON.stringify(restarts.map((r) => ({ ...r, startedAt: r.startedAt - t0, readyAt: (r.readyAt ?? 0) - t0, firstAckAfterReady: (r.firstAckAfterReady ?? 0) - t0 })))}; events ${JSON.stringify(counts)}; status ${t.join(' ')}; not acked ${JSON.stringify([...unfinished])}; stats ${JSON.stringify(capture.stats().blocks)}`);
  });
  const captureMs = Date.now() - t0;
  await restarting;
  expect(restartError).toBeUndefined();
  const report = await capture.drain();

  const statuses = events.filter((e) => e.type === 'connection.status').map((e) => (e as { status: string }).status);
  const audit = await auditArchive(dir);
  const round = await restoreAndCompare(dir, nc, stream);
  const recoveries = restarts.map((r) => (r.firstAckAfterReady ?? Number.NaN) - (r.readyAt ?? Number.NaN));
  recordChaos({
    fault: 'nats-server restarted 3 times (SIGTERM, same port and store) during a 100k-message capture',
    reaction:
      'nats.js reconnected, the subscription paused and resumed, acks sent around the restart were sent again after the reconnect; ' +
      `deliveries lost in the restart came back after ack_wait (${ACK_WAIT_MS / 1000} s here); no process restart`,
    messages: round.source.length,
    // Restore publishes each archived sequence once (duplicates skipped), so the restored stream is the distinct set.
    lost: round.source.length - round.restored.length,
    duplicateObjects: audit.duplicateObjects,
    recoveryMs: Math.max(...recoveries),
    extra: {
      recoveriesMs: recoveries,
      restartDowntimeMs: restarts.map((r) => (r.readyAt ?? Number.NaN) - r.startedAt),
      ackedAtRestart: restarts.map((r) => r.ackedAtStart),
      consumerBound: events.filter((e) => e.type === 'consumer.bound').length,
      captureMs,
      blocks: audit.blocks,
      duplicateMessages: audit.duplicateMessages,
      // Deliveries beyond the source: redeliveries after ack_wait of messages a restart swallowed (or copies
      // of messages the server delivered again because it lost its consumer state).
      redeliveries: info.delivered.consumer_seq - MESSAGES,
      capturedTwice: acked - MESSAGES,
      restoreSkippedDuplicates: round.skippedDuplicates,
      restoreProblems: round.problems.length,
    },
  });

  // Three real restarts, each one in the middle of the capture (work was left when the server came back).
  expect(restarts).toHaveLength(3);
  for (const r of restarts) {
    expect(r.readyAt).toBeDefined();
    expect(r.ackedWhenReady!).toBeLessThan(MESSAGES);
    expect(r.firstAckAfterReady).toBeDefined();
  }
  expect(statuses.filter((s) => s === 'reconnecting')).toHaveLength(3);
  expect(statuses.filter((s) => s === 'connected')).toHaveLength(4); // the first connect and one per restart
  expect(events.filter((e) => e.type === 'capture.error' || e.type === 'block.failed')).toEqual([]);
  // A block whose acks were in flight when the server went away is acked after the reconnect, not abandoned.
  expect(events.filter((e) => e.type === 'block.abandoned')).toEqual([]);
  expect(report.abandonedBlocks).toBe(0);
  expect(report.messages).toBe(acked);
  // The server's view: nothing left to deliver or to ack.
  // (nats-server 2.9 reports a stale ack floor after a restart, so ack pending is what counts.)
  expect({ pending: info.num_pending, ackPending: info.num_ack_pending }).toEqual({ pending: 0, ackPending: 0 });
  expectExactlyOnce(audit, round, MESSAGES);
});
