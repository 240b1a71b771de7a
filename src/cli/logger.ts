/**
 * The CLI's logger on stderr (stdout carries only results): pino JSON lines, or with `--log-format pretty`
 * pino-pretty's human lines. Level from `--log-level`; credentials redacted with the library's
 * REDACT_PATHS, and every line, in either format, scrubbed by redactSecrets().
 */
import { Option } from 'commander';
import { pino, type Level, type Logger } from 'pino';
import { createRequire } from 'node:module';
import { REDACT_PATHS } from '../logger.js';
import { redactSecrets } from '../redact.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = Level | 'silent';
export const DEFAULT_LOG_LEVEL: LogLevel = 'warn';

export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export const DEFAULT_LOG_FORMAT: LogFormat = 'json';

export interface CliLoggerOptions {
  /** Called before each line is written: a progress line on a TTY hides itself first. */
  beforeWrite?: () => void;
}

export function createCliLogger(level: LogLevel = DEFAULT_LOG_LEVEL, format: LogFormat = DEFAULT_LOG_FORMAT, options: CliLoggerOptions = {}): Logger {
  return pino(
    {
      name: 'jetvault',
      level,
      redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
    },
    redactingStderr(format, options.beforeWrite),
  );
}

/**
 * stderr, synchronous (so the last lines before process.exit() are not lost), with every line scrubbed
 * of secrets a store SDK may have put into an error message (signed URLs, connection-string keys).
 * Pretty lines are formatted in the same synchronous call (pino-pretty's prettyFactory, not its
 * asynchronous transform stream) and scrubbed before and after formatting: formatting unescapes JSON
 * strings, which could otherwise bring back a secret the JSON form hid.
 */
/** pino-pretty is only needed for `--log-format pretty`; loading it always cost the CLI ~40 files at start-up. */
function loadPinoPretty(): typeof import('pino-pretty') {
  return createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
}

function redactingStderr(format: LogFormat, beforeWrite?: () => void): { write(line: string): void } {
  const destination = pino.destination({ fd: 2, sync: true });
  const pretty =
    format === 'pretty'
      ? loadPinoPretty().prettyFactory({ colorize: process.stderr.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
      : undefined;
  return {
    write: (line: string) => {
      let text = redactSecrets(line);
      if (pretty) text = redactSecrets(pretty(text) ?? '');
      if (text === '') return;
      beforeWrite?.();
      destination.write(text);
    },
  };
}

/** `--log-level`, offered by every command. */
export function logLevelOption(): Option {
  return new Option('--log-level <level>', 'log level of the log lines on stderr').choices(LOG_LEVELS).default(DEFAULT_LOG_LEVEL);
}

/** `--log-format`, offered by every command that logs. */
export function logFormatOption(): Option {
  return new Option('--log-format <format>', 'format of the log lines on stderr: json for machines, pretty for reading')
    .choices(LOG_FORMATS)
    .default(DEFAULT_LOG_FORMAT);
}
