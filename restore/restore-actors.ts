/**
 * The work behind each state of the restore machine (restore-machine.ts), one promise actor per step.
 * Every actor honours two signals: its own (the machine stopped it) and the caller's.
 */
import { jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { fromPromise } from 'xstate';
import { JetvaultError, describeError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { Store } from '../src/stores/store.js';
import { openArchivedStream, type ArchivedStream } from './archive-reader.js';
import { codecsFor, precheckBlocks, readBlock } from './block-reader.js';
import { mergeBlocks, newMergeStats } from './merge.js';
import { natsPublishTarget, republish } from './republisher.js';
import { openConnection, type Owned } from './resources.js';
import type { RestoreOptions, RestoreReport } from './restore.js';
import { prepareTargetStream, type PreparedTarget } from './target-stream.js';

/** Options with defaults applied and the store opened. */
export interface RestoreJob {
  store: Owned<Store>;
  servers?: string | string[];
  connection?: NatsConnection;
  stream?: string;
  sourceStream?: string;
  create: boolean;
  append: boolean;
  precheck: boolean;
  maxInFlight: number;
  logger: Logger;
  signal?: AbortSignal;
  onProgress?: RestoreOptions['onProgress'];
  /** Clock in ms for durationMs. */
  now: () => number;
  startedAt: number;
}

/** The open connection and the target stream, from `preparing` on. */
export interface RestoreSession {
  connection: Owned<NatsConnection>;
  jsm: JetStreamManager;
  js: JetStreamClient;
  target: PreparedTarget;
}

/** Aborts when either signal does (AbortSignal.any needs Node 20.3; engines allow 20.0). */
export function combinedSignal(actorSignal: AbortSignal, userSignal: AbortSignal | undefined): AbortSignal {
  if (!userSignal) return actorSignal;
  if (typeof AbortSignal.any === 'function') return AbortSignal.any([actorSignal, userSignal]);
  const controller = new AbortController();
  for (const signal of [actorSignal, userSignal]) {
    if (signal.aborted) controller.abort(signal.reason);
    else signal.addEventListener('abort', () => controller.abort(signal.reason), { once: true });
  }
  return controller.signal;
}

export const listArchive = fromPromise<ArchivedStream, { job: RestoreJob }>(async ({ input: { job }, signal }) => {
  const archive = await openArchivedStream(job.store.value, {
    logger: job.logger,
    signal: combinedSignal(signal, job.signal),
    ...(job.sourceStream !== undefined ? { sourceStream: job.sourceStream } : {}),
  });
  // Every block's format and compression must be readable before anything is published.
  codecsFor(archive.blocks);
  job.logger.info(
    { stream: archive.stream, blocks: archive.blocks.length, messages: archive.messages, firstSeq: archive.firstSeq, lastSeq: archive.lastSeq },
    'archive listed',
  );
  return archive;
});

export const checkBlocks = fromPromise<void, { job: RestoreJob; archive: ArchivedStream }>(async ({ input: { job, archive }, signal }) => {
  let checked = 0;
  await precheckBlocks(job.store.value, archive.blocks, {
    signal: combinedSignal(signal, job.signal),
    onChecked: () => {
      checked++;
    },
  });
  job.logger.info({ blocks: checked }, 'every block matches its checksum');
});

export const prepareTarget = fromPromise<RestoreSession, { job: RestoreJob; archive: ArchivedStream }>(async ({ input: { job, archive }, signal }) => {
  const combined = combinedSignal(signal, job.signal);
  combined.throwIfAborted();
  const connection = await openConnection(job);
  try {
    combined.throwIfAborted();
    let jsm: JetStreamManager;
    try {
      jsm = await jetstreamManager(connection.value);
    } catch (cause) {
      throw new JetvaultError('JV_CONNECT_FAILED', `JetStream is not available on the target: ${describeError(cause)}`, { cause });
    }
    const target = await prepareTargetStream({
      jsm,
      name: job.stream ?? archive.stream,
      archived: archive,
      create: job.create,
      append: job.append,
      serverVersion: connection.value.info?.version,
      logger: job.logger,
    });
    return { connection, jsm, js: jsm.jetstream(), target };
  } catch (error) {
    await connection.release();
    throw error;
  }
});

export const publishMessages = fromPromise<RestoreReport, { job: RestoreJob; archive: ArchivedStream; session: RestoreSession }>(
  async ({ input: { job, archive, session }, signal }) => {
    const combined = combinedSignal(signal, job.signal);
    const stats = newMergeStats();
    const codecs = codecsFor(archive.blocks);
    const blocksTotal = archive.blocks.length;
    const messagesTotal = archive.messages;
    let published = 0;
    const progress = () =>
      job.onProgress?.({ blocksDone: stats.blocksDone, blocksTotal, messagesDone: published + stats.skippedDuplicates, messagesTotal });

    const messages = mergeBlocks(archive.blocks, {
      open: (block) => readBlock(job.store.value, block, { signal: combined, ...(codecs.get(block.key) ? { codec: codecs.get(block.key) } : {}) }),
      onConflict: (kept, skipped, block) =>
        job.logger.warn({ seq: kept.seq, block: block.key }, 'two blocks hold different messages for the same sequence; keeping the first'),
      onBlockDone: progress,
      signal: combined,
      stats,
    });
    const result = await republish(messages, {
      target: natsPublishTarget(session.js, session.jsm, session.target.stream),
      maxInFlight: job.maxInFlight,
      logger: job.logger,
      signal: combined,
      onPublished: () => {
        published++;
        if (published % 1000 === 0) progress();
      },
    });
    progress();
    const report: RestoreReport = {
      sourceStream: archive.stream,
      targetStream: session.target.stream,
      createdStream: session.target.created,
      blocks: archive.blocks.length,
      messages: result.published,
      skippedDuplicates: stats.skippedDuplicates,
      durationMs: Math.max(0, job.now() - job.startedAt),
    };
    job.logger.info({ ...report, maxOpenBlocks: stats.maxOpenBlocks, repeatedMsgIds: result.repeatedMsgIds }, 'restore published every message');
    return report;
  },
);

/** Closes what restore opened (connection, store); never fails the restore by itself failing. */
export const releaseResources = fromPromise<void, { job: RestoreJob; session: RestoreSession | undefined }>(async ({ input: { job, session } }) => {
  await Promise.all([
    session?.connection.release().catch((error: unknown) => job.logger.warn({ error: describeError(error) }, 'closing the connection failed')),
    job.store.release().catch((error: unknown) => job.logger.warn({ error: describeError(error) }, 'closing the store failed')),
  ]);
});
