/**
 * Capture options, their defaults and their validation. Durations are in milliseconds, sizes in bytes.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { InspectionEvent } from 'xstate';
import type { Envelope } from '../archive/envelope.js';
import type { Compression } from '../compression/compression.js';
import { UsageError } from '../errors.js';
import type { BlockFormat } from '../formats/format.js';
import type { Logger } from '../logger.js';
import type { Store } from '../stores/store.js';

/**
 * How messages are grouped into blocks: one block series per distinct key.
 * `none` puts everything in one series; `subject` splits by subject; `header:NAME` by a header's first
 * value; `field:PATH` by a dotted path into a JSON payload; a function decides by itself.
 */
export type SplitBy = 'none' | 'subject' | `header:${string}` | `field:${string}` | ((envelope: Envelope) => string);

/**
 * A user decoder: turns a captured message into the value the format writes, and optionally picks
 * its split key. Throwing marks the message undecodable: it is retried, then dead-lettered (see `deadLetter`).
 */
export type MessageDecoder<T> = (envelope: Envelope) => { value: T; splitKey?: string };

export interface CaptureOptions<T = Envelope> {
  /** NATS server URL(s). Ignored when `connection` is given. */
  servers?: string | string[];
  /** An existing connection to use (jetvault will not close it). */
  connection?: NatsConnection;
  /** Extra nats.js connect options (user, pass, token, tls…); never logged. */
  connectOptions?: Record<string, unknown>;
  stream: string;
  /**
   * Durable consumer to bind to. Created (durable pull, explicit ack) when it does not exist.
   * Default: `jetvault-<stream>`.
   */
  consumer?: string;
  /** Where blocks go: a Store, or a URI / path resolved by createStore(). */
  store: Store | string;
  /** Block format: a name (`raw` default, `ndjson`, `csv`) or a custom format. */
  format?: 'raw' | 'ndjson' | 'csv' | BlockFormat<T>;
  compression?: 'none' | 'gzip' | 'snappy' | Compression;
  /** Default `subject`. */
  splitBy?: SplitBy;
  /** Custom decoder; required when the format writes something other than envelopes. */
  decoder?: MessageDecoder<T>;
  /** Seal a block at this many messages. Default 100,000. */
  maxMessages?: number;
  /** Seal a block at this many encoded bytes. Default 64 MiB. */
  maxBytes?: number;
  /**
   * Encoded bytes all blocks not yet acked may hold together (open ones and those storing). Past it, the
   * largest open block seals early. Default 256 MiB. With `bufferDir`, only bytes in memory count: what an
   * open block spilled to disk counts again once the block seals and reads it back.
   */
  maxBufferBytes?: number;
  /**
   * Spill the bodies of open blocks to disk under this directory (created when missing; the CLI's
   * `--buffer-to-disk` defaults to `<tmpdir>/jetvault-spill`): memory then holds only the ~256 KiB chunk each
   * open block is filling (and blocks being stored). Each capture uses a subdirectory of its own and, on start,
   * removes those of crashed runs on this host. Scratch only: durability comes from the store. Formats whose
   * encoder has no `takeChunks()` stay in memory. Default: off.
   */
  bufferDir?: string;
  /** Seal a block this long after it opened. Default 15 min. */
  maxAgeMs?: number;
  /** Seal a block that received nothing for this long. Default 30 s. */
  idleMs?: number;
  /** ack_wait of a consumer jetvault creates. Default: maxAge + 1 min. Blocks seal before any consumer's ack_wait runs out. */
  ackWaitMs?: number;
  /** max_ack_pending of a consumer jetvault creates. Default 100,000. */
  maxAckPending?: number;
  /**
   * Messages pulled ahead of processing. Default: 4,000, fewer for large messages (about 16 MiB at the
   * stream's average message size, at least 16), so a pause of the capture (sealing, acking a block) does
   * not leave the server without a pull to answer.
   */
  pullBatch?: number;
  /**
   * A consumer deleted during the capture is re-created (with its former settings, starting after what was
   * captured) when jetvault created it. Set this to do the same for a consumer you created; otherwise its
   * deletion stops the capture with JV_CONSUMER_DELETED. Default false.
   */
  recreateConsumer?: boolean;
  /** How long shutdown may take to store and ack open blocks. Default 30 s. */
  drainTimeoutMs?: number;
  /** Capture what is pending at start, store and ack it, then finish. */
  once?: boolean;
  /** Retry delays for failed stores: exponential with jitter, starting here. Default 500 ms. */
  retryBaseMs?: number;
  /** Upper bound of one retry delay. Default 30 s. */
  retryMaxMs?: number;
  /** How often the consumer's lag is read for stats and metrics. Default 5 s. */
  consumerInfoIntervalMs?: number;
  /** Give up a block after this many failed store attempts. Default unlimited. */
  maxStoreAttempts?: number;
  /**
   * What happens to a message the decoder or format rejects: `true` (default) stores it, with the error, under
   * `_dead-letter/` in the same store after `poisonAttempts` deliveries and acks it, and capture goes on;
   * `false` stops the capture (JV_DECODE_FAILED) after storing what came before it.
   */
  deadLetter?: boolean;
  /** Deliveries of an undecodable message before it is dead-lettered (at most the consumer's max_deliver). Default 3. */
  poisonAttempts?: number;
  /** Delay before an undecodable message is delivered again. Default 1 s. */
  poisonRetryDelayMs?: number;
  logger?: Logger;
  /**
   * Receives XState's inspection events of every actor of this capture (state changes, events, spawned
   * blocks): what the live inspector page and debugging tools are built on.
   */
  inspect?: (event: InspectionEvent) => void;
  /** Clock in ms; tests inject a simulated one. */
  now?: () => number;
}

export const CAPTURE_DEFAULTS = {
  format: 'raw',
  compression: 'none',
  splitBy: 'subject',
  maxMessages: 100_000,
  maxBytes: 64 * 1024 * 1024,
  maxBufferBytes: 256 * 1024 * 1024,
  maxAgeMs: 15 * 60_000,
  idleMs: 30_000,
  maxAckPending: 100_000,
  drainTimeoutMs: 30_000,
  consumerInfoIntervalMs: 5_000,
  retryBaseMs: 500,
  retryMaxMs: 30_000,
  maxStoreAttempts: Number.POSITIVE_INFINITY,
  deadLetter: true,
  poisonAttempts: 3,
  poisonRetryDelayMs: 1_000,
} as const;

export function defaultConsumerName(stream: string): string {
  return `jetvault-${stream}`;
}

const positiveInt = (name: string, v: number | undefined) => {
  if (v !== undefined && (!Number.isSafeInteger(v) || v <= 0)) throw new UsageError(`${name} must be a positive integer, got ${v}`);
};
const positiveMs = (name: string, v: number | undefined) => {
  if (v !== undefined && (!Number.isFinite(v) || v <= 0)) throw new UsageError(`${name} must be a positive duration, got ${v}`);
};

/** Throws a UsageError for the first invalid option. */
export function validateCaptureOptions<T>(options: CaptureOptions<T>): void {
  if (!options.stream || !/^[^\s.*>]+$/.test(options.stream)) {
    throw new UsageError(`stream name ${JSON.stringify(options.stream ?? '')} is not valid (no spaces, '.', '*' or '>')`);
  }
  if (options.consumer !== undefined && !/^[^\s.*>]+$/.test(options.consumer)) {
    throw new UsageError(`consumer name ${JSON.stringify(options.consumer)} is not valid (no spaces, '.', '*' or '>')`);
  }
  if (!options.connection && (options.servers === undefined || options.servers.length === 0)) {
    throw new UsageError('a server URL (or a connection) is required');
  }
  positiveInt('maxMessages', options.maxMessages);
  positiveInt('maxBytes', options.maxBytes);
  positiveInt('maxBufferBytes', options.maxBufferBytes);
  if (options.bufferDir !== undefined && (typeof options.bufferDir !== 'string' || options.bufferDir.trim() === '')) {
    throw new UsageError(`bufferDir must be a directory path, got ${JSON.stringify(options.bufferDir)}`);
  }
  positiveInt('maxAckPending', options.maxAckPending);
  positiveInt('pullBatch', options.pullBatch);
  positiveInt('maxStoreAttempts', options.maxStoreAttempts === Number.POSITIVE_INFINITY ? undefined : options.maxStoreAttempts);
  positiveInt('poisonAttempts', options.poisonAttempts);
  positiveMs('poisonRetryDelayMs', options.poisonRetryDelayMs);
  positiveMs('maxAgeMs', options.maxAgeMs);
  positiveMs('idleMs', options.idleMs);
  positiveMs('ackWaitMs', options.ackWaitMs);
  positiveMs('drainTimeoutMs', options.drainTimeoutMs);
  positiveMs('retryBaseMs', options.retryBaseMs);
  positiveMs('retryMaxMs', options.retryMaxMs);
  const split = options.splitBy;
  if (typeof split === 'string' && !['none', 'subject'].includes(split)) {
    const m = /^(header|field):(.+)$/.exec(split);
    if (!m) throw new UsageError(`split-by ${JSON.stringify(split)} is not valid (use none, subject, header:NAME or field:PATH)`);
  }
}
