/**
 * `jetvault demo`: the whole round trip on this machine, through the library API. Two local
 * nats-servers (temp dirs, removed afterwards); sample orders on server A; capture (once) into
 * `<dir>/archive`; restore into server B; verify the archive against both; a short human summary.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, headers as natsHeaders, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { Command } from 'commander';
import { createCapture } from '../../machines/create-capture.js';
import { restore } from '../../restore/restore.js';
import { verify, type VerifyReport } from '../../restore/verify.js';
import { UsageError } from '../errors.js';
import { createStore } from '../stores/uri.js';
import { ExitCode } from './exit-codes.js';
import { natsServerBinary, startNatsServer, type NatsServer } from './local-nats-server.js';
import { createCliLogger, logFormatOption, logLevelOption, type LogFormat, type LogLevel } from './logger.js';
import { parsePositiveInt } from './parse.js';
import { prng } from './prng.js';
import { seconds, type CliContext } from './report.js';
import { verifyDifferenceLine, verifySummary } from './verify.js';

export interface DemoFlags {
  dir: string;
  messages: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
}

const STREAM = 'ORDERS';
const REGIONS = ['eu', 'us', 'apac'] as const;
/** A demo dir holds this file; only such a dir is cleared on the next run, never any other. */
const MARKER = '.jetvault-demo';

export function demoCommand(ctx: CliContext): Command {
  return new Command('demo')
    .description('run a full round trip on local nats-servers: publish, capture, restore, verify')
    .option('--dir <path>', 'where the archive goes (a previous demo dir is cleared first)', './jetvault-demo')
    .option('--messages <n>', 'sample orders to publish', (v) => parsePositiveInt(v, '--messages'), 2000)
    .addOption(logLevelOption())
    .addOption(logFormatOption())
    .action(async (flags: DemoFlags) => {
      ctx.exitCode = await runDemo(flags, ctx);
    });
}

export async function runDemo(flags: DemoFlags, ctx: CliContext): Promise<ExitCode> {
  const logger = createCliLogger(flags.logLevel, flags.logFormat);
  ctx.logger = logger;
  // Before touching anything: a missing nats-server is the likeliest problem, and it has one clear line.
  natsServerBinary();
  const dir = path.resolve(flags.dir);
  const archiveDir = path.join(dir, 'archive');
  prepareDemoDir(dir);

  const servers: NatsServer[] = [];
  let nc: NatsConnection | undefined;
  const cleanup = async () => {
    await nc?.close().catch(() => undefined);
    await Promise.all(servers.map((s) => s.dispose().catch(() => undefined)));
  };
  // Ctrl-C in the middle must not leave two nats-servers running or their temp dirs behind.
  const onSignal = () => void cleanup().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const [a, b] = await Promise.all([startNatsServer(), startNatsServer()]);
    servers.push(a, b);
    ctx.out(`jetvault demo: two local nats-servers, A ${a.url} and B ${b.url}`);

    nc = await connect({ servers: a.url, name: 'jetvault-demo' });
    const published = await publishOrders(nc, flags.messages);
    ctx.out(
      `published  ${flags.messages} orders to ${STREAM} on A (${REGIONS.map((r) => `orders.${r}`).join(', ')}; ` +
        `${published.withHeaders} with headers, ${published.multiValued} with a multi-valued header) in ${seconds(published.ms)} s`,
    );
    await nc.close();
    nc = undefined;

    const store = createStore(archiveDir);
    const capture = await createCapture({ servers: a.url, stream: STREAM, store, once: true, compression: 'gzip', maxMessages: 500, logger }).done;
    const files = blockFiles(archiveDir);
    ctx.out(
      `captured   ${capture.messages} messages in ${capture.blocks} blocks (${capture.storedBytes} bytes, gzip) ` +
        `via consumer ${capture.consumer} in ${seconds(capture.durationMs)} s`,
    );
    ctx.out(`           ${files.count} block files (${files.bytes} bytes) in ${path.relative(process.cwd(), archiveDir) || archiveDir}`);

    const restored = await restore({ from: store, servers: b.url, logger });
    ctx.out(
      `restored   ${restored.messages} messages from ${restored.blocks} blocks into ${restored.targetStream} on B ` +
        `(${restored.createdStream ? 'created' : 'existing'}) in ${seconds(restored.durationMs)} s`,
    );

    const checks: Array<[string, VerifyReport]> = [
      ['A', await verify({ from: store, servers: a.url, stream: STREAM, logger })],
      ['B', await verify({ from: store, servers: b.url, stream: restored.targetStream, logger })],
    ];
    for (const [name, report] of checks) ctx.out(`verified   archive against ${name}: ${verifySummary(report)}`);
    await store.close?.();

    const failed = checks.filter(([, report]) => !report.ok);
    for (const [name, report] of failed) {
      for (const d of report.differences.slice(0, 10)) ctx.out(`  ${name}: ${verifyDifferenceLine(d)}`);
    }
    if (failed.length > 0 || restored.messages !== flags.messages) {
      ctx.out(`round trip FAILED: ${restored.messages}/${flags.messages} restored, ${failed.length} of 2 verifications differ`);
      return ExitCode.mismatch;
    }
    ctx.out(`round trip verified: ${restored.messages}/${flags.messages} identical`);
    return ExitCode.ok;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }
}

/** Creates the demo dir, or clears one a previous demo made; refuses any other non-empty directory. */
export function prepareDemoDir(dir: string): void {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new UsageError(`--dir ${dir} exists and is not a directory`);
    const entries = readdirSync(dir);
    if (entries.length > 0 && !entries.includes(MARKER)) {
      throw new UsageError(`--dir ${dir} is not empty and was not made by jetvault demo; choose another --dir`);
    }
    rmSync(dir, { recursive: true, force: true });
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, MARKER), 'made by `jetvault demo`; the next demo run clears this directory\n');
}

const PRODUCTS = ['kettle', 'teapot', 'mug', 'grinder', 'filter', 'scale', 'tin', 'spoon'];
const CURRENCY = { eu: 'EUR', us: 'USD', apac: 'SGD' } as const;

async function publishOrders(nc: NatsConnection, count: number): Promise<{ withHeaders: number; multiValued: number; ms: number }> {
  const started = Date.now();
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: STREAM, subjects: ['orders.>'] });
  const js = jetstream(nc);
  const random = prng(0x0de5);
  let withHeaders = 0;
  let multiValued = 0;
  // A window of acks in flight: far faster than one round trip per message, still confirmed by the stream.
  const window = 256;
  for (let start = 0; start < count; start += window) {
    const pending: Promise<unknown>[] = [];
    for (let i = start; i < Math.min(count, start + window); i++) {
      const region = REGIONS[i % REGIONS.length]!;
      const items = Array.from({ length: 1 + Math.floor(random() * 3) }, () => ({
        sku: PRODUCTS[Math.floor(random() * PRODUCTS.length)]!,
        qty: 1 + Math.floor(random() * 4),
        price: Math.round(500 + random() * 9500) / 100,
      }));
      const order = {
        id: `ord-${String(i + 1).padStart(6, '0')}`,
        region,
        customer: `cust-${Math.floor(random() * 500)}`,
        items,
        total: Math.round(items.reduce((sum, it) => sum + it.qty * it.price, 0) * 100) / 100,
        currency: CURRENCY[region],
        createdAt: new Date(Date.UTC(2024, 0, 1) + i * 37_000).toISOString(),
      };
      let hdrs: MsgHdrs | undefined;
      if (i % 4 === 0) {
        hdrs = natsHeaders();
        hdrs.set('Trace-Id', `trace-${i}`);
        withHeaders++;
        if (i % 12 === 0) {
          // Two values under one key: the archive must keep both, in order.
          hdrs.append('Tag', 'priority');
          hdrs.append('Tag', i % 24 === 0 ? 'gift' : 'repeat-customer');
          multiValued++;
        }
      }
      pending.push(js.publish(`orders.${region}`, JSON.stringify(order), hdrs ? { headers: hdrs } : undefined));
    }
    await Promise.all(pending);
  }
  return { withHeaders, multiValued, ms: Date.now() - started };
}

/** Block files and their bytes under the archive dir (manifests and temp files not counted). */
function blockFiles(dir: string): { count: number; bytes: number } {
  let count = 0;
  let bytes = 0;
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile() && !entry.name.endsWith('.manifest.json') && !entry.name.endsWith('.tmp')) {
        count++;
        bytes += statSync(p).size;
      }
    }
  };
  if (existsSync(dir)) walk(dir);
  return { count, bytes };
}
