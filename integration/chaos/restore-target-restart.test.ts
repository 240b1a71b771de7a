/**
 * Chaos (issue #5 item 8): the target nats-server goes away in the middle of a 50,000-message restore and
 * comes back on the same port with the same store. The restore must ride through it in-process: find out
 * what the target holds, continue after it, and end with a target equal to the archive, message for
 * message, with no duplicate and no header of restore's own.
 *
 * Two faults on restore's own connection: a graceful restart (SIGTERM) and a hard crash (SIGKILL) followed
 * by a start. (A restart under a connection the caller passed in is in integration/restore.test.ts.) About
 * the crash: nats-server 2.9 writes every message to its block file before it
 * acks it (flush in place; the 2 min sync_interval only fsyncs, which matters for a machine crash, not a
 * killed process), so a SIGKILL loses no confirmed message, only publishes not processed yet. Restore
 * checks that instead of trusting it: a target that comes back without confirmed messages fails the
 * restore (JV_PUBLISH_FAILED), and this test would fail with it.
 */
import { connect } from '@nats-io/transport-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Envelope } from '../../src/archive/envelope.js';
import { FileStore } from '../../src/stores/fs.js';
import { restore, type RestoreProgress, type RestoreReport } from '../../restore/restore.js';
import { writeArchive } from '../helpers/archive.js';
import { startNatsServer, uniqueName, type NatsServer } from '../helpers/nats-server.js';
import { differences, mixedMessages, readStream, type TestMessage } from '../helpers/streams.js';
import { recordChaos } from './support.js';

const MESSAGES = 50_000;
/** The fault starts when the target has confirmed this many messages. */
const FAULT_AT = 20_000;

let dir: string;
let stream: string;
let archived: TestMessage[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'jv-chaos-restore-'));
  stream = uniqueName('RTR');
  const prefix = stream.toLowerCase();
  const subjects = [`${prefix}.orders.eu`, `${prefix}.orders.us`, `${prefix}.audit`];
  // Mixed headers (multi-valued, lower-case), empty and non-UTF-8 payloads; every 10th message carries a
  // unique Nats-Msg-Id, so the target's duplicate tracking is in play across the restart too.
  archived = mixedMessages(MESSAGES, subjects).map((m, i) => (i % 10 === 3 ? { ...m, headers: [...(m.headers ?? []), ['Nats-Msg-Id', [`rtr-${i}`]]] } : m));
  const base = BigInt(Date.now()) * 1_000_000n;
  const envelopes: Envelope[] = archived.map((m, i) => ({ ...m, stream, seq: i + 1, timeNs: base + BigInt(i), deliveryCount: 1 }));
  const streamConfig = { name: stream, subjects: [`${prefix}.>`], retention: 'limits', storage: 'file', num_replicas: 1, duplicate_window: 120_000_000_000 };
  // Split by subject, 2,000 per block: block ranges interleave and the merge works through 25 blocks.
  await writeArchive(new FileStore(dir), envelopes, { streamConfig, maxMessages: 2_000 });
}, 60_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

interface Run {
  report: RestoreReport;
  logs: LogLine[];
  waiting: boolean[];
  faultAt: number;
  serverBackAt: number;
  targetBackAt: number;
}

/**
 * Restores the archive into `server` while `fault` hits it once FAULT_AT messages are confirmed. Times:
 * the fault's start, the server ready again, and restore continuing (its progress event after the loss).
 */
async function restoreThrough(server: NatsServer, fault: (server: NatsServer) => Promise<void>): Promise<Run> {
  const logs: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const waiting: boolean[] = [];
  let faultAt = 0;
  let targetBackAt = 0;
  let faulted: Promise<number> | undefined;
  const onProgress = (p: RestoreProgress) => {
    if (p.waitingForTarget !== waiting.at(-1) && (waiting.length > 0 || p.waitingForTarget)) {
      waiting.push(p.waitingForTarget);
      if (!p.waitingForTarget) targetBackAt = performance.now();
    }
    if (!faulted && p.messagesDone >= FAULT_AT) {
      faultAt = performance.now();
      faulted = fault(server).then(() => performance.now());
    }
  };
  const report = await restore({ from: new FileStore(dir), servers: server.url, logger, onProgress });
  expect(faulted, 'the fault was started').toBeDefined();
  const serverBackAt = await (faulted as Promise<number>);
  return { report, logs, waiting, faultAt, serverBackAt, targetBackAt };
}

/** The target stream against the archive: every message in order, identical, nothing more. */
async function checkTarget(server: NatsServer, run: Run): Promise<{ restored: number }> {
  const nc = await connect({ servers: server.url });
  try {
    const restored = await readStream(nc, stream);
    expect(differences(archived, restored)).toEqual([]);
    // No duplicate and no gap: one sequence per archived message, from 1.
    expect(restored.map((m) => m.seq)).toEqual(archived.map((_, i) => i + 1));
    // No header of restore's own: messages without headers came back without any.
    expect(restored.filter((m, i) => archived[i]?.headers === null && m.headers !== null)).toEqual([]);
    expect(run.report).toMatchObject({ messages: MESSAGES, reconnects: 1, skippedDuplicates: 0 });
    return { restored: restored.length };
  } finally {
    await nc.close();
  }
}

/** The one warn line of the loss, and the info line of the return (what the target held, what was resent). */
function lossLines(run: Run) {
  const warns = run.logs.filter((l) => l.level === 40);
  expect(warns.map((l) => l.msg)).toEqual(['lost the target: waiting for it to come back, to continue after the last message it holds']);
  const back = run.logs.filter((l) => l.msg.startsWith('the target is back'));
  expect(back).toHaveLength(1);
  // Progress said it was waiting, then that it was not: one event each way.
  expect(run.waiting).toEqual([true, false]);
  const lost = warns[0] as LogLine & { confirmed: number; pending: number };
  const returned = back[0] as LogLine & { held: number; heldPending: number; resent: number; waitedMs: number };
  expect(lost.confirmed).toBeGreaterThanOrEqual(FAULT_AT);
  expect(returned.heldPending + returned.resent).toBe(lost.pending);
  // Every message the target had confirmed was still in it (else restore fails: it cannot continue without a gap).
  expect(returned.held).toBe(lost.confirmed + returned.heldPending);
  return { lost, returned };
}

for (const variant of [
  { name: 'SIGTERM restart', fault: (s: NatsServer) => s.restart(), reaction: 'restore closed its connection, redialled with backoff, probed the stream and continued after its last message' },
  {
    name: 'SIGKILL crash and start',
    fault: async (s: NatsServer) => {
      await s.kill();
      await s.restart();
    },
    reaction: 'restore closed its connection, redialled with backoff, found every confirmed message on disk and continued after the last one',
  },
]) {
  it(`restores 50k messages through a target ${variant.name}: target equals the archive, no duplicate, no added header`, { timeout: 50_000 }, async () => {
    const server = await startNatsServer();
    try {
      const started = performance.now();
      const run = await restoreThrough(server, variant.fault);
      const restoreMs = performance.now() - started;
      const { lost, returned } = lossLines(run);
      const { restored } = await checkTarget(server, run);
      const recoveryMs = run.targetBackAt - run.faultAt;
      recordChaos({
        fault: `target nats-server ${variant.name} (same port and store) during a ${MESSAGES / 1000}k-message restore`,
        reaction: variant.reaction,
        messages: MESSAGES,
        lost: MESSAGES - restored,
        duplicateObjects: restored - MESSAGES,
        recoveryMs: Math.round(recoveryMs),
        extra: {
          serverDownMs: Math.round(run.serverBackAt - run.faultAt),
          afterServerReadyMs: Math.round(run.targetBackAt - run.serverBackAt),
          confirmedAtLoss: lost.confirmed,
          pendingAtLoss: lost.pending,
          heldWithoutAck: returned.heldPending,
          resent: returned.resent,
          reportReconnectMs: run.report.reconnectMs,
          restoreMs: Math.round(restoreMs),
        },
      });
      // Restore continues within a few backoff steps of the server being ready again.
      expect(run.targetBackAt).toBeGreaterThanOrEqual(run.serverBackAt);
      expect(run.targetBackAt - run.serverBackAt).toBeLessThan(3_000);
    } finally {
      await server.dispose();
    }
  });
}
