/**
 * Snappy in the framing format (stream identifier, then CRC-32C checked chunks of at most 64 KiB), the
 * format Go's snappy.NewBufferedWriter writes, so Go tools read our blocks and we read theirs.
 */
import { Readable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createCompressStream, createUncompressStream } from 'snappy';
import type { Compression } from './compression.js';

/** Few large pieces keep the per-call overhead low; a multiple of the 64 KiB frame size (see feedPieces). */
const FEED_BYTES = 256 * 1024;

export const snappy: Compression = {
  name: 'snappy',
  extension: 'sz',
  compress: (chunks) => transform(createCompressStream(), feedPieces(chunks)),
  // The native decoder rejects a missing stream identifier, a chunk cut short and a CRC mismatch.
  decompress: (stored) => transform(createUncompressStream(), feedPieces([stored])),
};

/** Runs pieces through a native snappy stream; rejects with the stream's error. */
async function transform(stream: Duplex, pieces: Iterable<Buffer>): Promise<Buffer> {
  const output: Buffer[] = [];
  await pipeline(Readable.from(pieces), stream, async (source: AsyncIterable<Uint8Array>) => {
    for await (const piece of source) output.push(Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength));
  });
  return Buffer.concat(output);
}

/**
 * Regroups chunks into pieces of exactly FEED_BYTES (the last may be shorter). The native stream frames each
 * piece on its own, so fixed, 64 KiB-aligned pieces make the output depend on the body alone, not on how the
 * encoder happened to chunk it, and frames stay full. Aligned stretches of large chunks pass without a copy.
 */
function* feedPieces(chunks: Buffer[]): Generator<Buffer> {
  let piece: Buffer | null = null;
  let filled = 0;
  for (const chunk of chunks) {
    let offset = 0;
    while (offset < chunk.length) {
      if (filled === 0 && chunk.length - offset >= FEED_BYTES) {
        yield chunk.subarray(offset, offset + FEED_BYTES);
        offset += FEED_BYTES;
        continue;
      }
      piece ??= Buffer.allocUnsafe(FEED_BYTES);
      const copied = chunk.copy(piece, filled, offset, Math.min(chunk.length, offset + FEED_BYTES - filled));
      filled += copied;
      offset += copied;
      if (filled === FEED_BYTES) {
        yield piece; // handed over: the next piece gets a fresh buffer
        piece = null;
        filled = 0;
      }
    }
  }
  if (piece !== null && filled > 0) yield piece.subarray(0, filled);
}
