/**
 * Error classes with stable codes. The CLI maps codes to exit codes (src/cli/exit-codes.ts);
 * the library only throws. Every error keeps its `cause`.
 */

import { redactSecrets } from './redact.js';

export type JetvaultErrorCode =
  | 'JV_USAGE'
  | 'JV_CONNECT_FAILED'
  | 'JV_STREAM_NOT_FOUND'
  | 'JV_CONSUMER_NOT_FOUND'
  | 'JV_CONSUMER_INVALID'
  | 'JV_CONSUMER_DELETED'
  | 'JV_STORE_UNAVAILABLE'
  | 'JV_STORE_FAILED'
  | 'JV_STORE_NOT_FOUND'
  | 'JV_UNSAFE_KEY'
  | 'JV_ARCHIVE_EMPTY'
  | 'JV_ARCHIVE_AMBIGUOUS'
  | 'JV_BLOCK_CORRUPT'
  | 'JV_MANIFEST_INVALID'
  | 'JV_FORMAT_NOT_RESTORABLE'
  | 'JV_DECODE_FAILED'
  | 'JV_TARGET_NOT_EMPTY'
  | 'JV_TARGET_MISSING'
  | 'JV_PUBLISH_FAILED'
  | 'JV_DRAIN_TIMEOUT'
  | 'JV_CAPTURE_FAILED'
  | 'JV_NATS_SERVER_MISSING'
  | 'JV_LISTEN_FAILED';

export class JetvaultError extends Error {
  readonly code: JetvaultErrorCode;

  constructor(code: JetvaultErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'JetvaultError';
    this.code = code;
  }
}

/** The user asked for something that cannot work (bad option value, unknown scheme). */
export class UsageError extends JetvaultError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('JV_USAGE', message, options);
    this.name = 'UsageError';
  }
}

/**
 * A store error. `transient` ones are retried by the block machine with backoff;
 * permanent ones (no such bucket, access denied) fail the block at once.
 */
export class StoreError extends JetvaultError {
  readonly transient: boolean;

  constructor(
    code: 'JV_STORE_UNAVAILABLE' | 'JV_STORE_FAILED' | 'JV_STORE_NOT_FOUND' | 'JV_UNSAFE_KEY',
    message: string,
    options?: { cause?: unknown; transient?: boolean },
  ) {
    super(code, message, options);
    this.name = 'StoreError';
    this.transient = options?.transient ?? code === 'JV_STORE_UNAVAILABLE';
  }
}

/** A stored block does not match its manifest (checksum, size, count) or cannot be decoded. */
export class CorruptBlockError extends JetvaultError {
  readonly blockKey: string;

  constructor(blockKey: string, reason: string, options?: { cause?: unknown }) {
    super('JV_BLOCK_CORRUPT', `block ${blockKey} is corrupt: ${reason}`, options);
    this.name = 'CorruptBlockError';
    this.blockKey = blockKey;
  }
}

/** True when an error is worth retrying: store errors say so; unknown errors are assumed transient. */
export function isTransient(error: unknown): boolean {
  if (error instanceof StoreError) return error.transient;
  if (error instanceof JetvaultError) return false;
  return true;
}

/** The message of an error and its causes, joined and scrubbed of secrets, for one-line reports. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 4; depth++) {
    const message = current instanceof Error ? current.message : String(current);
    if (message && !parts.some((p) => p.includes(message))) parts.push(message);
    current = current instanceof Error ? current.cause : undefined;
  }
  return redactSecrets(parts.join(': '));
}
