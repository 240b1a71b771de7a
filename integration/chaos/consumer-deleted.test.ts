/**
 * Chaos (issue #5): the durable consumer jetvault created (`jetvault-<stream>`) is deleted in the middle of
 * a continuous capture. jetvault must notice, create it again and go on capturing, with nothing lost and no
 * message archived twice. A replacement with deliver-all would start again at sequence 1 and every stored
 * message would come again in differently cut (overlapping) blocks; jetvault re-creates it at the sequence
 * after the highest one it captured, and the messages held in open blocks are stored by those blocks.
 */
import type { ConsumerInfo } from '@nats-io/jetstream';
import { expect, it } from 'vitest';
import { createCapture } from '../../machines/create-capture.js';
import type { CaptureEvent } from '../../src/capture/events.js';
import { useNatsEnv } from '../helpers/nats-env.js';
import { uniqueName } from '../helpers/nats-server.js';
import { mixedMessages, publishAll } from '../helpers/streams.js';
import { auditArchive, expectExactlyOnce, recordChaos, restoreAndCompare } from './support.js';

const MESSAGES = 40_000;
/** The consumer is deleted once this many messages are stored and acked. */
const DELETE_AT = 12_000;

const env = useNatsEnv('chaos-consumer');

/** Polls consumer info until `done` holds (a missing consumer counts as not done). */
async function pollConsumer(stream: string, consumer: string, done: (info: ConsumerInfo) => boolean, timeoutMs: number, why: () => string): Promise<ConsumerInfo> {
  const { jsm } = env;
  const deadline = Date.now() + timeoutMs;
  let last: ConsumerInfo | undefined;
  for (;;) {
    last = await jsm.consumers.info(stream, consumer).catch(() => undefined);
    if (last && done(last)) return last;
    if (Date.now() > deadline) {
      const state = last ? { pending: last.num_pending, ackPending: last.num_ack_pending, delivered: last.delivered.stream_seq } : 'missing';
      throw new Error(`consumer ${consumer} not done in ${timeoutMs} ms: ${JSON.stringify(state)}; ${why()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

it('re-creates a deleted durable consumer and resumes: nothing lost, no message archived twice', { timeout: 80_000 }, async () => {
  const { server, nc } = env;
  const dir = env.tempDir();
  const stream = uniqueName('CONSDEL');
  const subject = stream.toLowerCase();
  const consumer = `jetvault-${stream}`;
  const jsm = env.jsm;
  await jsm.streams.add({ name: stream, subjects: [`${subject}.>`] });
  await publishAll(nc, stream, mixedMessages(MESSAGES, ['eu', 'us', 'apac', 'latam'].map((r) => `${subject}.${r}`)));

  const events: Array<CaptureEvent & { at: number }> = [];
  let acked = 0;
  let deletedAt: number | undefined;
  let ackedAtDelete = 0;
  let deleting: Promise<unknown> = Promise.resolve();
  // maxAckPending keeps most of the stream undelivered when the consumer goes away.
  const capture = createCapture({ servers: server.url, stream, store: dir, maxMessages: 5_000, idleMs: 1_000, maxAckPending: 8_000 });
  capture.subscribe((e) => {
    events.push({ ...e, at: Date.now() });
    if (e.type !== 'block.acked') return;
    acked += e.messages;
    if (deletedAt === undefined && acked >= DELETE_AT) {
      deletedAt = Date.now();
      ackedAtDelete = acked;
      deleting = jsm.consumers.delete(stream, consumer);
    }
  });

  const summary = () => {
    const counts: Record<string, number> = {};
    for (const e of events) counts[e.type] = (counts[e.type] ?? 0) + 1;
    return `acked ${acked}; events ${JSON.stringify(counts)}`;
  };
  // Done when the re-created consumer has delivered and seen acked everything.
  const info = await pollConsumer(
    stream,
    consumer,
    (i) => deletedAt !== undefined && events.filter((e) => e.type === 'consumer.bound').length === 2 && i.num_pending === 0 && i.num_ack_pending === 0,
    50_000,
    summary,
  );
  expect(await deleting).toBe(true);
  const report = await capture.drain();

  const bound = events.filter((e): e is Extract<CaptureEvent, { type: 'consumer.bound' }> & { at: number } => e.type === 'consumer.bound');
  const rebindMs = bound[1]!.at - deletedAt!;
  const firstAckAfterRebind = events.find((e) => e.type === 'block.acked' && e.at > bound[1]!.at);
  const startSeq = info.config.opt_start_seq ?? 1;
  const audit = await auditArchive(dir);
  const round = await restoreAndCompare(dir, nc, stream);
  recordChaos({
    fault: 'durable consumer deleted mid-capture',
    reaction:
      `deletion advisory noticed; ${consumer} re-created with its former settings, ${info.config.deliver_policy} ${startSeq} ` +
      `(after the highest sequence captured), ${rebindMs} ms after the delete; blocks open at the delete were stored and acked, capture resumed`,
    messages: round.source.length,
    // Restore publishes each archived sequence once (duplicates skipped), so the restored stream is the distinct set.
    lost: round.source.length - round.restored.length,
    duplicateObjects: audit.duplicateObjects,
    recoveryMs: (firstAckAfterRebind?.at ?? Number.NaN) - deletedAt!,
    extra: {
      rebindMs,
      ackedAtDelete,
      // Delivered by the deleted consumer but not yet acked: held in open or storing blocks at the delete.
      heldAtDelete: startSeq - 1 - ackedAtDelete,
      newConsumerStartSeq: startSeq,
      newConsumerDelivered: info.delivered.consumer_seq,
      messagesAcked: acked,
      blocks: audit.blocks,
      duplicateMessages: audit.duplicateMessages,
      restoreSkippedDuplicates: round.skippedDuplicates,
      restoreProblems: round.problems.length,
    },
  });

  expect(bound.map((b) => b.created)).toEqual([true, true]);
  expect(firstAckAfterRebind).toBeDefined();
  expect(ackedAtDelete).toBeLessThan(MESSAGES);
  expect(events.filter((e) => e.type === 'capture.error' || e.type === 'block.failed' || e.type === 'block.abandoned')).toEqual([]);
  expect(report.abandonedBlocks).toBe(0);
  expect(report.messages).toBe(MESSAGES);
  // Noticed from the server's deletion advisory, not after nats.js' two missed heartbeats (~30-45 s).
  expect(rebindMs).toBeLessThan(5_000);
  // The replacement starts after what the capture already had, so nothing captured is delivered again,
  // and the messages held in blocks at the delete were stored by those blocks.
  expect(info.config.deliver_policy).toBe('by_start_sequence');
  expect(startSeq - 1).toBeGreaterThan(ackedAtDelete);
  expect(info.delivered.stream_seq).toBe(MESSAGES);
  expect(info.delivered.consumer_seq).toBe(MESSAGES - startSeq + 1);
  expectExactlyOnce(audit, round, MESSAGES);
});
