/**
 * The `csv` block format, written by csv-stringify and read by csv-parse (see docs/archive-format.md).
 * With the envelope columns (the default) a block is restorable; with a user `flatten` it holds arbitrary
 * rows and is not.
 */
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { envelopeTimeIso, parseTimeIso, type Envelope } from '../archive/envelope.js';
import { UsageError } from '../errors.js';
import { decodeBase64Data, encodeBase64 } from './base64.js';
import type { BlockFormat } from './format.js';
import { TextChunkEncoder } from './text-chunks.js';

/** The columns an envelope can be written as, in the default order; all of them make a block restorable. */
export const ENVELOPE_CSV_COLUMNS = ['stream', 'seq', 'subject', 'time', 'delivery_count', 'headers', 'data'] as const;
export type EnvelopeCsvColumn = (typeof ENVELOPE_CSV_COLUMNS)[number];

export interface CsvEnvelopeOptions {
  /** A selection of envelope columns, in the order wanted; restorable only when all of them are present. */
  columns?: readonly EnvelopeCsvColumn[];
}

export interface CsvFlattenOptions<T> {
  /** The header row; every row `flatten` returns must have this many fields. */
  columns: readonly string[];
  /** Turns one value into zero or more rows. */
  flatten: (value: T) => string[][];
}

const ENVELOPE_FIELD: Record<EnvelopeCsvColumn, (envelope: Envelope) => string> = {
  stream: (e) => e.stream,
  // Range checks so that a bad value fails the write instead of producing a row no reader accepts.
  seq: (e) => countCell(e.seq, 'seq'),
  subject: (e) => e.subject,
  time: (e) => {
    if (e.timeNs < 0n) throw new RangeError(`csv encoder: timeNs ${e.timeNs} is before the epoch`);
    return envelopeTimeIso(e.timeNs);
  },
  delivery_count: (e) => countCell(e.deliveryCount, 'deliveryCount'),
  // Pairs, not an object, so key order survives; an empty cell (not "[]") means the message had no headers.
  headers: (e) => (e.headers === null ? '' : JSON.stringify(e.headers)),
  data: (e) => encodeBase64(e.data),
};

function countCell(value: number, field: string): string {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`csv encoder: ${field} ${value} is not a non-negative safe integer`);
  return String(value);
}

/** CSV rows of each value, the header row first (reported by the first write, so write() counts add up). */
function csvEncoder<T>(columns: readonly string[], toRows: (value: T) => string[][]): TextChunkEncoder<T> {
  let headerRow: string | null = stringify([columns]);
  return new TextChunkEncoder<T>(
    'csv',
    (value) => {
      const rows = toRows(value);
      const text = (headerRow ?? '') + (rows.length === 0 ? '' : stringify(rows));
      headerRow = null;
      return text;
    },
    // An empty block still names its columns.
    () => headerRow ?? '',
  );
}

/**
 * A CSV format. Without options: the envelope columns, restorable. With `columns` of envelope column names:
 * those columns. With `columns` and `flatten`: arbitrary rows, not restorable (no decode).
 */
export function csvFormat(options?: CsvEnvelopeOptions): BlockFormat<Envelope>;
export function csvFormat<T>(options: CsvFlattenOptions<T>): BlockFormat<T>;
export function csvFormat<T>(options: CsvEnvelopeOptions | CsvFlattenOptions<T> = {}): BlockFormat<T> | BlockFormat<Envelope> {
  if ('flatten' in options) return flattenedCsv(options);
  return envelopeCsv(options.columns ?? ENVELOPE_CSV_COLUMNS);
}

function flattenedCsv<T>({ columns, flatten }: CsvFlattenOptions<T>): BlockFormat<T> {
  if (typeof flatten !== 'function') throw new UsageError('csv: "flatten" must be a function');
  if (!Array.isArray(columns) || columns.length === 0) throw new UsageError('csv: "flatten" needs "columns", the header row');
  const width = columns.length;
  const toRows = (value: T): string[][] => {
    const rows = flatten(value);
    for (const row of rows) {
      if (row.length !== width) throw new UsageError(`csv: flatten returned a row of ${row.length} fields, the columns name ${width}`);
    }
    return rows;
  };
  return {
    name: 'csv',
    extension: 'csv',
    contentType: 'text/csv',
    createEncoder: () => csvEncoder(columns, toRows),
  };
}

function envelopeCsv(columns: readonly EnvelopeCsvColumn[]): BlockFormat<Envelope> {
  const unknown = columns.filter((c) => !(ENVELOPE_CSV_COLUMNS as readonly string[]).includes(c));
  if (unknown.length > 0 || columns.length === 0 || new Set(columns).size !== columns.length) {
    throw new UsageError(
      `csv: columns must be distinct names from ${ENVELOPE_CSV_COLUMNS.join(', ')}; got ${columns.join(', ') || 'none'}`,
    );
  }
  const fields = columns.map((c) => ENVELOPE_FIELD[c]);
  const toRows = (envelope: Envelope): string[][] => [fields.map((field) => field(envelope))];
  const restorable = ENVELOPE_CSV_COLUMNS.every((c) => columns.includes(c));
  return {
    name: 'csv',
    extension: 'csv',
    contentType: 'text/csv',
    createEncoder: () => csvEncoder(columns, toRows),
    ...(restorable ? { decode: (body: Buffer) => decodeEnvelopeCsv(body, columns) } : {}),
  };
}

function decodeEnvelopeCsv(body: Buffer, columns: readonly EnvelopeCsvColumn[]): Envelope[] {
  let records: string[][];
  try {
    // relax_column_count stays off: a row cut short by truncation is an error, not a short record.
    records = parse(body, { relax_column_count: false, skip_empty_lines: false }) as string[][];
  } catch (cause) {
    throw new Error(`csv block: not valid CSV: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  const [header, ...rows] = records;
  if (header === undefined) throw new Error('csv block: empty, not even a header row');
  if (header.join(',') !== columns.join(',')) {
    throw new Error(`csv block: header row is "${header.join(',')}", expected "${columns.join(',')}"`);
  }
  const index = Object.fromEntries(columns.map((c, i) => [c, i])) as Record<EnvelopeCsvColumn, number>;
  return rows.map((row, i) => {
    try {
      return envelopeFromRow((column) => row[index[column]] ?? '');
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      throw new Error(`csv block: row ${i + 1} is not a valid message: ${reason}`, { cause });
    }
  });
}

function envelopeFromRow(field: (column: EnvelopeCsvColumn) => string): Envelope {
  return {
    subject: field('subject'),
    headers: headersFromCell(field('headers')),
    data: decodeBase64Data(field('data')),
    stream: field('stream'),
    seq: countFromCell(field('seq'), 'seq'),
    timeNs: parseTimeIso(field('time')),
    deliveryCount: countFromCell(field('delivery_count'), 'delivery_count'),
  };
}

function headersFromCell(cell: string): Envelope['headers'] {
  if (cell === '') return null;
  const value: unknown = JSON.parse(cell);
  const isPair = (pair: unknown): pair is [string, string[]] =>
    Array.isArray(pair) &&
    pair.length === 2 &&
    typeof pair[0] === 'string' &&
    Array.isArray(pair[1]) &&
    (pair[1] as unknown[]).every((v) => typeof v === 'string');
  if (!Array.isArray(value) || !value.every(isPair)) throw new Error('"headers" is not a JSON array of [key, [values]] pairs');
  return value;
}

function countFromCell(cell: string, column: EnvelopeCsvColumn): number {
  const value = /^\d+$/.test(cell) ? Number(cell) : NaN;
  if (!Number.isSafeInteger(value)) throw new Error(`"${column}" is not a non-negative safe integer: ${JSON.stringify(cell)}`);
  return value;
}

/** The default CSV format: envelope columns with a header row, restorable. */
export const csv: BlockFormat<Envelope> = csvFormat();
