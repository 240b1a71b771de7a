/**
 * The `--once` end check (watchCaughtUp) against a real nats-server: it asks the server as soon as the last
 * sequence at start has been received, instead of at its next poll.
 */
import { AckPolicy, jetstream } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { createActor, setup } from 'xstate';
import { watchCaughtUp, type CaughtUpInput } from '../machines/actors/supervisor-actors.js';
import { useNatsEnv } from './helpers/nats-env.js';
import { uniqueName } from './helpers/nats-server.js';

const env = useNatsEnv('caught-up');

/** Runs watchCaughtUp under a parent that records when it says caught-up. */
function watch(input: CaughtUpInput) {
  const seen: Array<{ type: string; at: number }> = [];
  const parent = setup({ actors: { watchCaughtUp } }).createMachine({
    invoke: { src: 'watchCaughtUp', input },
    on: { '*': { actions: ({ event }) => seen.push({ type: event.type, at: Date.now() }) } },
  });
  const actor = createActor(parent);
  actor.subscribe({ error: () => undefined });
  actor.start();
  return { seen, stop: () => actor.stop() };
}

describe('watchCaughtUp', () => {
  it('says caught-up right after the last sequence arrives, not a poll interval later', async () => {
    const stream = uniqueName('CAUGHT');
    await env.jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
    for (let i = 0; i < 100; i++) env.nc.publish(`${stream}.x`, new Uint8Array([i]));
    await env.nc.flush();
    await env.jsm.consumers.add(stream, { durable_name: 'c', ack_policy: AckPolicy.Explicit });
    let highest = 0;
    let held = 0;
    // A poll interval far longer than the test: only the check on arrival can answer in time.
    const w = watch({ nc: env.nc, stream, consumer: 'c', lastSeqAtStart: 100, held: () => held, highestSeq: () => highest, intervalMs: 60_000 });
    try {
      // Let the first poll run and find nothing delivered yet.
      const deadline = Date.now() + 2_000;
      while ((await env.jsm.consumers.info(stream, 'c')).num_pending !== 100 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 50));
      expect(w.seen.filter((e) => e.type === 'once.caught-up')).toEqual([]);

      const consumer = await jetstream(env.nc).consumers.get(stream, 'c');
      const batch = await consumer.fetch({ max_messages: 100, expires: 2_000 });
      for await (const m of batch) {
        held++;
        highest = Math.max(highest, m.seq);
        if (held === 100) break;
      }
      const arrived = Date.now();
      const end = arrived + 5_000;
      while (!w.seen.some((e) => e.type === 'once.caught-up') && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
      const caughtUp = w.seen.find((e) => e.type === 'once.caught-up');
      expect(caughtUp).toBeDefined();
      expect(caughtUp!.at - arrived).toBeLessThan(1_000);
    } finally {
      w.stop();
    }
  });
});
