/**
 * Crash safety: capture killed with SIGKILL after a block was stored but before its messages were acked.
 * A second `--once` run reads the stored blocks above the ack floor, acks their redelivered messages without
 * storing them again: every message exactly once in the archive, and a restore with no duplicate.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { auditArchive } from './chaos/support.js';
import { jetvault } from './helpers/cli.js';
import { startNatsServer, uniqueName, type NatsServer } from './helpers/nats-server.js';
import { differences, mixedMessages, publishAll, readStream } from './helpers/streams.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/crash-after-store.mjs', import.meta.url));
let a: NatsServer;
let b: NatsServer;
let ncA: NatsConnection;
let ncB: NatsConnection;
let dir: string;

beforeAll(async () => {
  [a, b] = await Promise.all([startNatsServer(), startNatsServer()]);
  [ncA, ncB] = await Promise.all([connect({ servers: a.url }), connect({ servers: b.url })]);
  dir = mkdtempSync(join(tmpdir(), 'jv-crash-'));
});
afterAll(async () => {
  await Promise.all([ncA?.close(), ncB?.close()]);
  await Promise.all([a?.dispose(), b?.dispose()]);
  rmSync(dir, { recursive: true, force: true });
});

function manifests(root: string): Array<{ file: string; splitKey: string; firstSeq: number; lastSeq: number; messages: number }> {
  const out: Array<{ file: string; splitKey: string; firstSeq: number; lastSeq: number; messages: number }> = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.manifest.json')) out.push({ file: relative(root, p), ...JSON.parse(readFileSync(p, 'utf8')) });
    }
  };
  walk(root);
  return out;
}

it('leaves exactly one copy of every block after SIGKILL between store and ack, and restores without duplicates', async () => {
  const stream = uniqueName('CRASH');
  const subject = stream.toLowerCase();
  await (await jetstreamManager(ncA)).streams.add({ name: stream, subjects: [`${subject}.>`] });
  await publishAll(ncA, stream, mixedMessages(20_000, ['eu', 'us', 'apac', 'latam'].map((r) => `${subject}.${r}`)));

  const crashed = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [FIXTURE, a.url, stream, dir, '2'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('close', (code, signal) => resolve({ code, signal, stderr }));
  });
  expect(crashed, crashed.stderr).toMatchObject({ signal: 'SIGKILL' });
  const afterCrash = manifests(dir);
  expect(afterCrash.length).toBeGreaterThanOrEqual(2);
  const consumer = `jetvault-${stream}`;
  const unacked = (await (await jetstreamManager(ncA)).consumers.info(stream, consumer)).num_ack_pending;
  // At least the block whose store the kill followed was never acked.
  expect(unacked).toBeGreaterThanOrEqual(5_000);

  const resumed = await jetvault(['capture', '--server', a.url, '--stream', stream, '--store', dir, '--compression', 'gzip',
    '--max-messages', '5000', '--once'], { timeoutMs: 60_000 });
  expect(resumed.code, resumed.stderr).toBe(0);
  const info = await (await jetstreamManager(ncA)).consumers.info(stream, consumer);
  expect({ pending: info.num_pending, ackPending: info.num_ack_pending }).toEqual({ pending: 0, ackPending: 0 });

  // Every message exactly once: the blocks stored before the kill stay as they are, and the resumed run (which read
  // them back at bind) acked their redelivered messages instead of storing them again. It may cut the rest into
  // other blocks (it seals what it holds while it waits for the redeliveries), but no message is in two blocks.
  const all = manifests(dir);
  expect(new Set(all.map((m) => m.splitKey)).size).toBe(4);
  expect(all.reduce((n, m) => n + m.messages, 0)).toBe(20_000);
  for (const before of afterCrash) expect(all.map((m) => m.file)).toContain(before.file);
  const audit = await auditArchive(dir);
  expect(audit).toMatchObject({ messages: 20_000, distinctMessages: 20_000, duplicateObjects: 0 });

  const res = await jetvault(['restore', '--from', dir, '--server', b.url, '--stream', stream]);
  expect(res.code, res.stderr).toBe(0);
  const [source, restored] = await Promise.all([readStream(ncA, stream), readStream(ncB, stream)]);
  expect(restored).toHaveLength(20_000);
  expect(differences(source, restored)).toEqual([]);
});
