/**
 * The body of one open block, filled on the hot path without any I/O: values are encoded as they
 * arrive, and the ack handles of their messages are kept until the store confirmed the block.
 * The block machine (machines/block-machine.ts) decides when it seals; `seal()` turns it into the
 * exact bytes and manifest to store.
 *
 * With a spill directory (`bufferDir`) and an encoder that has takeChunks(), every chunk the encoder
 * completes is queued to the block's spill file (src/capture/spill.ts), still without waiting on the hot
 * path; seal() reads the file back, adds the chunk still in memory, and deletes the file. The stored bytes
 * are the same either way.
 */
import { createHash, webcrypto } from 'node:crypto';
import type { Envelope } from '../archive/envelope.js';
import { envelopeTimeIso } from '../archive/envelope.js';
import { blockKey, manifestKeyFor } from '../archive/keys.js';
import { ARCHIVE_FORMAT_VERSION, type BlockManifest, type SealReason } from '../archive/manifest.js';
import type { Compression } from '../compression/compression.js';
import type { BlockEncoder, BlockFormat } from '../formats/format.js';
import type { SpillDirectory, SpillFile } from './spill.js';
import { BlockAcks, type AckHandle } from './block-acks.js';
import type { PublishToAll } from './reply-ack.js';
import { VERSION } from '../version.js';

export type { AckHandle } from './block-acks.js';

/** Where a value came from: always known, whatever the format writes. */
export interface MessageMeta {
  seq: number;
  timeNs: bigint;
}

export interface BlockBufferParams<T> {
  stream: string;
  splitKey: string;
  consumer: string;
  format: BlockFormat<T>;
  compression: Compression;
  streamConfig: Record<string, unknown>;
  /** A dead-letter block (undecodable messages, under `_dead-letter/`). */
  deadLetter?: boolean;
  /** Clock in ms; injected so tests run on simulated time. */
  now: () => number;
  /** Sends acks to the ack subjects appended (see reply-ack.ts); needed only when append() is given subjects. */
  publishAcks?: PublishToAll;
  /** Spill completed chunks of the body to a file there (only when the format's encoder has takeChunks()). */
  spill?: SpillDirectory;
  /**
   * Told when body bytes leave memory for the spill file (negative) or come back into memory at seal
   * (positive), so the router's buffer total counts memory only. Never called after dispose().
   */
  onMemoryChange?: (delta: number) => void;
}

export interface SealedBlock {
  key: string;
  manifestKey: string;
  body: Buffer;
  manifest: BlockManifest;
}

export class BlockBuffer<T = Envelope> {
  readonly stream: string;
  readonly splitKey: string;
  readonly deadLetter: boolean;
  readonly openedAt: number;
  count = 0;
  /** Encoded (uncompressed) bytes so far. */
  bytes = 0;
  /** Encoded bytes confirmed in the spill file rather than in memory (0 once seal() read them back). */
  spilledBytes = 0;
  firstSeq = 0;
  lastSeq = 0;
  firstTimeNs = 0n;
  lastTimeNs = 0n;
  lastAppendAt: number;
  /** Set when the block starts sealing: the router then opens a new block for this split key. */
  closed = false;
  readonly acks: BlockAcks;
  private readonly encoder: BlockEncoder<T>;
  private readonly params: BlockBufferParams<T>;
  /** Set only when spilling is on and the encoder can hand over completed chunks. */
  private readonly spillTo: SpillDirectory | undefined;
  private spillFile: SpillFile | undefined;
  private disposed = false;

  constructor(params: BlockBufferParams<T>) {
    this.params = params;
    this.stream = params.stream;
    this.splitKey = params.splitKey;
    this.deadLetter = params.deadLetter ?? false;
    this.encoder = params.format.createEncoder();
    this.acks = new BlockAcks(params.publishAcks);
    this.spillTo = params.spill !== undefined && typeof this.encoder.takeChunks === 'function' ? params.spill : undefined;
    this.openedAt = params.now();
    this.lastAppendAt = this.openedAt;
  }

  /** Encoded bytes of this block held in memory: all of them, less what sits confirmed in the spill file. */
  get memoryBytes(): number {
    return this.bytes - this.spilledBytes;
  }

  /** `ack`: the message's ack subject, or a handle that acks it. */
  append(value: T, meta: MessageMeta, ack?: AckHandle | string): void {
    this.bytes += this.encoder.write(value);
    if (this.spillTo !== undefined) this.spillCompleted(this.spillTo);
    if (this.count === 0) {
      this.firstSeq = meta.seq;
      this.firstTimeNs = meta.timeNs;
    }
    // Redeliveries can arrive out of order; the key needs the true range.
    if (meta.seq < this.firstSeq) {
      this.firstSeq = meta.seq;
      this.firstTimeNs = meta.timeNs;
    }
    if (meta.seq > this.lastSeq) {
      this.lastSeq = meta.seq;
      this.lastTimeNs = meta.timeNs;
    }
    this.count++;
    this.lastAppendAt = this.params.now();
    if (ack !== undefined) this.acks.add(ack);
  }

  /**
   * Encodes, compresses and checksums the block. The buffer must not be appended to afterwards. A spilled
   * body is read back (rejecting when that fails: the block then fails and is never acked) and its file
   * deleted.
   */
  async seal(reason: SealReason): Promise<SealedBlock> {
    const { format, compression } = this.params;
    let chunks = this.encoder.finish();
    const file = this.spillFile;
    if (file !== undefined) {
      const head = await file.readAll();
      // Back in memory until the block is released: counted as the router counts unspilled blocks.
      const back = this.spilledBytes;
      this.spilledBytes = 0;
      if (back > 0 && !this.disposed) this.params.onMemoryChange?.(back);
      chunks = [...head, ...chunks];
      await file.discard();
    }
    const encodedBytes = chunks.reduce((n, c) => n + c.length, 0);
    const body = await compression.compress(chunks);
    const extension = compression.extension ? `${format.extension}.${compression.extension}` : format.extension;
    const key = blockKey({
      stream: this.stream,
      splitKey: this.splitKey,
      deadLetter: this.deadLetter,
      firstSeq: this.firstSeq,
      lastSeq: this.lastSeq,
      firstTimeNs: this.firstTimeNs,
      extension,
    });
    const manifest: BlockManifest = {
      archiveVersion: ARCHIVE_FORMAT_VERSION,
      jetvaultVersion: VERSION,
      key,
      stream: this.stream,
      splitKey: this.splitKey,
      consumer: this.params.consumer,
      format: format.name,
      compression: compression.name,
      restorable: typeof format.decode === 'function',
      messages: this.count,
      firstSeq: this.firstSeq,
      lastSeq: this.lastSeq,
      firstTime: envelopeTimeIso(this.firstTimeNs),
      lastTime: envelopeTimeIso(this.lastTimeNs),
      storedBytes: body.length,
      encodedBytes,
      sha256: await sha256Hex(body),
      sealedBy: reason,
      createdAt: new Date(this.params.now()).toISOString(),
      streamConfig: this.params.streamConfig,
    };
    return { key, manifestKey: manifestKeyFor(key), body, manifest };
  }

  /**
   * The block is finished (acked, failed or abandoned) and released: its spill file, if any, is deleted
   * (the promise settles then; it never rejects), and memory changes are no longer reported. Idempotent.
   */
  dispose(): Promise<void> {
    this.disposed = true;
    return this.spillFile?.discard() ?? Promise.resolve();
  }

  /** Resolves once every chunk queued to the spill file is written (or kept in memory after a failed write). */
  async flushSpill(): Promise<void> {
    await this.spillFile?.settled();
  }

  /** Queues the chunks the encoder completed to the spill file, created on the first one. */
  private spillCompleted(spill: SpillDirectory): void {
    const chunks = this.encoder.takeChunks!();
    if (chunks.length === 0) return;
    this.spillFile ??= spill.createFile((bytes) => {
      this.spilledBytes += bytes;
      if (!this.disposed) this.params.onMemoryChange?.(-bytes);
    });
    this.spillFile.append(chunks);
  }
}

/** Above this a block is hashed on the thread pool: 64 MiB took about 50 ms, during which nothing was captured. */
const HASH_OFF_THREAD_BYTES = 1024 * 1024;

async function sha256Hex(body: Buffer): Promise<string> {
  if (body.length < HASH_OFF_THREAD_BYTES) return createHash('sha256').update(body).digest('hex');
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', body)).toString('hex');
}
