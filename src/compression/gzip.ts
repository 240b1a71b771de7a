/** gzip (RFC 1952) via node:zlib, on the libuv thread pool so the event loop keeps running. */
import { promisify } from 'node:util';
import { gunzip as gunzipCallback, gzip as gzipCallback } from 'node:zlib';
import type { Compression } from './compression.js';

const gzipAsync = promisify(gzipCallback);
const gunzipAsync = promisify(gunzipCallback);

export const gzip: Compression = {
  name: 'gzip',
  extension: 'gz',
  // One copy into a single buffer is cheap next to deflate, and one zlib call beats a stream per block.
  compress: (chunks) => gzipAsync(chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks)),
  // zlib rejects a truncated stream ("unexpected end of file") and a bad CRC-32 or length trailer.
  decompress: (stored) => gunzipAsync(stored),
};
