/**
 * jetvault's public API. Explicit named exports only: what is not listed here is internal.
 */

// Capture
export { createCapture } from '../machines/create-capture.js';
export { CAPTURE_DEFAULTS, defaultConsumerName } from './capture/options.js';
export type { CaptureOptions, MessageDecoder, SplitBy } from './capture/options.js';
export type {
  BlockPhase,
  CaptureEvent,
  CaptureEventOf,
  CaptureEventType,
  CaptureHandle,
  CaptureReport,
  CaptureStats,
  ConnectionStatus,
} from './capture/events.js';

// Observability: stats, Prometheus metrics, health and readiness
export { CaptureStatsCollector } from './observe/stats.js';
export type { CaptureStatsCollectorOptions } from './observe/stats.js';
export { captureMetrics, STORE_DURATION_BUCKETS } from './observe/metrics.js';
export type { CaptureMetricLabels, CaptureMetrics, CaptureMetricsOptions, MetricsSource } from './observe/metrics.js';
export { DEFAULT_STORE_FAILING_THRESHOLD_MS, readinessOf, startMonitorServer } from './observe/monitor-server.js';
export type { MonitorServer, MonitorServerOptions, Readiness, ReadinessOptions } from './observe/monitor-server.js';
export { createInspector } from './observe/inspector.js';
export type { InspectedActor, InspectedTransition, Inspector, InspectorModel, InspectorOptions, InspectorServer } from './observe/inspector.js';

// Restore and verify
export { restore, RESTORE_DEFAULTS } from '../restore/restore.js';
export type { RestoreOptions, RestoreProgress, RestoreReport } from '../restore/restore.js';
export { verify } from '../restore/verify.js';
export type { VerifyDifference, VerifyOptions, VerifyReport } from '../restore/verify.js';

// Machines (for inspection, diagrams and tests with provide())
export { blockMachine } from '../machines/block-machine.js';
export { captureSupervisorMachine } from '../machines/capture-supervisor.js';
export { connectionMachine } from '../machines/connection-machine.js';
export { subscriptionMachine } from '../machines/subscription-machine.js';
export { restoreMachine } from '../restore/restore-machine.js';
export { machineToDot, machineToJSON, machineToMermaid } from '../machines/diagram.js';

// Archive contract
export type { Envelope } from './archive/envelope.js';
export { envelopeTimeIso, parseTimeIso } from './archive/envelope.js';
export type { BlockManifest, SealReason } from './archive/manifest.js';
export { ARCHIVE_FORMAT_VERSION, parseManifest } from './archive/manifest.js';
export { assertSafeKey, blockKey, keySegment, manifestKeyFor, MANIFEST_SUFFIX } from './archive/keys.js';

// Formats, compressions, stores (plug-ins behind one interface each)
export type { BlockEncoder, BlockFormat } from './formats/format.js';
export { csv, csvFormat, FORMAT_NAMES, ndjson, raw, resolveFormat } from './formats/index.js';
export type { Compression } from './compression/compression.js';
export { COMPRESSION_NAMES, gzip, none, resolveCompression, snappy } from './compression/index.js';
export type { PutOptions, Store, StoredObject } from './stores/store.js';
export { FileStore } from './stores/fs.js';
export { createStore, describeStoreUri } from './stores/uri.js';

// Errors and logging
export { CorruptBlockError, JetvaultError, StoreError, UsageError } from './errors.js';
export type { JetvaultErrorCode } from './errors.js';
export type { Logger } from './logger.js';
export { VERSION } from './version.js';
