import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/errors.js';
import { ExitCode, exitCodeFor } from '../src/cli/exit-codes.js';
import {
  collectServers,
  formatDuration,
  formatSize,
  MAX_DURATION_MS,
  parseDuration,
  parsePositiveInt,
  parseSize,
} from '../src/cli/parse.js';
import { errorLines, oneLine } from '../src/cli/report.js';
import { JetvaultError } from '../src/errors.js';

/** The UsageError a call throws (fails the test when it does not throw one). */
function usageError(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return error as UsageError;
  }
  throw new Error('expected a UsageError');
}

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['15m', 900_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['1m30s', 90_000],
    ['1.5s', 1_500],
    ['2d', 172_800_000],
    [' 30S ', 30_000],
  ])('%s → %d ms', (text, ms) => {
    expect(parseDuration(text, '--idle')).toBe(ms);
  });

  it.each(['', '30', '0s', '0ms', '15x', 'abc', '1h 30m', '-5s', 's', '30s5', '25d'])('refuses %j with one line naming the flag', (text) => {
    const error = usageError(() => parseDuration(text, '--max-age'));
    expect(error.message).toContain('--max-age');
    expect(error.message).not.toContain('\n');
    expect(error.code).toBe('JV_USAGE');
  });

  it('says a bare number needs a unit', () => {
    expect(usageError(() => parseDuration('30', '--idle')).message).toMatch(/--idle needs a unit, got "30"/);
  });

  it('stays within what Node timers can wait', () => {
    expect(parseDuration('24d', '--idle')).toBeLessThanOrEqual(MAX_DURATION_MS);
    expect(usageError(() => parseDuration('25d', '--idle')).message).toContain('at most 24 days');
  });
});

describe('parseSize', () => {
  it.each([
    ['64MiB', 64 * 1024 * 1024],
    ['1GiB', 1024 ** 3],
    ['500KB', 500_000],
    ['10MB', 10_000_000],
    ['4KiB', 4096],
    ['1048576', 1_048_576],
    ['512B', 512],
    ['64mib', 64 * 1024 * 1024],
    ['1.5KiB', 1536],
  ])('%s → %d bytes', (text, bytes) => {
    expect(parseSize(text, '--max-bytes')).toBe(bytes);
  });

  it.each(['', '0', '0MiB', '64M', '12XB', '-1', 'MiB', '1e6', '99999999999TiB'])('refuses %j with one line naming the flag', (text) => {
    const error = usageError(() => parseSize(text, '--max-bytes'));
    expect(error.message).toContain('--max-bytes');
    expect(error.message).not.toContain('\n');
  });
});

describe('parsePositiveInt', () => {
  it.each([
    ['1', 1],
    ['5000', 5000],
    [' 42 ', 42],
  ])('%j → %d', (text, n) => {
    expect(parsePositiveInt(text, '--max-messages')).toBe(n);
  });

  it.each(['0', '-1', '1.5', '1e3', 'ten', '', '99999999999999999999'])('refuses %j', (text) => {
    expect(usageError(() => parsePositiveInt(text, '--max-messages')).message).toBe(
      `--max-messages must be a positive integer, got ${JSON.stringify(text)}`,
    );
  });
});

describe('collectServers', () => {
  it('collects repeated and comma-separated --server values', () => {
    const first = collectServers('nats://a:4222, nats://b:4222', undefined);
    expect(collectServers('nats://c:4222', first)).toEqual(['nats://a:4222', 'nats://b:4222', 'nats://c:4222']);
  });

  it('refuses an empty value', () => {
    expect(usageError(() => collectServers(' , ', undefined)).message).toContain('--server');
  });
});

describe('defaults as shown in --help', () => {
  it('formats durations and sizes the way they are typed', () => {
    expect(formatDuration(900_000)).toBe('15m');
    expect(formatDuration(5_400_000)).toBe('1h30m');
    expect(formatDuration(500)).toBe('500ms');
    expect(formatSize(64 * 1024 * 1024)).toBe('64MiB');
    expect(formatSize(1000)).toBe('1000');
  });

  it('round-trips through the parsers', () => {
    for (const ms of [500, 30_000, 900_000, 5_400_000]) expect(parseDuration(formatDuration(ms), '--x')).toBe(ms);
    for (const bytes of [1, 4096, 64 * 1024 * 1024, 1024 ** 3]) expect(parseSize(formatSize(bytes), '--x')).toBe(bytes);
  });
});

describe('exit codes and error lines', () => {
  it('maps JV_USAGE to 2 and everything else to 1', () => {
    expect(exitCodeFor(new UsageError('bad'))).toBe(ExitCode.usage);
    expect(exitCodeFor(new JetvaultError('JV_STREAM_NOT_FOUND', 'no stream'))).toBe(ExitCode.error);
    expect(exitCodeFor(new Error('boom'))).toBe(ExitCode.error);
  });

  it('reports a JetvaultError as one line with its code and causes', () => {
    const error = new JetvaultError('JV_CONNECT_FAILED', 'cannot connect to nats://x', { cause: new Error('ECONNREFUSED\nretry later') });
    expect(errorLines(error)).toEqual(['jetvault: cannot connect to nats://x: ECONNREFUSED retry later (JV_CONNECT_FAILED)']);
  });

  it('reports an unexpected error with a hint and no stack', () => {
    const lines = errorLines(new TypeError('x is undefined'));
    expect(lines).toEqual(['jetvault: unexpected error: x is undefined', 'jetvault: rerun with --log-level debug to see details']);
    expect(lines.join('\n')).not.toMatch(/^\s+at /m);
  });

  it('folds newlines and long messages into one short line', () => {
    expect(oneLine("error: unknown option '--fromat'\n(Did you mean --format?)")).toBe("error: unknown option '--fromat' (Did you mean --format?)");
    expect(oneLine('x'.repeat(2000)).length).toBeLessThanOrEqual(500);
  });
});
