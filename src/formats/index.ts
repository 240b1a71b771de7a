/** The built-in block formats, chosen by the name written into manifests. */
import type { Envelope } from '../archive/envelope.js';
import { UsageError } from '../errors.js';
import { csv, csvFormat, ENVELOPE_CSV_COLUMNS, type CsvEnvelopeOptions, type CsvFlattenOptions, type EnvelopeCsvColumn } from './csv.js';
import type { BlockFormat } from './format.js';
import { ndjson } from './ndjson.js';
import { raw } from './raw.js';

const FORMATS = { raw, ndjson, csv } as const satisfies Record<string, BlockFormat<Envelope>>;

export type FormatName = keyof typeof FORMATS;
export const FORMAT_NAMES = Object.keys(FORMATS) as readonly FormatName[];

/** The built-in format with this name; a UsageError naming the valid ones otherwise. */
export function resolveFormat(name: string): BlockFormat<Envelope> {
  if (!Object.hasOwn(FORMATS, name)) {
    throw new UsageError(`unknown format ${JSON.stringify(name)}; expected one of ${FORMAT_NAMES.join(', ')}`);
  }
  return FORMATS[name as FormatName];
}

export { raw, ndjson, csv, csvFormat, ENVELOPE_CSV_COLUMNS };
export type { CsvEnvelopeOptions, CsvFlattenOptions, EnvelopeCsvColumn };
