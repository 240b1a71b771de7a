/**
 * The work behind each state of the restore machine (restore-machine.ts), one promise actor per step.
 * Every actor honours two signals: its own (the machine stopped it) and the caller's.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { fromPromise } from 'xstate';
import { JetvaultError, describeError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { Store } from '../src/stores/store.js';
import { openArchivedStream, type ArchivedStream } from './archive-reader.js';
import { codecsFor, precheckBlocks, readBlock } from './block-reader.js';
import { mergeBlocks, newMergeStats } from './merge.js';
import { natsPublishTarget, republish } from './republisher.js';
import type { Owned } from './resources.js';
import type { RestoreOptions, RestoreReport } from './restore.js';
import { givenTargetLink, ownedTargetLink, type TargetLink } from './target-link.js';
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
  /** How long to wait for a lost target before giving up (ms). */
  reconnectTimeoutMs: number;
  logger: Logger;
  signal?: AbortSignal;
  onProgress?: RestoreOptions['onProgress'];
  /** Clock in ms for durationMs. */
  now: () => number;
  startedAt: number;
}

/** The connection (replaced after a loss when restore owns it) and the target stream, from `preparing` on. */
export interface RestoreSession {
  link: TargetLink;
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

async function openLink(job: RestoreJob): Promise<TargetLink> {
  if (!job.connection) return ownedTargetLink(job.servers as string | string[]);
  try {
    return await givenTargetLink(job.connection);
  } catch (cause) {
    throw new JetvaultError('JV_CONNECT_FAILED', `JetStream is not available on the target: ${describeError(cause)}`, { cause });
  }
}

export const prepareTarget = fromPromise<RestoreSession, { job: RestoreJob; archive: ArchivedStream }>(async ({ input: { job, archive }, signal }) => {
  const combined = combinedSignal(signal, job.signal);
  combined.throwIfAborted();
  const link = await openLink(job);
  try {
    combined.throwIfAborted();
    const target = await prepareTargetStream({
      jsm: link.jsm,
      name: job.stream ?? archive.stream,
      archived: archive,
      create: job.create,
      append: job.append,
      serverVersion: link.nc.info?.version,
      logger: job.logger,
    });
    return { link, target };
  } catch (error) {
    await link.release();
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
    let reconnects = 0;
    let waitingForTarget = false;
    const progress = () =>
      job.onProgress?.({
        blocksDone: stats.blocksDone,
        blocksTotal,
        messagesDone: published + stats.skippedDuplicates,
        messagesTotal,
        reconnects,
        waitingForTarget,
      });

    const messages = mergeBlocks(archive.blocks, {
      open: (block) => readBlock(job.store.value, block, { signal: combined, ...(codecs.get(block.key) ? { codec: codecs.get(block.key) } : {}) }),
      onConflict: (kept, skipped, block) =>
        job.logger.warn({ seq: kept.seq, block: block.key }, 'two blocks hold different messages for the same sequence; keeping the first'),
      onBlockDone: progress,
      signal: combined,
      stats,
    });
    const result = await republish(messages, {
      target: natsPublishTarget(session.link, session.target.stream),
      maxInFlight: job.maxInFlight,
      reconnectTimeoutMs: job.reconnectTimeoutMs,
      logger: job.logger,
      signal: combined,
      onPublished: () => {
        published++;
        if (published % 1000 === 0) progress();
      },
      onTargetLost: () => {
        waitingForTarget = true;
        progress();
      },
      onTargetBack: () => {
        waitingForTarget = false;
        reconnects++;
        progress();
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
      reconnects: result.reconnects,
      reconnectMs: Math.round(result.reconnectMs),
      durationMs: Math.max(0, job.now() - job.startedAt),
    };
    job.logger.info({ ...report, maxOpenBlocks: stats.maxOpenBlocks, repeatedMsgIds: result.repeatedMsgIds }, 'restore published every message');
    return report;
  },
);

/** Closes what restore opened (connection, store); never fails the restore by itself failing. */
export const releaseResources = fromPromise<void, { job: RestoreJob; session: RestoreSession | undefined }>(async ({ input: { job, session } }) => {
  await Promise.all([
    session?.link.release().catch((error: unknown) => job.logger.warn({ error: describeError(error) }, 'closing the connection failed')),
    job.store.release().catch((error: unknown) => job.logger.warn({ error: describeError(error) }, 'closing the store failed')),
  ]);
});
