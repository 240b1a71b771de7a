/** `--buffer-to-disk [dir]`: parsed into `bufferDir`, with the default root when given without a directory. */
import { describe, expect, it } from 'vitest';
import { captureCommand, captureOptionsFrom, type CaptureFlags } from '../src/cli/capture.js';
import type { CliContext } from '../src/cli/report.js';
import { ExitCode } from '../src/cli/exit-codes.js';
import { defaultSpillRoot } from '../src/capture/spill.js';
import { validateCaptureOptions } from '../src/capture/options.js';

/** The capture options the CLI would run with for these arguments (the command's action replaced). */
async function optionsFor(...extra: string[]) {
  const ctx: CliContext = { out: () => undefined, err: () => undefined, exitCode: ExitCode.ok };
  let flags: CaptureFlags | undefined;
  const command = captureCommand(ctx)
    .exitOverride()
    .configureOutput({ writeErr: () => undefined })
    .action((f: CaptureFlags) => {
      flags = f;
    });
  await command.parseAsync(['--server', 'nats://127.0.0.1:4222', '--stream', 'S', '--store', '/tmp/x', ...extra], { from: 'user' });
  return captureOptionsFrom(flags!);
}

describe('--buffer-to-disk', () => {
  it('is off by default', async () => {
    expect((await optionsFor()).bufferDir).toBeUndefined();
  });

  it('without a directory spills under <tmpdir>/jetvault-spill, also when another flag follows', async () => {
    expect((await optionsFor('--buffer-to-disk')).bufferDir).toBe(defaultSpillRoot());
    expect(await optionsFor('--buffer-to-disk', '--once')).toMatchObject({ bufferDir: defaultSpillRoot(), once: true });
  });

  it('takes a directory', async () => {
    expect((await optionsFor('--buffer-to-disk', '/var/tmp/jv')).bufferDir).toBe('/var/tmp/jv');
    expect((await optionsFor('--buffer-to-disk=/var/tmp/jv2')).bufferDir).toBe('/var/tmp/jv2');
  });

  it('refuses an empty directory, naming the flag', async () => {
    await expect(optionsFor('--buffer-to-disk', '')).rejects.toThrow(/--buffer-to-disk needs a directory/);
  });

  it('the library refuses a blank bufferDir', () => {
    expect(() => validateCaptureOptions({ servers: 'nats://x:4222', stream: 'S', store: '/tmp/x', bufferDir: ' ' })).toThrow(/bufferDir must be a directory path/);
  });
});
