/**
 * The memory case: one `jetvault capture --once` with default options over a long stream, its RSS read
 * every 250 ms against how far the consumer has delivered. The row gives the peak (goal: under 256 MiB)
 * and whether RSS grows with the stream: the peak over the first quarter of the messages against the
 * peak over the rest.
 */
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstreamManager } from '@nats-io/jetstream';
import { defaultConsumerName } from '../src/index.js';
import { caseResult, cliUsage, type Bench } from './cases.js';
import { cliCapture } from './cli.js';
import { GC_AT_EXIT_ENV, measure, processRssMiB } from './measure.js';
import { MEMORY_CASE, type Section } from './plan.js';
import type { CaseResult, RssPoint } from './report.js';
import { fillStream, timeoutFor } from './workload.js';

export const RSS_GOAL_MIB = 256;
const SAMPLE_MS = 250;
const EARLY_SHARE = 0.25;
/** A later peak more than this much above the early one reads as growth. */
const GROWTH_TOLERANCE = 0.1;

const peakOf = (points: readonly RssPoint[]) => Math.max(...points.map((p) => p.rssMiB));
const mib = (n: number) => `${Math.round(n)} MiB`;

/** What the samples say: RSS at each quarter of the messages delivered, and early versus later peaks. */
function growthNotes(profile: readonly RssPoint[], messages: number): string[] {
  const boundary = Math.round(messages * EARLY_SHARE);
  const early = profile.filter((p) => p.delivered <= boundary);
  const later = profile.filter((p) => p.delivered > boundary);
  const quarters = [0.25, 0.5, 0.75, 1].map((q) => {
    const at = profile.find((p) => p.delivered >= q * messages);
    return `${q * 100} % ${at ? mib(at.rssMiB) : '–'}`;
  });
  const notes = [`RSS when the consumer had delivered ${quarters.join(', ')} (${profile.length} samples, every ${SAMPLE_MS} ms)`];
  if (early.length === 0 || later.length === 0) {
    notes.push('too few samples to tell whether RSS grows with the stream (use more --memory-messages)');
  } else {
    const growth = peakOf(later) / peakOf(early) - 1;
    const verdict = growth > GROWTH_TOLERANCE ? `grows (+${Math.round(growth * 100)} %)` : `does not grow (${growth >= 0 ? '+' : ''}${Math.round(growth * 100)} %)`;
    notes.push(`peak RSS up to ${boundary.toLocaleString('en-US')} delivered ${mib(peakOf(early))}, after it ${mib(peakOf(later))}: RSS ${verdict}`);
  }
  return notes;
}

export async function runMemoryCase(bench: Bench, section: Pick<Section, 'name' | 'workload'>, streamPrefix: string): Promise<CaseResult> {
  const { messages } = section.workload;
  const stream = `${streamPrefix}S`;
  const consumer = defaultConsumerName(stream);
  const jsm = await jetstreamManager(bench.nc);
  await fillStream(bench.nc, stream, section.workload);
  const dir = bench.cleanup.tempDir('jv-bench-memory-');

  const profile: RssPoint[] = [];
  let pid: number | undefined;
  let running = true;
  const t0 = performance.now();
  const sampling = (async () => {
    while (running) {
      const rssMiB = pid === undefined ? undefined : processRssMiB(pid);
      // The CLI creates the consumer: until it has, nothing was delivered.
      const delivered = await jsm.consumers.info(stream, consumer).then(
        (info) => info.delivered.stream_seq,
        () => 0,
      );
      if (rssMiB !== undefined) profile.push({ seconds: (performance.now() - t0) / 1000, delivered, rssMiB });
      await sleep(SAMPLE_MS);
    }
  })();
  // Default options: no --consumer, no block limits, no format or compression.
  const args = ['--server', bench.source.url, '--stream', stream, '--store', dir, '--once'];
  let measured;
  try {
    measured = await measure(bench.serverCpu, () => cliCapture(args, timeoutFor(messages), { onSpawn: (p) => (pid = p), env: { [GC_AT_EXIT_ENV]: '1' } }));
  } finally {
    running = false;
    await sampling;
  }
  const { value: run, sample } = measured;
  if (run.messages !== messages) throw new Error(`memory case captured ${run.messages} messages, expected ${messages}`);
  rmSync(dir, { recursive: true, force: true });
  await jsm.streams.delete(stream);

  const usage = cliUsage([run]);
  return caseResult(section, MEMORY_CASE, {
    sample,
    ...usage,
    blocks: run.blocks,
    storedBytes: run.storedBytes,
    rssProfile: profile,
    notes: [
      `peak RSS ${mib(usage.peakRssMiB)}: goal < ${RSS_GOAL_MIB} MiB ${usage.peakRssMiB < RSS_GOAL_MIB ? 'met' : 'NOT met'}`,
      ...growthNotes(profile, messages),
      ...(run.usage ? [`retained at exit (after every block was acked, and a full GC): V8 heap ${mib(run.usage.heapUsedMiB)}, external (Buffers) ${mib(run.usage.externalMiB)}`] : []),
    ],
  });
}
