/**
 * Reads one block back and proves it is the block its manifest describes: size and SHA-256 of the stored
 * bytes, then (after decompressing and decoding) message count and sequence range. Every failure is a
 * CorruptBlockError naming the block, raised before any of its messages is used.
 */
import { createHash } from 'node:crypto';
import type { Envelope } from '../src/archive/envelope.js';
import { resolveCompression } from '../src/compression/index.js';
import type { Compression } from '../src/compression/compression.js';
import { CorruptBlockError, JetvaultError, StoreError } from '../src/errors.js';
import { resolveFormat } from '../src/formats/index.js';
import type { BlockFormat } from '../src/formats/format.js';
import type { Store } from '../src/stores/store.js';
import type { ArchivedBlock } from './archive-reader.js';

export interface BlockCodec {
  format: BlockFormat & { decode(body: Buffer): Iterable<Envelope> };
  compression: Compression;
}

/**
 * Resolves the format and compression a block needs, or throws JV_FORMAT_NOT_RESTORABLE. Called for every
 * block before anything is published, so an unreadable archive fails at once rather than half way.
 */
export function codecFor(block: ArchivedBlock): BlockCodec {
  const { manifest } = block;
  let format: BlockFormat;
  let compression: Compression;
  try {
    format = resolveFormat(manifest.format);
  } catch (cause) {
    throw new JetvaultError('JV_FORMAT_NOT_RESTORABLE', `block ${block.key} uses unknown format ${JSON.stringify(manifest.format)}`, { cause });
  }
  if (typeof format.decode !== 'function') {
    throw new JetvaultError('JV_FORMAT_NOT_RESTORABLE', `block ${block.key} uses format ${JSON.stringify(manifest.format)}, which cannot be read back into messages`);
  }
  try {
    compression = resolveCompression(manifest.compression);
  } catch (cause) {
    throw new JetvaultError('JV_FORMAT_NOT_RESTORABLE', `block ${block.key} uses unknown compression ${JSON.stringify(manifest.compression)}`, { cause });
  }
  return { format: format as BlockCodec['format'], compression };
}

/** Checks every block's codec up front; returns them by block key. */
export function codecsFor(blocks: readonly ArchivedBlock[]): Map<string, BlockCodec> {
  const codecs = new Map<string, BlockCodec>();
  for (const block of blocks) codecs.set(block.key, codecFor(block));
  return codecs;
}

/** Gets the stored bytes and checks size and SHA-256 against the manifest. */
export async function fetchBlock(store: Store, block: ArchivedBlock, signal?: AbortSignal): Promise<Buffer> {
  let stored: Buffer;
  try {
    stored = await store.get(block.key, signal ? { signal } : undefined);
  } catch (error) {
    // The manifest promises the block exists: a missing block is damage, not an outage.
    if (error instanceof StoreError && error.code === 'JV_STORE_NOT_FOUND') {
      throw new CorruptBlockError(block.key, `it is missing from the store although manifest ${block.manifestKey} exists`, { cause: error });
    }
    throw error;
  }
  const { manifest } = block;
  if (stored.length !== manifest.storedBytes) {
    throw new CorruptBlockError(block.key, `stored size is ${stored.length} bytes, manifest says ${manifest.storedBytes}`);
  }
  const sha256 = createHash('sha256').update(stored).digest('hex');
  if (sha256 !== manifest.sha256) {
    throw new CorruptBlockError(block.key, `SHA-256 is ${sha256}, manifest says ${manifest.sha256}`);
  }
  return stored;
}

/** Decompresses and decodes checked bytes; returns the envelopes sorted by stream sequence. */
export async function decodeBlock(block: ArchivedBlock, stored: Buffer, codec: BlockCodec = codecFor(block)): Promise<Envelope[]> {
  const { manifest } = block;
  let body: Buffer;
  try {
    body = await codec.compression.decompress(stored);
  } catch (cause) {
    throw new CorruptBlockError(block.key, `cannot be decompressed (${manifest.compression})`, { cause });
  }
  if (body.length !== manifest.encodedBytes) {
    throw new CorruptBlockError(block.key, `decompressed size is ${body.length} bytes, manifest says ${manifest.encodedBytes}`);
  }
  let envelopes: Envelope[];
  try {
    envelopes = Array.from(codec.format.decode(body));
  } catch (cause) {
    throw new CorruptBlockError(block.key, `cannot be decoded as ${manifest.format}`, { cause });
  }
  if (envelopes.length !== manifest.messages) {
    throw new CorruptBlockError(block.key, `holds ${envelopes.length} messages, manifest says ${manifest.messages}`);
  }
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const envelope of envelopes) {
    if (!Number.isSafeInteger(envelope.seq) || envelope.seq < 1) {
      throw new CorruptBlockError(block.key, `holds a message with invalid sequence ${String(envelope.seq)}`);
    }
    if (envelope.seq < min) min = envelope.seq;
    if (envelope.seq > max) max = envelope.seq;
  }
  if (envelopes.length > 0 && (min !== manifest.firstSeq || max !== manifest.lastSeq)) {
    throw new CorruptBlockError(block.key, `holds sequences ${min}..${max}, manifest says ${manifest.firstSeq}..${manifest.lastSeq}`);
  }
  // Redeliveries can be appended out of order; the merge needs each block ascending. Array sort is stable.
  envelopes.sort((a, b) => a.seq - b.seq);
  return envelopes;
}

/** fetchBlock + decodeBlock: the only way restore and verify read messages from a block. */
export async function readBlock(store: Store, block: ArchivedBlock, options: { signal?: AbortSignal; codec?: BlockCodec } = {}): Promise<Envelope[]> {
  const stored = await fetchBlock(store, block, options.signal);
  return decodeBlock(block, stored, options.codec);
}

/**
 * Checks size and SHA-256 of every block without decoding, a few at a time (only those few are in
 * memory). Rejects with the first CorruptBlockError.
 */
export async function precheckBlocks(
  store: Store,
  blocks: readonly ArchivedBlock[],
  options: { signal?: AbortSignal; concurrency?: number; onChecked?: (block: ArchivedBlock) => void } = {},
): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < blocks.length) {
      const block = blocks[next++] as ArchivedBlock;
      options.signal?.throwIfAborted();
      try {
        await fetchBlock(store, block, options.signal);
      } catch (error) {
        failed = true;
        throw error;
      }
      options.onChecked?.(block);
    }
  };
  const count = Math.max(1, Math.min(options.concurrency ?? 4, blocks.length));
  const results = await Promise.allSettled(Array.from({ length: count }, worker));
  // Report the block earliest in stream order when several workers failed.
  const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
  if (rejected.length > 0) {
    const corrupt = rejected.filter((e): e is CorruptBlockError => e instanceof CorruptBlockError);
    if (corrupt.length > 0) {
      const order = new Map(blocks.map((b, i) => [b.key, i]));
      corrupt.sort((a, b) => (order.get(a.blockKey) ?? 0) - (order.get(b.blockKey) ?? 0));
      throw corrupt[0];
    }
    throw rejected[0];
  }
}
