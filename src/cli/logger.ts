/**
 * The CLI's logger: pino JSON lines on stderr (stdout carries only results), level from `--log-level`,
 * credentials redacted with the library's REDACT_PATHS and every line scrubbed by redactSecrets().
 */
import { Option } from 'commander';
import { pino, type Level, type Logger } from 'pino';
import { REDACT_PATHS } from '../logger.js';
import { redactSecrets } from '../redact.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = Level | 'silent';
export const DEFAULT_LOG_LEVEL: LogLevel = 'warn';

export function createCliLogger(level: LogLevel = DEFAULT_LOG_LEVEL): Logger {
  return pino(
    {
      name: 'jetvault',
      level,
      redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
    },
    redactingStderr(),
  );
}

/**
 * stderr, synchronous (so the last lines before process.exit() are not lost), with every line scrubbed
 * of secrets a store SDK may have put into an error message (signed URLs, connection-string keys).
 */
function redactingStderr(): { write(line: string): void } {
  const destination = pino.destination({ fd: 2, sync: true });
  return { write: (line: string) => void destination.write(redactSecrets(line)) };
}

/** `--log-level`, offered by every command. */
export function logLevelOption(): Option {
  return new Option('--log-level <level>', 'log level of the JSON log lines on stderr').choices(LOG_LEVELS).default(DEFAULT_LOG_LEVEL);
}
