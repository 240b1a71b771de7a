/**
 * Poison messages: 1% of a stream cannot be decoded by the user's decoder. Each is retried, then stored with
 * its error under `_dead-letter/` and acked; capture never stops, never loops, and the archive proper holds
 * exactly the other 99%, restorable as they were.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { createCapture } from '../../machines/create-capture.js';
import type { Envelope } from '../../src/archive/envelope.js';
import { useNatsEnv } from '../helpers/nats-env.js';
import { uniqueName } from '../helpers/nats-server.js';
import { differences, publishAll, type TestMessage } from '../helpers/streams.js';
import { auditArchive, recordChaos, restoreAndCompare } from './support.js';

const env = useNatsEnv('chaos-dl');
const N = 20_000;

it('dead-letters 1% undecodable messages and archives the other 99% exactly once', async () => {
  const stream = uniqueName('POISON');
  const subject = stream.toLowerCase();
  await env.jsm.streams.add({ name: stream, subjects: [`${subject}.>`] });
  const messages: TestMessage[] = Array.from({ length: N }, (_, i) => ({
    subject: `${subject}.${['eu', 'us'][i % 2]}`,
    headers: null,
    // Every 100th message (seq 100, 200, …) is not JSON.
    data: Buffer.from((i + 1) % 100 === 0 ? `corrupt-${i + 1}` : JSON.stringify({ n: i + 1 })),
  }));
  await publishAll(env.nc, stream, messages);
  const poisonSeqs = Array.from({ length: N / 100 }, (_, i) => (i + 1) * 100);

  const dir = env.tempDir();
  const capture = createCapture<Envelope>({
    servers: env.server.url,
    stream,
    store: dir,
    maxMessages: 2_000,
    idleMs: 300,
    poisonAttempts: 2,
    poisonRetryDelayMs: 200,
    decoder: (e) => {
      JSON.parse(Buffer.from(e.data).toString('utf8'));
      return { value: e };
    },
  });
  const started = Date.now();
  const actions = new Map<string, number>();
  capture.on('message.undecodable', (e) => actions.set(e.action, (actions.get(e.action) ?? 0) + 1));
  let good = 0;
  let dead = 0;
  const allAcked = new Promise<void>((resolve) =>
    capture.on('block.acked', (e) => {
      if (e.key.startsWith('_dead-letter/')) dead += e.messages;
      else good += e.messages;
      if (good === N - poisonSeqs.length && dead === poisonSeqs.length) resolve();
    }),
  );
  await allAcked;
  const elapsedMs = Date.now() - started;
  const report = await capture.drain();
  expect(report).toMatchObject({ messages: N - poisonSeqs.length, deadLettered: poisonSeqs.length, abandonedBlocks: 0 });
  // Each poison message: one retry, then dead-lettered; none of them is retried forever.
  expect(Object.fromEntries(actions)).toEqual({ retry: poisonSeqs.length, 'dead-letter': poisonSeqs.length });
  const info = await env.jsm.consumers.info(stream, `jetvault-${stream}`);
  expect({ pending: info.num_pending, ackPending: info.num_ack_pending, redelivered: info.num_redelivered }).toEqual({ pending: 0, ackPending: 0, redelivered: 0 });

  // The dead letters: every poison message exactly once, with its error and bytes.
  const deadFiles = readdirSync(join(dir, '_dead-letter'), { recursive: true }).map(String).filter((f) => f.endsWith('.ndjson'));
  const letters = deadFiles.flatMap((f) =>
    readFileSync(join(dir, '_dead-letter', f), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { error: string; deliveries: number; message: { data: string; metadata: { sequence: { stream_seq: number } } } }),
  );
  expect(letters.map((l) => l.message.metadata.sequence.stream_seq).sort((a, b) => a - b)).toEqual(poisonSeqs);
  expect(letters.every((l) => l.deliveries === 2 && /JSON/.test(l.error))).toBe(true);
  expect(letters.every((l) => Buffer.from(l.message.data, 'base64').toString() === `corrupt-${l.message.metadata.sequence.stream_seq}`)).toBe(true);

  // The archive proper: the 99%, once each, restorable exactly.
  const audit = await auditArchive(dir);
  expect(audit).toMatchObject({ messages: N - poisonSeqs.length, duplicateObjects: 0 });
  const roundTrip = await restoreAndCompare(dir, env.nc, stream);
  const poison = new Set(poisonSeqs);
  const expected = roundTrip.source.filter((m) => !poison.has(m.seq));
  const problems = differences(expected, roundTrip.restored);
  expect(problems).toEqual([]);
  expect(roundTrip.skippedDuplicates).toBe(0);
  recordChaos({
    fault: '1% undecodable messages (custom decoder)',
    reaction: 'each retried once, then stored under _dead-letter/ with its error and acked; capture never stopped',
    messages: N,
    lost: expected.length - roundTrip.restored.length + (poisonSeqs.length - letters.length),
    duplicateObjects: audit.duplicateObjects,
    recoveryMs: 0,
    extra: { deadLettered: letters.length, captureMs: elapsedMs },
  });
}, 90_000);
