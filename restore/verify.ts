/**
 * verify(): compares an archive with a live stream, message by message, without loading either whole.
 *
 * Two modes, chosen by looking at the stream:
 * - `sequence`: the stream is the archive's source. A message is identified by its stream sequence; every
 *   archived message must be in the stream unchanged, and every stream message in the archive's sequence
 *   range must be in the archive.
 * - `order`: the stream is a restore (sequences differ). The archive in sequence order is compared
 *   position by position with the stream from its first message; extras on either side are counted.
 *
 * A mismatch gives `ok: false`; only connection, store and usage problems throw.
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { Envelope } from '../src/archive/envelope.js';
import { CorruptBlockError, JetvaultError, UsageError, describeError } from '../src/errors.js';
import { silentLogger, type Logger } from '../src/logger.js';
import type { Store } from '../src/stores/store.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { openArchivedStream, type ArchivedBlock, type ArchivedStream } from './archive-reader.js';
import { codecsFor, readBlock, type BlockCodec } from './block-reader.js';
import { mergeBlocks, newMergeStats, sameHeaders } from './merge.js';
import { openConnection, openStore } from './resources.js';
import { fromStoredMsg, readStream, type StreamMessage } from './stream-reader.js';
import { isStreamNotFound } from './target-stream.js';

export interface VerifyOptions {
  from: Store | string;
  servers?: string | string[];
  connection?: NatsConnection;
  /** The live stream to compare with. */
  stream: string;
  sourceStream?: string;
  /** Differences listed in the report (all are counted). Default 10. */
  maxDifferences?: number;
  logger?: Logger;
  signal?: AbortSignal;
  onProgress?: (p: { messagesDone: number; messagesTotal: number }) => void;
}

export interface VerifyDifference {
  kind: 'missing-in-stream' | 'missing-in-archive' | 'different' | 'corrupt-block';
  /** Stream sequence (the archived one for archive-side differences). */
  seq?: number;
  blockKey?: string;
  detail: string;
}

export interface VerifyReport {
  ok: boolean;
  stream: string;
  sourceStream: string;
  mode: 'sequence' | 'order';
  /** Archived messages compared (duplicates across blocks once; corrupt blocks' messages not included). */
  archivedMessages: number;
  /** Stream messages compared (in sequence mode: those inside the archive's sequence range). */
  streamMessages: number;
  matched: number;
  missingInStream: number;
  missingInArchive: number;
  different: number;
  corruptBlocks: string[];
  differences: VerifyDifference[];
}

/** Store timestamps closer than this are the same stored message (a restore is always later than 1 ms). */
const SAME_TIME_NS = 1_000_000n;

/** How an archived envelope and a stream message differ, or undefined when they are identical. */
export function describeDifference(archived: Envelope, stored: Pick<StreamMessage, 'subject' | 'headers' | 'data'>): string | undefined {
  const problems: string[] = [];
  if (archived.subject !== stored.subject) problems.push(`subject ${JSON.stringify(archived.subject)} in the archive, ${JSON.stringify(stored.subject)} in the stream`);
  if (!sameHeaders(archived.headers, stored.headers)) {
    problems.push(`headers ${short(JSON.stringify(archived.headers ?? []))} in the archive, ${short(JSON.stringify(stored.headers ?? []))} in the stream`);
  }
  if (!Buffer.from(archived.data.buffer, archived.data.byteOffset, archived.data.byteLength).equals(stored.data)) {
    problems.push(`data of ${archived.data.byteLength} bytes in the archive, ${stored.data.byteLength} bytes in the stream${firstDifferentByte(archived.data, stored.data)}`);
  }
  return problems.length > 0 ? problems.join('; ') : undefined;
}

function short(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

function firstDifferentByte(a: Uint8Array, b: Uint8Array): string {
  const n = Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return ` (first difference at byte ${i})`;
  return '';
}

class Tally {
  archivedMessages = 0;
  streamMessages = 0;
  matched = 0;
  missingInStream = 0;
  missingInArchive = 0;
  different = 0;
  readonly corruptBlocks: string[] = [];
  readonly corruptRanges: Array<[number, number]> = [];
  readonly differences: VerifyDifference[] = [];

  constructor(private readonly maxDifferences: number) {}

  note(difference: VerifyDifference): void {
    if (this.differences.length < this.maxDifferences) this.differences.push(difference);
  }

  corrupt(error: CorruptBlockError, block: ArchivedBlock): void {
    if (this.corruptBlocks.includes(block.key)) return;
    this.corruptBlocks.push(block.key);
    this.corruptRanges.push([block.manifest.firstSeq, block.manifest.lastSeq]);
    this.note({ kind: 'corrupt-block', blockKey: block.key, seq: block.manifest.firstSeq, detail: error.message });
  }

  /** Inside the range of a corrupt block: its messages are unknown, so absence from the archive proves nothing. */
  unverifiable(seq: number): boolean {
    return this.corruptRanges.some(([first, last]) => seq >= first && seq <= last);
  }
}

export async function verify(options: VerifyOptions): Promise<VerifyReport> {
  if (options === null || typeof options !== 'object') throw new UsageError('verify options are required');
  if (!options.stream) throw new UsageError('the stream to verify is required');
  if (options.maxDifferences !== undefined && (!Number.isSafeInteger(options.maxDifferences) || options.maxDifferences < 0)) {
    throw new UsageError(`maxDifferences must be a non-negative integer, got ${options.maxDifferences}`);
  }
  if (!options.connection && (options.servers === undefined || options.servers.length === 0)) {
    throw new UsageError('a server URL (or a connection) is required');
  }
  const logger = options.logger ?? silentLogger();
  const signal = options.signal;
  const store = openStore(options.from);
  try {
    const archive = await openArchivedStream(store.value, {
      logger,
      ...(signal ? { signal } : {}),
      ...(options.sourceStream !== undefined ? { sourceStream: options.sourceStream } : {}),
    });
    const codecs = codecsFor(archive.blocks);
    const connection = await openConnection(options);
    try {
      let jsm: JetStreamManager;
      try {
        jsm = await jetstreamManager(connection.value);
      } catch (cause) {
        throw new JetvaultError('JV_CONNECT_FAILED', `JetStream is not available: ${describeError(cause)}`, { cause });
      }
      return await compare({ options, logger, store: store.value, archive, codecs, jsm });
    } finally {
      await connection.release();
    }
  } finally {
    await store.release();
  }
}

interface CompareParams {
  options: VerifyOptions;
  logger: Logger;
  store: Store;
  archive: ArchivedStream;
  codecs: Map<string, BlockCodec>;
  jsm: JetStreamManager;
}

async function compare({ options, logger, store, archive, codecs, jsm }: CompareParams): Promise<VerifyReport> {
  const { stream, signal } = options;
  const tally = new Tally(options.maxDifferences ?? 10);
  const open = (block: ArchivedBlock) => readBlock(store, block, { ...(signal ? { signal } : {}), ...(codecs.get(block.key) ? { codec: codecs.get(block.key) } : {}) });

  let info;
  try {
    info = await jsm.streams.info(stream);
  } catch (error) {
    if (isStreamNotFound(error)) throw new JetvaultError('JV_STREAM_NOT_FOUND', `stream ${stream} does not exist`, { cause: error });
    throw new JetvaultError('JV_CONNECT_FAILED', `cannot read stream ${stream}: ${describeError(error)}`, { cause: error });
  }

  const mode = (await isSourceStream(jsm, stream, archive, open, tally)) ? 'sequence' : 'order';
  logger.info({ stream, sourceStream: archive.stream, mode, streamFirstSeq: info.state.first_seq, streamLastSeq: info.state.last_seq }, 'verifying');

  const stats = newMergeStats();
  const archived = mergeBlocks(archive.blocks, { open, onCorrupt: (error, block) => tally.corrupt(error, block), stats, ...(signal ? { signal } : {}) });
  const nextArchived = async (): Promise<Envelope | undefined> => {
    const r = await archived.next();
    if (r.done) return undefined;
    tally.archivedMessages++;
    if (tally.archivedMessages % 1000 === 0) options.onProgress?.({ messagesDone: tally.archivedMessages + stats.skippedDuplicates, messagesTotal: archive.messages });
    return r.value;
  };
  const streamIterator = readStream(jsm.jetstream(), jsm, stream, {
    startSeq: mode === 'sequence' ? archive.firstSeq : info.state.first_seq,
    ...(mode === 'sequence' ? { endSeq: archive.lastSeq } : { endSeq: info.state.last_seq }),
    ...(signal ? { signal } : {}),
  });
  const nextStored = async (): Promise<StreamMessage | undefined> => {
    const r = await streamIterator.next();
    if (r.done) return undefined;
    tally.streamMessages++;
    return r.value;
  };

  try {
    let a = await nextArchived();
    let s = await nextStored();
    while (a !== undefined || s !== undefined) {
      if (mode === 'sequence' && a !== undefined && (s === undefined || a.seq < s.seq)) {
        tally.missingInStream++;
        tally.note({ kind: 'missing-in-stream', seq: a.seq, blockKey: stats.lastBlockKey, detail: `seq ${a.seq} (subject ${a.subject}) is archived but not in stream ${stream}` });
        a = await nextArchived();
      } else if (mode === 'sequence' && s !== undefined && (a === undefined || s.seq < a.seq)) {
        if (!tally.unverifiable(s.seq)) {
          tally.missingInArchive++;
          tally.note({ kind: 'missing-in-archive', seq: s.seq, detail: `seq ${s.seq} (subject ${s.subject}) is in stream ${stream} but not in the archive` });
        }
        s = await nextStored();
      } else if (a !== undefined && s !== undefined) {
        const difference = describeDifference(a, s);
        if (difference === undefined) tally.matched++;
        else {
          tally.different++;
          const where = mode === 'order' ? ` (stream seq ${s.seq})` : '';
          tally.note({ kind: 'different', seq: a.seq, blockKey: stats.lastBlockKey, detail: `seq ${a.seq}${where}: ${difference}` });
        }
        a = await nextArchived();
        s = await nextStored();
      } else if (a !== undefined) {
        // Order mode, the stream ended first.
        tally.missingInStream++;
        tally.note({ kind: 'missing-in-stream', seq: a.seq, blockKey: stats.lastBlockKey, detail: `archived seq ${a.seq} (subject ${a.subject}) has no counterpart in stream ${stream}: the stream has fewer messages` });
        a = await nextArchived();
      } else if (s !== undefined) {
        tally.missingInArchive++;
        tally.note({ kind: 'missing-in-archive', seq: s.seq, detail: `stream seq ${s.seq} (subject ${s.subject}) has no counterpart in the archive: the stream has more messages` });
        s = await nextStored();
      }
    }
  } finally {
    await Promise.allSettled([archived.return(stats), streamIterator.return(undefined)]);
  }
  options.onProgress?.({ messagesDone: tally.archivedMessages + stats.skippedDuplicates, messagesTotal: archive.messages });

  const report: VerifyReport = {
    ok: tally.missingInStream === 0 && tally.missingInArchive === 0 && tally.different === 0 && tally.corruptBlocks.length === 0,
    stream,
    sourceStream: archive.stream,
    mode,
    archivedMessages: tally.archivedMessages,
    streamMessages: tally.streamMessages,
    matched: tally.matched,
    missingInStream: tally.missingInStream,
    missingInArchive: tally.missingInArchive,
    different: tally.different,
    corruptBlocks: tally.corruptBlocks,
    differences: tally.differences,
  };
  logger.info({ ...report, differences: undefined }, report.ok ? 'archive and stream match' : 'archive and stream differ');
  return report;
}

/**
 * The stream is the archive's source when it still holds one of the archive's end messages unchanged
 * and with the same store timestamp (a restored copy is always stored later). Probes the first message
 * of the earliest readable block and the last of the latest readable one.
 */
async function isSourceStream(
  jsm: JetStreamManager,
  stream: string,
  archive: ArchivedStream,
  open: (block: ArchivedBlock) => Promise<Envelope[]>,
  tally: Tally,
): Promise<boolean> {
  const probe = async (blocks: ArchivedBlock[], pick: (envelopes: Envelope[]) => Envelope | undefined): Promise<Envelope | undefined> => {
    for (const block of blocks) {
      try {
        const envelope = pick(await open(block));
        if (envelope) return envelope;
      } catch (error) {
        if (!(error instanceof CorruptBlockError)) throw error;
        tally.corrupt(error, block);
      }
    }
    return undefined;
  };
  const byFirst = archive.blocks;
  const byLast = [...archive.blocks].sort((x, y) => y.manifest.lastSeq - x.manifest.lastSeq);
  const candidates = [await probe(byFirst, (e) => e[0]), await probe(byLast, (e) => e[e.length - 1])];
  for (const envelope of candidates) {
    if (!envelope) continue;
    let stored;
    try {
      stored = await jsm.streams.getMessage(stream, { seq: envelope.seq });
    } catch (error) {
      throw new JetvaultError('JV_CONNECT_FAILED', `cannot read message ${envelope.seq} of stream ${stream}: ${describeError(error)}`, { cause: error });
    }
    if (!stored) continue;
    const message = fromStoredMsg(stored);
    const delta = message.timeNs - envelope.timeNs;
    if ((delta < 0n ? -delta : delta) < SAME_TIME_NS && describeDifference(envelope, message) === undefined) return true;
  }
  return false;
}
