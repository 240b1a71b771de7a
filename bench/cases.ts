/**
 * Runs one section of the plan: fills its source stream, then its steps in order, each baseline right
 * before its jetvault counterparts: bare consume+ack → capture (library, then CLI) → bare publish →
 * restore → verify. Every capture gets a fresh durable consumer, deleted afterwards, so each case finds
 * the same server state; the section deletes its streams at the end.
 */
import { rmSync } from 'node:fs';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { NatsServer } from '../src/cli/local-nats-server.js';
import { createCapture, FileStore, restore, verify, type CaptureReport, type Store } from '../src/index.js';
import { bareConsume, barePublish } from './baselines.js';
import type { Cleanup } from './cleanup.js';
import { cliCapture, type CliCapture } from './cli.js';
import { measure, within, type Sample, type ServerCpu } from './measure.js';
import { stepName, type Section, type Step } from './plan.js';
import type { CaseResult } from './report.js';
import { fillStream, streamConfig, timeoutFor } from './workload.js';

export interface Bench {
  /** Holds the source streams; capture and verify read from it. */
  source: NatsServer;
  /** Restore republishes to the archived subjects, so it needs a server without the source stream. */
  target: NatsServer;
  nc: NatsConnection;
  nc2: NatsConnection;
  serverCpu: ServerCpu;
  cleanup: Cleanup;
}

type CaptureStep = Extract<Step, { kind: 'capture' }>;

/** A finished case before it becomes a row: its sample and whatever it adds to the row. */
type Outcome = { sample: Sample } & Partial<Omit<CaseResult, 'section' | 'name' | 'payloadBytes' | 'keys' | 'messages'>>;

export function caseResult(section: Pick<Section, 'name' | 'workload'>, name: string, outcome: Outcome): CaseResult {
  const { sample, ...extra } = outcome;
  const { messages, payloadBytes, keys } = section.workload;
  return {
    section: section.name,
    name,
    payloadBytes,
    keys,
    messages,
    seconds: sample.seconds,
    msgsPerSec: messages / sample.seconds,
    mbPerSec: (messages * payloadBytes) / 1e6 / sample.seconds,
    measured: 'bench',
    cpuSeconds: sample.cpuSeconds,
    serverCpuSeconds: sample.serverCpuSeconds,
    peakRssMiB: sample.peakRssMiB,
    notes: [],
    ...extra,
  };
}

function expectAll(what: string, got: number, messages: number): void {
  if (got !== messages) throw new Error(`${what} handled ${got} messages, expected ${messages}`);
}

/** The CLI rows' CPU and RSS are the children's, not the bench's: summed CPU, the largest peak. */
export function cliUsage(runs: readonly CliCapture[]): Pick<CaseResult, 'measured' | 'cpuSeconds' | 'peakRssMiB'> {
  const usages = runs.map((r) => r.usage);
  return {
    measured: 'cli',
    cpuSeconds: usages.reduce((sum, u) => sum + (u?.cpuSeconds ?? Number.NaN), 0),
    peakRssMiB: Math.max(...usages.map((u) => u?.peakRssMiB ?? Number.NaN)),
  };
}

/** Everything a section's steps share while it runs. */
class SectionRun {
  readonly results: CaseResult[] = [];
  readonly stream: string;
  private readonly publishStream: string;
  private readonly restoreStream: string;
  private consumeBaseline: CaseResult | undefined;
  private publishBaseline: CaseResult | undefined;
  /** The library's raw+none capture, which restore and verify read. */
  private archiveDir: string | undefined;

  constructor(
    private readonly bench: Bench,
    private readonly section: Section,
    streamPrefix: string,
    private readonly jsm: JetStreamManager,
    private readonly jsm2: JetStreamManager,
  ) {
    this.stream = `${streamPrefix}S`;
    this.publishStream = `${streamPrefix}P`;
    this.restoreStream = `${streamPrefix}R`;
  }

  private get messages(): number {
    return this.section.workload.messages;
  }

  private row(step: Step, outcome: Outcome, baseline?: CaseResult): CaseResult {
    const r = caseResult(this.section, stepName(step), outcome);
    if (baseline) r.ratio = { to: baseline.name, value: r.msgsPerSec / baseline.msgsPerSec };
    return r;
  }

  async run(step: Step): Promise<CaseResult> {
    const r = await this.runStep(step);
    this.results.push(r);
    return r;
  }

  private async runStep(step: Step): Promise<CaseResult> {
    const { serverCpu } = this.bench;
    const n = this.messages;
    switch (step.kind) {
      case 'bare-consume': {
        const { value, sample } = await measure(serverCpu, () => bareConsume(this.bench.nc, this.stream, 'bare_consume', n));
        this.consumeBaseline = this.row(step, { sample });
        if (value.ackPendingAfter > 0) this.consumeBaseline.notes.push(`${value.ackPendingAfter} acks still pending at the server after the flush`);
        return this.consumeBaseline;
      }
      case 'capture':
        return step.via === 'lib' ? this.libCapture(step) : this.cliCapture(step);
      case 'bare-publish': {
        const { nc2 } = this.bench;
        await this.jsm2.streams.add(streamConfig(this.publishStream));
        const { sample } = await measure(serverCpu, () => within(barePublish(nc2, this.section.workload), timeoutFor(n), 'bare publish'));
        // Its subjects overlap the restore target's, which the server refuses while both exist.
        await this.jsm2.streams.delete(this.publishStream);
        this.publishBaseline = this.row(step, { sample });
        return this.publishBaseline;
      }
      case 'restore': {
        const from = this.archive();
        const { value, sample } = await measure(serverCpu, () => within(restore({ from, servers: this.bench.target.url, stream: this.restoreStream }), timeoutFor(n), 'restore'));
        expectAll('restore', value.messages, n);
        await this.jsm2.streams.delete(this.restoreStream);
        return this.row(step, { sample }, this.publishBaseline);
      }
      case 'verify': {
        const from = this.archive();
        const { value, sample } = await measure(serverCpu, () => within(verify({ from, servers: this.bench.source.url, stream: this.stream }), timeoutFor(n), 'verify'));
        if (!value.ok) throw new Error(`verify found differences: ${JSON.stringify(value.differences.slice(0, 3))}`);
        expectAll('verify', value.archivedMessages, n);
        return this.row(step, { sample });
      }
    }
  }

  private archive(): string {
    if (!this.archiveDir) throw new Error(`section ${this.section.name}: restore and verify need the library's raw+none capture first`);
    return this.archiveDir;
  }

  /** A library capture --once into a fresh FileStore; stopped if it overruns, so it cannot hang the bench. */
  private async libCapture(step: CaptureStep): Promise<CaseResult> {
    const { format, compression } = step;
    const dir = this.bench.cleanup.tempDir('jv-bench-store-');
    const consumer = `lib_${format}_${compression}`;
    const seals: Record<string, number> = {};
    const once = async (): Promise<CaptureReport> => {
      const store: Store = new FileStore(dir);
      const handle = createCapture({ servers: this.bench.source.url, stream: this.stream, consumer, store, format, compression, once: true });
      handle.on('block.sealed', (e) => (seals[e.reason] = (seals[e.reason] ?? 0) + 1));
      try {
        return await within(handle.done, timeoutFor(this.messages), `capture ${format}+${compression}`);
      } catch (error) {
        await handle.stop();
        throw error;
      } finally {
        await store.close?.();
      }
    };
    const { value: report, sample } = await measure(this.bench.serverCpu, once);
    expectAll(`capture ${format}+${compression}`, report.messages, this.messages);
    await this.jsm.consumers.delete(this.stream, consumer);
    if (format === 'raw' && compression === 'none') {
      // Another round's archive of the same case is the same stream again: keep the newest.
      if (this.archiveDir) rmSync(this.archiveDir, { recursive: true, force: true });
      this.archiveDir = dir;
    }
    else rmSync(dir, { recursive: true, force: true });
    const r = this.row(step, { sample, blocks: report.blocks, seals, storedBytes: report.storedBytes }, this.consumeBaseline);
    if (report.abandonedBlocks > 0) r.notes.push(`${report.abandonedBlocks} blocks abandoned`);
    return r;
  }

  /** `jetvault capture --once` in one or more processes at once, all on the same durable consumer and store. */
  private async cliCapture(step: CaptureStep): Promise<CaseResult> {
    const { format, compression, processes } = step;
    const dir = this.bench.cleanup.tempDir('jv-bench-cli-');
    const consumer = `cli_${format}_${compression}_${processes}`;
    const args = ['--server', this.bench.source.url, '--stream', this.stream, '--consumer', consumer, '--store', dir, '--once', '--format', format, '--compression', compression];
    if (step.idle) args.push('--idle', step.idle);
    const { value: runs, sample } = await measure(this.bench.serverCpu, () => Promise.all(Array.from({ length: processes }, () => cliCapture(args, timeoutFor(this.messages)))));
    expectAll(`CLI capture ${format}+${compression} ×${processes}`, runs.reduce((sum, r) => sum + r.messages, 0), this.messages);
    await this.jsm.consumers.delete(this.stream, consumer);
    rmSync(dir, { recursive: true, force: true });
    const r = this.row(
      step,
      { sample, ...cliUsage(runs), blocks: runs.reduce((sum, run) => sum + run.blocks, 0), storedBytes: runs.reduce((sum, run) => sum + run.storedBytes, 0) },
      this.consumeBaseline,
    );
    if (step.idle) r.notes.push(`with --idle ${step.idle}`);
    if (processes > 1) {
      r.notes.push(
        `messages per process: ${runs.map((run) => run.messages.toLocaleString('en-US')).join(' + ')}; CPU s summed, peak RSS of the larger`,
        `includes up to ${step.idle ?? 'the --idle time'} plus a tick at the end: --once in each waits for the other's unacked block until an idle seal`,
      );
      const single = this.results.find((p) => p.measured === 'cli' && p.name === stepName({ ...step, processes: 1 }));
      if (single) r.notes.push(`${(r.msgsPerSec / single.msgsPerSec).toFixed(2)}× the msgs/s of one process`);
    }
    return r;
  }

  async end(): Promise<void> {
    if (this.archiveDir) rmSync(this.archiveDir, { recursive: true, force: true });
    await this.jsm.streams.delete(this.stream);
  }
}

/**
 * Fills the section's stream, runs its steps (`repeat` rounds of all of them, in turn, so a baseline and
 * the cases it is compared with see the same moments of the machine), deletes its streams. With more than
 * one round each row is the median round of its case, its ratio the median over the median baseline.
 * onResult sees each row as it is made.
 */
export async function runSection(
  bench: Bench,
  section: Section,
  streamPrefix: string,
  onResult?: (r: CaseResult) => void,
  repeat = 1,
): Promise<CaseResult[]> {
  const run = new SectionRun(bench, section, streamPrefix, await jetstreamManager(bench.nc), await jetstreamManager(bench.nc2));
  await fillStream(bench.nc, run.stream, section.workload);
  const rounds = section.steps.map(() => [] as CaseResult[]);
  for (let round = 0; round < repeat; round++) {
    for (const [i, step] of section.steps.entries()) {
      const result = await run.run(step);
      rounds[i]!.push(result);
      if (repeat === 1) onResult?.(result);
    }
  }
  await run.end();
  if (repeat === 1) return run.results;
  const medians = rounds.map(medianRound);
  for (const r of medians) {
    const baseline = r.ratio && medians.find((m) => m.name === r.ratio!.to);
    if (baseline) r.ratio = { to: baseline.name, value: r.msgsPerSec / baseline.msgsPerSec };
    onResult?.(r);
  }
  return medians;
}

/** The median round of one case (the lower middle one for an even count), with every round's msgs/s. */
export function medianRound(results: readonly CaseResult[]): CaseResult {
  const sorted = [...results].sort((a, b) => a.msgsPerSec - b.msgsPerSec);
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  const rates = results.map((r) => r.msgsPerSec);
  return {
    ...median,
    rounds: rates,
    notes: [...median.notes, `median of ${results.length} rounds: ${rates.map((v) => Math.round(v).toLocaleString('en-US')).join(', ')} msgs/s`],
  };
}
