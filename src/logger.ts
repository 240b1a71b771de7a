/**
 * The library never creates a global logger: callers pass a pino logger (or a child). Without one,
 * jetvault stays silent.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function silentLogger(): Logger {
  return pino({ enabled: false });
}

/** Paths pino redacts in every jetvault log line (credentials in options, URIs with secrets). */
export const REDACT_PATHS = ['password', 'token', 'pass', 'user', 'sas', 'connectionString', '*.password', '*.token', '*.pass', '*.sas', '*.connectionString'];
