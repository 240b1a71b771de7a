import { describe, expect, it } from 'vitest';
import type { CaptureEvent, CaptureStats } from '../src/capture/events.js';
import { CaptureStatsCollector } from '../src/observe/stats.js';

function harness() {
  const clock = { t: 1_000 };
  const stats = new CaptureStatsCollector({ now: () => clock.t });
  const at = (t: number, ...events: CaptureEvent[]) => {
    clock.t = t;
    for (const e of events) stats.record(e);
  };
  return { clock, stats, at };
}

const zero: CaptureStats = {
  at: 1_000,
  connectionStatus: 'connecting',
  consumerBound: false,
  ended: false,
  reconnects: 0,
  consumerPending: null,
  consumerAckPending: null,
  messagesSealed: 0,
  messagesStored: 0,
  messagesAcked: 0,
  messagesAbandoned: 0,
  messagesUndecodable: 0,
  messagesDeadLettered: 0,
  blocks: { open: 0, sealing: 0, storing: 0, retrying: 0, acking: 0 },
  blocksStored: 0,
  blocksAcked: 0,
  blocksAbandoned: 0,
  bytesEncoded: 0,
  bytesStored: 0,
  storeRetries: 0,
  storeFailures: 0,
  storeLatency: { count: 0, sumMs: 0, maxMs: 0, lastMs: null },
  lastStoreAt: null,
  msSinceLastStore: null,
  lastStoreError: null,
  storeFailingSinceMs: null,
  storeFailingForMs: null,
};

const bound: CaptureEvent = { type: 'consumer.bound', stream: 'ORDERS', consumer: 'jv', created: true, ackWaitMs: 60_000, maxAckPending: 1_000, pending: 1_500 };
const sealed = (blockId: string, messages: number, bytes: number): CaptureEvent => ({ type: 'block.sealed', blockId, key: `k/${blockId}`, messages, bytes, reason: 'max-messages' });
const retry = (blockId: string, attempt: number, error: string): CaptureEvent => ({ type: 'block.retry', blockId, key: `k/${blockId}`, attempt, delayMs: 100, error });
const stored = (blockId: string, messages: number, storedBytes: number, durationMs: number, attempts = 1): CaptureEvent => ({
  type: 'block.stored',
  blockId,
  key: `k/${blockId}`,
  messages,
  storedBytes,
  attempts,
  durationMs,
});
const acked = (blockId: string, messages: number): CaptureEvent => ({ type: 'block.acked', blockId, key: `k/${blockId}`, messages });

describe('CaptureStatsCollector', () => {
  it('starts at zero: connecting, nothing known about the consumer or the store', () => {
    expect(harness().stats.snapshot()).toEqual(zero);
  });

  it('follows a scripted capture: phases, counts, bytes, latency, retries, failures and the end', () => {
    const { stats, at } = harness();
    at(1_010, { type: 'connection.status', status: 'connected', server: 'nats://127.0.0.1:4222' });
    at(1_020, bound);
    expect(stats.snapshot()).toMatchObject({ at: 1_020, connectionStatus: 'connected', consumerBound: true, consumerPending: 1_500, consumerAckPending: null });
    at(1_030, { type: 'consumer.info', pending: 1_200, ackPending: 300 });
    at(1_040, { type: 'block.opened', blockId: 'b1', splitKey: 'eu' }, { type: 'block.opened', blockId: 'b2', splitKey: 'us' }, { type: 'block.opened', blockId: 'b3', splitKey: 'apac' });
    stats.sealing('b1');
    stats.sealing('b2');
    expect(stats.snapshot().blocks).toEqual({ open: 1, sealing: 2, storing: 0, retrying: 0, acking: 0 });

    at(2_000, sealed('b1', 500, 60_000), sealed('b2', 200, 20_000));
    // A late sealing report does not move a block backwards.
    stats.sealing('b1');
    expect(stats.snapshot().blocks).toEqual({ open: 1, sealing: 0, storing: 2, retrying: 0, acking: 0 });

    at(2_100, retry('b1', 1, 'injected outage 1'));
    at(2_300, retry('b1', 2, 'injected outage 2'));
    at(2_400);
    expect(stats.snapshot()).toEqual({
      ...zero,
      at: 2_400,
      connectionStatus: 'connected',
      consumerBound: true,
      consumerPending: 1_200,
      consumerAckPending: 300,
      messagesSealed: 700,
      blocks: { open: 1, sealing: 0, storing: 1, retrying: 1, acking: 0 },
      bytesEncoded: 80_000,
      storeRetries: 2,
      lastStoreError: 'injected outage 2',
      storeFailingSinceMs: 2_100,
      storeFailingForMs: 300,
    });

    // Another block's success clears the failure; b1 is still retrying until it is stored itself.
    at(2_500, stored('b2', 200, 8_000, 500), acked('b2', 200));
    at(2_550);
    expect(stats.snapshot()).toMatchObject({
      blocks: { open: 1, sealing: 0, storing: 0, retrying: 1, acking: 0 },
      lastStoreAt: 2_500,
      msSinceLastStore: 50,
      lastStoreError: null,
      storeFailingSinceMs: null,
      storeFailingForMs: null,
    });
    at(2_600, stored('b1', 500, 30_000, 600, 3));
    expect(stats.snapshot().blocks).toEqual({ open: 1, sealing: 0, storing: 0, retrying: 0, acking: 1 });
    at(2_610, acked('b1', 500));

    at(2_700, { type: 'connection.status', status: 'reconnecting', server: 'nats://127.0.0.1:4222' });
    expect(stats.snapshot()).toMatchObject({ connectionStatus: 'reconnecting', reconnects: 1 });
    at(2_800, { type: 'connection.status', status: 'connected' });
    at(3_000, sealed('b3', 34, 4_000), { type: 'block.failed', blockId: 'b3', key: 'k/b3', error: 'access denied' });
    at(3_001, { type: 'message.undecodable', seq: 99, subject: 'orders.eu', error: 'bad json', deliveries: 3, action: 'dead-letter' });
    at(3_002, { type: 'block.opened', blockId: 'b4', splitKey: 'eu' }, { type: 'block.abandoned', blockId: 'b4', messages: 7 });
    at(3_250);
    expect(stats.snapshot()).toEqual({
      ...zero,
      at: 3_250,
      connectionStatus: 'connected',
      consumerBound: true,
      reconnects: 1,
      consumerPending: 1_200,
      consumerAckPending: 300,
      messagesSealed: 734,
      messagesStored: 700,
      messagesAcked: 700,
      messagesAbandoned: 7,
      messagesUndecodable: 1,
      messagesDeadLettered: 1,
      blocks: { open: 0, sealing: 0, storing: 0, retrying: 0, acking: 0 },
      blocksStored: 2,
      blocksAcked: 2,
      blocksAbandoned: 1,
      bytesEncoded: 84_000,
      bytesStored: 38_000,
      storeRetries: 2,
      storeFailures: 1,
      storeLatency: { count: 2, sumMs: 1_100, maxMs: 600, lastMs: 600 },
      lastStoreAt: 2_600,
      msSinceLastStore: 650,
      lastStoreError: 'access denied',
      storeFailingSinceMs: 3_000,
      storeFailingForMs: 250,
    });
  });

  it('keeps the first failure since the last success as the start of the outage', () => {
    const { stats, at } = harness();
    at(1_000, { type: 'block.opened', blockId: 'a', splitKey: '' }, sealed('a', 1, 10));
    at(1_100, retry('a', 1, 'e1'));
    at(1_900, retry('a', 2, 'e2'));
    at(5_000, retry('a', 3, 'e3'));
    expect(stats.snapshot()).toMatchObject({ lastStoreError: 'e3', storeFailingSinceMs: 1_100, storeFailingForMs: 3_900, storeRetries: 3 });
    at(5_100, stored('a', 1, 10, 4_100, 4));
    at(6_000, { type: 'block.opened', blockId: 'b', splitKey: '' }, sealed('b', 1, 10), retry('b', 1, 'e4'));
    at(6_500);
    expect(stats.snapshot()).toMatchObject({ lastStoreError: 'e4', storeFailingSinceMs: 6_000, storeFailingForMs: 500, lastStoreAt: 5_100, msSinceLastStore: 1_400 });
  });

  it('ends with capture.done: closed, unbound, no live blocks', () => {
    const { stats, at } = harness();
    at(1_000, { type: 'connection.status', status: 'connected' }, bound, { type: 'block.opened', blockId: 'x', splitKey: '' });
    at(1_200, {
      type: 'capture.done',
      report: { stream: 'ORDERS', consumer: 'jv', messages: 0, deadLettered: 0, redeliveriesSkipped: 0, blocks: 0, storedBytes: 0, abandonedBlocks: 0, durationMs: 200 },
    });
    expect(stats.snapshot()).toMatchObject({ ended: true, consumerBound: false, connectionStatus: 'closed', blocks: { open: 0, sealing: 0, storing: 0, retrying: 0, acking: 0 } });
  });

  it('keeps a failed connection as failed when the capture errors', () => {
    const { stats, at } = harness();
    at(1_000, { type: 'connection.status', status: 'failed', error: 'ECONNREFUSED' }, { type: 'capture.error', error: 'cannot connect', code: 'JV_CONNECT_FAILED' });
    expect(stats.snapshot()).toMatchObject({ ended: true, connectionStatus: 'failed' });
  });

  it('returns independent snapshots', () => {
    const { stats, at } = harness();
    at(1_000, { type: 'block.opened', blockId: 'a', splitKey: '' });
    const first = stats.snapshot();
    first.blocks.open = 99;
    first.storeLatency.count = 99;
    expect(stats.snapshot().blocks.open).toBe(1);
    expect(stats.snapshot().storeLatency.count).toBe(0);
  });
});
