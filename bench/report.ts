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

export interface CaseResult {
  name: string;
  messages: number;
  seconds: number;
  msgsPerSec: number;
  /** Payload bytes (10^6) per second; subjects and headers not counted. */
  mbPerSec: number;
  /** Throughput divided by the named baseline's, measured in the same run. */
  ratio?: { to: string; value: number };
  storedBytes?: number;
  cpuSeconds: number;
  serverCpuSeconds: number | undefined;
  peakRssMiB: number;
  notes: string[];
}

export interface BenchReport {
  startedAt: string;
  machine: Machine;
  options: { messages: number; payloadBytes: number; quick: boolean };
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

export function formatTable(cases: readonly CaseResult[]): string {
  const header = ['case', 'msgs', 's', 'msgs/s', 'MB/s', 'ratio', 'stored MB', 'CPU s', 'server CPU s', 'peak RSS MiB'];
  const rows = cases.map((c) => [
    c.name,
    int(c.messages),
    fixed(c.seconds, 2),
    int(c.msgsPerSec),
    fixed(c.mbPerSec, 1),
    c.ratio ? `${c.ratio.value.toFixed(2)}×` : '',
    c.storedBytes === undefined ? '' : fixed(c.storedBytes / 1e6, 1),
    fixed(c.cpuSeconds, 2),
    fixed(c.serverCpuSeconds, 2),
    fixed(c.peakRssMiB, 0),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  // The case name reads best left-aligned, numbers right-aligned.
  const line = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  const notes = cases.flatMap((c) => c.notes.map((n) => `  ${c.name}: ${n}`));
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line), ...(notes.length > 0 ? ['', 'notes:', ...notes] : [])].join('\n');
}

/** Writes bench/results/<ISO timestamp>.json and returns its path. */
export function writeReport(resultsDir: string, report: BenchReport): string {
  mkdirSync(resultsDir, { recursive: true });
  // Colons are not allowed in Windows file names.
  const file = path.join(resultsDir, `${report.startedAt.replace(/:/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}
