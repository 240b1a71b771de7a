#!/usr/bin/env node
/**
 * The `jetvault` command. Each subcommand lives in its own file; this one wires them into commander,
 * turns every failure into one line on stderr (report.ts) and exits with the code from exit-codes.ts.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { UsageError } from '../errors.js';
import { VERSION } from '../version.js';

// The pinned AWS SDK runs on Node 20; its multi-line notice about future SDK releases would break the
// CLI's promise of one-line errors on stderr. The README states the supported Node versions instead.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
import { captureCommand } from './capture.js';
import { catCommand } from './cat.js';
import { demoCommand } from './demo.js';
import { ExitCode } from './exit-codes.js';
import { lsCommand } from './ls.js';
import { machinesCommand } from './machines.js';
import { fromCommanderError, processIO, reportError, type CliContext, type CliIO } from './report.js';
import { restoreCommand } from './restore.js';
import { verifyCommand } from './verify.js';

const COMMANDS = ['capture', 'restore', 'verify', 'ls', 'cat', 'machines', 'demo'] as const;

/**
 * commander prints its own errors and calls process.exit(); instead it throws here, so every usage error
 * goes through reportError as one line, while --help and --version still print to stdout and exit 0.
 */
function configure(command: Command, io: CliIO): Command {
  return command
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.out(text.replace(/\n$/, '')),
      // Only help shown for a usage error goes here; main() reports that error in one line instead.
      writeErr: () => undefined,
      outputError: () => undefined,
    })
    .showSuggestionAfterError(true)
    .allowExcessArguments(false);
}

export function buildProgram(ctx: CliContext): Command {
  const program = configure(new Command('jetvault'), ctx)
    .description('Capture NATS JetStream streams into compressed blocks, and restore them.')
    .version(VERSION, '-V, --version', 'print the jetvault version');
  for (const command of [captureCommand(ctx), restoreCommand(ctx), verifyCommand(ctx), lsCommand(ctx), catCommand(ctx), machinesCommand(ctx), demoCommand(ctx)]) {
    program.addCommand(configure(command, ctx));
  }
  return program;
}

/** Runs the CLI with these arguments (without `node` and the script) and returns the exit code. */
export async function main(argv: readonly string[], io: CliIO = processIO): Promise<ExitCode> {
  const ctx: CliContext = { ...io, exitCode: ExitCode.ok };
  try {
    // Without a command commander would print the whole help to stderr; one line says more.
    if (argv.length === 0) throw new UsageError(`missing command: one of ${COMMANDS.join(', ')} (see jetvault --help)`);
    await buildProgram(ctx).parseAsync([...argv], { from: 'user' });
    return ctx.exitCode;
  } catch (error) {
    if (error instanceof CommanderError && error.code === 'commander.help' && error.exitCode !== 0) {
      return reportError(new UsageError(`expected a command: ${COMMANDS.join(', ')} (see jetvault --help)`), ctx, ctx.logger);
    }
    if (error instanceof CommanderError && error.exitCode !== 0) return reportError(fromCommanderError(error, helpHint(argv)), ctx, ctx.logger);
    return reportError(error, ctx, ctx.logger);
  }
}

function helpHint(argv: readonly string[]): string {
  const command = COMMANDS.find((c) => c === argv[0]);
  return command ? `jetvault ${command} --help` : 'jetvault --help';
}

/** Exits once stdout has taken everything: open NATS timers must not keep a finished CLI alive. */
function exit(code: number): void {
  process.stdout.write('', () => process.exit(code));
}

// Run only as the entry point (npm links the bin, so real paths are compared), not when a test imports main().
function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  // `jetvault cat … | head` closes stdout early: the reader has what it wanted, which is not an error.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(ExitCode.ok);
    else process.exit(reportError(error, processIO));
  });
  // Errors outside any promise chain would otherwise print a stack trace.
  process.on('uncaughtException', (error) => exit(reportError(error, processIO)));
  process.on('unhandledRejection', (error) => exit(reportError(error, processIO)));
  main(process.argv.slice(2)).then(exit, (error: unknown) => exit(reportError(error, processIO)));
}
