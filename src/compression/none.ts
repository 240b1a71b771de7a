/** No compression: the stored bytes are the encoded body. */
import type { Compression } from './compression.js';

export const none: Compression = {
  name: 'none',
  extension: '',
  compress: async (chunks) => (chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks)),
  decompress: async (stored) => stored,
};
