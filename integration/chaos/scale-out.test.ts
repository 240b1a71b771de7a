/**
 * Chaos: scale-out. Two `jetvault capture` processes (the CLI) run at once on one durable consumer and one
 * store directory, started together so both race to create the consumer. The server hands each pull to
 * one of them, so they share the stream: both must store blocks, no message may be stored twice, and the
 * restore must equal the source.
 *
 * "Both worked" is proven from each process's own JSON log, not from timing: the keys of the blocks each
 * one logged as acked are disjoint, each set is non-empty, and together they are exactly the manifests in
 * the store; each process's summary line agrees with its log.
 */
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { onJsonLines, startJetvault, type CliProcess, type CliRun } from '../helpers/cli.js';
import { uniqueName } from '../helpers/nats-server.js';
import { useNatsEnv } from '../helpers/nats-env.js';
import { mixedMessages, publishAll } from '../helpers/streams.js';
import { archivedBlocks, auditArchive, recordChaos, restoreAndCompare } from './support.js';

const MESSAGES = 16_000;

const env = useNatsEnv('chaos-scale');
let dir: string;

beforeAll(() => {
  dir = env.tempDir();
});

interface Worker {
  name: string;
  proc: CliProcess;
  /** Parsed JSON log lines, with their arrival time. */
  events: Array<{ at: number; line: Record<string, unknown> }>;
}

function startWorker(name: string, stream: string): Worker {
  // Identical flags: a consumer created by either one has the same config, so the other's create succeeds too.
  const proc = startJetvault(['capture', '--server', env.server.url, '--stream', stream, '--store', dir, '--compression', 'gzip',
    '--max-messages', '500', '--idle', '1s', '--ack-wait', '30s', '--log-level', 'info', '--log-format', 'json'], { timeoutMs: 60_000 });
  const worker: Worker = { name, proc, events: [] };
  onJsonLines(proc.child, (line) => worker.events.push({ at: Date.now(), line }));
  return worker;
}

const ofType = (w: Worker, type: string) => w.events.filter((e) => e.line.type === type);

async function until(what: string, timeoutMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

it('shares one durable consumer between two capture processes: both store blocks, none twice, restore equals source', { timeout: 75_000 }, async () => {
  const stream = uniqueName('CHAOS_SCALE');
  const subject = stream.toLowerCase();
  const consumer = `jetvault-${stream}`;
  await env.jsm.streams.add({ name: stream, subjects: [`${subject}.>`] });

  const workers = [startWorker('a', stream), startWorker('b', stream)];
  let runs: CliRun[] = [];
  try {
    // Both bound (both have pulls waiting) before the first message exists, so neither can take it all alone.
    await until('both captures bound', 20_000, () => workers.every((w) => ofType(w, 'consumer.bound').length > 0));
    const created = workers.map((w) => ofType(w, 'consumer.bound')[0]!.line.created);
    const publishedAt = Date.now();
    await publishAll(env.nc, stream, mixedMessages(MESSAGES, ['eu', 'us', 'apac', 'latam'].map((r) => `${subject}.${r}`), 31));
    await until('every message acked', 40_000, async () => {
      const info = await env.jsm.consumers.info(stream, consumer);
      return info.num_pending === 0 && info.num_ack_pending === 0 && info.ack_floor.stream_seq === MESSAGES;
    });
    const allAckedAt = Date.now();
    for (const w of workers) w.proc.child.kill('SIGTERM');
    runs = await Promise.all(workers.map((w) => w.proc.done));
    expect(runs.map((r) => r.code), runs.map((r) => r.stderr.slice(-600)).join('\n')).toEqual([0, 0]);

    // Who stored what, from each process's own log.
    const acked = workers.map((w) => ofType(w, 'block.acked').map((e) => ({ key: e.line.key as string, messages: e.line.messages as number, at: e.at })));
    const keys = acked.map((list) => new Set(list.map((b) => b.key)));
    const messagesBy = acked.map((list) => list.reduce((n, b) => n + b.messages, 0));
    const manifestKeys = archivedBlocks(dir).map((b) => b.file.replace(/\.manifest\.json$/, ''));
    // Both worked: each acked blocks of its own, no key from both, and together they are every stored block.
    expect(messagesBy.every((n) => n > 0), `messages per process: ${messagesBy.join(', ')}`).toBe(true);
    expect([...keys[0]!].filter((k) => keys[1]!.has(k))).toEqual([]);
    expect([...keys[0]!, ...keys[1]!].sort()).toEqual([...manifestKeys].sort());
    expect(messagesBy[0]! + messagesBy[1]!).toBe(MESSAGES);
    // Each summary agrees with its log: `captured N messages in M blocks`.
    runs.forEach((run, i) => expect(run.stdout).toContain(`captured ${messagesBy[i]} messages in ${acked[i]!.length} blocks`));

    const audit = await auditArchive(dir);
    const roundTrip = await restoreAndCompare(dir, env.nc, stream);
    // Until both were making progress together: from the first publish to the later first ack of the two.
    const bothWorkingMs = Math.max(...acked.map((list) => Math.min(...list.map((b) => b.at)))) - publishedAt;
    recordChaos({
      fault: 'two capture processes (CLI) on one durable consumer and one store',
      reaction: 'the server split the pulls between them; each stored and acked its own blocks, none twice',
      messages: roundTrip.source.length,
      lost: roundTrip.source.length - roundTrip.restored.length,
      duplicateObjects: audit.duplicateObjects,
      recoveryMs: bothWorkingMs,
      extra: {
        recoveryMeans: 'from the first publish until both processes had acked a block',
        messagesPerProcess: messagesBy,
        blocksPerProcess: acked.map((list) => list.length),
        // Both may say so: creating a consumer that exists with the same config succeeds.
        consumerCreatedBy: workers.filter((_, i) => created[i] === true).map((w) => w.name),
        allAckedMs: allAckedAt - publishedAt,
        blocks: audit.blocks,
        archivedMessages: audit.messages,
        duplicateMessages: audit.duplicateMessages,
        skippedDuplicates: roundTrip.skippedDuplicates,
      },
    });
    // No message stored twice, no duplicate object (the two processes' block ranges interleave: that is not one).
    expect({ duplicateMessages: audit.duplicateMessages, duplicateObjects: audit.duplicateObjects }).toEqual({ duplicateMessages: 0, duplicateObjects: 0 });
    expect(audit.messages).toBe(roundTrip.source.length);
    expect(roundTrip.source).toHaveLength(MESSAGES);
    expect(roundTrip.problems).toEqual([]);
    expect(roundTrip.skippedDuplicates).toBe(0);
  } finally {
    for (const w of workers) if (w.proc.child.exitCode === null && w.proc.child.signalCode === null) w.proc.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.proc.done));
  }
});
