/**
 * Prometheus metrics for a capture, with prom-client. Counters and gauges are read from
 * `handle.stats()` when the registry is scraped, so they always agree with the snapshot; the store
 * latency histogram observes `block.stored` events. Several captures may share one registry: each adds
 * its own label set ({stream, consumer, store}) to the same metrics.
 *
 *   const registry = new Registry();
 *   const metrics = captureMetrics(handle, { registry, labels: { stream, consumer, store: store.description } });
 *   const server = await startMonitorServer({ handle, registry, port: 9464 });
 *
 * Labels carry names and the store's description only; the description never holds a credential.
 */
import { Counter, Gauge, Histogram, register, type Registry } from 'prom-client';
import type { BlockPhase, CaptureHandle, CaptureStats } from '../capture/events.js';
import { UsageError } from '../errors.js';

export interface CaptureMetricLabels {
  stream: string;
  consumer: string;
  /** `store.description` (scheme and location, never a credential). */
  store: string;
}

export interface CaptureMetricsOptions {
  /** Default: prom-client's global registry. */
  registry?: Registry;
  /** Prepended to every metric name. Default `jetvault_`. */
  prefix?: string;
  /** Added to every series of this capture; must differ between captures sharing a registry. */
  labels: CaptureMetricLabels;
}

export interface CaptureMetrics {
  readonly registry: Registry;
  /** Detaches the capture: its series leave the registry (the metrics themselves stay registered). */
  stop(): void;
}

/** What captureMetrics needs of a capture: its events and its stats snapshot. */
export type MetricsSource = Pick<CaptureHandle, 'subscribe' | 'stats'>;

/** Store latency buckets in seconds: 1 ms to 60 s. */
export const STORE_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const BLOCK_PHASES: readonly BlockPhase[] = ['open', 'sealing', 'storing', 'retrying', 'acking'];

type CountedStat =
  | 'messagesSealed'
  | 'messagesStored'
  | 'messagesAcked'
  | 'messagesAbandoned'
  | 'messagesUndecodable'
  | 'messagesDeadLettered'
  | 'blocksAcked'
  | 'bytesEncoded'
  | 'bytesStored'
  | 'storeRetries'
  | 'storeFailures'
  | 'reconnects';

/** Counter name (after the prefix), the stats field it mirrors, and its help. */
const COUNTERS: ReadonlyArray<[string, CountedStat, string]> = [
  ['messages_sealed_total', 'messagesSealed', 'Messages received into sealed blocks.'],
  ['messages_stored_total', 'messagesStored', 'Messages in blocks the store confirmed.'],
  ['messages_acked_total', 'messagesAcked', 'Messages acknowledged to NATS after their block was stored.'],
  ['messages_abandoned_total', 'messagesAbandoned', 'Messages of abandoned blocks, left unacked for redelivery.'],
  ['messages_undecodable_total', 'messagesUndecodable', 'Deliveries the decoder or format rejected (retried, then dead-lettered).'],
  ['messages_dead_lettered_total', 'messagesDeadLettered', 'Undecodable messages written to the _dead-letter/ prefix.'],
  ['blocks_acked_total', 'blocksAcked', 'Blocks stored and acknowledged.'],
  ['bytes_encoded_total', 'bytesEncoded', 'Encoded bytes of sealed blocks, before compression.'],
  ['bytes_stored_total', 'bytesStored', 'Bytes written to the store, after compression.'],
  ['store_retries_total', 'storeRetries', 'Failed store attempts that were retried.'],
  ['store_failures_total', 'storeFailures', 'Blocks given up after a permanent store error or the attempt budget.'],
  ['reconnects_total', 'reconnects', 'Times the NATS connection was lost and reconnecting began.'],
];

const LABELS = ['stream', 'consumer', 'store'] as const;
type Label = (typeof LABELS)[number];

interface Source {
  handle: MetricsSource;
  labels: CaptureMetricLabels;
  /** Stats values already added to each counter. */
  counted: Record<CountedStat, number>;
}

/** One set of registered metrics per registry and prefix, shared by every capture attached to it. */
interface Family {
  sources: Set<Source>;
  counters: Array<[Counter<Label>, CountedStat]>;
  blocks: Gauge<Label | 'state'>;
  gauges: Array<Gauge<Label>>;
  storeDuration: Histogram<Label>;
}

const families = new WeakMap<Registry, Map<string, Family>>();

/**
 * Registers jetvault's metrics (once per registry and prefix) and attaches a capture to them.
 * Throws a UsageError when another capture with the same labels is attached, or when a metric of the
 * same name was registered by someone else.
 */
export function captureMetrics(handle: MetricsSource, options: CaptureMetricsOptions): CaptureMetrics {
  const registry = options.registry ?? register;
  const prefix = options.prefix ?? 'jetvault_';
  const family = familyFor(registry, prefix);
  const labels: CaptureMetricLabels = { stream: options.labels.stream, consumer: options.labels.consumer, store: options.labels.store };
  for (const other of family.sources) {
    if (LABELS.every((l) => other.labels[l] === labels[l])) {
      throw new UsageError(`metrics for ${JSON.stringify(labels)} are already attached to this registry`);
    }
  }
  const source: Source = { handle, labels, counted: Object.fromEntries(COUNTERS.map(([, stat]) => [stat, 0])) as Source['counted'] };
  family.sources.add(source);
  // Every series exists from the start, at zero: rate() and absent() behave from the first scrape.
  for (const [counter] of family.counters) counter.inc(labels, 0);
  family.storeDuration.zero(labels);
  const unsubscribe = handle.subscribe((event) => {
    if (event.type === 'block.stored') family.storeDuration.observe(labels, event.durationMs / 1000);
  });
  return {
    registry,
    stop: () => {
      unsubscribe();
      if (!family.sources.delete(source)) return;
      for (const [counter] of family.counters) counter.remove(labels);
      for (const state of BLOCK_PHASES) family.blocks.remove({ ...labels, state });
      for (const gauge of family.gauges) gauge.remove(labels);
      family.storeDuration.remove(labels);
    },
  };
}

function familyFor(registry: Registry, prefix: string): Family {
  let byPrefix = families.get(registry);
  if (!byPrefix) families.set(registry, (byPrefix = new Map()));
  const existing = byPrefix.get(prefix);
  if (existing) return existing;
  const family = createFamily(registry, prefix);
  byPrefix.set(prefix, family);
  return family;
}

function createFamily(registry: Registry, prefix: string): Family {
  const sources = new Set<Source>();
  const registers = [registry];
  const name = (suffix: string) => {
    const full = prefix + suffix;
    if (registry.getSingleMetric(full)) throw new UsageError(`a metric named ${full} is already registered in this registry`);
    return full;
  };
  const labelNames = [...LABELS];

  const counters = COUNTERS.map(([suffix, stat, help]): [Counter<Label>, CountedStat] => {
    const counter: Counter<Label> = new Counter({
      name: name(suffix),
      help,
      labelNames,
      registers,
      collect: () => {
        for (const source of sources) {
          const value = source.handle.stats()[stat];
          const delta = value - source.counted[stat];
          if (delta > 0) counter.inc(source.labels, delta);
          source.counted[stat] = value;
        }
      },
    });
    return [counter, stat];
  });

  /** A gauge set per capture from its stats; a null value leaves the series out (unknown). */
  const statGauge = (suffix: string, help: string, valueOf: (stats: CaptureStats) => number | null): Gauge<Label> => {
    const gauge: Gauge<Label> = new Gauge({
      name: name(suffix),
      help,
      labelNames,
      registers,
      collect: () => {
        for (const source of sources) {
          const value = valueOf(source.handle.stats());
          if (value === null) gauge.remove(source.labels);
          else gauge.set(source.labels, value);
        }
      },
    });
    return gauge;
  };

  const blocks: Gauge<Label | 'state'> = new Gauge({
    name: name('blocks'),
    help: 'Live blocks by state: open, sealing, storing, retrying (a store attempt failed, not stored yet), acking.',
    labelNames: [...labelNames, 'state'],
    registers,
    collect: () => {
      for (const source of sources) {
        const stats = source.handle.stats();
        for (const state of BLOCK_PHASES) blocks.set({ ...source.labels, state }, stats.blocks[state]);
      }
    },
  });

  const gauges = [
    statGauge('consumer_pending', 'Messages not yet delivered to the consumer (its lag), from periodic consumer info.', (s) => s.consumerPending),
    statGauge('consumer_ack_pending', 'Messages delivered but not yet acknowledged, from periodic consumer info.', (s) => s.consumerAckPending),
    statGauge('seconds_since_last_store', 'Seconds since a block was last stored (absent before the first).', (s) =>
      s.msSinceLastStore === null ? null : s.msSinceLastStore / 1000,
    ),
    statGauge('store_failing_seconds', 'Seconds the store has been failing since the last success (0 when it is not).', (s) =>
      (s.storeFailingForMs ?? 0) / 1000,
    ),
    statGauge('up', '1 while the capture is connected to NATS, else 0.', (s) => (s.connectionStatus === 'connected' ? 1 : 0)),
  ];

  const storeDuration: Histogram<Label> = new Histogram({
    name: name('store_duration_seconds'),
    help: 'Time from sealing a block to the store confirming it, retries included.',
    labelNames,
    buckets: STORE_DURATION_BUCKETS,
    registers,
  });

  return { sources, counters, blocks, gauges, storeDuration };
}
