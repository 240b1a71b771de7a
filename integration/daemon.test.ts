/**
 * `jetvault capture` as a daemon: it keeps capturing as messages arrive, and on SIGTERM drains (seals,
 * stores and acks every open block) before it exits 0.
 */
import { beforeAll, expect, it } from 'vitest';
import { verify } from '../restore/verify.js';
import { startJetvault } from './helpers/cli.js';
import { uniqueName } from './helpers/nats-server.js';
import { useNatsEnv } from './helpers/nats-env.js';
import { mixedMessages, publishAll } from './helpers/streams.js';

const env = useNatsEnv('daemon');
let dir: string;

beforeAll(() => {
  dir = env.tempDir();
});

async function waitForConsumer(stream: string, consumer: string, check: (ackFloor: number, ackPending: number) => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const info = await env.jsm.consumers.info(stream, consumer);
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
  await env.jsm.streams.add({ name: stream, subjects: [`${subject}.>`] });
  const consumer = `jetvault-${stream}`;
  // Blocks seal at 1,000 messages; the idle and age limits are far away, so only the drain can flush the rest.
  const daemon = startJetvault(['capture', '--server', env.server.url, '--stream', stream, '--store', dir, '--max-messages', '1000',
    '--idle', '10m', '--max-age', '1h', '--log-level', 'info']);
  await publishAll(env.nc, stream, mixedMessages(2_500, [`${subject}.only`]));
  // Two full blocks are stored and acked while it runs; the last 500 messages wait in an open block.
  await waitForConsumer(stream, consumer, (floor, pending) => floor === 2_000 && pending === 500);

  await publishAll(env.nc, stream, mixedMessages(100, [`${subject}.only`], 7));
  await waitForConsumer(stream, consumer, (_floor, pending) => pending === 600);
  daemon.child.kill('SIGTERM');
  const run = await daemon.done;
  expect(run.code, run.stderr).toBe(0);
  expect(run.stdout).toMatch(/captured 2600 messages in 3 blocks/);
  const info = await env.jsm.consumers.info(stream, consumer);
  expect({ floor: info.ack_floor.stream_seq, pending: info.num_ack_pending }).toEqual({ floor: 2_600, pending: 0 });
  // The log shows the drain seal of the last block.
  expect(run.stderr).toMatch(/"reason":"drain"/);
  const check = await verify({ from: dir, connection: env.nc, stream });
  expect(check).toMatchObject({ ok: true, archivedMessages: 2_600 });
});
