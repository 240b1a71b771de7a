import type { Consumer, ConsumerInfo, JsMsg, StreamInfo } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createActor, fromCallback, fromPromise, setup, SimulatedClock, type AnyActorRef } from 'xstate';
import { pullBatchFor, type BindInput, type BindResult, type ConsumeEvent, type ConsumeInput } from '../machines/actors/subscription-actors.js';
import { subscriptionMachine, watchConsumerDeleted, type SubscriptionInput, type SubscriptionParentEvent } from '../machines/subscription-machine.js';
import { JetvaultError } from '../src/errors.js';

const nc = { name: 'fake connection' } as unknown as NatsConnection;
const info = { name: 'jv', config: { ack_wait: 30e9, max_ack_pending: 1_000 } } as unknown as ConsumerInfo;
const streamInfo = { config: { name: 'ORDERS' }, state: { last_seq: 7 } } as unknown as StreamInfo;

afterEach(() => {
  vi.restoreAllMocks();
});

const settle = async () => {
  for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

interface Consumption {
  input: ConsumeInput;
  stopped: boolean;
  sendBack: (event: ConsumeEvent) => void;
}

/** Runs the subscription machine, with stubbed bind/consume, under a parent that records what it is told. */
function run(
  bind: (attempt: number) => Promise<BindResult> = async () => ({ consumer: { n: 1 } as unknown as Consumer, info, streamInfo, created: false }),
  overrides: Partial<SubscriptionInput> = {},
) {
  vi.spyOn(Math, 'random').mockReturnValue(0); // backoff jitter at its floor: half the ceiling
  const clock = new SimulatedClock();
  const binds: Array<{ input: BindInput; at: number }> = [];
  const consumptions: Consumption[] = [];
  const watches: Array<{ input: { nc: NatsConnection; stream: string; consumer: string }; stopped: boolean; sendBack: (event: ConsumeEvent) => void }> = [];
  const machine = subscriptionMachine.provide({
    actors: {
      bindConsumer: fromPromise<BindResult, BindInput>(({ input }) => {
        binds.push({ input, at: clock.now() });
        return bind(binds.length);
      }),
      consumeMessages: fromCallback<{ type: 'noop' }, ConsumeInput>(({ input, sendBack }) => {
        const consumption: Consumption = { input, stopped: false, sendBack };
        consumptions.push(consumption);
        return () => (consumption.stopped = true);
      }),
      watchConsumerDeleted: fromCallback<{ type: 'noop' }, { nc: NatsConnection; stream: string; consumer: string }>(({ input, sendBack }) => {
        const watch = { input, stopped: false, sendBack };
        watches.push(watch);
        return () => (watch.stopped = true);
      }),
    },
  });
  const onMessage = (_message: JsMsg) => undefined;
  const input: SubscriptionInput = {
    nc,
    stream: 'ORDERS',
    consumer: 'jv',
    create: { ackWaitMs: 60_000, maxAckPending: 500 },
    recreate: false,
    resumeSeq: () => 42,
    onMessage,
    ...overrides,
  };
  const told: Array<{ type: string }> = [];
  const parent = setup({ actors: { subscription: machine } }).createMachine({
    invoke: { id: 'subscription', src: 'subscription', input },
    on: { '*': { actions: ({ event }) => void told.push(event) } },
  });
  const actor = createActor(parent, { clock });
  const errors: unknown[] = [];
  actor.subscribe({ error: (e) => errors.push(e) });
  actor.start();
  const child = () => actor.getSnapshot().children.subscription as AnyActorRef;
  return {
    clock,
    binds,
    consumptions,
    watches,
    onMessage,
    errors,
    told: () => told.filter((e) => !e.type.startsWith('xstate.')) as SubscriptionParentEvent[],
    done: () => told.some((e) => e.type === 'xstate.done.actor.subscription'),
    state: () => child().getSnapshot().value,
    send: (event: { type: 'pause' } | { type: 'resume' } | { type: 'stop' }) => child().send(event),
  };
}

describe('pullBatchFor', () => {
  it('pulls 4,000 small messages, about 16 MiB of large ones, and never fewer than 16', () => {
    expect(pullBatchFor({ messages: 0, bytes: 0 })).toBe(4_000);
    expect(pullBatchFor({ messages: 1_000, bytes: 100_000 })).toBe(4_000);
    expect(pullBatchFor({ messages: 1_000, bytes: 1_000 * 4096 })).toBe(4_000);
    expect(pullBatchFor({ messages: 10, bytes: 10 * 65_536 })).toBe(256);
    expect(pullBatchFor({ messages: 10, bytes: 10 * 8 * 1024 * 1024 })).toBe(16);
  });
});

describe('subscription machine', () => {
  it('binds, tells its parent, and consumes with the bound consumer', async () => {
    const h = run();
    expect(h.state()).toBe('binding');
    await settle();
    expect(h.state()).toEqual({ active: 'consuming' });
    expect(h.binds.map((b) => b.input)).toEqual([{ nc, stream: 'ORDERS', consumer: 'jv', create: { ackWaitMs: 60_000, maxAckPending: 500 } }]);
    expect(h.told()).toEqual([{ type: 'subscription.bound', info, streamInfo, created: false }]);
    expect(h.consumptions).toHaveLength(1);
    expect(h.consumptions[0]!.input).toEqual({ consumer: { n: 1 }, onMessage: h.onMessage, batch: 4_000 });
    expect(h.errors).toEqual([]);
  });

  it('pulls fewer messages at a time from a stream of large messages, unless told a batch', async () => {
    const large = { ...streamInfo, state: { last_seq: 7, messages: 1_000, bytes: 1_000 * 256 * 1024 } } as unknown as StreamInfo;
    const bind = async () => ({ consumer: { n: 1 } as unknown as Consumer, info, streamInfo: large, created: false });
    const sized = run(bind);
    await settle();
    expect(sized.consumptions[0]!.input.batch).toBe(64); // 16 MiB of 256 KiB messages
    const told = run(bind, { batch: 500 });
    await settle();
    expect(told.consumptions[0]!.input.batch).toBe(500);
  });

  it('fails for good on a JetvaultError from bind (missing stream, unusable consumer)', async () => {
    const missing = new JetvaultError('JV_STREAM_NOT_FOUND', 'stream ORDERS does not exist');
    const h = run(() => Promise.reject(missing));
    await settle();
    expect(h.state()).toBe('failed');
    expect(h.told()).toEqual([{ type: 'subscription.failed', error: missing }]);
    expect(h.done()).toBe(true);
    h.clock.increment(600_000);
    await settle();
    expect(h.binds).toHaveLength(1);
    expect(h.consumptions).toEqual([]);
  });

  it('rebinds after a growing backoff on any other error', async () => {
    const h = run((attempt) => (attempt <= 2 ? Promise.reject(new Error('timeout')) : Promise.resolve({ consumer: {} as Consumer, info, streamInfo, created: true })));
    await settle();
    expect(h.state()).toBe('rebinding');
    h.clock.increment(124);
    await settle();
    expect(h.binds).toHaveLength(1);
    h.clock.increment(1); // half of 250 ms after the first failure
    await settle();
    expect(h.state()).toBe('rebinding');
    h.clock.increment(250); // half of 500 ms after the second
    await settle();
    expect(h.binds.map((b) => b.at)).toEqual([0, 125, 375]);
    expect(h.state()).toEqual({ active: 'consuming' });
    expect(h.told()).toEqual([{ type: 'subscription.bound', info, streamInfo, created: true }]);
  });

  it('goes back to binding when the consumer is lost, stopping the old consumption', async () => {
    const h = run();
    await settle();
    h.consumptions[0]!.sendBack({ type: 'consumer.lost', reason: 'consumer_deleted' });
    expect(h.state()).toBe('rebinding');
    expect(h.consumptions[0]!.stopped).toBe(true);
    expect(h.told().at(-1)).toEqual({ type: 'subscription.lost', reason: 'consumer_deleted' });
    h.clock.increment(125); // the bind succeeded before, so the backoff starts over
    await settle();
    expect(h.binds.map((b) => b.at)).toEqual([0, 125]);
    expect(h.state()).toEqual({ active: 'consuming' });
    expect(h.consumptions).toHaveLength(2);
    expect(h.consumptions[1]!.stopped).toBe(false);
    // The second bind may re-create the consumer only at the resume sequence, and only if jetvault made it.
    expect(h.binds[1]!.input.rebind).toEqual({ previous: info.config, startSeq: 42, allowed: false });
  });

  it('allows re-creating a lost consumer that jetvault created', async () => {
    const own = { ...info, config: { ...info.config, description: 'jetvault capture' } } as ConsumerInfo;
    const h = run(async () => ({ consumer: {} as Consumer, info: own, streamInfo, created: true }));
    await settle();
    h.consumptions[0]!.sendBack({ type: 'consumer.lost', reason: 'consumer_deleted' });
    h.clock.increment(125);
    await settle();
    expect(h.binds.map((b) => b.input.rebind)).toEqual([undefined, { previous: own.config, startSeq: 42, allowed: true }]);
  });

  it("rebinds at once on the server's consumer-deleted advisory, watching again after the bind", async () => {
    const h = run();
    await settle();
    expect(h.watches.map((w) => w.input)).toEqual([{ nc, stream: 'ORDERS', consumer: 'jv' }]);
    h.watches[0]!.sendBack({ type: 'consumer.lost', reason: 'consumer_deleted' });
    expect(h.state()).toBe('rebinding');
    expect(h.consumptions[0]!.stopped).toBe(true);
    expect(h.watches[0]!.stopped).toBe(true);
    expect(h.told().at(-1)).toEqual({ type: 'subscription.lost', reason: 'consumer_deleted' });
    h.clock.increment(125);
    await settle();
    expect(h.state()).toEqual({ active: 'consuming' });
    expect(h.watches).toHaveLength(2);
    expect(h.watches[1]!.stopped).toBe(false);
  });

  it('watchConsumerDeleted: subscribes to the advisory of this consumer, reports it, unsubscribes when stopped', async () => {
    const subs: Array<{ subject: string; callback: (error: Error | null) => void; unsubscribed: boolean }> = [];
    const fake = {
      subscribe: (subject: string, opts: { callback: (error: Error | null) => void }) => {
        const sub = { subject, callback: opts.callback, unsubscribed: false };
        subs.push(sub);
        return { unsubscribe: () => (sub.unsubscribed = true) };
      },
    } as unknown as NatsConnection;
    const told: Array<{ type: string }> = [];
    const parent = setup({ actors: { watch: watchConsumerDeleted } }).createMachine({
      initial: 'on',
      states: {
        on: { invoke: { src: 'watch', input: { nc: fake, stream: 'ORDERS', consumer: 'jv' } }, on: { off: 'off' } },
        off: {},
      },
      on: { '*': { actions: ({ event }) => void told.push(event) } },
    });
    const actor = createActor(parent).start();
    expect(subs.map((s) => s.subject)).toEqual(['$JS.EVENT.ADVISORY.CONSUMER.DELETED.ORDERS.jv']);
    subs[0]!.callback(new Error('permissions violation')); // an error is not a deletion
    expect(told).toEqual([]);
    subs[0]!.callback(null);
    expect(told).toEqual([{ type: 'consumer.lost', reason: 'consumer_deleted' }]);
    actor.send({ type: 'off' });
    expect(subs[0]!.unsubscribed).toBe(true);
    // A connection that cannot subscribe (no permission, a stub) is not an error: heartbeats still apply.
    const quiet = createActor(setup({ actors: { watch: watchConsumerDeleted } }).createMachine({
      invoke: { src: 'watch', input: { nc: {} as NatsConnection, stream: 'ORDERS', consumer: 'jv' } },
    }));
    const errors: unknown[] = [];
    quiet.subscribe({ error: (e) => errors.push(e) });
    quiet.start();
    quiet.stop();
    expect(errors).toEqual([]);
  });

  it('pauses and resumes without restarting the consumption', async () => {
    const h = run();
    await settle();
    h.send({ type: 'pause' });
    expect(h.state()).toEqual({ active: 'paused' });
    h.send({ type: 'resume' });
    expect(h.state()).toEqual({ active: 'consuming' });
    expect(h.consumptions).toHaveLength(1);
    expect(h.consumptions[0]!.stopped).toBe(false);
  });

  it('stops from consuming and from rebinding', async () => {
    const consuming = run();
    await settle();
    consuming.send({ type: 'stop' });
    expect(consuming.state()).toBe('stopped');
    expect(consuming.consumptions[0]!.stopped).toBe(true);
    expect(consuming.done()).toBe(true);

    const rebinding = run(() => Promise.reject(new Error('timeout')));
    await settle();
    rebinding.send({ type: 'stop' });
    expect(rebinding.state()).toBe('stopped');
    rebinding.clock.increment(60_000);
    await settle();
    expect(rebinding.binds).toHaveLength(1);
  });
});
