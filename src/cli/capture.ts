/**
 * `jetvault capture`: flags → CaptureOptions → createCapture(). With `--once` it ends when the pending
 * messages are stored and acked; otherwise it runs until SIGINT/SIGTERM. A signal drains (stores and acks
 * open blocks), a second one stops at once. The one-line summary goes to stdout; the library logs its
 * events to stderr.
 */
import { Command, Option } from 'commander';
import { createCapture } from '../../machines/create-capture.js';
import { CAPTURE_DEFAULTS, defaultConsumerName, validateCaptureOptions, type CaptureOptions, type SplitBy } from '../capture/options.js';
import type { CaptureHandle, CaptureReport } from '../capture/events.js';
import { defaultSpillRoot } from '../capture/spill.js';
import { COMPRESSION_NAMES } from '../compression/index.js';
import { JetvaultError, UsageError } from '../errors.js';
import { FORMAT_NAMES } from '../formats/index.js';
import type { Logger } from '../logger.js';
import type { Inspector } from '../observe/inspector.js';
import { addStoreFlags, STORE_URI_HELP, storeFromFlags, type StoreFlags } from './store-flags.js';
import { ExitCode } from './exit-codes.js';
import { createCliLogger, logFormatOption, logLevelOption, type LogFormat, type LogLevel } from './logger.js';
import { collectServers, formatDuration, formatSize, parseDuration, parsePort, parsePositiveInt, parseSize } from './parse.js';
import { createProgress, quietOption, type Progress } from './progress.js';
import { plural, seconds, type CliContext } from './report.js';

export interface CaptureFlags extends StoreFlags {
  server: string[];
  stream: string;
  consumer?: string;
  store: string;
  format?: 'raw' | 'ndjson' | 'csv';
  compression?: 'none' | 'gzip' | 'snappy';
  maxAge?: number;
  maxMessages?: number;
  maxBytes?: number;
  maxBuffer?: number;
  /** `true` when the flag came without a directory. */
  bufferToDisk?: string | true;
  idle?: number;
  splitBy?: string;
  once?: boolean;
  ackWait?: number;
  maxAckPending?: number;
  pullBatch?: number;
  recreateConsumer?: boolean;
  drainTimeout?: number;
  quiet?: boolean;
  metricsPort?: number;
  inspectPort?: number;
  listenHost: string;
  logLevel: LogLevel;
  logFormat: LogFormat;
}

const D = CAPTURE_DEFAULTS;

export function captureCommand(ctx: CliContext): Command {
  const command = new Command('capture')
    .description('capture a JetStream stream into compressed blocks in a store')
    .requiredOption('--server <url>', 'NATS server URL; repeat or comma-separate for several', collectServers)
    .requiredOption('--stream <name>', 'stream to capture')
    .option('--consumer <name>', 'durable consumer to bind (created when missing; default jetvault-<stream>)')
    .requiredOption('--store <uri>', `where blocks go: ${STORE_URI_HELP}`)
    .addOption(new Option('--format <name>', `block format (default ${D.format})`).choices(FORMAT_NAMES))
    .addOption(new Option('--compression <name>', `block compression (default ${D.compression})`).choices(COMPRESSION_NAMES))
    .option('--max-age <duration>', `seal a block this long after it opened (default ${formatDuration(D.maxAgeMs)})`, (v) => parseDuration(v, '--max-age'))
    .option('--max-messages <n>', `seal a block at this many messages (default ${D.maxMessages})`, (v) => parsePositiveInt(v, '--max-messages'))
    .option('--max-bytes <size>', `seal a block at this many encoded bytes (default ${formatSize(D.maxBytes)})`, (v) => parseSize(v, '--max-bytes'))
    .option(
      '--max-buffer <size>',
      `encoded bytes all unacked blocks may hold together; past it the largest open block seals (default ${formatSize(D.maxBufferBytes)})`,
      (v) => parseSize(v, '--max-buffer'),
    )
    .option(
      '--buffer-to-disk [dir]',
      `spill the bodies of open blocks to files under dir, so memory holds only the chunk each is filling and --max-buffer counts memory only (default dir ${defaultSpillRoot()})`,
      (v) => {
        if (v.trim() === '') throw new UsageError(`--buffer-to-disk needs a directory (or no value for ${defaultSpillRoot()}), got ""`);
        return v;
      },
    )
    .option('--idle <duration>', `seal a block that received nothing for this long (default ${formatDuration(D.idleMs)})`, (v) => parseDuration(v, '--idle'))
    .option('--split-by <how>', `one block series per: none, subject, header:NAME or field:PATH (default ${D.splitBy})`)
    .option('--once', 'capture what is pending now, store and ack it, then exit')
    .option('--ack-wait <duration>', 'ack_wait of a consumer jetvault creates (default: --max-age plus 1m)', (v) => parseDuration(v, '--ack-wait'))
    .option('--max-ack-pending <n>', `max_ack_pending of a consumer jetvault creates (default ${D.maxAckPending})`, (v) => parsePositiveInt(v, '--max-ack-pending'))
    .option('--pull-batch <n>', 'messages pulled ahead of processing (default 4000, fewer for large messages: about 16 MiB)', (v) => parsePositiveInt(v, '--pull-batch'))
    .option('--recreate-consumer', 're-create the consumer if it is deleted during the capture, even when jetvault did not create it')
    .option('--drain-timeout <duration>', `how long shutdown may take to store and ack open blocks (default ${formatDuration(D.drainTimeoutMs)})`, (v) => parseDuration(v, '--drain-timeout'))
    .option('--metrics-port <port>', 'serve /metrics (Prometheus), /healthz and /readyz on this port', (v) => parsePort(v, '--metrics-port'))
    .option('--inspect-port <port>', 'serve a live view of the capture machines on this port', (v) => parsePort(v, '--inspect-port'))
    .option('--listen-host <host>', 'address the metrics and inspector servers listen on', '127.0.0.1')
    .addOption(quietOption())
    .addOption(logLevelOption())
    .addOption(logFormatOption())
    .action(async (flags: CaptureFlags) => {
      ctx.exitCode = await runCapture(flags, ctx);
    });
  return addStoreFlags(command);
}

/** Only options the user gave are set, so the library's defaults apply to the rest. */
export function captureOptionsFrom(flags: CaptureFlags): Omit<CaptureOptions, 'store'> & { store: string } {
  const options: Omit<CaptureOptions, 'store'> & { store: string } = { servers: flags.server, stream: flags.stream, store: flags.store };
  if (flags.consumer !== undefined) options.consumer = flags.consumer;
  if (flags.format !== undefined) options.format = flags.format;
  if (flags.compression !== undefined) options.compression = flags.compression;
  if (flags.maxAge !== undefined) options.maxAgeMs = flags.maxAge;
  if (flags.maxMessages !== undefined) options.maxMessages = flags.maxMessages;
  if (flags.maxBytes !== undefined) options.maxBytes = flags.maxBytes;
  if (flags.maxBuffer !== undefined) options.maxBufferBytes = flags.maxBuffer;
  if (flags.bufferToDisk !== undefined) options.bufferDir = flags.bufferToDisk === true ? defaultSpillRoot() : flags.bufferToDisk;
  if (flags.recreateConsumer) options.recreateConsumer = true;
  if (flags.idle !== undefined) options.idleMs = flags.idle;
  if (flags.splitBy !== undefined) options.splitBy = flags.splitBy as SplitBy;
  if (flags.once) options.once = true;
  if (flags.ackWait !== undefined) options.ackWaitMs = flags.ackWait;
  if (flags.maxAckPending !== undefined) options.maxAckPending = flags.maxAckPending;
  if (flags.pullBatch !== undefined) options.pullBatch = flags.pullBatch;
  if (flags.drainTimeout !== undefined) options.drainTimeoutMs = flags.drainTimeout;
  return options;
}

export async function runCapture(flags: CaptureFlags, ctx: CliContext): Promise<ExitCode> {
  // A daemon has no end to measure against: only --once reports progress.
  const progress = createProgress({ label: 'capture', quiet: flags.quiet || !flags.once });
  const logger = createCliLogger(flags.logLevel, flags.logFormat, { beforeWrite: () => progress.clear() });
  ctx.logger = logger;
  const options = captureOptionsFrom(flags);
  // Bad values and unknown store schemes fail here, before anything connects.
  validateCaptureOptions(options);
  const store = storeFromFlags(options.store, flags);
  const servers: Array<{ close(): Promise<void> }> = [];
  try {
    // Loaded only when asked for: prom-client, its OpenTelemetry dependency and the inspector page are most
    // of the CLI's start-up time otherwise.
    const inspector = flags.inspectPort !== undefined ? (await import('../observe/inspector.js')).createInspector() : undefined;
    const handle = createCapture({ ...options, store, logger, ...(inspector ? { inspect: inspector.inspect } : {}) });
    try {
      servers.push(...(await startServers(flags, handle, inspector, { ...options, store: store.description }, logger)));
    } catch (error) {
      await handle.stop();
      throw error;
    }
    const stopProgress = trackProgress(handle, progress);
    // With --once too: Ctrl-C then drains what was read instead of dropping it.
    let report: CaptureReport;
    try {
      report = await runUntilSignalled(handle, ctx, progress);
    } catch (error) {
      progress.abort();
      throw error;
    } finally {
      stopProgress();
    }
    progress.finish();
    ctx.out(captureSummary(report));
    return ExitCode.ok;
  } finally {
    await Promise.all(servers.map((server) => server.close()));
    await store.close?.();
  }
}

/** The optional HTTP servers: metrics and probes (`--metrics-port`), the live machine view (`--inspect-port`). */
async function startServers(
  flags: CaptureFlags,
  handle: CaptureHandle,
  inspector: Inspector | undefined,
  options: { stream: string; consumer?: string; store: string },
  logger: Logger,
): Promise<Array<{ close(): Promise<void> }>> {
  const started: Array<{ close(): Promise<void> }> = [];
  try {
    if (flags.metricsPort !== undefined) {
      const [{ Registry }, { captureMetrics }, { startMonitorServer }] = await Promise.all([
        import('prom-client'),
        import('../observe/metrics.js'),
        import('../observe/monitor-server.js'),
      ]);
      const registry = new Registry();
      captureMetrics(handle, {
        registry,
        labels: { stream: options.stream, consumer: options.consumer ?? defaultConsumerName(options.stream), store: options.store },
      });
      const monitor = await startMonitorServer({ handle, registry, port: flags.metricsPort, host: flags.listenHost });
      started.push(monitor);
      logger.info({ url: monitor.url }, 'metrics.listening');
    }
    if (inspector && flags.inspectPort !== undefined) {
      const web = await inspector.listen(flags.inspectPort, flags.listenHost);
      started.push(web);
      logger.info({ url: web.url }, 'inspector.listening');
    }
  } catch (error) {
    await Promise.all(started.map((server) => server.close()));
    throw new JetvaultError('JV_LISTEN_FAILED', `cannot listen on ${flags.listenHost}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  return started;
}

/**
 * Messages acked out of those pending at bind. A rebind (after a reconnect) reports what is still
 * pending, acked-but-unconfirmed ones included, so the total becomes what is done plus that.
 */
function trackProgress(handle: CaptureHandle, progress: Progress): () => void {
  let done = 0;
  let total: number | undefined;
  const offs = [
    handle.on('consumer.bound', (event) => {
      total = done + event.pending;
      progress.update(done, total);
    }),
    handle.on('block.acked', (event) => {
      done += event.messages;
      progress.update(done, total);
    }),
  ];
  return () => offs.forEach((off) => off());
}

/**
 * The report when the capture ends (by itself with --once). The first SIGINT/SIGTERM drains; a second
 * one stops at once and fails (exit 1).
 */
async function runUntilSignalled(handle: CaptureHandle, ctx: CliContext, progress: Progress): Promise<CaptureReport> {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  let received = 0;
  let forced: JetvaultError | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    received += 1;
    progress.clear();
    if (received === 1) {
      ctx.err(`jetvault: ${signal}: draining (storing and acking open blocks); send it again to stop at once`);
      // Its outcome arrives through handle.done below.
      handle.drain().catch(() => undefined);
    } else if (received === 2) {
      forced = new JetvaultError('JV_CAPTURE_FAILED', `stopped by a second ${signal} before the drain finished; unacked messages will be redelivered`);
      void handle.stop();
    }
  };
  for (const signal of signals) process.on(signal, onSignal);
  try {
    // Also settles when the capture ends by itself (a fatal error, the stream deleted).
    const report = await handle.done;
    if (forced) throw forced;
    return report;
  } catch (error) {
    throw forced ?? error;
  } finally {
    for (const signal of signals) process.off(signal, onSignal);
  }
}

export function captureSummary(report: CaptureReport): string {
  const abandoned = report.abandonedBlocks > 0 ? `; ${plural(report.abandonedBlocks, 'block')} left unacked (their messages will be redelivered)` : '';
  const deadLettered = report.deadLettered > 0 ? `; ${plural(report.deadLettered, 'undecodable message')} stored under _dead-letter/` : '';
  return (
    `captured ${plural(report.messages, 'message')} in ${plural(report.blocks, 'block')} (${report.storedBytes} bytes) ` +
    `from ${report.stream} via consumer ${report.consumer} in ${seconds(report.durationMs)} s${deadLettered}${abandoned}`
  );
}
