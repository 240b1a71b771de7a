/**
 * `npm run bench [-- --quick | --messages N]`: jetvault's capture, restore and verify against bare
 * nats.js loops doing the same work, side by side in one run on two local nats-servers, so the result
 * is a ratio that means something on any machine. The cases are in cases.ts.
 *
 * A small warm-up round runs first and is discarded: without it the first case of each kind pays for
 * V8 compiling its hot path (a cold capture of 50,000 messages took about a third longer than a warm one).
 *
 * Prints a table to stdout (progress to stderr) and writes the same as bench/results/<ISO time>.json.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect } from '@nats-io/transport-node';
import { startNatsServer } from '../src/cli/local-nats-server.js';
import { PAYLOAD_BYTES } from './baselines.js';
import { runRound, type Bench, type Round } from './cases.js';
import { Cleanup } from './cleanup.js';
import { ServerCpu } from './measure.js';
import { describeMachine, formatTable, loadAverage, machineLines, writeReport, type BenchReport, type CaseResult } from './report.js';

/** This file runs as dist/bench/capture.js. */
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RESULTS_DIR = path.join(REPO, 'bench/results');
const WARM_UP_MESSAGES = 10_000;

interface BenchOptions {
  messages: number;
  quick: boolean;
}

function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({ args: argv, options: { quick: { type: 'boolean', default: false }, messages: { type: 'string' } } });
  const quick = values.quick ?? false;
  let messages = quick ? 50_000 : 200_000;
  if (values.messages !== undefined) {
    messages = Number(values.messages);
    if (!Number.isSafeInteger(messages) || messages <= 0) throw new Error(`--messages must be a positive integer, got ${values.messages}`);
  }
  return { messages, quick };
}

const progress = (text: string) => process.stderr.write(`bench: ${text}\n`);
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

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const startedAt = new Date().toISOString();
  const machine = describeMachine(REPO);
  console.log(machineLines(machine).join('\n'));
  if (machine.loadBefore > machine.cpus) progress(`load average ${machine.loadBefore} on ${machine.cpus} CPUs: other work will skew the numbers`);

  const cleanup = new Cleanup();
  const interrupted = (signal: NodeJS.Signals) => {
    progress(`${signal}: cleaning up`);
    void cleanup.run().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    progress('starting two nats-servers');
    const bench = await startBench(cleanup);
    const captures: Round['captures'] = [['raw', 'none'], ['raw', 'gzip'], ['raw', 'snappy'], ...(options.quick ? [] : [['ndjson', 'gzip'] as const])];

    const warmUp = Math.min(WARM_UP_MESSAGES, options.messages);
    progress(`warm-up round, ${count(warmUp)} messages (discarded)`);
    await runRound(bench, { messages: warmUp, prefix: 'W', captures });

    progress(`measured round, ${count(options.messages)} messages of ${PAYLOAD_BYTES} bytes`);
    const cases: CaseResult[] = await runRound(bench, {
      messages: options.messages,
      prefix: '',
      captures,
      onResult: (r) => progress(`${r.name}: ${count(r.msgsPerSec)} msgs/s in ${r.seconds.toFixed(2)} s`),
    });

    machine.loadAfter = loadAverage();
    const report: BenchReport = { startedAt, machine, options: { messages: options.messages, payloadBytes: PAYLOAD_BYTES, quick: options.quick }, cases };
    console.log(
      [
        '',
        formatTable(cases),
        '',
        'MB = 10^6 payload bytes; ratio = msgs/s ÷ its baseline above; peak RSS = process high-water mark so far',
        `load average after the run: ${machine.loadAfter}`,
        `written to ${path.relative(process.cwd(), writeReport(RESULTS_DIR, report))}`,
      ].join('\n'),
    );
  } finally {
    await cleanup.run();
  }
}

main().catch((error: unknown) => {
  console.error(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
});
