/**
 * createCapture(): resolves the options, starts the supervised capture actor and returns a handle with
 * typed events and stats(). The actor is the control flow; this file only wires options, logging, stats and
 * promises.
 */
import { createActor, type Actor } from 'xstate';
import type { Envelope } from '../src/archive/envelope.js';
import type { CaptureEvent, CaptureEventOf, CaptureEventType, CaptureHandle, CaptureReport } from '../src/capture/events.js';
import { CAPTURE_DEFAULTS, defaultConsumerName, validateCaptureOptions, type CaptureOptions } from '../src/capture/options.js';
import { SpillDirectory } from '../src/capture/spill.js';
import { splitKeyFunction } from '../src/capture/split.js';
import type { Compression } from '../src/compression/compression.js';
import { resolveCompression } from '../src/compression/index.js';
import { describeError, JetvaultError, UsageError } from '../src/errors.js';
import type { BlockFormat } from '../src/formats/format.js';
import { resolveFormat } from '../src/formats/index.js';
import { silentLogger, type Logger } from '../src/logger.js';
import { CaptureStatsCollector } from '../src/observe/stats.js';
import { createStore } from '../src/stores/uri.js';
import { captureSupervisorMachine } from './capture-supervisor.js';

/**
 * Starts capturing `options.stream` into `options.store`. Throws a UsageError at once for invalid
 * options; connection and stream problems reject `handle.done`.
 */
export function createCapture<T = Envelope>(options: CaptureOptions<T>): CaptureHandle {
  validateCaptureOptions(options);
  const logger = options.logger ?? silentLogger();
  const format = (typeof options.format === 'object' ? options.format : resolveFormat(options.format ?? CAPTURE_DEFAULTS.format)) as BlockFormat<T>;
  const compression: Compression =
    typeof options.compression === 'object' ? options.compression : resolveCompression(options.compression ?? CAPTURE_DEFAULTS.compression);
  const store = typeof options.store === 'string' ? createStore(options.store) : options.store;
  const stream = options.stream;
  const consumer = options.consumer ?? defaultConsumerName(stream);
  const maxAgeMs = options.maxAgeMs ?? CAPTURE_DEFAULTS.maxAgeMs;
  const idleMs = options.idleMs ?? CAPTURE_DEFAULTS.idleMs;
  const now = options.now ?? Date.now;
  const servers = options.servers === undefined ? [] : Array.isArray(options.servers) ? options.servers : [options.servers];

  const log = logger.child({ stream, consumer, store: store.description });
  // Last before the actor: nothing after it can throw and leave the directory behind.
  const spill = options.bufferDir === undefined ? undefined : openSpill(options.bufferDir, log, now);
  const stats = new CaptureStatsCollector({ now });
  const actor = createActor(captureSupervisorMachine, {
    ...(options.inspect ? { inspect: options.inspect } : {}),
    input: {
      servers,
      connectOptions: options.connectOptions ?? {},
      connection: options.connection,
      stream,
      consumer,
      create: {
        // A created consumer waits longer than a block may stay open, so acks never come too late.
        ackWaitMs: options.ackWaitMs ?? maxAgeMs + 60_000,
        maxAckPending: options.maxAckPending ?? CAPTURE_DEFAULTS.maxAckPending,
      },
      recreateConsumer: options.recreateConsumer ?? false,
      ...(options.pullBatch !== undefined ? { pullBatch: options.pullBatch } : {}),
      store,
      router: {
        stream,
        consumer,
        format: format as BlockFormat<unknown>,
        compression,
        splitKeyOf: splitKeyFunction(options.splitBy ?? CAPTURE_DEFAULTS.splitBy),
        decoder: options.decoder as CaptureOptions<unknown>['decoder'],
        maxMessages: options.maxMessages ?? CAPTURE_DEFAULTS.maxMessages,
        maxBytes: options.maxBytes ?? CAPTURE_DEFAULTS.maxBytes,
        maxBuffer: options.maxBufferBytes ?? CAPTURE_DEFAULTS.maxBufferBytes,
        ...(spill ? { spill } : {}),
        poison: {
          deadLetter: options.deadLetter ?? CAPTURE_DEFAULTS.deadLetter,
          attempts: options.poisonAttempts ?? CAPTURE_DEFAULTS.poisonAttempts,
          retryDelayMs: options.poisonRetryDelayMs ?? CAPTURE_DEFAULTS.poisonRetryDelayMs,
        },
        now,
      },
      maxAgeMs,
      idleMs,
      retry: {
        baseMs: options.retryBaseMs ?? CAPTURE_DEFAULTS.retryBaseMs,
        maxMs: options.retryMaxMs ?? CAPTURE_DEFAULTS.retryMaxMs,
        maxAttempts: options.maxStoreAttempts ?? CAPTURE_DEFAULTS.maxStoreAttempts,
      },
      drainTimeoutMs: options.drainTimeoutMs ?? CAPTURE_DEFAULTS.drainTimeoutMs,
      once: options.once ?? false,
      consumerInfoIntervalMs: options.consumerInfoIntervalMs ?? CAPTURE_DEFAULTS.consumerInfoIntervalMs,
      now,
    },
  });
  const handle = startHandle(actor, log, stats);
  return spill ? removingSpill(handle, spill, log) : handle;
}

/**
 * This capture's spill directory (`bufferDir`): its run directory is created now, so an unusable path fails
 * before anything connects; leftovers of crashed runs are removed in the background. Spill errors are logged
 * (a block whose write failed keeps the rest of its body in memory; a failed read-back fails the block).
 */
function openSpill(root: string, logger: Logger, now: () => number): SpillDirectory {
  // A full disk fails the first write of every new block: one line per 10 s, with how many were not logged.
  let loggedAt = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  let spill: SpillDirectory;
  try {
    spill = new SpillDirectory({
      root,
      onError: (error, { op, path }) => {
        if (now() - loggedAt < 10_000) {
          suppressed++;
          return;
        }
        loggedAt = now();
        logger.warn({ op, path, error: describeError(error), ...(suppressed > 0 ? { suppressed } : {}) }, 'spill.error');
        suppressed = 0;
      },
    });
  } catch (error) {
    throw new UsageError(`spill directory ${JSON.stringify(root)} (bufferDir, --buffer-to-disk) cannot be used: ${describeError(error)}`, {
      cause: error,
    });
  }
  logger.info({ dir: spill.dir }, 'spill.ready');
  void spill.removeLeftovers().then((removed) => {
    if (removed.length > 0) logger.info({ removed }, 'spill.leftovers-removed');
  });
  return spill;
}

/** The handle, with `done` settling only once the spill directory is removed (its totals logged). */
function removingSpill(handle: CaptureHandle, spill: SpillDirectory, logger: Logger): CaptureHandle {
  const close = async () => {
    await spill.close();
    logger.info({ dir: spill.dir, ...spill.stats }, 'spill.closed');
  };
  const done = handle.done.then(
    async (report) => {
      await close();
      return report;
    },
    async (error: unknown) => {
      await close();
      throw error;
    },
  );
  done.catch(() => undefined);
  return {
    ...handle,
    done,
    drain: () => {
      handle.drain().catch(() => undefined);
      return done;
    },
    stop: async () => {
      await handle.stop();
      await done.catch(() => undefined);
    },
  };
}

type CaptureActor = Actor<typeof captureSupervisorMachine>;

function startHandle(actor: CaptureActor, logger: Logger, stats: CaptureStatsCollector): CaptureHandle {
  const listeners = new Set<(event: CaptureEvent) => void>();
  // Stats first, so a listener calling stats() sees the event it was given.
  const publish = (event: CaptureEvent) => {
    stats.record(event);
    for (const listener of listeners) listener(event);
  };
  const warnEarlySeals = earlySealWarnings(logger);
  actor.on('*', (event) => {
    logEvent(logger, event);
    warnEarlySeals(event);
    publish(event);
  });
  const done = new Promise<CaptureReport>((resolve, reject) => {
    actor.subscribe({
      complete: () => {
        const output = actor.getSnapshot().output;
        if (!output) return reject(new JetvaultError('JV_CAPTURE_FAILED', 'capture ended without a report'));
        if (output.error) {
          const error =
            output.error instanceof JetvaultError
              ? output.error
              : new JetvaultError('JV_CAPTURE_FAILED', describeError(output.error), { cause: output.error });
          publish({ type: 'capture.error', error: error.message, code: error.code });
          return reject(error);
        }
        publish({ type: 'capture.done', report: output.report });
        logger.info({ report: output.report }, 'capture.done');
        resolve(output.report);
      },
      error: (error) => {
        stats.record({ type: 'capture.error', error: describeError(error), code: 'JV_CAPTURE_FAILED' });
        reject(new JetvaultError('JV_CAPTURE_FAILED', describeError(error), { cause: error }));
      },
    });
  });
  // Callers that only use events must not get an unhandled rejection.
  done.catch(() => undefined);
  actor.start();
  return {
    done,
    drain: () => {
      actor.send({ type: 'drain' });
      return done;
    },
    stop: async () => {
      actor.send({ type: 'stop' });
      await done.catch(() => undefined);
    },
    on<K extends CaptureEventType>(type: K, listener: (event: CaptureEventOf<K>) => void) {
      const wrapped = (event: CaptureEvent) => {
        if (event.type === type) listener(event as CaptureEventOf<K>);
      };
      listeners.add(wrapped);
      return () => listeners.delete(wrapped);
    },
    subscribe(listener: (event: CaptureEvent) => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stats: () => stats.snapshot(),
  };
}

/**
 * Blocks sealed early because the consumer's max_ack_pending or the buffer limit was reached are smaller
 * than configured: said once per reason, with the numbers, so an operator can raise the limit.
 */
function earlySealWarnings(logger: Logger): (event: CaptureEvent) => void {
  let maxAckPending = -1;
  const warned = new Set<string>();
  return (event) => {
    if (event.type === 'consumer.bound') maxAckPending = event.maxAckPending;
    if (event.type !== 'block.sealed' || warned.has(event.reason)) return;
    if (event.reason === 'ack-pending') {
      warned.add(event.reason);
      logger.warn(
        { maxAckPending, messages: event.messages },
        `unacked messages reached half of the consumer's max_ack_pending (${maxAckPending}): blocks seal early (this one at ${event.messages} messages); raise max_ack_pending for larger blocks`,
      );
    } else if (event.reason === 'max-buffer') {
      warned.add(event.reason);
      logger.warn(
        { messages: event.messages, bytes: event.bytes },
        `unacked blocks reached --max-buffer: the largest open block sealed early (${event.messages} messages, ${event.bytes} bytes); raise --max-buffer or use --buffer-to-disk`,
      );
    }
  };
}

function logEvent(logger: Logger, event: CaptureEvent): void {
  switch (event.type) {
    case 'block.retry':
      logger.warn(event, 'block.retry');
      break;
    case 'block.failed':
    case 'capture.error':
      logger.error(event, event.type);
      break;
    case 'capture.recovered':
      if (event.error) logger.warn(event, event.type);
      else logger.info(event, event.type);
      break;
    case 'message.undecodable':
    case 'block.abandoned':
    case 'capture.waiting':
      logger.warn(event, event.type);
      break;
    case 'connection.status':
      if (event.status === 'reconnecting' || event.status === 'failed') logger.warn(event, 'connection.status');
      else logger.info(event, 'connection.status');
      break;
    case 'block.opened':
    case 'block.sealing':
    case 'consumer.info':
      logger.debug(event, event.type);
      break;
    default:
      logger.info(event, event.type);
  }
}
