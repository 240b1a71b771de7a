/**
 * Where the CLI writes, and how any error becomes one line on stderr: `jetvault: <message> (<code>)`.
 * Never a stack trace; an unexpected error gets a second line pointing at `--log-level debug`, which
 * logs the details (the stack inside one JSON log line).
 */
import { CommanderError } from 'commander';
import { describeError, JetvaultError, UsageError } from '../errors.js';
import type { Logger } from '../logger.js';
import { ExitCode, exitCodeFor } from './exit-codes.js';

export interface CliIO {
  /** One result line on stdout. */
  out(line: string): void;
  /** One line for the user on stderr. */
  err(line: string): void;
}

/** What a command shares with main: where to write, its logger (for reportError), its exit code. */
export interface CliContext extends CliIO {
  logger?: Logger;
  exitCode: ExitCode;
}

export const processIO: CliIO = {
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line) => void process.stderr.write(`${line}\n`),
};

const MAX_LINE = 500;

/** Newlines (commander's "Did you mean" hint, multi-line causes) folded into one line, kept short. */
export function oneLine(text: string): string {
  const line = text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
  return line.length > MAX_LINE ? `${line.slice(0, MAX_LINE - 1)}…` : line;
}

/** commander's own errors (unknown option, missing required option, bad choice) as UsageErrors. */
export function fromCommanderError(error: CommanderError, helpHint?: string): UsageError {
  const message = oneLine(error.message.replace(/^error:\s*/i, ''));
  // No cause: it would only repeat the same message in the report line.
  return new UsageError(helpHint ? `${message} (see ${helpHint})` : message);
}

/** The stderr lines for an error; 1 line, or 2 when the error was not one jetvault expected. */
export function errorLines(error: unknown): string[] {
  if (error instanceof JetvaultError) return [`jetvault: ${oneLine(describeError(error))} (${error.code})`];
  const code = (error as { code?: unknown } | null)?.code;
  const suffix = typeof code === 'string' || typeof code === 'number' ? ` (${code})` : '';
  return [
    `jetvault: unexpected error: ${oneLine(describeError(error))}${suffix}`,
    'jetvault: rerun with --log-level debug to see details',
  ];
}

/** Writes the error's lines to stderr, logs the details at debug, and returns the exit code. */
export function reportError(error: unknown, io: CliIO, logger?: Logger): ExitCode {
  if (error instanceof CommanderError) {
    // --help and --version end with a CommanderError whose exit code is 0: not an error at all.
    if (error.exitCode === 0) return ExitCode.ok;
    error = fromCommanderError(error);
  }
  logger?.debug({ err: error }, 'command failed');
  for (const line of errorLines(error)) io.err(line);
  return exitCodeFor(error);
}

/** Durations in summaries: `0.42`, `12.3` (seconds, without the unit). */
export function seconds(ms: number): string {
  return (ms / 1000).toFixed(ms < 10_000 ? 2 : 1);
}

/** `1 block`, `6 blocks`. */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
