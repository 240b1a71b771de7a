/**
 * The CLI's exit codes, and the one place JetvaultError codes map to them (the library only throws).
 */
import { JetvaultError } from '../errors.js';

export const ExitCode = {
  ok: 0,
  /** Something failed at run time: unreachable server, missing stream, store error. */
  error: 1,
  /** The command line itself is wrong: unknown option, bad value, unknown store scheme. */
  usage: 2,
  /** `verify` found the archive and the stream differ, or a block is corrupt. */
  mismatch: 3,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export function exitCodeFor(error: unknown): ExitCode {
  if (error instanceof JetvaultError && error.code === 'JV_USAGE') return ExitCode.usage;
  return ExitCode.error;
}
