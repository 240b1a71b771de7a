/** The block compressions, chosen by the name written into manifests. */
import { UsageError } from '../errors.js';
import type { Compression } from './compression.js';
import { gzip } from './gzip.js';
import { none } from './none.js';
import { snappy } from './snappy.js';

const COMPRESSIONS = { none, gzip, snappy } as const satisfies Record<string, Compression>;

export type CompressionName = keyof typeof COMPRESSIONS;
export const COMPRESSION_NAMES = Object.keys(COMPRESSIONS) as readonly CompressionName[];

/** The compression with this name; a UsageError naming the valid ones otherwise. */
export function resolveCompression(name: string): Compression {
  if (!Object.hasOwn(COMPRESSIONS, name)) {
    throw new UsageError(`unknown compression ${JSON.stringify(name)}; expected one of ${COMPRESSION_NAMES.join(', ')}`);
  }
  return COMPRESSIONS[name as CompressionName];
}

export { none, gzip, snappy };
