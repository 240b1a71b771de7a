/**
 * Chaos (issue #5): a consumer someone else created with a short ack_wait (5 s) while capture is told it may
 * keep blocks open for a minute (maxAgeMs 60 s). Messages keep arriving, so blocks really age. Blocks must
 * seal by the ack deadline (before ack_wait runs out), so the server never redelivers, and the archive holds
 * every message exactly once.
 */
import { AckPolicy, DeliverPolicy, type ConsumerInfo } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { expect, it } from 'vitest';
import { ackDeadlineMs } from '../../machines/capture-supervisor.js';
import { createCapture } from '../../machines/create-capture.js';
import type { CaptureEvent } from '../../src/capture/events.js';
import { useNatsEnv } from '../helpers/nats-env.js';
import { uniqueName } from '../helpers/nats-server.js';
import { mixedMessages, publishAll } from '../helpers/streams.js';
import { auditArchive, expectExactlyOnce, recordChaos, restoreAndCompare } from './support.js';

const ACK_WAIT_MS = 5_000;
const PUBLISH_FOR_MS = 12_000;
const BATCH = 250;
const BATCH_EVERY_MS = 100;

const env = useNatsEnv('chaos-ackwait');

it('seals before a 5 s ack_wait runs out although maxAge is 60 s: no redelivery, every message archived once', { timeout: 70_000 }, async () => {
  const { server, nc } = env;
  const dir = env.tempDir();
  const stream = uniqueName('ACKWAIT');
  const subject = stream.toLowerCase();
  const consumer = `jetvault-${stream}`;
  const subjects = ['eu', 'us', 'apac', 'latam'].map((r) => `${subject}.${r}`);
  const jsm = env.jsm;
  await jsm.streams.add({ name: stream, subjects: [`${subject}.>`] });
  // Created by someone else, with a short ack_wait: capture binds to it and must live with it.
  // A large max_ack_pending, so nothing but age makes a block seal (no early ack-pending relief).
  await jsm.consumers.add(stream, {
    durable_name: consumer,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(ACK_WAIT_MS),
    max_ack_pending: 100_000,
  });

  const events: Array<CaptureEvent & { at: number }> = [];
  const opened = new Map<string, number>();
  const lifetimes: number[] = [];
  const capture = createCapture({ servers: server.url, stream, store: dir, maxAgeMs: 60_000 });
  capture.subscribe((e) => {
    const at = Date.now();
    events.push({ ...e, at });
    if (e.type === 'block.opened') opened.set(e.blockId, at);
    if (e.type === 'block.acked') lifetimes.push(at - opened.get(e.blockId)!);
  });
  const bound = await new Promise<Extract<CaptureEvent, { type: 'consumer.bound' }>>((resolve) => capture.on('consumer.bound', resolve));
  expect(bound).toMatchObject({ created: false, ackWaitMs: ACK_WAIT_MS });

  // The server's own count of redelivered messages, watched the whole time.
  let maxRedelivered = 0;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const info = await jsm.consumers.info(stream, consumer);
      maxRedelivered = Math.max(maxRedelivered, info.num_redelivered);
      await new Promise((r) => setTimeout(r, 250));
    }
  })();

  // Publishing while capturing: open blocks keep growing and age up to the ack deadline.
  const source = mixedMessages(Math.ceil(PUBLISH_FOR_MS / BATCH_EVERY_MS) * BATCH, subjects);
  const publishStart = Date.now();
  let published = 0;
  while (published < source.length) {
    await publishAll(nc, stream, source.slice(published, published + BATCH));
    published += BATCH;
    const due = publishStart + (published / BATCH) * BATCH_EVERY_MS;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
  }
  const publishMs = Date.now() - publishStart;

  // Everything delivered and acked (the last blocks seal at the ack deadline at the latest).
  const deadline = Date.now() + 20_000;
  let info: ConsumerInfo;
  for (;;) {
    info = await jsm.consumers.info(stream, consumer);
    if (info.num_pending === 0 && info.num_ack_pending === 0) break;
    if (Date.now() > deadline) throw new Error(`not all acked: pending ${info.num_pending}, ack pending ${info.num_ack_pending}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  watching = false;
  await watcher;
  const report = await capture.drain();

  const sealed = events.filter((e): e is Extract<CaptureEvent, { type: 'block.sealed' }> & { at: number } => e.type === 'block.sealed');
  const reasons: Record<string, number> = {};
  for (const e of sealed) reasons[e.reason] = (reasons[e.reason] ?? 0) + 1;
  const longest = Math.max(...lifetimes);
  // Where the longest-lived block spent its time: open until sealing, sealing to stored, stored to acked.
  const phasesOf = (blockId: string) => {
    const at = (type: string) => events.find((e) => e.type === type && 'blockId' in e && e.blockId === blockId)?.at;
    const [o, s1, st, a] = [opened.get(blockId)!, at('block.sealing'), at('block.stored'), at('block.acked')];
    return { openMs: s1! - o, sealToStoredMs: st! - s1!, storedToAckedMs: a! - st! };
  };
  const longestBlock = [...opened.keys()].find((id) => {
    const p = phasesOf(id);
    return p.openMs + p.sealToStoredMs + p.storedToAckedMs === longest;
  });

  const audit = await auditArchive(dir);
  const round = await restoreAndCompare(dir, nc, stream);
  recordChaos({
    fault: `consumer pre-created with ack_wait ${ACK_WAIT_MS / 1000} s, capture maxAge 60 s, publishing for ${Math.round(publishMs / 1000)} s`,
    reaction: `blocks sealed at the ack deadline (${ackDeadlineMs(ACK_WAIT_MS)} ms after opening, checked once per tick) and were stored and acked; longest open-to-acked ${longest} ms`,
    messages: round.source.length,
    // Restore publishes each archived sequence once (duplicates skipped), so the restored stream is the distinct set.
    lost: round.source.length - round.restored.length,
    duplicateObjects: audit.duplicateObjects,
    // No outage here: the longest a message waited between its block opening and its ack.
    recoveryMs: longest,
    extra: {
      sealReasons: reasons,
      ackWaitMs: ACK_WAIT_MS,
      longestBlock: longestBlock ? phasesOf(longestBlock) : undefined,
      maxNumRedelivered: maxRedelivered,
      deliveries: info.delivered.consumer_seq,
      reportMessages: report.messages,
      blocks: audit.blocks,
      archivedMessages: audit.messages,
      restoreSkippedDuplicates: round.skippedDuplicates,
    },
  });

  // Blocks really aged: all sealed by the ack deadline, none by max age (60 s), count or ack-pending relief,
  // and none left for the drain (a redelivered message arriving late would open one).
  expect(Object.keys(reasons)).toEqual(['ack-deadline']);
  expect(reasons['ack-deadline']).toBeGreaterThanOrEqual(8);
  // Each block was acked before the ack_wait of its oldest message ran out.
  expect(longest).toBeLessThan(ACK_WAIT_MS);
  // No redelivery loop: the server never redelivered (consumer_seq counts every delivery, redeliveries too).
  expect(maxRedelivered).toBe(0);
  expect(info.delivered.consumer_seq).toBe(source.length);
  expect(report.messages).toBe(source.length);
  expect(events.filter((e) => e.type === 'block.failed' || e.type === 'block.abandoned' || e.type === 'capture.error')).toEqual([]);
  expectExactlyOnce(audit, round, source.length);
});
