/** The bench's output: the machine it ran on, one row per case as a table, the same as JSON. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VERSION } from '../src/version.js';
import { natsServerBinary } from '../src/cli/local-nats-server.js';

export interface Machine {
  cpu: string;
  cpus: number;
  totalMemoryGiB: number;
  platform: string;
  node: string;
  natsServer: string;
  jetvault: string;
  /** HEAD and whether the work tree had changes: results are only comparable for the same code. */
  git: string;
  /** 1-minute load average before the run: above the CPU count, other work competed with the bench. */
  loadBefore: number;
  loadAfter?: number;
}

/** One sample of the memory case: the CLI's RSS against how far the consumer had delivered. */
export interface RssPoint {
  seconds: number;
  delivered: number;
  rssMiB: number;
}

export interface CaseResult {
  /** The section (workload) it belongs to: `100B-64keys`, `scale/100B-1000keys`, `memory/100B-1key`. */
  section: string;
  /** The step, e.g. `capture CLI csv+gzip`; `section name` is the full name --filter matches. */
  name: string;
  payloadBytes: number;
  /** Subjects in the stream, hence split keys of the capture. */
  keys: number;
  messages: number;
  seconds: number;
  msgsPerSec: number;
  /** Payload bytes (10^6) per second; subjects and headers not counted. */
  mbPerSec: number;
  /** Throughput divided by that of the named baseline of the same section, measured in the same run. */
  ratio?: { to: string; value: number };
  blocks?: number;
  /** Seal reason → blocks (library captures only). */
  seals?: Record<string, number>;
  storedBytes?: number;
  /** Whose CPU and RSS these are: the bench process, or the CLI child process(es). */
  measured: 'bench' | 'cli';
  cpuSeconds: number;
  serverCpuSeconds: number | undefined;
  peakRssMiB: number;
  notes: string[];
  rssProfile?: RssPoint[];
  /** With --repeat: msgs/s of every round, in order; the row is the median round. */
  rounds?: number[];
}

export interface BenchReport {
  startedAt: string;
  machine: Machine;
  options: { quick: boolean; messages: number; memoryMessages: number; repeat?: number; only: string[]; filter?: string };
  /** Median wall time of `jetvault --version`, included in every CLI row's time. */
  cliStartupSeconds?: number;
  cases: CaseResult[];
}

function run(command: string, args: string[], cwd?: string): string | undefined {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], cwd }).trim();
  } catch {
    return undefined;
  }
}

export function describeMachine(repoDir: string): Machine {
  const head = run('git', ['rev-parse', '--short', 'HEAD'], repoDir);
  const dirty = run('git', ['status', '--porcelain'], repoDir);
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cpus: os.cpus().length,
    totalMemoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    platform: `${os.platform()} ${os.release()}`,
    node: process.version,
    natsServer: run(natsServerBinary(), ['--version']) ?? 'unknown',
    jetvault: VERSION,
    git: head ? `${head}${dirty ? ' (uncommitted changes)' : ''}` : 'unknown',
    loadBefore: loadAverage(),
  };
}

export function loadAverage(): number {
  return Math.round(os.loadavg()[0]! * 100) / 100;
}

export function machineLines(m: Machine): string[] {
  return [
    `machine    ${m.cpu} × ${m.cpus}, ${m.totalMemoryGiB} GiB, ${m.platform}, load average ${m.loadBefore}`,
    `software   node ${m.node}, ${m.natsServer}, jetvault ${m.jetvault} @ ${m.git}`,
  ];
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const fixed = (n: number | undefined, digits: number) => (n === undefined ? '–' : n.toFixed(digits));

const subjectCount = (keys: number) => `${int(keys)} subject${keys === 1 ? '' : 's'}`;

/** One table, a heading line before each section's rows; then the rows' notes. */
export function formatTable(cases: readonly CaseResult[]): string {
  const header = ['case', 'msgs', 's', 'msgs/s', 'MB/s', 'ratio', 'blocks', 'stored MB', 'CPU s', 'server CPU s', 'peak RSS MiB'];
  const rows = cases.map((c) => [
    `  ${c.name}`,
    int(c.messages),
    fixed(c.seconds, 2),
    int(c.msgsPerSec),
    fixed(c.mbPerSec, 1),
    c.ratio ? `${c.ratio.value.toFixed(2)}×` : '',
    c.blocks === undefined ? '' : int(c.blocks),
    c.storedBytes === undefined ? '' : fixed(c.storedBytes / 1e6, 1),
    fixed(c.cpuSeconds, 2),
    fixed(c.serverCpuSeconds, 2),
    fixed(c.peakRssMiB, 0),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  // The case name reads best left-aligned, numbers right-aligned.
  const line = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  const body: string[] = [];
  cases.forEach((c, i) => {
    if (c.section !== cases[i - 1]?.section) body.push(`${c.section}: ${c.payloadBytes}-byte messages on ${subjectCount(c.keys)}`);
    body.push(line(rows[i]!));
  });
  const notes = cases.flatMap((c) => c.notes.map((n) => `  ${c.section} ${c.name}: ${n}`));
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body, ...(notes.length > 0 ? ['', 'notes:', ...notes] : [])].join('\n');
}

/** Writes bench/results/<ISO timestamp>.json and returns its path. */
export function writeReport(resultsDir: string, report: BenchReport): string {
  mkdirSync(resultsDir, { recursive: true });
  // Colons are not allowed in Windows file names.
  const file = path.join(resultsDir, `${report.startedAt.replace(/:/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}
