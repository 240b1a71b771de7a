/**
 * `jetvault ls`: what an archive holds, read from its manifests alone (no block is fetched or decoded):
 * one row per block in key order, then a totals line; `--json` prints one JSON object per block instead.
 */
import { Command } from 'commander';
import { readArchiveIndex, selectArchivedStream, type ArchivedBlock, type ArchiveIndex } from '../../restore/archive-reader.js';
import { parseTimeIso } from '../archive/envelope.js';
import { addStoreFlags, STORE_URI_HELP, storeFromFlags, type StoreFlags } from './store-flags.js';
import { ExitCode } from './exit-codes.js';
import { createCliLogger, logFormatOption, logLevelOption, type LogFormat, type LogLevel } from './logger.js';
import { plural, type CliContext } from './report.js';

export interface LsFlags extends StoreFlags {
  from: string;
  sourceStream?: string;
  json?: boolean;
  logLevel: LogLevel;
  logFormat: LogFormat;
}

/** One block as `--json` prints it: the manifest's numbers, plus the compression ratio. */
export interface LsRow {
  key: string;
  stream: string;
  splitKey: string;
  firstSeq: number;
  lastSeq: number;
  messages: number;
  storedBytes: number;
  encodedBytes: number;
  /** encodedBytes / storedBytes (2 decimals); null for an empty stored object. */
  ratio: number | null;
  firstTime: string;
  lastTime: string;
  format: string;
  compression: string;
  sealedBy: string;
  createdAt: string;
}

export function lsCommand(ctx: CliContext): Command {
  const command = new Command('ls')
    .description('list the blocks of an archive from their manifests (nothing is decoded)')
    .requiredOption('--from <uri>', `the archive: ${STORE_URI_HELP}`)
    .option('--source-stream <name>', 'only the blocks of this archived stream')
    .option('--json', 'one JSON object per block (NDJSON) instead of the table and totals line')
    .addOption(logLevelOption())
    .addOption(logFormatOption())
    .addHelpText(
      'after',
      '\nColumns: block key, sequence range, messages, stored bytes, compression ratio (encoded/stored bytes),\n' +
        'time of the first..last message (UTC, to the millisecond; --json gives nanoseconds). Exit 1 when the\n' +
        'archive holds no blocks (JV_ARCHIVE_EMPTY).',
    )
    .action(async (flags: LsFlags) => {
      ctx.exitCode = await runLs(flags, ctx);
    });
  return addStoreFlags(command);
}

export async function runLs(flags: LsFlags, ctx: CliContext): Promise<ExitCode> {
  const logger = createCliLogger(flags.logLevel, flags.logFormat);
  ctx.logger = logger;
  const store = storeFromFlags(flags.from, flags);
  try {
    const index = await readArchiveIndex(store, { logger });
    const blocks = blocksOf(index, flags.sourceStream);
    const rows = blocks.map(lsRow);
    if (flags.json) for (const row of rows) ctx.out(JSON.stringify(row));
    else {
      for (const line of lsTable(rows)) ctx.out(line);
      ctx.out(lsTotals(rows, index.unmanifestedObjects));
    }
    logger.info({ store: store.description, blocks: rows.length, streams: index.streams.size }, 'listed archive');
    return ExitCode.ok;
  } finally {
    await store.close?.();
  }
}

/** Every block (or those of one stream), in key order. No blocks at all is the library's JV_ARCHIVE_EMPTY. */
function blocksOf(index: ArchiveIndex, sourceStream: string | undefined): ArchivedBlock[] {
  if (index.streams.size === 0 || (sourceStream !== undefined && !index.streams.has(sourceStream))) {
    // Throws JV_ARCHIVE_EMPTY, naming the streams the archive does hold.
    selectArchivedStream(index, sourceStream);
  }
  const streams = sourceStream === undefined ? [...index.streams.values()] : [index.streams.get(sourceStream)!];
  return streams.flatMap((s) => s.blocks).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

export function lsRow({ key, manifest: m }: ArchivedBlock): LsRow {
  return {
    key,
    stream: m.stream,
    splitKey: m.splitKey,
    firstSeq: m.firstSeq,
    lastSeq: m.lastSeq,
    messages: m.messages,
    storedBytes: m.storedBytes,
    encodedBytes: m.encodedBytes,
    ratio: m.storedBytes > 0 ? Math.round((m.encodedBytes / m.storedBytes) * 100) / 100 : null,
    firstTime: m.firstTime,
    lastTime: m.lastTime,
    format: m.format,
    compression: m.compression,
    sealedBy: m.sealedBy,
    createdAt: m.createdAt,
  };
}

const COLUMNS = ['KEY', 'SEQ', 'MESSAGES', 'STORED', 'RATIO', 'TIME'] as const;
/** Numbers right-aligned, text left-aligned. */
const RIGHT = new Set<number>([2, 3, 4]);

/** The header and one aligned line per block. */
export function lsTable(rows: readonly LsRow[]): string[] {
  const cells = rows.map((r) => [
    r.key,
    `${r.firstSeq}..${r.lastSeq}`,
    String(r.messages),
    String(r.storedBytes),
    formatRatio(r.encodedBytes, r.storedBytes),
    `${toMillis(r.firstTime)}..${toMillis(r.lastTime)}`,
  ]);
  const all = [[...COLUMNS], ...cells];
  const widths = COLUMNS.map((_, i) => Math.max(...all.map((line) => (line[i] ?? '').length)));
  return all.map((line) =>
    line
      .map((cell, i) => (RIGHT.has(i) ? cell.padStart(widths[i]!) : i === line.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  '),
  );
}

/** `3 blocks, 3000 messages, seq 1..3000, 41234 bytes stored (2.63x), 2026-…Z..2026-…Z`. */
export function lsTotals(rows: readonly LsRow[], unmanifested = 0): string {
  const messages = rows.reduce((n, r) => n + r.messages, 0);
  const stored = rows.reduce((n, r) => n + r.storedBytes, 0);
  const encoded = rows.reduce((n, r) => n + r.encodedBytes, 0);
  const streams = new Set(rows.map((r) => r.stream));
  // Sequences of different streams are unrelated: a range only means something for one stream.
  const seq =
    streams.size === 1 ? `seq ${Math.min(...rows.map((r) => r.firstSeq))}..${Math.max(...rows.map((r) => r.lastSeq))}` : `${streams.size} streams`;
  const times = rows.flatMap((r) => [r.firstTime, r.lastTime]).sort((a, b) => compareTimes(a, b));
  const span = times.length > 0 ? `, ${toMillis(times[0]!)}..${toMillis(times[times.length - 1]!)}` : '';
  const ignored = unmanifested > 0 ? `; ignored ${plural(unmanifested, 'object')} without a manifest` : '';
  return `total: ${plural(rows.length, 'block')}, ${plural(messages, 'message')}, ${seq}, ${stored} bytes stored (${formatRatio(encoded, stored)})${span}${ignored}`;
}

/** `2.63x`: how many bytes of encoded body each stored byte holds. */
function formatRatio(encoded: number, stored: number): string {
  return stored > 0 ? `${(encoded / stored).toFixed(2)}x` : '-';
}

/** RFC 3339 with nanoseconds, shortened to milliseconds for the table. */
function toMillis(time: string): string {
  return time.replace(/(\.\d{3})\d*Z$/, '$1Z');
}

function compareTimes(a: string, b: string): number {
  try {
    const d = parseTimeIso(a) - parseTimeIso(b);
    return d < 0n ? -1 : d > 0n ? 1 : 0;
  } catch {
    return a < b ? -1 : a > b ? 1 : 0;
  }
}
