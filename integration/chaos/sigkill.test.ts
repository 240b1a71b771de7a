/**
 * Chaos: `jetvault capture` (the CLI, as users run it) is killed with SIGKILL at random points in 5
 * runs in a row, each started as soon as the previous one died, some `--once`, some continuous. A final
 * `--once` run resumes. Every message must then be archived exactly once: the blocks stored but not acked by
 * a killed run must be overwritten by their re-capture (deterministic keys), not sit next to a second copy.
 *
 * The kill points come from a seeded PRNG (src/cli/prng.ts), so a failure names a reproducible schedule:
 * during start-up, right after the consumer is bound, or right after the n-th block was sealed, stored or
 * acked (as the run logs it), plus a few random milliseconds.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { prng } from '../../src/cli/prng.js';
import { onJsonLines, startJetvault, type CliRun } from '../helpers/cli.js';
import { uniqueName } from '../helpers/nats-server.js';
import { useNatsEnv } from '../helpers/nats-env.js';
import { mixedMessages, publishAll } from '../helpers/streams.js';
import { auditArchive, recordChaos, restoreAndCompare } from './support.js';

const SEED = 0x5161_c1;
const RUNS = 5;
const MESSAGES = 16_000;

const env = useNatsEnv('chaos-sigkill');
let dir: string;

beforeAll(() => {
  dir = env.tempDir();
});

type LoggedEvent = 'consumer.bound' | 'block.sealed' | 'block.stored' | 'block.acked';

type KillPoint =
  | { kind: 'startup'; afterMs: number }
  | { kind: 'event'; event: LoggedEvent; nth: number; delayMs: number };

function drawKillPoint(rnd: () => number): KillPoint {
  const r = rnd();
  if (r < 0.15) return { kind: 'startup', afterMs: 50 + Math.floor(rnd() * 400) };
  if (r < 0.3) return { kind: 'event', event: 'consumer.bound', nth: 1, delayMs: Math.floor(rnd() * 100) };
  const event: LoggedEvent = r < 0.5 ? 'block.sealed' : r < 0.8 ? 'block.stored' : 'block.acked';
  return { kind: 'event', event, nth: 1 + Math.floor(rnd() * 4), delayMs: Math.floor(rnd() * 25) };
}

function describe(point: KillPoint): string {
  return point.kind === 'startup' ? `${point.afterMs} ms after spawn` : `${point.delayMs} ms after ${point.event} #${point.nth}`;
}

interface Run {
  once: boolean;
  point: KillPoint | undefined;
  killedAt: number | undefined;
  /** Parent-side arrival time of every block.acked line. */
  acked: number[];
  result: CliRun;
}

/**
 * Starts one capture run and, with a kill point, SIGKILLs it there. Log lines are read as they arrive
 * (JSON, one per line) to find the event the kill waits for.
 */
async function captureRun(stream: string, once: boolean, point: KillPoint | undefined): Promise<Run> {
  const args = ['capture', '--server', env.server.url, '--stream', stream, '--store', dir, '--compression', 'gzip', '--max-messages', '500',
    // Created by the first run: a short ack_wait, so the messages of a killed run come back within the test.
    '--ack-wait', '5s', '--max-ack-pending', '4000', '--log-level', 'info', '--log-format', 'json', '--quiet'];
  if (once) args.push('--once');
  const proc = startJetvault(args, { timeoutMs: 40_000 });
  const run: Omit<Run, 'result'> = { once, point, killedAt: undefined, acked: [] };
  const kill = () => {
    if (run.killedAt !== undefined || proc.child.exitCode !== null) return;
    run.killedAt = Date.now();
    proc.child.kill('SIGKILL');
  };
  const counts = new Map<string, number>();
  onJsonLines(proc.child, (line) => {
    const type = line.type;
    if (typeof type !== 'string' || !type) return;
    if (type === 'block.acked') run.acked.push(Date.now());
    const n = (counts.get(type) ?? 0) + 1;
    counts.set(type, n);
    if (point?.kind === 'event' && point.event === type && point.nth === n) setTimeout(kill, point.delayMs);
  });
  if (point?.kind === 'startup') setTimeout(kill, point.afterMs);
  const result = await proc.done;
  return { ...run, result };
}

/** Files of the store: block objects without a manifest, and temp files a killed put left behind. */
function leftovers(root: string): { unmanifested: number; tempFiles: number } {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else files.push(join(d, e.name));
    }
  };
  walk(root);
  const names = new Set(files);
  const tempFiles = files.filter((f) => f.endsWith('.tmp')).length;
  const unmanifested = files.filter((f) => !f.endsWith('.tmp') && !f.endsWith('.manifest.json') && !names.has(`${f}.manifest.json`)).length;
  return { unmanifested, tempFiles };
}

it('archives every message exactly once after 5 SIGKILLs at random points and a resuming --once run', { timeout: 85_000 }, async () => {
  const stream = uniqueName('CHAOS_KILL');
  const subject = stream.toLowerCase();
  const consumer = `jetvault-${stream}`;
  await env.jsm.streams.add({ name: stream, subjects: [`${subject}.>`] });
  await publishAll(env.nc, stream, mixedMessages(MESSAGES, ['eu', 'us', 'apac', 'latam'].map((r) => `${subject}.${r}`), 21));

  const rnd = prng(SEED);
  const runs: Run[] = [];
  for (let i = 0; i < RUNS; i++) {
    const once = rnd() < 0.5;
    runs.push(await captureRun(stream, once, drawKillPoint(rnd)));
  }
  const schedule = runs.map((r) => `${r.once ? '--once' : 'continuous'}: ${describe(r.point!)}`);
  // Every run died by the kill (none finished first, none failed by itself).
  expect(runs.map((r) => r.result.signal), `${schedule.join('; ')}\n${runs.map((r) => r.result.stderr.slice(-400)).join('\n')}`).toEqual(
    Array(RUNS).fill('SIGKILL'),
  );
  const beforeFinal = await env.jsm.consumers.info(stream, consumer);

  const final = await captureRun(stream, true, undefined);
  expect(final.result.code, final.result.stderr.slice(-2_000)).toBe(0);
  const info = await env.jsm.consumers.info(stream, consumer);
  expect({ pending: info.num_pending, ackPending: info.num_ack_pending, floor: info.ack_floor.stream_seq }).toEqual({
    pending: 0,
    ackPending: 0,
    floor: MESSAGES,
  });

  // Recovery of each kill: until a later run logged its next block.acked.
  const all = [...runs, final];
  const recoveries = runs.map((run, i) => {
    const next = all.slice(i + 1).flatMap((r) => r.acked).find((at) => at > run.killedAt!);
    return next === undefined ? -1 : next - run.killedAt!;
  });
  expect(recoveries.every((ms) => ms >= 0)).toBe(true);

  const audit = await auditArchive(dir);
  const stray = leftovers(dir);
  const roundTrip = await restoreAndCompare(dir, env.nc, stream);
  recordChaos({
    fault: `capture CLI SIGKILLed at ${RUNS} random points (seed ${SEED}), resumed by --once`,
    reaction:
      audit.duplicateMessages === 0
        ? 're-captured what killed runs left unacked (after ack_wait) into the same keys; --once waited for the redeliveries'
        : `re-captured what killed runs left unacked, but ${audit.duplicateMessages} messages stored by a killed run were stored again in other blocks`,
    messages: roundTrip.source.length,
    lost: roundTrip.source.length - roundTrip.restored.length,
    duplicateObjects: audit.duplicateObjects,
    recoveryMs: Math.max(...recoveries),
    extra: {
      schedule,
      recoveriesMs: recoveries,
      unackedBeforeFinal: beforeFinal.num_ack_pending,
      undeliveredBeforeFinal: beforeFinal.num_pending,
      blocks: audit.blocks,
      archivedMessages: audit.messages,
      duplicateMessages: audit.duplicateMessages,
      unmanifestedObjects: stray.unmanifested,
      tempFiles: stray.tempFiles,
      skippedDuplicates: roundTrip.skippedDuplicates,
      finalRun: final.result.stdout.trim(),
    },
  });
  // No message stored twice, no duplicate object.
  expect({ duplicateMessages: audit.duplicateMessages, duplicateObjects: audit.duplicateObjects }).toEqual({ duplicateMessages: 0, duplicateObjects: 0 });
  expect(audit.messages).toBe(roundTrip.source.length);
  expect(roundTrip.source).toHaveLength(MESSAGES);
  expect(roundTrip.problems).toEqual([]);
  expect(roundTrip.skippedDuplicates).toBe(0);
});
