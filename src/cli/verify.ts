/**
 * `jetvault verify`: compares an archive with a live stream. Identical → exit 0 and one line; any
 * difference or corrupt block → exit 3, a summary and up to 10 difference lines on stdout.
 */
import { Command } from 'commander';
import { verify, type VerifyDifference, type VerifyOptions, type VerifyReport } from '../../restore/verify.js';
import { CorruptBlockError } from '../errors.js';
import { addStoreFlags, STORE_URI_HELP, storeFromFlags, type StoreFlags } from './store-flags.js';
import { ExitCode } from './exit-codes.js';
import { createCliLogger, logFormatOption, logLevelOption, type LogFormat, type LogLevel } from './logger.js';
import { collectServers } from './parse.js';
import { createProgress, quietOption } from './progress.js';
import { oneLine, plural, type CliContext } from './report.js';

export interface VerifyFlags extends StoreFlags {
  from: string;
  server: string[];
  stream: string;
  sourceStream?: string;
  quiet?: boolean;
  logLevel: LogLevel;
  logFormat: LogFormat;
}

const MAX_DIFFERENCE_LINES = 10;

export function verifyCommand(ctx: CliContext): Command {
  const command = new Command('verify')
    .description('compare an archive with a stream, message by message (exit 3 when they differ)')
    .requiredOption('--from <uri>', `the archive: ${STORE_URI_HELP}`)
    .requiredOption('--server <url>', 'NATS server URL; repeat or comma-separate for several', collectServers)
    .requiredOption('--stream <name>', 'the stream to compare with (the source, or a restored copy)')
    .option('--source-stream <name>', 'which archived stream, when the archive holds several')
    .addOption(quietOption())
    .addOption(logLevelOption())
    .addOption(logFormatOption())
    .action(async (flags: VerifyFlags) => {
      ctx.exitCode = await runVerify(flags, ctx);
    });
  return addStoreFlags(command);
}

export async function runVerify(flags: VerifyFlags, ctx: CliContext): Promise<ExitCode> {
  const progress = createProgress({ label: 'verify', quiet: flags.quiet });
  const logger = createCliLogger(flags.logLevel, flags.logFormat, { beforeWrite: () => progress.clear() });
  ctx.logger = logger;
  // Resolved here so an unknown scheme is a usage error before anything connects.
  const store = storeFromFlags(flags.from, flags);
  try {
    const options: VerifyOptions = {
      from: store,
      servers: flags.server,
      stream: flags.stream,
      maxDifferences: MAX_DIFFERENCE_LINES,
      logger,
      onProgress: (p) => progress.update(p.messagesDone, p.messagesTotal),
    };
    if (flags.sourceStream !== undefined) options.sourceStream = flags.sourceStream;
    const report = await verify(options);
    progress.finish();
    if (report.ok) {
      ctx.out(`verified: ${verifySummary(report)}`);
      return ExitCode.ok;
    }
    ctx.out(`verification FAILED: ${verifySummary(report)}`);
    for (const d of report.differences.slice(0, MAX_DIFFERENCE_LINES)) ctx.out(`  ${verifyDifferenceLine(d)}`);
    const more = differenceCount(report) - Math.min(report.differences.length, MAX_DIFFERENCE_LINES);
    if (more > 0) ctx.out(`  … and ${more} more`);
    return ExitCode.mismatch;
  } catch (error) {
    progress.abort();
    // A block that cannot be read is a verification result, not a failure of the tool.
    if (error instanceof CorruptBlockError) {
      ctx.out(`verification FAILED: block ${error.blockKey} is corrupt`);
      ctx.out(`  ${oneLine(error.message)}`);
      return ExitCode.mismatch;
    }
    throw error;
  } finally {
    await store.close?.();
  }
}

function differenceCount(report: VerifyReport): number {
  return report.missingInStream + report.missingInArchive + report.different + report.corruptBlocks.length;
}

/** `2000 messages identical (sequence mode)`, or the counts of what differs. */
export function verifySummary(report: VerifyReport): string {
  const where = `${report.stream} (${report.mode} mode)`;
  if (report.ok) return `${plural(report.matched, 'message')} identical in ${where}`;
  const counts = [
    report.missingInStream > 0 ? `${report.missingInStream} missing in the stream` : '',
    report.missingInArchive > 0 ? `${report.missingInArchive} missing in the archive` : '',
    report.different > 0 ? `${report.different} different` : '',
    report.corruptBlocks.length > 0 ? `${report.corruptBlocks.length} corrupt blocks (${report.corruptBlocks.slice(0, 3).join(', ')}${report.corruptBlocks.length > 3 ? ', …' : ''})` : '',
  ].filter((s) => s !== '');
  return `${report.matched} of ${report.archivedMessages} archived messages identical in ${where}; ${counts.join(', ')}`;
}

export function verifyDifferenceLine(d: VerifyDifference): string {
  const seq = d.seq !== undefined ? ` seq ${d.seq}` : '';
  const block = d.blockKey !== undefined ? ` block ${d.blockKey}` : '';
  return oneLine(`${d.kind}${seq}${block}: ${d.detail}`);
}
