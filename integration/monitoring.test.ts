/**
 * Metrics and probes of a real capture (real nats-server, real FileStore): exact counts after a known
 * capture, and /readyz flipping to 503 while the store fails for longer than the threshold, then back.
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createCapture } from '../machines/create-capture.js';
import { StoreError } from '../src/errors.js';
import { captureMetrics } from '../src/observe/metrics.js';
import { startMonitorServer } from '../src/observe/monitor-server.js';
import { FileStore } from '../src/stores/fs.js';
import type { Store } from '../src/stores/store.js';
import { useNatsEnv } from './helpers/nats-env.js';
import { uniqueName } from './helpers/nats-server.js';
import { mixedMessages, publishAll } from './helpers/streams.js';

const env = useNatsEnv('monitoring');

async function newStream(prefix: string): Promise<{ stream: string; subject: string }> {
  const stream = uniqueName(prefix);
  await env.jsm.streams.add({ name: stream, subjects: [`${stream.toLowerCase()}.>`] });
  return { stream, subject: `${stream.toLowerCase()}.orders` };
}

/** The label set every series of this capture carries, as it appears in the exposition text. */
function labelText(stream: string, store: Store): string {
  return `stream="${stream}",consumer="jetvault-${stream}",store="${store.description}"`;
}

/** The value of one sample line (`name{labels} value`), or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Polls `probe` until it returns a value (bounded), a short pause between tries. */
async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A FileStore that can be switched into an outage: every put throws a transient StoreError. */
function switchableStore(dir: string): Store & { failing: boolean; failedPuts: number } {
  const real = new FileStore(dir);
  const store = {
    failing: false,
    failedPuts: 0,
    description: real.description,
    put: async (key: string, body: Uint8Array, options?: Parameters<Store['put']>[2]) => {
      if (store.failing) {
        store.failedPuts++;
        throw new StoreError('JV_STORE_UNAVAILABLE', 'injected outage');
      }
      return real.put(key, body, options);
    },
    get: (key: string, options?: { signal?: AbortSignal }) => real.get(key, options),
    list: (prefix: string) => real.list(prefix),
    exists: (key: string) => real.exists(key),
    delete: (key: string) => real.delete(key),
  };
  return store;
}

describe('monitoring', () => {
  it('reports exact counts after a --once capture of 1,234 messages in blocks of 500', async () => {
    const { stream, subject } = await newStream('METRICS');
    await publishAll(env.nc, stream, mixedMessages(1_234, [subject]));
    const store = new FileStore(env.tempDir());
    const registry = new Registry();
    // The inspector hook sees each block enter `sealing`; stats() must already count it there.
    let sealingCounted = 0;
    const capture = createCapture({
      servers: env.server.url,
      stream,
      store,
      once: true,
      maxMessages: 500,
      splitBy: 'none',
    });
    // Stats take in each event before listeners see it: a block that starts sealing is counted as sealing.
    capture.on('block.sealing', () => {
      sealingCounted = Math.max(sealingCounted, capture.stats().blocks.sealing);
    });
    captureMetrics(capture, { registry, labels: { stream, consumer: `jetvault-${stream}`, store: store.description } });
    const monitor = await startMonitorServer({ handle: capture, registry, port: 0 });
    try {
      const report = await capture.done;
      expect(report).toMatchObject({ messages: 1_234, blocks: 3, abandonedBlocks: 0 });
      expect(sealingCounted).toBeGreaterThanOrEqual(1);

      const response = await fetch(`${monitor.url}/metrics`);
      expect(response.status).toBe(200);
      const text = await response.text();
      const L = labelText(stream, store);
      const values = Object.fromEntries(
        [
          'messages_sealed_total',
          'messages_stored_total',
          'messages_acked_total',
          'messages_abandoned_total',
          'blocks_acked_total',
          'store_retries_total',
          'store_failures_total',
          'reconnects_total',
          'up',
          'store_duration_seconds_count',
        ].map((name) => [name, sample(text, `jetvault_${name}{${L}}`)]),
      );
      expect(values).toEqual({
        messages_sealed_total: 1_234,
        messages_stored_total: 1_234,
        messages_acked_total: 1_234,
        messages_abandoned_total: 0,
        blocks_acked_total: 3,
        store_retries_total: 0,
        store_failures_total: 0,
        reconnects_total: 0,
        up: 0,
        store_duration_seconds_count: 3,
      });
      // Compression none: what was encoded is what was stored, byte for byte, as the report says.
      expect(sample(text, `jetvault_bytes_stored_total{${L}}`)).toBe(report.storedBytes);
      expect(sample(text, `jetvault_bytes_encoded_total{${L}}`)).toBe(report.storedBytes);
      for (const state of ['open', 'sealing', 'storing', 'retrying', 'acking']) {
        expect(sample(text, `jetvault_blocks{${L},state="${state}"}`), state).toBe(0);
      }
      expect(sample(text, `jetvault_seconds_since_last_store{${L}}`)).toBeGreaterThanOrEqual(0);
      expect(capture.stats()).toMatchObject({
        ended: true,
        consumerBound: false,
        messagesAcked: 1_234,
        blocksStored: 3,
        blocksAcked: 3,
        storeLatency: { count: 3 },
        lastStoreError: null,
      });

      const health = await fetch(`${monitor.url}/healthz`);
      expect([health.status, await health.text()]).toEqual([200, 'ok\n']);
      const ready = await fetch(`${monitor.url}/readyz`);
      expect([ready.status, await ready.json()]).toEqual([503, { ready: false, reason: 'capture ended' }]);
    } finally {
      await monitor.close();
    }
  });

  it('turns /readyz to 503 while the store fails for longer than the threshold, and back to 200', async () => {
    const { stream, subject } = await newStream('READY');
    const store = switchableStore(env.tempDir());
    const registry = new Registry();
    const thresholdMs = 500;
    const capture = createCapture({
      servers: env.server.url,
      stream,
      store,
      maxMessages: 10,
      splitBy: 'none',
      retryBaseMs: 20,
      retryMaxMs: 100,
      consumerInfoIntervalMs: 100,
    });
    captureMetrics(capture, { registry, labels: { stream, consumer: `jetvault-${stream}`, store: store.description } });
    const monitor = await startMonitorServer({ handle: capture, registry, port: 0, readiness: { storeFailingThresholdMs: thresholdMs } });
    const L = labelText(stream, store);
    const readyz = async () => {
      const response = await fetch(`${monitor.url}/readyz`);
      return { status: response.status, body: (await response.json()) as { ready: boolean; reason?: string } };
    };
    const metrics = async () => (await fetch(`${monitor.url}/metrics`)).text();
    let drained = false;
    try {
      // Ready once connected and bound.
      await until('ready', async () => ((await readyz()).status === 200 ? true : undefined));
      expect(capture.stats()).toMatchObject({ connectionStatus: 'connected', consumerBound: true });

      store.failing = true;
      const firstRetry = new Promise<void>((resolve) => capture.on('block.retry', () => resolve()));
      await publishAll(env.nc, stream, mixedMessages(10, [subject]));
      await firstRetry;
      // Failing, but not for longer than the threshold yet.
      expect(capture.stats().storeFailingForMs).toBeLessThan(thresholdMs);
      expect((await readyz()).status).toBe(200);

      const notReady = await until('503', async () => {
        const r = await readyz();
        return r.status === 503 ? r.body : undefined;
      });
      const failingFor = Number(/^store failing for (\d+) ms \(threshold 500 ms\)$/.exec(notReady.reason ?? '')?.[1]);
      expect(failingFor).toBeGreaterThan(thresholdMs);
      expect(notReady.ready).toBe(false);

      // While the store is down, nothing is acked: all 10 messages are pending acknowledgement.
      const during = await until('ack pending 10', async () => {
        const text = await metrics();
        return sample(text, `jetvault_consumer_ack_pending{${L}}`) === 10 ? text : undefined;
      });
      expect(sample(during, `jetvault_consumer_pending{${L}}`)).toBe(0);
      expect(sample(during, `jetvault_messages_acked_total{${L}}`)).toBe(0);
      expect(sample(during, `jetvault_messages_sealed_total{${L}}`)).toBe(10);
      expect(sample(during, `jetvault_blocks{${L},state="retrying"}`)).toBe(1);
      expect(sample(during, `jetvault_store_failures_total{${L}}`)).toBe(0);
      expect(sample(during, `jetvault_store_retries_total{${L}}`)).toBeGreaterThanOrEqual(1);
      expect(sample(during, `jetvault_store_failing_seconds{${L}}`)).toBeGreaterThan(thresholdMs / 1000);
      expect(sample(during, `jetvault_up{${L}}`)).toBe(1);
      expect(capture.stats().lastStoreError).toContain('injected outage');

      store.failing = false;
      await until('ready again', async () => ((await readyz()).status === 200 ? true : undefined));
      const after = await until('acked', async () => {
        const text = await metrics();
        return sample(text, `jetvault_messages_acked_total{${L}}`) === 10 ? text : undefined;
      });
      expect(sample(after, `jetvault_messages_stored_total{${L}}`)).toBe(10);
      expect(sample(after, `jetvault_blocks_acked_total{${L}}`)).toBe(1);
      expect(sample(after, `jetvault_blocks{${L},state="retrying"}`)).toBe(0);
      expect(sample(after, `jetvault_store_failing_seconds{${L}}`)).toBe(0);
      // Every failed put was one retried attempt of the one block.
      expect(sample(after, `jetvault_store_retries_total{${L}}`)).toBe(store.failedPuts);
      expect(capture.stats()).toMatchObject({ lastStoreError: null, storeFailingSinceMs: null, storeFailures: 0 });

      const report = await capture.drain();
      drained = true;
      expect(report).toMatchObject({ messages: 10, blocks: 1, abandonedBlocks: 0 });
    } finally {
      if (!drained) await capture.stop();
      await monitor.close();
    }
  });
});
