import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { CaptureEvent, CaptureStats } from '../src/capture/events.js';
import { UsageError } from '../src/errors.js';
import { captureMetrics, type MetricsSource } from '../src/observe/metrics.js';
import { readinessOf, startMonitorServer, type MonitorServer } from '../src/observe/monitor-server.js';
import { CaptureStatsCollector } from '../src/observe/stats.js';

/** A capture stand-in: events are emitted by the test, stats() comes from the real collector. */
function fakeCapture(start = 10_000) {
  const clock = { t: start };
  const collector = new CaptureStatsCollector({ now: () => clock.t });
  const listeners = new Set<(event: CaptureEvent) => void>();
  const handle: MetricsSource = {
    stats: () => collector.snapshot(),
    subscribe: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  const emit = (...events: CaptureEvent[]) => {
    for (const event of events) {
      collector.record(event);
      for (const listener of listeners) listener(event);
    }
  };
  return { clock, collector, handle, emit, listeners };
}

const labels = { stream: 'ORDERS', consumer: 'jetvault-ORDERS', store: 'file:///var/archive' };
const L = 'stream="ORDERS",consumer="jetvault-ORDERS",store="file:///var/archive"';

/** The sample lines (no # HELP / # TYPE) of a scrape. */
async function samples(registry: Registry): Promise<string[]> {
  return (await registry.metrics()).split('\n').filter((line) => line !== '' && !line.startsWith('#'));
}

const bound: CaptureEvent = { type: 'consumer.bound', stream: 'ORDERS', consumer: 'jetvault-ORDERS', created: false, ackWaitMs: 60_000, maxAckPending: 1_000, pending: 42 };

describe('captureMetrics', () => {
  it('exposes every series at zero before anything happened, without unknown gauges', async () => {
    const registry = new Registry();
    const { handle } = fakeCapture();
    captureMetrics(handle, { registry, labels });
    expect(await samples(registry)).toEqual([
      `jetvault_messages_sealed_total{${L}} 0`,
      `jetvault_messages_stored_total{${L}} 0`,
      `jetvault_messages_acked_total{${L}} 0`,
      `jetvault_messages_abandoned_total{${L}} 0`,
      `jetvault_messages_undecodable_total{${L}} 0`,
      `jetvault_messages_dead_lettered_total{${L}} 0`,
      `jetvault_blocks_acked_total{${L}} 0`,
      `jetvault_bytes_encoded_total{${L}} 0`,
      `jetvault_bytes_stored_total{${L}} 0`,
      `jetvault_store_retries_total{${L}} 0`,
      `jetvault_store_failures_total{${L}} 0`,
      `jetvault_reconnects_total{${L}} 0`,
      `jetvault_blocks{${L},state="open"} 0`,
      `jetvault_blocks{${L},state="sealing"} 0`,
      `jetvault_blocks{${L},state="storing"} 0`,
      `jetvault_blocks{${L},state="retrying"} 0`,
      `jetvault_blocks{${L},state="acking"} 0`,
      `jetvault_store_failing_seconds{${L}} 0`,
      `jetvault_up{${L}} 0`,
      ...STORE_BUCKET_LES.map((le) => `jetvault_store_duration_seconds_bucket{le="${le}",${L}} 0`),
      `jetvault_store_duration_seconds_sum{${L}} 0`,
      `jetvault_store_duration_seconds_count{${L}} 0`,
    ]);
  });

  it('reports exact values after a scripted capture', async () => {
    const registry = new Registry();
    const { handle, emit, clock, collector } = fakeCapture();
    captureMetrics(handle, { registry, labels });
    emit({ type: 'connection.status', status: 'connected' }, bound, { type: 'consumer.info', pending: 30, ackPending: 12 });
    emit({ type: 'block.opened', blockId: 'a', splitKey: 'eu' }, { type: 'block.opened', blockId: 'b', splitKey: 'us' }, { type: 'block.opened', blockId: 'c', splitKey: 'apac' });
    emit({ type: 'block.opened', blockId: 'd', splitKey: 'sa' });
    collector.sealing('c');
    emit({ type: 'block.sealed', blockId: 'a', key: 'k/a', messages: 500, bytes: 60_000, reason: 'max-messages' });
    emit({ type: 'block.sealed', blockId: 'b', key: 'k/b', messages: 20, bytes: 2_000, reason: 'idle' });
    clock.t = 10_100;
    emit({ type: 'block.retry', blockId: 'a', key: 'k/a', attempt: 1, delayMs: 50, error: 'outage' });
    clock.t = 10_200;
    emit({ type: 'block.stored', blockId: 'b', key: 'k/b', messages: 20, storedBytes: 900, attempts: 1, durationMs: 3 });
    emit({ type: 'block.acked', blockId: 'b', key: 'k/b', messages: 20 });
    clock.t = 10_400;
    emit({ type: 'block.retry', blockId: 'a', key: 'k/a', attempt: 2, delayMs: 100, error: 'outage again' });
    emit({ type: 'connection.status', status: 'reconnecting' }, { type: 'connection.status', status: 'connected' });
    clock.t = 12_700;
    const lines = await samples(registry);
    expect(lines).toEqual(
      expect.arrayContaining([
        `jetvault_messages_sealed_total{${L}} 520`,
        `jetvault_messages_stored_total{${L}} 20`,
        `jetvault_messages_acked_total{${L}} 20`,
        `jetvault_messages_abandoned_total{${L}} 0`,
        `jetvault_blocks_acked_total{${L}} 1`,
        `jetvault_bytes_encoded_total{${L}} 62000`,
        `jetvault_bytes_stored_total{${L}} 900`,
        `jetvault_store_retries_total{${L}} 2`,
        `jetvault_store_failures_total{${L}} 0`,
        `jetvault_reconnects_total{${L}} 1`,
        `jetvault_blocks{${L},state="open"} 1`,
        `jetvault_blocks{${L},state="sealing"} 1`,
        `jetvault_blocks{${L},state="storing"} 0`,
        `jetvault_blocks{${L},state="retrying"} 1`,
        `jetvault_blocks{${L},state="acking"} 0`,
        `jetvault_consumer_pending{${L}} 30`,
        `jetvault_consumer_ack_pending{${L}} 12`,
        `jetvault_seconds_since_last_store{${L}} 2.5`,
        `jetvault_store_failing_seconds{${L}} 2.3`,
        `jetvault_up{${L}} 1`,
        `jetvault_store_duration_seconds_bucket{le="0.0025",${L}} 0`,
        `jetvault_store_duration_seconds_bucket{le="0.005",${L}} 1`,
        `jetvault_store_duration_seconds_bucket{le="+Inf",${L}} 1`,
        `jetvault_store_duration_seconds_sum{${L}} 0.003`,
        `jetvault_store_duration_seconds_count{${L}} 1`,
      ]),
    );

    // Counters only grow, by exactly what happened since the last scrape.
    emit({ type: 'block.stored', blockId: 'a', key: 'k/a', messages: 500, storedBytes: 20_000, attempts: 3, durationMs: 2_000 });
    emit({ type: 'block.acked', blockId: 'a', key: 'k/a', messages: 500 });
    emit({ type: 'connection.status', status: 'reconnecting' });
    const again = await samples(registry);
    expect(again).toEqual(
      expect.arrayContaining([
        `jetvault_messages_acked_total{${L}} 520`,
        `jetvault_blocks_acked_total{${L}} 2`,
        `jetvault_bytes_stored_total{${L}} 20900`,
        `jetvault_reconnects_total{${L}} 2`,
        `jetvault_blocks{${L},state="retrying"} 0`,
        `jetvault_seconds_since_last_store{${L}} 0`,
        `jetvault_store_failing_seconds{${L}} 0`,
        `jetvault_up{${L}} 0`,
        `jetvault_store_duration_seconds_bucket{le="1",${L}} 1`,
        `jetvault_store_duration_seconds_bucket{le="2.5",${L}} 2`,
        `jetvault_store_duration_seconds_count{${L}} 2`,
        `jetvault_store_duration_seconds_sum{${L}} 2.003`,
      ]),
    );
  });

  it('starts counters from the stats of a capture attached late (the histogram only sees later stores)', async () => {
    const registry = new Registry();
    const { handle, emit } = fakeCapture();
    emit({ type: 'block.opened', blockId: 'a', splitKey: '' }, { type: 'block.sealed', blockId: 'a', key: 'k', messages: 9, bytes: 90, reason: 'idle' });
    emit({ type: 'block.stored', blockId: 'a', key: 'k', messages: 9, storedBytes: 40, attempts: 1, durationMs: 5 }, { type: 'block.acked', blockId: 'a', key: 'k', messages: 9 });
    captureMetrics(handle, { registry, labels });
    expect(await samples(registry)).toEqual(
      expect.arrayContaining([`jetvault_messages_acked_total{${L}} 9`, `jetvault_bytes_stored_total{${L}} 40`, `jetvault_store_duration_seconds_count{${L}} 0`]),
    );
  });

  it('keeps captures sharing a registry apart by their labels, and stop() removes one', async () => {
    const registry = new Registry();
    const one = fakeCapture();
    const two = fakeCapture();
    captureMetrics(one.handle, { registry, labels });
    const second = captureMetrics(two.handle, { registry, labels: { ...labels, stream: 'PAYMENTS' } });
    expect(() => captureMetrics(fakeCapture().handle, { registry, labels })).toThrow(UsageError);
    one.emit({ type: 'block.acked', blockId: 'a', key: 'k', messages: 3 });
    two.emit({ type: 'block.acked', blockId: 'b', key: 'k', messages: 5 });
    const L2 = L.replace('ORDERS"', 'PAYMENTS"');
    expect(await samples(registry)).toEqual(
      expect.arrayContaining([`jetvault_messages_acked_total{${L}} 3`, `jetvault_messages_acked_total{${L2}} 5`]),
    );
    second.stop();
    expect(two.listeners.size).toBe(0);
    const after = await samples(registry);
    expect(after.filter((line) => line.includes('PAYMENTS'))).toEqual([]);
    expect(after).toContain(`jetvault_messages_acked_total{${L}} 3`);
  });

  it('uses the prefix and refuses a name someone else registered', async () => {
    const registry = new Registry();
    captureMetrics(fakeCapture().handle, { registry, prefix: 'vault_', labels });
    expect(await samples(registry)).toContain(`vault_messages_acked_total{${L}} 0`);
    const taken = new Registry();
    taken.registerMetric(new (await import('prom-client')).Counter({ name: 'jetvault_messages_sealed_total', help: 'x', registers: [] }));
    expect(() => captureMetrics(fakeCapture().handle, { registry: taken, labels })).toThrow(/jetvault_messages_sealed_total is already registered/);
  });

  it('escapes label values', async () => {
    const registry = new Registry();
    captureMetrics(fakeCapture().handle, { registry, labels: { ...labels, store: 'file:///a "b"\\c' } });
    expect(await samples(registry)).toContain(`jetvault_up{stream="ORDERS",consumer="jetvault-ORDERS",store="file:///a \\"b\\"\\\\c"} 0`);
  });
});

const STORE_BUCKET_LES = ['0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '30', '60', '+Inf'];

function stats(overrides: Partial<CaptureStats>): CaptureStats {
  const collector = new CaptureStatsCollector({ now: () => 0 });
  return { ...collector.snapshot(), ...overrides };
}

describe('readinessOf', () => {
  const ready = { connectionStatus: 'connected', consumerBound: true } as const;
  it('is ready when connected and bound, with a store failing for no longer than the threshold', () => {
    expect(readinessOf(stats(ready))).toEqual({ ready: true, reasons: [] });
    expect(readinessOf(stats({ ...ready, storeFailingForMs: 60_000 }))).toEqual({ ready: true, reasons: [] });
    expect(readinessOf(stats({ ...ready, storeFailingForMs: 300 }), { storeFailingThresholdMs: 300 })).toEqual({ ready: true, reasons: [] });
  });
  it('names every reason it is not', () => {
    expect(readinessOf(stats({}))).toEqual({ ready: false, reasons: ['connection connecting', 'consumer not bound'] });
    expect(readinessOf(stats({ ...ready, connectionStatus: 'reconnecting' }))).toEqual({ ready: false, reasons: ['connection reconnecting'] });
    expect(readinessOf(stats({ ...ready, storeFailingForMs: 60_001 }))).toEqual({
      ready: false,
      reasons: ['store failing for 60001 ms (threshold 60000 ms)'],
    });
    expect(readinessOf(stats({ ...ready, storeFailingForMs: 301 }), { storeFailingThresholdMs: 300 }).ready).toBe(false);
    expect(readinessOf(stats({ ended: true, connectionStatus: 'closed' }))).toEqual({ ready: false, reasons: ['capture ended'] });
  });
});

describe('startMonitorServer', () => {
  let server: MonitorServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('serves /metrics, /healthz and /readyz on a free port, and 404 otherwise', async () => {
    const registry = new Registry();
    const { handle, emit, clock } = fakeCapture();
    captureMetrics(handle, { registry, labels });
    server = await startMonitorServer({ handle, registry, port: 0, readiness: { storeFailingThresholdMs: 1_000 } });
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);

    const metrics = await fetch(`${server.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toBe(registry.contentType);
    expect(await metrics.text()).toContain(`jetvault_messages_acked_total{${L}} 0\n`);

    const health = await fetch(`${server.url}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, 'ok\n']);

    const notReady = await fetch(`${server.url}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({ ready: false, reason: 'connection connecting; consumer not bound' });

    emit({ type: 'connection.status', status: 'connected' }, bound);
    const ready = await fetch(`${server.url}/readyz`);
    expect([ready.status, await ready.json()]).toEqual([200, { ready: true }]);

    emit({ type: 'block.opened', blockId: 'a', splitKey: '' }, { type: 'block.sealed', blockId: 'a', key: 'k', messages: 1, bytes: 1, reason: 'idle' });
    emit({ type: 'block.retry', blockId: 'a', key: 'k', attempt: 1, delayMs: 10, error: 'down' });
    clock.t += 1_000;
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    clock.t += 1;
    const failing = await fetch(`${server.url}/readyz`);
    expect([failing.status, await failing.json()]).toEqual([503, { ready: false, reason: 'store failing for 1001 ms (threshold 1000 ms)' }]);

    expect((await fetch(`${server.url}/`)).status).toBe(404);
    expect((await fetch(`${server.url}/metrics/x`)).status).toBe(404);
    expect((await fetch(`${server.url}/healthz`, { method: 'POST' })).status).toBe(405);
    expect((await fetch(`${server.url}/readyz?verbose=1`)).status).toBe(503);
  });

  it('closes: the port no longer answers', async () => {
    const registry = new Registry();
    const started = await startMonitorServer({ handle: fakeCapture().handle, registry, port: 0 });
    expect((await fetch(`${started.url}/healthz`)).status).toBe(200);
    await started.close();
    await expect(fetch(`${started.url}/healthz`)).rejects.toThrow();
  });

  it('rejects when the port is taken', async () => {
    const registry = new Registry();
    server = await startMonitorServer({ handle: fakeCapture().handle, registry, port: 0 });
    await expect(startMonitorServer({ handle: fakeCapture().handle, registry, port: server.port })).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });
});
