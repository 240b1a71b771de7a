/**
 * restore(): republishes an archived stream into a NATS JetStream stream, in original stream order, with
 * every message exactly as captured. The steps are the restore machine's states (restore-machine.ts).
 * Losing the target while publishing (a server restart, a dropped connection) is handled inside the
 * publishing step (republisher.ts): restore waits for the target, asks it how far it got, and continues
 * after the last message it holds.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { createActor } from 'xstate';
import { JetvaultError, UsageError } from '../src/errors.js';
import { silentLogger, type Logger } from '../src/logger.js';
import type { Store } from '../src/stores/store.js';
import type { RestoreJob } from './restore-actors.js';
import { restoreMachine } from './restore-machine.js';
import { DEFAULT_RECONNECT_TIMEOUT_MS } from './republisher.js';
import { openStore } from './resources.js';

export interface RestoreProgress {
  blocksDone: number;
  blocksTotal: number;
  messagesDone: number;
  messagesTotal: number;
  /** Times the target was lost and restore continued after the last message it held. */
  reconnects: number;
  /** True from losing the target until it answers again (one event each way). */
  waitingForTarget: boolean;
}

export interface RestoreOptions {
  /** A Store, or a URI / path for createStore(). */
  from: Store | string;
  /** Target NATS server(s). Ignored when `connection` is given. */
  servers?: string | string[];
  /** An existing connection (restore does not close it). */
  connection?: NatsConnection;
  /** Target stream name; default: the archived stream's name. */
  stream?: string;
  /** Which archived stream, when the archive holds several (default: the only one, else JV_ARCHIVE_AMBIGUOUS). */
  sourceStream?: string;
  /** Create the target from the archived stream config when missing (default true); false → JV_TARGET_MISSING. */
  create?: boolean;
  /** Allow a target that already holds messages (default false → JV_TARGET_NOT_EMPTY). */
  append?: boolean;
  /** Checksum every block before publishing anything (default true). */
  precheck?: boolean;
  /** Publish window (default 256). */
  maxInFlight?: number;
  /**
   * How long to wait for a lost target (server restart, dropped connection) before failing with
   * JV_CONNECT_FAILED, in ms, counted from noticing the loss (default 60 s; 0: one attempt). Restore
   * redials a connection it opened, and notices the loss at once; a given `connection` must reconnect by
   * its own policy, and the loss is noticed when pending publishes time out (5 s).
   */
  reconnectTimeoutMs?: number;
  logger?: Logger;
  signal?: AbortSignal;
  onProgress?: (p: RestoreProgress) => void;
}

export interface RestoreReport {
  sourceStream: string;
  targetStream: string;
  createdStream: boolean;
  blocks: number;
  /** Messages published and stored by the target. */
  messages: number;
  /** Messages held twice in the archive (overlapping blocks after a crash) and published once. */
  skippedDuplicates: number;
  /** Times the target was lost and restore continued after the last message it held. */
  reconnects: number;
  /** Time spent waiting for a lost target, in ms. */
  reconnectMs: number;
  durationMs: number;
}

export const RESTORE_DEFAULTS = { create: true, append: false, precheck: true, maxInFlight: 256, reconnectTimeoutMs: DEFAULT_RECONNECT_TIMEOUT_MS } as const;

const STREAM_NAME = /^[^\s.*>/\\]+$/;

function validate(options: RestoreOptions): void {
  if (options === null || typeof options !== 'object') throw new UsageError('restore options are required');
  if (options.from === undefined || options.from === null || options.from === '') throw new UsageError('an archive location (from) is required');
  if (!options.connection && (options.servers === undefined || options.servers.length === 0)) {
    throw new UsageError('a server URL (or a connection) is required');
  }
  if (options.stream !== undefined && !STREAM_NAME.test(options.stream)) {
    throw new UsageError(`target stream name ${JSON.stringify(options.stream)} is not valid (no spaces, '.', '*', '>' or slashes)`);
  }
  if (options.maxInFlight !== undefined && (!Number.isSafeInteger(options.maxInFlight) || options.maxInFlight <= 0)) {
    throw new UsageError(`maxInFlight must be a positive integer, got ${options.maxInFlight}`);
  }
  if (options.reconnectTimeoutMs !== undefined && (!Number.isSafeInteger(options.reconnectTimeoutMs) || options.reconnectTimeoutMs < 0)) {
    throw new UsageError(`reconnectTimeoutMs must be a non-negative integer (ms), got ${options.reconnectTimeoutMs}`);
  }
}

/**
 * Restores an archive into a stream. Resolves with a report; rejects with a JetvaultError (a
 * CorruptBlockError for a damaged block), or with the signal's reason when aborted.
 */
export async function restore(options: RestoreOptions): Promise<RestoreReport> {
  validate(options);
  const logger = options.logger ?? silentLogger();
  const store = openStore(options.from);
  const now = () => performance.now();
  const job: RestoreJob = {
    store,
    create: options.create ?? RESTORE_DEFAULTS.create,
    append: options.append ?? RESTORE_DEFAULTS.append,
    precheck: options.precheck ?? RESTORE_DEFAULTS.precheck,
    maxInFlight: options.maxInFlight ?? RESTORE_DEFAULTS.maxInFlight,
    reconnectTimeoutMs: options.reconnectTimeoutMs ?? RESTORE_DEFAULTS.reconnectTimeoutMs,
    logger,
    now,
    startedAt: now(),
    ...(options.servers !== undefined ? { servers: options.servers } : {}),
    ...(options.connection !== undefined ? { connection: options.connection } : {}),
    ...(options.stream !== undefined ? { stream: options.stream } : {}),
    ...(options.sourceStream !== undefined ? { sourceStream: options.sourceStream } : {}),
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
    ...(options.onProgress !== undefined ? { onProgress: options.onProgress } : {}),
  };

  const actor = createActor(restoreMachine, { input: { job } });
  return new Promise<RestoreReport>((resolve, reject) => {
    actor.subscribe({
      complete: () => {
        const snapshot = actor.getSnapshot();
        const output = snapshot.output;
        if (snapshot.matches('done') && output?.report) resolve(output.report);
        else reject(output?.error ?? new JetvaultError('JV_PUBLISH_FAILED', 'restore ended without a report'));
      },
      // An error escaping the machine itself (a bug, not a failed step): release what we can and report it.
      error: (error) => {
        void store.release().catch(() => undefined);
        reject(error);
      },
    });
    actor.start();
  });
}
