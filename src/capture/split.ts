/** Split keys: which block series a message belongs to. */
import type { Envelope } from '../archive/envelope.js';
import type { SplitBy } from './options.js';

/** The key used when a message has no value for the configured split (missing header or field). */
export const MISSING_SPLIT_KEY = '_none';
/** The key of the single series when nothing splits. */
export const ALL_SPLIT_KEY = '_all';

export function splitKeyFunction(splitBy: SplitBy): (envelope: Envelope) => string {
  if (typeof splitBy === 'function') return splitBy;
  if (splitBy === 'none') return () => ALL_SPLIT_KEY;
  if (splitBy === 'subject') return (e) => e.subject;
  const header = /^header:(.+)$/.exec(splitBy);
  if (header) {
    const wanted = header[1]!.toLowerCase();
    return (e) => {
      for (const [key, values] of e.headers ?? []) {
        if (key.toLowerCase() === wanted && values.length > 0) return values[0]!;
      }
      return MISSING_SPLIT_KEY;
    };
  }
  const field = /^field:(.+)$/.exec(splitBy);
  if (field) {
    const path = field[1]!.split('.');
    return (e) => {
      let value: unknown;
      try {
        value = JSON.parse(Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength).toString('utf8'));
      } catch {
        return MISSING_SPLIT_KEY;
      }
      for (const step of path) {
        if (value === null || typeof value !== 'object') return MISSING_SPLIT_KEY;
        value = (value as Record<string, unknown>)[step];
      }
      return value === undefined || value === null || typeof value === 'object' ? MISSING_SPLIT_KEY : String(value);
    };
  }
  throw new Error(`unknown split: ${splitBy}`);
}
