/**
 * The foundation's promise, through the CLI on real servers: 20,000 mixed messages captured, restored into
 * a second server and proven identical, for raw+gzip, raw+snappy and ndjson; damaged blocks are caught.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetvault } from './helpers/cli.js';
import { startNatsServer, uniqueName, type NatsServer } from './helpers/nats-server.js';
import { differences, mixedMessages, publishAll, readStream, type StoredMessage } from './helpers/streams.js';

const N = 20_000;
let a: NatsServer;
let b: NatsServer;
let ncA: NatsConnection;
let ncB: NatsConnection;
let source: StoredMessage[];
const STREAM = uniqueName('ORDERS');
const dirs: string[] = [];

function tempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `jv-rt-${label}-`));
  dirs.push(dir);
  return dir;
}

function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else out.push(relative(dir, join(d, e.name)));
    }
  };
  walk(dir);
  return out.sort();
}

beforeAll(async () => {
  [a, b] = await Promise.all([startNatsServer(), startNatsServer()]);
  [ncA, ncB] = await Promise.all([connect({ servers: a.url }), connect({ servers: b.url })]);
  const subject = STREAM.toLowerCase();
  await (await jetstreamManager(ncA)).streams.add({ name: STREAM, subjects: [`${subject}.>`] });
  await publishAll(ncA, STREAM, mixedMessages(N, ['eu', 'us', 'apac', 'latam'].map((r) => `${subject}.${r}`)));
  source = await readStream(ncA, STREAM);
}, 60_000);

afterAll(async () => {
  await Promise.all([ncA?.close(), ncB?.close()]);
  await Promise.all([a?.dispose(), b?.dispose()]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe.each([
  { format: 'raw', compression: 'gzip', ext: '.jv.gz' },
  { format: 'raw', compression: 'snappy', ext: '.jv.sz' },
  { format: 'ndjson', compression: 'gzip', ext: '.ndjson.gz' },
])('round trip $format + $compression', ({ format, compression, ext }) => {
  it('captures with --once, restores into a second server identical message by message, verifies', async () => {
    expect(source).toHaveLength(N);
    const dir = tempDir(`${format}-${compression}`);
    const consumer = `rt-${format}-${compression}`;
    const target = `${STREAM}_${format.toUpperCase()}_${compression.toUpperCase()}`;
    const cap = await jetvault(['capture', '--server', a.url, '--stream', STREAM, '--consumer', consumer, '--store', `file://${dir}`,
      '--format', format, '--compression', compression, '--max-messages', '5000', '--once']);
    expect(cap.code, cap.stderr).toBe(0);
    expect(cap.stdout).toMatch(/captured 20000 messages/);

    const info = await (await jetstreamManager(ncA)).consumers.info(STREAM, consumer);
    expect({ pending: info.num_pending, ackPending: info.num_ack_pending }).toEqual({ pending: 0, ackPending: 0 });

    // 4 subjects × 5,000 messages: 4 full blocks, each with its manifest.
    const stored = files(dir);
    expect(stored.filter((f) => f.endsWith(ext))).toHaveLength(4);
    expect(stored.filter((f) => f.endsWith(`${ext}.manifest.json`))).toHaveLength(4);

    // The restored stream gets a name of its own on B so the three archives do not collide.
    const res = await jetvault(['restore', '--from', dir, '--server', b.url, '--stream', target]);
    expect(res.code, res.stderr).toBe(0);
    const restored = await readStream(ncB, target);
    expect(differences(source, restored)).toEqual([]);
    const targetInfo = await (await jetstreamManager(ncB)).streams.info(target);
    expect(targetInfo.config.subjects).toEqual([`${STREAM.toLowerCase()}.>`]);

    const verifyA = await jetvault(['verify', '--from', dir, '--server', a.url, '--stream', STREAM]);
    expect(verifyA.code, verifyA.stdout + verifyA.stderr).toBe(0);
    const verifyB = await jetvault(['verify', '--from', dir, '--server', b.url, '--stream', target]);
    expect(verifyB.code, verifyB.stdout + verifyB.stderr).toBe(0);

    // A second restore into the now non-empty stream is refused unless --append is given.
    const again = await jetvault(['restore', '--from', dir, '--server', b.url, '--stream', target]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/JV_TARGET_NOT_EMPTY/);
    await (await jetstreamManager(ncB)).streams.delete(target);
  });
});

describe('damaged archives', () => {
  let dir: string;
  let blocks: string[];

  beforeAll(async () => {
    dir = tempDir('damaged');
    const cap = await jetvault(['capture', '--server', a.url, '--stream', STREAM, '--consumer', 'rt-damaged', '--store', dir,
      '--compression', 'gzip', '--max-messages', '5000', '--once']);
    expect(cap.code, cap.stderr).toBe(0);
    blocks = files(dir).filter((f) => f.endsWith('.jv.gz'));
    expect(blocks).toHaveLength(4);
  });

  it('a flipped byte: verify exits 3 and restore exits 1, each naming the block', async () => {
    const victim = join(dir, blocks[1]!);
    const original = readFileSync(victim);
    const damaged = Buffer.from(original);
    const middle = damaged.length >> 1;
    damaged[middle] = damaged[middle]! ^ 0xff;
    writeFileSync(victim, damaged);
    try {
      const ver = await jetvault(['verify', '--from', dir, '--server', a.url, '--stream', STREAM]);
      expect(ver.code).toBe(3);
      expect(ver.stdout + ver.stderr).toContain(blocks[1]);
      const res = await jetvault(['restore', '--from', dir, '--server', b.url, '--stream', 'DAMAGED_FLIP']);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain(blocks[1]);
      expect(res.stderr).not.toMatch(/^\s+at /m);
      // Nothing was published: the checksum is checked before any message goes out.
      await expect((await jetstreamManager(ncB)).streams.info('DAMAGED_FLIP')).rejects.toThrow();
    } finally {
      writeFileSync(victim, original);
    }
  });

  it('a truncated block: verify exits 3 and restore exits 1, each naming the block', async () => {
    const victim = join(dir, blocks[2]!);
    const original = readFileSync(victim);
    truncateSync(victim, Math.floor(statSync(victim).size / 2));
    try {
      const ver = await jetvault(['verify', '--from', dir, '--server', a.url, '--stream', STREAM]);
      expect(ver.code).toBe(3);
      expect(ver.stdout + ver.stderr).toContain(blocks[2]);
      const res = await jetvault(['restore', '--from', dir, '--server', b.url, '--stream', 'DAMAGED_TRUNC']);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain(blocks[2]);
    } finally {
      writeFileSync(victim, original);
    }
  });

  it('verify exits 3 once a message is deleted from the stream it checks', async () => {
    const restored = await jetvault(['restore', '--from', dir, '--server', b.url, '--stream', 'DAMAGED_DELETE']);
    expect(restored.code, restored.stderr).toBe(0);
    const ok = await jetvault(['verify', '--from', dir, '--server', b.url, '--stream', 'DAMAGED_DELETE']);
    expect(ok.code, ok.stdout).toBe(0);
    await (await jetstreamManager(ncB)).streams.deleteMessage('DAMAGED_DELETE', 777);
    const ver = await jetvault(['verify', '--from', dir, '--server', b.url, '--stream', 'DAMAGED_DELETE']);
    expect(ver.code).toBe(3);
  });
});
