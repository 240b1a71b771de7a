/**
 * Running the jetvault CLI as the bench's child process: the built CLI under the same node, with
 * child-usage.ts loaded so the child reports its own CPU time and peak RSS on exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CHILD_USAGE_MARKER, type ChildUsage } from './measure.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** This file runs as dist/bench/cli.js. */
const CLI = path.resolve(HERE, '../src/cli/main.js');
const CHILD_USAGE_HOOK = pathToFileURL(path.join(HERE, 'child-usage.js')).href;

export interface ChildRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface ChildOptions {
  /** Gets the child's pid, to sample it while it runs. */
  onSpawn?: (pid: number) => void;
  /** Added to this process's environment. */
  env?: Record<string, string>;
}

/** CLI processes still running: killed when the bench is interrupted, or they would outlive it. */
const running = new Set<ChildProcess>();

/** Kills every CLI process the bench started and that has not exited. */
export function killRunningChildren(): number {
  for (const child of running) child.kill('SIGKILL');
  return running.size;
}

/** Runs `node ARGS`, killed after timeoutMs. */
function runNode(args: string[], timeoutMs: number, options: ChildOptions = {}): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
    running.add(child);
    if (child.pid !== undefined) options.onSpawn?.(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      running.delete(child);
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Median wall time of `jetvault --version`: node start plus loading every module of the CLI. */
export async function cliStartupSeconds(): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const run = await runNode([CLI, '--version'], 30_000);
    if (run.code !== 0) throw new Error(`jetvault --version exited ${run.code}: ${run.stderr.slice(-500)}`);
    times.push((performance.now() - t0) / 1000);
  }
  return times.sort((a, b) => a - b)[1]!;
}

export interface CliCapture {
  /** From the summary line `captured N messages in K blocks (B bytes) …`. */
  messages: number;
  blocks: number;
  storedBytes: number;
  /** The child's own CPU and peak RSS; undefined if it died before reporting them. */
  usage: ChildUsage | undefined;
}

function childUsage(stderr: string): ChildUsage | undefined {
  const line = stderr.split('\n').find((l) => l.startsWith(CHILD_USAGE_MARKER));
  return line ? (JSON.parse(line.slice(CHILD_USAGE_MARKER.length)) as ChildUsage) : undefined;
}

/** `jetvault capture ARGS` (with --once among them); throws unless it exits 0 with its summary line. */
export async function cliCapture(args: readonly string[], timeoutMs: number, options?: ChildOptions): Promise<CliCapture> {
  const run = await runNode(['--import', CHILD_USAGE_HOOK, CLI, 'capture', ...args], timeoutMs, options);
  if (run.code !== 0) throw new Error(`jetvault capture exited ${run.code}: ${run.stderr.slice(-1000)}`);
  const summary = /captured (\d+) messages? in (\d+) blocks? \((\d+) bytes\)/.exec(run.stdout);
  if (!summary) throw new Error(`jetvault capture printed no summary: ${run.stdout.slice(-500)}`);
  return { messages: Number(summary[1]), blocks: Number(summary[2]), storedBytes: Number(summary[3]), usage: childUsage(run.stderr) };
}
