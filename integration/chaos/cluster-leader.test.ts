/**
 * Chaos: the stream leader of an R3 stream is killed (SIGKILL) in the middle of a capture that is connected
 * with all three server URLs. Where the consumer's leader and the capture's connection are decides what the
 * kill takes away, so each test pins them (the consumer is created until its leader is where the test
 * wants it; the server order picks the connection) instead of leaving it to chance:
 *
 * - the stream leader alone: the consumer leader and the capture's server survive;
 * - everything at once: the killed node leads the stream and the consumer and serves the capture.
 *
 * The capture must ride through: get messages from the new leaders, store and ack them, go on while the
 * node is down and after it came back. Nothing lost, no duplicate object, the restore equals the source.
 * Recovery is measured from the kill to the first acked block holding a message delivered after the kill
 * (a block opened after the kill may still hold messages delivered before it, acked into the void).
 */
import { AckPolicy, DeliverPolicy, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createCapture } from '../../machines/create-capture.js';
import type { CaptureEvent } from '../../src/capture/events.js';
import { uniqueName } from '../helpers/nats-server.js';
import { mixedMessages, publishAll } from '../helpers/streams.js';
import { startCluster, type Cluster, type ClusterNode } from './cluster.js';
import { auditArchive, recordChaos, restoreAndCompare } from './support.js';

let cluster: Cluster;
let nc: NatsConnection;
let jsm: JetStreamManager;
const dirs: string[] = [];

beforeAll(async () => {
  cluster = await startCluster();
  nc = await connect({ servers: cluster.urls(), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  jsm = await jetstreamManager(nc);
}, 40_000);
afterAll(async () => {
  await nc?.close();
  await cluster?.dispose();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}, 30_000);

/** Polls until `check` holds (or the deadline passes, with the last value in the error). */
async function until<T>(what: string, timeoutMs: number, read: () => Promise<T>, check: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await read();
      if (check(last)) return last;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not reached in ${timeoutMs} ms; last ${JSON.stringify(last)} ${lastError ? String(lastError) : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Placement {
  /** Test title words. */
  label: string;
  /** The consumer's leader on the stream leader's node (true) or on another node (false). */
  consumerOnLeader: boolean;
  /** The capture's first (and so its connected) server: the stream leader's node, or a surviving one. */
  connectToLeader: boolean;
}

const ACK_WAIT_MS = 5_000;
const MAX_ACK_PENDING = 2_000;
const FIRST = 12_000;
const WHILE_DOWN = 2_000;
const AFTER_RESTART = 1_000;
const TOTAL = FIRST + WHILE_DOWN + AFTER_RESTART;
/**
 * Leaders are re-elected within the raft election timeout (4–9 s on nats-server 2.9); a capture that is not
 * storing again within twice that has stalled.
 */
const RECOVERY_BOUND_MS = 20_000;

async function killLeaderMidCapture(placement: Placement): Promise<void> {
  const stream = uniqueName('CHAOS_LEADER');
  const subject = stream.toLowerCase();
  const subjects = ['eu', 'us', 'apac', 'latam'].map((r) => `${subject}.${r}`);
  const consumer = `jetvault-${stream}`;
  const dir = mkdtempSync(join(tmpdir(), 'jv-chaos-cluster-'));
  dirs.push(dir);
  await jsm.streams.add({ name: stream, subjects: [`${subject}.>`], num_replicas: 3 });
  await publishAll(nc, stream, mixedMessages(FIRST, subjects, 11));
  const leader = await cluster.streamLeader(nc, stream);
  // The durable consumer exactly as jetvault would create it (jetvault binds to it), its leader placed.
  const consumerLeader = await cluster.createConsumerLedBy(
    nc,
    stream,
    {
      durable_name: consumer,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      // Short, so a lost ack comes back as a redelivery (and would make a duplicate) within the test.
      ack_wait: nanos(ACK_WAIT_MS),
      // Slows the capture down, so most of the stream is still ahead when the leader dies.
      max_ack_pending: MAX_ACK_PENDING,
      description: 'jetvault capture',
    },
    (n) => (n === leader) === placement.consumerOnLeader,
  );
  expect((await cluster.streamLeader(nc, stream)).name).toBe(leader.name);
  const survivors = cluster.nodes.filter((n) => n !== leader);
  const first: ClusterNode = placement.connectToLeader ? leader : survivors[0]!;
  const servers = [first, ...cluster.nodes.filter((n) => n !== first)].map((n) => n.url);

  const events: Array<{ at: number; event: CaptureEvent }> = [];
  let killedAt = 0;
  let killing: Promise<void> | undefined;
  let ackedBeforeKill = 0;
  /** Any block holding this sequence or a later one holds a message delivered after the kill. */
  let deliveredAfterKillFrom = Number.POSITIVE_INFINITY;
  const capture = createCapture({
    servers,
    connectOptions: { noRandomize: true },
    stream,
    store: dir,
    maxMessages: 1_000,
    idleMs: 500,
    consumerInfoIntervalMs: 500,
  });
  capture.subscribe((event) => {
    events.push({ at: Date.now(), event });
    if (event.type === 'block.acked' && killing === undefined) {
      killing = (async () => {
        // Right before the kill: at most max_ack_pending more messages can be delivered until it lands.
        const before = await jsm.consumers.info(stream, consumer);
        deliveredAfterKillFrom = before.delivered.stream_seq + MAX_ACK_PENDING + 1;
        ackedBeforeKill = capture.stats().messagesAcked;
        killedAt = Date.now();
        await cluster.kill(leader.name);
      })();
    }
  });
  try {
    await until('the first block acked', 20_000, async () => killing !== undefined, (started) => started);
    await killing;
    // Mid-capture: most of the stream was still to be captured when the leader died.
    expect(ackedBeforeKill).toBeGreaterThan(0);
    expect(ackedBeforeKill).toBeLessThan(FIRST / 2);
    const newLeader = await cluster.streamLeader(nc, stream, 20_000);
    expect(newLeader.name).not.toBe(leader.name);
    const electedMs = Date.now() - killedAt;

    // Progress again: a block holding messages delivered after the kill was stored and acked.
    const lastSeqOf = (key: string) => Number(/-(\d+)-(\d+)\.[^/]*$/.exec(key)?.[2] ?? 0);
    const recoveredAt = await until('a block of messages delivered after the kill, acked', 60_000, async () =>
      events.find(({ at, event }) => at > killedAt && event.type === 'block.acked' && lastSeqOf(event.key) >= deliveredAfterKillFrom)?.at ?? 0,
    (at) => at > 0);
    const recoveryMs = recoveredAt - killedAt;

    // More messages while the node is down (quorum 2 of 3), then it comes back, then more again.
    await publishAll(nc, stream, mixedMessages(WHILE_DOWN, subjects, 12));
    await cluster.restart(leader.name);
    await publishAll(nc, stream, mixedMessages(AFTER_RESTART, subjects, 13));
    const lastSeq = (await jsm.streams.info(stream)).state.last_seq;
    expect(lastSeq).toBe(TOTAL);

    // Everything acked and nothing in flight: no redelivery (of a lost ack) is still to come.
    const info = await until('every message acked', 45_000, () => jsm.consumers.info(stream, consumer),
      (i) => i.num_pending === 0 && i.num_ack_pending === 0 && i.ack_floor.stream_seq === lastSeq);
    const report = await capture.drain();
    const statuses = events.filter(({ event }) => event.type === 'connection.status').map(({ event }) => (event as { status: string }).status);
    if (placement.connectToLeader) expect(statuses).toContain('reconnecting');

    const audit = await auditArchive(dir);
    const roundTrip = await restoreAndCompare(dir, nc, stream);
    recordChaos({
      fault: `R3 stream leader node SIGKILLed mid-capture (${placement.label}), restarted later`,
      reaction:
        audit.duplicateMessages === 0
          ? 'consumed from the new leaders, stored and acked; went on while the node was down and after it rejoined'
          : `rode through, but ${audit.duplicateMessages} messages it had acked around the kill came back and were stored again in other blocks`,
      messages: roundTrip.source.length,
      lost: roundTrip.source.length - roundTrip.restored.length,
      duplicateObjects: audit.duplicateObjects,
      recoveryMs,
      extra: {
        killedNode: leader.name,
        consumerLeader: consumerLeader.name,
        connectedTo: first.name,
        newStreamLeader: newLeader.name,
        leaderElectedMs: electedMs,
        ackedBeforeKill,
        blocks: audit.blocks,
        archivedMessages: audit.messages,
        duplicateMessages: audit.duplicateMessages,
        reportMessages: report.messages,
        abandonedBlocks: report.abandonedBlocks,
        connectionStatuses: statuses,
        skippedDuplicates: roundTrip.skippedDuplicates,
      },
    });
    // No message stored twice, no duplicate object.
    expect({ duplicateMessages: audit.duplicateMessages, duplicateObjects: audit.duplicateObjects }).toEqual({ duplicateMessages: 0, duplicateObjects: 0 });
    expect(audit.messages).toBe(roundTrip.source.length);
    expect(roundTrip.source).toHaveLength(TOTAL);
    expect(roundTrip.problems).toEqual([]);
    expect(roundTrip.skippedDuplicates).toBe(0);
    // Every message stored and acked exactly once by this capture.
    expect(report.messages).toBe(TOTAL);
    expect(recoveryMs).toBeLessThan(RECOVERY_BOUND_MS);
  } finally {
    await capture.stop();
    // A failed test leaves no node down for the next one.
    for (const n of cluster.nodes) if (!n.running) await cluster.restart(n.name);
  }
}

it('rides through the loss of the stream leader (consumer leader and connection elsewhere)', { timeout: 60_000 }, () =>
  killLeaderMidCapture({ label: 'consumer leader and the capture\'s server on surviving nodes', consumerOnLeader: false, connectToLeader: false }));

it('rides through the loss of the node leading the stream and the consumer and serving the capture', { timeout: 80_000 }, () =>
  killLeaderMidCapture({ label: 'the node also led the consumer and served the capture', consumerOnLeader: true, connectToLeader: true }));
