/**
 * `jetvault cat`: the messages of one block as NDJSON on stdout, so an archive can be looked into
 * without restoring it. The block is read the way restore reads it (restore/block-reader.ts): size and
 * SHA-256 checked against its manifest before any message is printed.
 */
import { isUtf8 } from 'node:buffer';
import { Command, Option } from 'commander';
import type { ArchivedBlock } from '../../restore/archive-reader.js';
import { readBlock } from '../../restore/block-reader.js';
import { envelopeTimeIso, type Envelope } from '../archive/envelope.js';
import { blockKeyOfManifest, isManifestKey, manifestKeyFor } from '../archive/keys.js';
import { parseManifest } from '../archive/manifest.js';
import { StoreError } from '../errors.js';
import type { Store } from '../stores/store.js';
import { addStoreFlags, STORE_URI_HELP, storeFromFlags, type StoreFlags } from './store-flags.js';
import { ExitCode } from './exit-codes.js';
import { createCliLogger, logFormatOption, logLevelOption, type LogFormat, type LogLevel } from './logger.js';
import { parsePositiveInt } from './parse.js';
import type { CliContext } from './report.js';

export const DATA_ENCODINGS = ['base64', 'utf8'] as const;
export type DataEncoding = (typeof DATA_ENCODINGS)[number];

export interface CatFlags extends StoreFlags {
  from: string;
  block: string;
  limit?: number;
  data: DataEncoding;
  logLevel: LogLevel;
  logFormat: LogFormat;
}

/** One printed message. `dataEncoding` appears only with `--data utf8`, for a payload that is not UTF-8. */
export interface CatLine {
  stream: string;
  seq: number;
  subject: string;
  /** RFC 3339 with nanoseconds. */
  time: string;
  deliveryCount: number;
  headers: Array<[string, string[]]> | null;
  data: string;
  dataEncoding?: 'base64';
}

export function catCommand(ctx: CliContext): Command {
  const command = new Command('cat')
    .description("print one block's messages as NDJSON (the block's checksum is verified first)")
    .requiredOption('--from <uri>', `the archive: ${STORE_URI_HELP}`)
    .requiredOption('--block <key>', 'the block key, as `jetvault ls` prints it')
    .option('--limit <n>', 'print only the first n messages (in sequence order)', (v) => parsePositiveInt(v, '--limit'))
    .addOption(
      new Option('--data <encoding>', 'how payloads are printed: base64, or utf8 (see below)').choices(DATA_ENCODINGS).default('base64'),
    )
    .addOption(logLevelOption())
    .addOption(logFormatOption())
    .addHelpText(
      'after',
      '\nOne JSON object per message, in sequence order:\n' +
        '  {"stream","seq","subject","time","deliveryCount","headers","data"}\n' +
        'time is RFC 3339 with nanoseconds; headers is [[name, [value, ...]], ...] in the order the message\n' +
        'carried them, or null. data is the payload in base64. With --data utf8 it is the payload as a string\n' +
        'when the payload is valid UTF-8; a payload that is not keeps base64 and adds "dataEncoding":"base64".\n' +
        'Exit 1 when the block does not exist (JV_STORE_NOT_FOUND) or is corrupt (JV_BLOCK_CORRUPT).',
    )
    .action(async (flags: CatFlags) => {
      ctx.exitCode = await runCat(flags, ctx);
    });
  return addStoreFlags(command);
}

export async function runCat(flags: CatFlags, ctx: CliContext): Promise<ExitCode> {
  const logger = createCliLogger(flags.logLevel, flags.logFormat);
  ctx.logger = logger;
  const store = storeFromFlags(flags.from, flags);
  try {
    const block = await findBlock(store, flags.block);
    const envelopes = await readBlock(store, block);
    const shown = flags.limit === undefined ? envelopes : envelopes.slice(0, flags.limit);
    for (const envelope of shown) ctx.out(JSON.stringify(catLine(envelope, flags.data)));
    logger.info({ store: store.description, block: block.key, messages: envelopes.length, printed: shown.length }, 'printed block');
    return ExitCode.ok;
  } finally {
    await store.close?.();
  }
}

/**
 * The block and its manifest, read directly by key (no listing of the whole archive). A manifest key is
 * accepted too. Without a manifest there is no block to trust: JV_STORE_NOT_FOUND naming the key.
 */
async function findBlock(store: Store, given: string): Promise<ArchivedBlock> {
  const key = isManifestKey(given) ? blockKeyOfManifest(given) : given;
  const manifestKey = manifestKeyFor(key);
  // A missing bucket or rejected credentials: that error, not "no such block".
  await store.check?.();
  let text: Buffer;
  try {
    text = await store.get(manifestKey);
  } catch (error) {
    if (error instanceof StoreError && error.code === 'JV_STORE_NOT_FOUND') {
      throw new StoreError('JV_STORE_NOT_FOUND', `no block ${JSON.stringify(key)} in ${store.description} (see jetvault ls for the block keys)`, {
        transient: false,
      });
    }
    throw error;
  }
  return { key, manifestKey, manifest: parseManifest(text, manifestKey) };
}

export function catLine(envelope: Envelope, encoding: DataEncoding = 'base64'): CatLine {
  const data = Buffer.from(envelope.data.buffer, envelope.data.byteOffset, envelope.data.byteLength);
  const line: CatLine = {
    stream: envelope.stream,
    seq: envelope.seq,
    subject: envelope.subject,
    time: envelopeTimeIso(envelope.timeNs),
    deliveryCount: envelope.deliveryCount,
    headers: envelope.headers,
    data: '',
  };
  if (encoding === 'utf8' && isUtf8(data)) line.data = data.toString('utf8');
  else {
    line.data = data.toString('base64');
    if (encoding === 'utf8') line.dataEncoding = 'base64';
  }
  return line;
}
