/**
 * `jetvault capture` as a daemon: it keeps capturing as messages arrive, and on SIGTERM drains (seals,
 * stores and acks every open block) before it exits 0.
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { verify } from '../restore/verify.js';
import { startJetvault } from './helpers/cli.js';
import { startNatsServer, uniqueName, type NatsServer } from './helpers/nats-server.js';
import { mixedMessages, publishAll } from './helpers/streams.js';

let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let dir: string;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  jsm = await jetstreamManager(nc);
  dir = mkdtempSync(join(tmpdir(), 'jv-daemon-'));
});
afterAll(async () => {
  await nc?.close();
  await server?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

async function waitForConsumer(stream: string, consumer: string, check: (ackFloor: number, ackPending: number) => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const info = await jsm.consumers.info(stream, consumer);
      if (check(info.ack_floor.stream_seq, info.num_ack_pending)) return;
    } catch {
      // not created yet
    }
    if (Date.now() > deadline) throw new Error(`consumer ${consumer} did not reach the expected state`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

it('captures continuously, then drains open blocks on SIGTERM and exits 0', async () => {
  const stream = uniqueName('DAEMON');
  const subject = stream.toLowerCase();
  await jsm.streams.add({ name: stream, subjects: [`${subject}.>`] });
  const consumer = `jetvault-${stream}`;
  // Blocks seal at 1,000 messages; the idle and age limits are far away, so only the drain can flush the rest.
  const daemon = startJetvault(['capture', '--server', server.url, '--stream', stream, '--store', dir, '--max-messages', '1000',
    '--idle', '10m', '--max-age', '1h', '--log-level', 'info']);
  await publishAll(nc, stream, mixedMessages(2_500, [`${subject}.only`]));
  // Two full blocks are stored and acked while it runs; the last 500 messages wait in an open block.
  await waitForConsumer(stream, consumer, (floor, pending) => floor === 2_000 && pending === 500);

  await publishAll(nc, stream, mixedMessages(100, [`${subject}.only`], 7));
  await waitForConsumer(stream, consumer, (_floor, pending) => pending === 600);
  daemon.child.kill('SIGTERM');
  const run = await daemon.done;
  expect(run.code, run.stderr).toBe(0);
  expect(run.stdout).toMatch(/captured 2600 messages in 3 blocks/);
  const info = await jsm.consumers.info(stream, consumer);
  expect({ floor: info.ack_floor.stream_seq, pending: info.num_ack_pending }).toEqual({ floor: 2_600, pending: 0 });
  // The log shows the drain seal of the last block.
  expect(run.stderr).toMatch(/"reason":"drain"/);
  const check = await verify({ from: dir, connection: nc, stream });
  expect(check).toMatchObject({ ok: true, archivedMessages: 2_600 });
});
