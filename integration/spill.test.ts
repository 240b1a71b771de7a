/**
 * Capture with `bufferDir` against a real nats-server: 200 split keys, a fifth of them large enough to spill,
 * the archive verifies against the stream, and the spill root is empty afterwards (this run's directory and a
 * crashed run's leftover both removed).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { expect, it } from 'vitest';
import { createCapture } from '../machines/create-capture.js';
import { verify } from '../restore/verify.js';
import { runDirName } from '../src/capture/spill.js';
import { useNatsEnv } from './helpers/nats-env.js';
import { uniqueName } from './helpers/nats-server.js';
import { mixedMessages, publishAll, type TestMessage } from './helpers/streams.js';
import { pseudoRandomBytes } from '../test/helpers/bytes.js';

const env = useNatsEnv('spill');

/** A pid that is surely not running: a child that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return child.pid!;
}

it('captures 200 split keys through spill files: the archive verifies, the spill root ends empty', async () => {
  const stream = uniqueName('SPILL');
  await env.jsm.streams.add({ name: stream, subjects: [`${stream.toLowerCase()}.>`] });
  const subjects = Array.from({ length: 200 }, (_, i) => `${stream.toLowerCase()}.k${i}`);
  // Three mixed messages per key, plus three of 100 KB on every fifth key (40 blocks of ~300 KB: each spills).
  const messages: TestMessage[] = mixedMessages(600, subjects);
  for (let round = 0; round < 3; round++) {
    for (let k = 0; k < 200; k += 5) messages.push({ subject: subjects[k]!, headers: null, data: pseudoRandomBytes(100_000, round * 1_000 + k) });
  }
  await publishAll(env.nc, stream, messages);

  const root = env.tempDir();
  const leftover = join(root, runDirName(await deadPid()));
  mkdirSync(leftover);
  writeFileSync(join(leftover, '7.block'), 'from a crashed run');

  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const store = env.tempDir();
  const capture = createCapture({ servers: env.server.url, stream, store, once: true, bufferDir: root, compression: 'gzip', logger });
  const report = await capture.done;

  expect(report.messages).toBe(messages.length);
  expect(report.abandonedBlocks).toBe(0);
  expect(report.blocks).toBeGreaterThanOrEqual(200);
  const check = await verify({ from: store, connection: env.nc, stream });
  expect(check.differences).toEqual([]);
  expect(check.ok).toBe(true);
  expect(check.archivedMessages).toBe(messages.length);

  // The run really spilled: 40 blocks, each at least one completed chunk (two 100 KB records), no write failed.
  const closed = lines.find((l) => l.msg === 'spill.closed');
  expect(closed).toMatchObject({ writeErrors: 0 });
  expect(closed?.files).toBe(40);
  expect(closed?.bytesWritten as number).toBeGreaterThanOrEqual(40 * 200_000);
  expect(lines.filter((l) => l.msg === 'spill.error')).toEqual([]);
  expect(lines.find((l) => l.msg === 'spill.leftovers-removed')).toMatchObject({ removed: [leftover] });
  expect(existsSync(String(closed?.dir))).toBe(false);
  expect(readdirSync(root)).toEqual([]);
}, 120_000);
