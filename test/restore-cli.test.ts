import { describe, expect, it } from 'vitest';
import { restoreCommand, restoreSummary } from '../src/cli/restore.js';
import type { CliContext } from '../src/cli/report.js';
import { restore, RESTORE_DEFAULTS, type RestoreReport } from '../restore/restore.js';

const report: RestoreReport = {
  sourceStream: 'SRC',
  targetStream: 'DST',
  createdStream: true,
  blocks: 3,
  messages: 50_000,
  skippedDuplicates: 0,
  reconnects: 0,
  reconnectMs: 0,
  durationMs: 7_250,
};

describe('restore summary and options', () => {
  it('says nothing of a target that was never lost', () => {
    expect(restoreSummary(report)).toBe('restored 50000 messages from 3 blocks into DST (created) in 7.25 s');
  });

  it('says how often the target was lost and how long restore waited for it', () => {
    expect(restoreSummary({ ...report, reconnects: 1, reconnectMs: 1_430 })).toBe(
      'restored 50000 messages from 3 blocks into DST (created) in 7.25 s; the target was lost once, restore waited 1.43 s for it',
    );
    expect(restoreSummary({ ...report, reconnects: 3, reconnectMs: 12_000 })).toMatch(/; the target was lost 3 times, restore waited 12\.0 s for it$/);
  });

  it('--reconnect-timeout takes a duration, 60 s by default', () => {
    const ctx = { out: () => undefined, err: () => undefined, exitCode: 0 } as unknown as CliContext;
    const command = restoreCommand(ctx).exitOverride();
    command.parseOptions(['--from', 'x', '--server', 'nats://h:4222', '--reconnect-timeout', '90s']);
    expect(command.opts().reconnectTimeout).toBe(90_000);
    const defaults = restoreCommand(ctx).exitOverride();
    defaults.parseOptions(['--from', 'x', '--server', 'nats://h:4222']);
    expect(defaults.opts().reconnectTimeout).toBe(RESTORE_DEFAULTS.reconnectTimeoutMs);
    expect(RESTORE_DEFAULTS.reconnectTimeoutMs).toBe(60_000);
    expect(() => restoreCommand(ctx).exitOverride().parseOptions(['--reconnect-timeout', '5'])).toThrow(/--reconnect-timeout needs a unit/);
  });

  it('refuses a negative or fractional reconnectTimeoutMs before touching anything', async () => {
    for (const reconnectTimeoutMs of [-1, 1.5, Number.NaN]) {
      await expect(restore({ from: '/nonexistent', servers: 'nats://127.0.0.1:1', reconnectTimeoutMs })).rejects.toMatchObject({
        code: 'JV_USAGE',
        message: expect.stringMatching(/reconnectTimeoutMs must be a non-negative integer/),
      });
    }
  });
});
