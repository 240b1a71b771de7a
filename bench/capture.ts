/**
 * `npm run bench [-- flags]` (see options.ts, or --help): jetvault's capture, restore and verify against
 * bare nats.js loops doing the same work, side by side in one run on two local nats-servers, so the
 * result is a ratio that means something on any machine. What runs is in plan.ts, how in cases.ts
 * (and memory.ts for the memory case).
 *
 * A small warm-up section runs first and is discarded: without it the first case of each kind pays for
 * V8 compiling its hot path (a cold capture of 50,000 messages took about a third longer than a warm one).
 * CLI cases run in fresh processes and are never warm.
 *
 * Prints a table to stdout (progress to stderr) and writes the same as bench/results/<ISO time>.json.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { startNatsServer } from '../src/cli/local-nats-server.js';
import { runSection, type Bench } from './cases.js';
import { Cleanup } from './cleanup.js';
import { cliStartupSeconds, killRunningChildren } from './cli.js';
import { ServerCpu } from './measure.js';
import { runMemoryCase } from './memory.js';
import { BenchUsageError, parseOptions, USAGE, type BenchOptions } from './options.js';
import { buildPlan, planCaseNames, stepName, type Plan, type Section, type Step } from './plan.js';
import { describeMachine, formatTable, loadAverage, machineLines, writeReport, type BenchReport, type CaseResult } from './report.js';

/** This file runs as dist/bench/capture.js. */
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RESULTS_DIR = path.join(REPO, 'bench/results');
const WARM_UP_MESSAGES = 5_000;
const WARM_UP_KEYS = 8;

const T0 = performance.now();
const progress = (text: string) => process.stderr.write(`bench [${((performance.now() - T0) / 1000).toFixed(1)} s]: ${text}\n`);
const count = (n: number) => Math.round(n).toLocaleString('en-US');

async function startBench(cleanup: Cleanup): Promise<Bench> {
  const source = await startNatsServer();
  cleanup.add(() => source.dispose());
  const target = await startNatsServer();
  cleanup.add(() => target.dispose());
  // The same client settings jetvault uses, so the baselines are the ceiling for the same client.
  const nc = await connect({ servers: source.url, noAsyncTraces: true });
  cleanup.add(() => nc.close());
  const nc2 = await connect({ servers: target.url, noAsyncTraces: true });
  cleanup.add(() => nc2.close());
  return { source, target, nc, nc2, serverCpu: new ServerCpu([source.storeDir, target.storeDir]), cleanup };
}

/**
 * One small section with every in-process step of the plan (CLI steps run in fresh processes anyway),
 * on a few keys so the multi-key paths are compiled too; undefined when the plan has none.
 */
function warmUpSection(plan: Plan, options: BenchOptions): Section | undefined {
  const steps = new Map<string, Step>();
  for (const step of plan.sections.flatMap((s) => s.steps)) {
    if (!(step.kind === 'capture' && step.via === 'cli')) steps.set(stepName(step), step);
  }
  if (steps.size === 0) return undefined;
  return { name: 'warm-up', workload: { payloadBytes: 100, keys: WARM_UP_KEYS, messages: Math.min(WARM_UP_MESSAGES, options.messages) }, steps: [...steps.values()] };
}

function legend(cases: readonly CaseResult[], startup: number | undefined): string[] {
  const lines = [
    'MB = 10^6 payload bytes; ratio = msgs/s ÷ that of the bare baseline of the same section (same message size and keys), measured in this run',
    'bare and lib rows: CPU s of the bench process; peak RSS = its RSS sampled every 10 ms during the case, after a full GC (includes the bench itself)',
    'capture lib: includes connecting and the --once caught-up check; restore: includes the checksum pre-pass and creating the stream; verify reads the archive and the whole stream',
  ];
  if (startup !== undefined) {
    lines.push(`CLI rows: wall clock of the whole process, start-up included (jetvault --version alone: ${startup.toFixed(2)} s, median of 3); CPU s and peak RSS of the CLI process(es)`);
  }
  if (cases.some((c) => c.serverCpuSeconds !== undefined)) lines.push('server CPU s: both nats-servers, which share the cores with the client');
  return lines;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (!options) {
    console.log(USAGE);
    return;
  }
  const plan = buildPlan(options);
  const names = planCaseNames(plan);
  if (options.list || names.length === 0) {
    console.log(names.length > 0 ? names.join('\n') : 'no case matches --only/--filter');
    return;
  }
  const startedAt = new Date().toISOString();
  const machine = describeMachine(REPO);
  console.log(machineLines(machine).join('\n'));
  if (machine.loadBefore > machine.cpus) progress(`load average ${machine.loadBefore} on ${machine.cpus} CPUs: other work will skew the numbers`);

  const cleanup = new Cleanup();
  const interrupted = (signal: NodeJS.Signals) => {
    const killed = killRunningChildren();
    progress(`${signal}: cleaning up${killed > 0 ? ` (killed ${killed} CLI process${killed > 1 ? 'es' : ''})` : ''}`);
    void cleanup.run().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    progress(`${names.length} cases; starting two nats-servers`);
    const bench = await startBench(cleanup);
    const hasCli = plan.memory !== undefined || plan.sections.some((s) => s.steps.some((step) => step.kind === 'capture' && step.via === 'cli'));
    const startup = hasCli ? await cliStartupSeconds() : undefined;

    const warmUp = warmUpSection(plan, options);
    if (warmUp) {
      progress(`warm-up: ${warmUp.steps.length} cases of ${count(warmUp.workload.messages)} messages on ${WARM_UP_KEYS} keys (discarded)`);
      await runSection(bench, warmUp, 'W');
      progress('warm-up done');
    }

    const cases: CaseResult[] = [];
    const onResult = (r: CaseResult) => {
      cases.push(r);
      progress(`${r.section} ${r.name}: ${count(r.msgsPerSec)} msgs/s in ${r.seconds.toFixed(2)} s`);
    };
    for (const [i, section] of plan.sections.entries()) {
      progress(`${section.name}: filling ${count(section.workload.messages)} messages`);
      await runSection(bench, section, `B${i}`, onResult, options.repeat);
    }
    if (plan.memory) {
      progress(`${plan.memory.name}: filling ${count(plan.memory.workload.messages)} messages`);
      onResult(await runMemoryCase(bench, plan.memory, 'M'));
    }

    machine.loadAfter = loadAverage();
    const report: BenchReport = {
      startedAt,
      machine,
      options: {
        quick: options.quick,
        messages: options.messages,
        memoryMessages: options.memoryMessages,
        only: [...options.only],
        repeat: options.repeat,
        ...(options.filter ? { filter: options.filter.source } : {}),
      },
      ...(startup !== undefined ? { cliStartupSeconds: startup } : {}),
      cases,
    };
    console.log(
      [
        '',
        formatTable(cases),
        '',
        ...legend(cases, startup),
        `load average after the run: ${machine.loadAfter}`,
        `written to ${path.relative(process.cwd(), writeReport(RESULTS_DIR, report))}`,
      ].join('\n'),
    );
  } finally {
    await cleanup.run();
  }
}

main().catch((error: unknown) => {
  if (error instanceof BenchUsageError) {
    console.error(`bench: ${error.message} (see --help)`);
    process.exitCode = 2;
    return;
  }
  console.error(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
});
