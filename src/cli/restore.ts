/**
 * `jetvault restore`: republishes an archive into a stream (created from the archived configuration
 * unless `--no-create`), and prints one summary line. Progress goes to stderr; losing the target is one
 * warn log line (the library's), and restore waits up to `--reconnect-timeout` for it to come back.
 */
import { Command } from 'commander';
import { restore, RESTORE_DEFAULTS, type RestoreOptions, type RestoreReport } from '../../restore/restore.js';
import { addStoreFlags, STORE_URI_HELP, storeFromFlags, type StoreFlags } from './store-flags.js';
import { ExitCode } from './exit-codes.js';
import { createCliLogger, logFormatOption, logLevelOption, type LogFormat, type LogLevel } from './logger.js';
import { collectServers, parseDuration } from './parse.js';
import { createProgress, quietOption } from './progress.js';
import { plural, seconds, type CliContext } from './report.js';

export interface RestoreFlags extends StoreFlags {
  from: string;
  server: string[];
  stream?: string;
  sourceStream?: string;
  /** commander's `--no-create`: true unless the flag is given. */
  create: boolean;
  append?: boolean;
  /** Milliseconds (parsed from a duration). */
  reconnectTimeout: number;
  quiet?: boolean;
  logLevel: LogLevel;
  logFormat: LogFormat;
}

export function restoreCommand(ctx: CliContext): Command {
  const command = new Command('restore')
    .description('republish an archive into a JetStream stream, in the original order')
    .requiredOption('--from <uri>', `the archive: ${STORE_URI_HELP}`)
    .requiredOption('--server <url>', 'target NATS server URL; repeat or comma-separate for several', collectServers)
    .option('--stream <name>', 'target stream (default: the archived stream name)')
    .option('--source-stream <name>', 'which archived stream, when the archive holds several')
    .option('--no-create', 'fail instead of creating a missing target stream')
    .option('--append', 'allow a target stream that already holds messages')
    .option(
      '--reconnect-timeout <duration>',
      'how long to wait for a lost target server (restart, dropped connection) before giving up',
      (value: string) => parseDuration(value, '--reconnect-timeout'),
      RESTORE_DEFAULTS.reconnectTimeoutMs,
    )
    .addOption(quietOption())
    .addOption(logLevelOption())
    .addOption(logFormatOption())
    .action(async (flags: RestoreFlags) => {
      ctx.exitCode = await runRestore(flags, ctx);
    });
  return addStoreFlags(command);
}

export async function runRestore(flags: RestoreFlags, ctx: CliContext): Promise<ExitCode> {
  const progress = createProgress({ label: 'restore', quiet: flags.quiet });
  const logger = createCliLogger(flags.logLevel, flags.logFormat, { beforeWrite: () => progress.clear() });
  ctx.logger = logger;
  // Resolved here so an unknown scheme is a usage error before anything connects.
  const store = storeFromFlags(flags.from, flags);
  try {
    const options: RestoreOptions = {
      from: store,
      servers: flags.server,
      create: flags.create,
      reconnectTimeoutMs: flags.reconnectTimeout ?? RESTORE_DEFAULTS.reconnectTimeoutMs,
      logger,
      // Also called on losing the target and on its return, so a long wait still shows where restore is.
      onProgress: (p) => progress.update(p.messagesDone, p.messagesTotal),
    };
    if (flags.stream !== undefined) options.stream = flags.stream;
    if (flags.sourceStream !== undefined) options.sourceStream = flags.sourceStream;
    if (flags.append) options.append = true;
    const report = await restore(options);
    progress.finish();
    ctx.out(restoreSummary(report));
    return ExitCode.ok;
  } catch (error) {
    progress.abort();
    throw error;
  } finally {
    await store.close?.();
  }
}

export function restoreSummary(report: RestoreReport): string {
  const duplicates = report.skippedDuplicates > 0 ? `; skipped ${plural(report.skippedDuplicates, 'duplicate')} held twice in the archive` : '';
  const reconnects =
    report.reconnects > 0 ? `; the target was lost ${report.reconnects === 1 ? 'once' : `${report.reconnects} times`}, restore waited ${seconds(report.reconnectMs)} s for it` : '';
  return (
    `restored ${plural(report.messages, 'message')} from ${plural(report.blocks, 'block')} into ${report.targetStream} ` +
    `(${report.createdStream ? 'created' : 'existing'}) in ${seconds(report.durationMs)} s${duplicates}${reconnects}`
  );
}
