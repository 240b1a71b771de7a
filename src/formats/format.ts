/**
 * A block format: how values are written into a block body, and (for restorable formats) read back.
 * Built-in formats write envelopes (src/archive/envelope.ts); a custom format may write any value type
 * that the user's decoder produces.
 */
import type { Envelope } from '../archive/envelope.js';

/** What takeChunks() returns when no chunk completed: shared and frozen, so the hot path allocates nothing. */
export const NO_CHUNKS: Buffer[] = Object.freeze([]) as unknown as Buffer[];

export interface BlockEncoder<T = Envelope> {
  /** Appends one value to the block body; returns the number of encoded bytes it added. */
  write(value: T): number;
  /** Ends the block and returns its body, as chunks in order (no copy into one buffer needed). */
  finish(): Buffer[];
  /**
   * Optional: hands over the chunks completed so far (full ones, that no later write() changes) and forgets
   * them, so the body is every takeChunks() result in order, then finish(). Lets a block spill its body to
   * disk while it is open (`bufferDir`); an encoder without it keeps the whole body in memory. Called after
   * write() on the hot path when spilling is on, so it must be cheap when nothing completed (return an
   * empty array). The returned chunks are the caller's; the encoder never touches them again.
   */
  takeChunks?(): Buffer[];
}

export interface BlockFormat<T = Envelope> {
  /** Stable name written into manifests, e.g. `raw`. */
  readonly name: string;
  /** File extension without the dot, e.g. `jv`. */
  readonly extension: string;
  readonly contentType: string;
  createEncoder(): BlockEncoder<T>;
  /**
   * Reads a whole block body back into envelopes, in the order written. Absent for formats that are not
   * restorable. Throws on malformed input (callers wrap it into a CorruptBlockError naming the block).
   */
  decode?(body: Buffer): Iterable<Envelope>;
}
