/**
 * One round of bench cases, in order, each baseline right before its jetvault counterparts:
 * fill → bare consume+ack → capture (library, each format+compression) → capture (CLI)
 * → bare publish → restore → verify. The round deletes its streams at the end, so a warm-up round
 * leaves the servers as it found them.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { NatsServer } from '../src/cli/local-nats-server.js';
import { createCapture, FileStore, restore, verify, type CaptureReport, type Store } from '../src/index.js';
import { bareConsume, barePublish, fillStream, PAYLOAD_BYTES, streamConfig, timeoutFor } from './baselines.js';
import type { Cleanup } from './cleanup.js';
import { CHILD_USAGE_MARKER, measure, within, type ChildUsage, type Sample, type ServerCpu } from './measure.js';
import type { CaseResult } from './report.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** This file runs as dist/bench/cases.js. */
const CLI = path.resolve(HERE, '../src/cli/main.js');
const CHILD_USAGE_HOOK = pathToFileURL(path.join(HERE, 'child-usage.js')).href;
const BLOCK_MESSAGES = 100_000;

type Format = 'raw' | 'ndjson';
type CompressionName = 'none' | 'gzip' | 'snappy';

export interface Bench {
  /** Holds the source stream; capture and verify read from it. */
  source: NatsServer;
  /** Restore republishes to the archived subjects, so it needs a server without the source stream. */
  target: NatsServer;
  nc: NatsConnection;
  nc2: NatsConnection;
  serverCpu: ServerCpu;
  cleanup: Cleanup;
}

export interface Round {
  messages: number;
  /** Prefix of every stream name, so rounds never share a stream. */
  prefix: string;
  captures: ReadonlyArray<readonly [Format, CompressionName]>;
  onResult?: (result: CaseResult) => void;
}

function result(name: string, messages: number, sample: Sample, extra: Partial<CaseResult> = {}): CaseResult {
  return {
    name,
    messages,
    seconds: sample.seconds,
    msgsPerSec: messages / sample.seconds,
    mbPerSec: (messages * PAYLOAD_BYTES) / 1e6 / sample.seconds,
    cpuSeconds: sample.cpuSeconds,
    serverCpuSeconds: sample.serverCpuSeconds,
    peakRssMiB: sample.peakRssMiB,
    notes: [],
    ...extra,
  };
}

const ratioTo = (baseline: CaseResult, msgsPerSec: number) => ({ to: baseline.name, value: msgsPerSec / baseline.msgsPerSec });

function expectAll(what: string, got: number, messages: number): void {
  if (got !== messages) throw new Error(`${what} handled ${got} messages, expected ${messages}`);
}

interface CaptureOutcome {
  report: CaptureReport;
  /** Seal reason → blocks: block sizes depend on more than maxMessages (ack-pending seals at half of max_ack_pending). */
  seals: Record<string, number>;
}

/** A library capture --once into a fresh FileStore; stopped if it overruns, so it cannot hang the bench. */
async function captureOnce(url: string, stream: string, consumer: string, dir: string, format: Format, compression: CompressionName, messages: number): Promise<CaptureOutcome> {
  const store: Store = new FileStore(dir);
  const handle = createCapture({ servers: url, stream, consumer, store, format, compression, once: true, maxMessages: BLOCK_MESSAGES });
  const seals: Record<string, number> = {};
  handle.on('block.sealed', (e) => (seals[e.reason] = (seals[e.reason] ?? 0) + 1));
  try {
    return { report: await within(handle.done, timeoutFor(messages), `capture ${format}+${compression}`), seals };
  } catch (error) {
    await handle.stop();
    throw error;
  } finally {
    await store.close?.();
  }
}

interface ChildRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runNode(args: string[], timeoutMs: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Median wall time of `jetvault --version`: node start plus loading every module of the CLI. */
async function cliStartupSeconds(): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const run = await runNode([CLI, '--version'], 30_000);
    if (run.code !== 0) throw new Error(`jetvault --version exited ${run.code}: ${run.stderr.slice(-500)}`);
    times.push((performance.now() - t0) / 1000);
  }
  return times.sort((a, b) => a - b)[1]!;
}

function childUsage(stderr: string): ChildUsage | undefined {
  const line = stderr.split('\n').find((l) => l.startsWith(CHILD_USAGE_MARKER));
  return line ? (JSON.parse(line.slice(CHILD_USAGE_MARKER.length)) as ChildUsage) : undefined;
}

export async function runRound(bench: Bench, round: Round): Promise<CaseResult[]> {
  const { source, target, nc, nc2, serverCpu, cleanup } = bench;
  const n = round.messages;
  const sourceStream = `${round.prefix}BENCH`;
  const publishStream = `${round.prefix}PUB`;
  const restoreStream = `${round.prefix}R1`;
  const jsm = await jetstreamManager(nc);
  const jsm2 = await jetstreamManager(nc2);
  const results: CaseResult[] = [];
  const done = (r: CaseResult) => {
    results.push(r);
    round.onResult?.(r);
    return r;
  };

  await fillStream(nc, sourceStream, n);

  // Capture: the bare loop, then the library, then the CLI. Each consumer is deleted after its case, so
  // every case finds the same server state.
  const consumed = await measure(serverCpu, () => bareConsume(nc, sourceStream, 'bare_consume', n));
  const consumeBaseline = result('bare consume+ack', n, consumed.sample);
  consumeBaseline.notes.push('includes creating the consumer; ends when the ack flush returns');
  if (consumed.value.ackPendingAfter > 0) consumeBaseline.notes.push(`${consumed.value.ackPendingAfter} acks still pending at the server after the flush`);
  done(consumeBaseline);

  let archiveDir: string | undefined;
  for (const [format, compression] of round.captures) {
    const dir = cleanup.tempDir('jv-bench-store-');
    const consumer = `lib_${format}_${compression}`;
    const captured = await measure(serverCpu, () => captureOnce(source.url, sourceStream, consumer, dir, format, compression, n));
    const { report, seals } = captured.value;
    expectAll(`capture ${format}+${compression}`, report.messages, n);
    await jsm.consumers.delete(sourceStream, consumer);
    const r = result(`capture lib ${format}+${compression}`, n, captured.sample, { storedBytes: report.storedBytes });
    r.ratio = ratioTo(consumeBaseline, r.msgsPerSec);
    if (format === 'raw' && compression === 'none') r.notes.push('includes connecting and the --once caught-up check (consumer info polls)');
    r.notes.push(`${report.blocks} block${report.blocks === 1 ? '' : 's'}, sealed by ${Object.entries(seals).map(([reason, k]) => `${reason} ×${k}`).join(', ')}`);
    if (report.abandonedBlocks > 0) r.notes.push(`${report.abandonedBlocks} blocks abandoned`);
    done(r);
    // The raw+none archive is what restore and verify read; the others only take disk space.
    if (format === 'raw' && compression === 'none') archiveDir = dir;
    else rmSync(dir, { recursive: true, force: true });
  }
  if (!archiveDir) throw new Error('the round has no raw+none capture, which restore and verify need');

  const startup = await cliStartupSeconds();
  {
    const dir = cleanup.tempDir('jv-bench-cli-');
    const consumer = 'cli_raw_none';
    const args = ['--import', CHILD_USAGE_HOOK, CLI, 'capture', '--server', source.url, '--stream', sourceStream, '--consumer', consumer, '--store', dir, '--once', '--max-messages', String(BLOCK_MESSAGES)];
    const ran = await measure(serverCpu, () => runNode(args, timeoutFor(n)));
    if (ran.value.code !== 0) throw new Error(`jetvault capture exited ${ran.value.code}: ${ran.value.stderr.slice(-1000)}`);
    expectAll('CLI capture', Number(/captured (\d+) message/.exec(ran.value.stdout)?.[1] ?? -1), n);
    await jsm.consumers.delete(sourceStream, consumer);
    rmSync(dir, { recursive: true, force: true });
    const usage = childUsage(ran.value.stderr);
    // CPU and RSS of the CLI process itself, not of the bench that spawned it.
    const r = result('capture CLI raw+none', n, ran.sample, {
      storedBytes: Number(/\((\d+) bytes\)/.exec(ran.value.stdout)?.[1] ?? Number.NaN),
      cpuSeconds: usage?.cpuSeconds ?? Number.NaN,
      peakRssMiB: usage?.peakRssMiB ?? Number.NaN,
    });
    r.ratio = ratioTo(consumeBaseline, r.msgsPerSec);
    const withoutStartup = n / (ran.sample.seconds - startup);
    r.notes.push(
      `wall clock of the whole process; start-up alone (jetvault --version, median of 3) ${startup.toFixed(2)} s`,
      `without start-up: ${Math.round(withoutStartup).toLocaleString('en-US')} msgs/s, ${(withoutStartup / consumeBaseline.msgsPerSec).toFixed(2)}× bare`,
      'CPU s and peak RSS are those of the CLI process',
    );
    done(r);
  }

  // Restore: the bare loop, then the library, both into the target server.
  await jsm2.streams.add(streamConfig(publishStream));
  const published = await measure(serverCpu, () => within(barePublish(nc2, n), timeoutFor(n), 'bare publish'));
  const publishBaseline = done(result('bare publish (256 in flight)', n, published.sample));
  // Its subjects overlap the restore target's, which the server refuses while both exist.
  await jsm2.streams.delete(publishStream);

  const from = archiveDir;
  const restored = await measure(serverCpu, () => within(restore({ from, servers: target.url, stream: restoreStream }), timeoutFor(n), 'restore'));
  expectAll('restore', restored.value.messages, n);
  const r = result('restore raw+none', n, restored.sample);
  r.ratio = ratioTo(publishBaseline, r.msgsPerSec);
  r.notes.push('includes checksumming every block first (precheck) and creating the stream');
  done(r);

  const verified = await measure(serverCpu, () => within(verify({ from, servers: source.url, stream: sourceStream }), timeoutFor(n), 'verify'));
  if (!verified.value.ok) throw new Error(`verify found differences: ${JSON.stringify(verified.value.differences.slice(0, 3))}`);
  expectAll('verify', verified.value.archivedMessages, n);
  done(result('verify raw+none', n, verified.sample)).notes.push(`${verified.value.mode} mode: reads the archive and the whole source stream`);

  rmSync(archiveDir, { recursive: true, force: true });
  await jsm.streams.delete(sourceStream);
  await jsm2.streams.delete(restoreStream);
  return results;
}
