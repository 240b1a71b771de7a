import { describe, expect, it, vi } from 'vitest';
import { createActor, fromPromise, setup, SimulatedClock, type AnyActorRef } from 'xstate';
import { blockMachine, type BlockInput, type BlockParentEvent } from '../machines/block-machine.js';
import type { Envelope } from '../src/archive/envelope.js';
import { BlockBuffer, type AckHandle, type SealedBlock } from '../src/capture/block-buffer.js';
import { none } from '../src/compression/index.js';
import { StoreError } from '../src/errors.js';
import { raw } from '../src/formats/index.js';
import type { Store } from '../src/stores/store.js';

/** An ack handle that records what happened to its message. */
class FakeMessage implements AckHandle {
  acked = false;
  inProgressMarks = 0;
  naked = false;
  ack() {
    this.acked = true;
  }
  nak() {
    this.naked = true;
  }
  working() {
    this.inProgressMarks++;
  }
}

function envelope(seq: number): Envelope {
  return { subject: 'orders.eu', headers: [['X-Tag', ['a', 'b']]], data: Buffer.from(`m${seq}`), stream: 'ORDERS', seq, timeNs: 1_764_079_200_000_000_000n + BigInt(seq), deliveryCount: 1 };
}

const unusedStore: Store = {
  description: 'test://unused',
  put: () => Promise.reject(new Error('not used')),
  get: () => Promise.reject(new Error('not used')),
  list: () => ({ [Symbol.asyncIterator]: async function* () {} })[Symbol.asyncIterator](),
  exists: () => Promise.resolve(false),
  delete: () => Promise.resolve(),
} as unknown as Store;

interface Harness {
  clock: SimulatedClock;
  events: BlockParentEvent[];
  messages: FakeMessage[];
  block: () => AnyActorRef;
  state: () => unknown;
  send: (event: { type: 'tick' } | { type: 'seal'; reason: 'drain' } | { type: 'abandon' }) => void;
}

/** Runs a block machine under a tiny parent that records what the block tells it. */
function startBlock(options: {
  store: (block: SealedBlock, attempt: number) => Promise<void>;
  messages?: number;
  limits?: Partial<BlockInput['limits']>;
  maxAttempts?: number;
}): Harness {
  const clock = new SimulatedClock();
  const now = () => clock.now();
  const buffer = new BlockBuffer<Envelope>({
    stream: 'ORDERS',
    splitKey: 'orders.eu',
    consumer: 'c',
    format: raw,
    compression: none,
    streamConfig: { subjects: ['orders.>'] },
    now,
  });
  const messages: FakeMessage[] = [];
  for (let seq = 1; seq <= (options.messages ?? 3); seq++) {
    const m = new FakeMessage();
    messages.push(m);
    buffer.append(envelope(seq), envelope(seq), m);
  }
  let attempt = 0;
  const block = blockMachine.provide({
    actors: {
      storeSealedBlock: fromPromise(({ input }: { input: { store: Store; block: SealedBlock } }) => options.store(input.block, ++attempt)),
    },
  });
  const events: BlockParentEvent[] = [];
  const parent = setup({ actors: { block } }).createMachine({
    invoke: {
      id: 'block',
      src: 'block',
      input: {
        id: 'b1',
        buffer: buffer as BlockBuffer<unknown>,
        store: unusedStore,
        limits: { maxAgeMs: 60_000, idleMs: 5_000, ackDeadlineMs: 120_000, keepAliveMs: 10_000, ...options.limits },
        retry: { baseMs: 1_000, maxMs: 8_000, maxAttempts: options.maxAttempts ?? Number.POSITIVE_INFINITY, random: () => 1 },
        flush: () => Promise.resolve(),
        now,
      } satisfies BlockInput,
    },
    on: { '*': { actions: ({ event }) => events.push(event as BlockParentEvent) } },
  });
  const actor = createActor(parent, { clock });
  actor.subscribe({ error: (e) => { throw e; } });
  actor.start();
  const child = () => actor.getSnapshot().children.block as AnyActorRef;
  return {
    clock,
    events,
    messages,
    block: child,
    state: () => child()?.getSnapshot().value,
    send: (event) => child().send(event),
  };
}

const flushMicrotasks = async () => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise((r) => setImmediate(r));
};

const outcome = (h: Harness) => h.events.find((e) => e.type === 'block.finished');
const captureEvents = (h: Harness, type: string) =>
  h.events.filter((e) => e.type === 'block.event' && e.event.type === type).map((e) => (e as Extract<BlockParentEvent, { type: 'block.event' }>).event);

describe('block machine', () => {
  it('stays open on ticks before the idle time and seals on the first tick after it', async () => {
    const stored: SealedBlock[] = [];
    const h = startBlock({ store: async (b) => void stored.push(b) });
    h.clock.increment(4_999);
    h.send({ type: 'tick' });
    expect(h.state()).toBe('open');
    h.clock.increment(1);
    h.send({ type: 'tick' });
    await flushMicrotasks();
    expect(outcome(h)).toMatchObject({ outcome: 'acked', messages: 3 });
    expect(stored).toHaveLength(1);
    expect(stored[0]!.manifest).toMatchObject({ messages: 3, firstSeq: 1, lastSeq: 3, sealedBy: 'idle', format: 'raw' });
    expect(h.messages.every((m) => m.acked)).toBe(true);
  });

  it('seals on max age even while messages keep arriving, and on the ack deadline before that', async () => {
    const byAge = startBlock({ store: async () => undefined, limits: { idleMs: 1e9, maxAgeMs: 10_000 } });
    byAge.clock.increment(10_000);
    byAge.send({ type: 'tick' });
    await flushMicrotasks();
    expect(captureEvents(byAge, 'block.sealed')[0]).toMatchObject({ reason: 'max-age' });

    const byDeadline = startBlock({ store: async () => undefined, limits: { idleMs: 1e9, maxAgeMs: 60_000, ackDeadlineMs: 7_000 } });
    byDeadline.clock.increment(7_000);
    byDeadline.send({ type: 'tick' });
    await flushMicrotasks();
    expect(captureEvents(byDeadline, 'block.sealed')[0]).toMatchObject({ reason: 'ack-deadline' });
  });

  it('retries a failing store with growing delays and acks only after the store succeeded', async () => {
    const h = startBlock({
      store: async (_b, attempt) => {
        if (attempt <= 3) throw new StoreError('JV_STORE_UNAVAILABLE', `store down (attempt ${attempt})`);
      },
    });
    h.send({ type: 'seal', reason: 'drain' });
    await flushMicrotasks();
    // Each failed attempt waits its backoff on the simulated clock: 1 s, 2 s, 4 s (random() = 1 → full delay).
    for (const delay of [1_000, 2_000, 4_000]) {
      expect(h.state()).toEqual({ persisting: 'retrying' });
      expect(h.messages.some((m) => m.acked)).toBe(false);
      h.clock.increment(delay - 1);
      await flushMicrotasks();
      expect(h.state()).toEqual({ persisting: 'retrying' });
      h.clock.increment(1);
      await flushMicrotasks();
    }
    expect(outcome(h)).toMatchObject({ outcome: 'acked' });
    expect(captureEvents(h, 'block.retry').map((e) => (e as { delayMs: number }).delayMs)).toEqual([1_000, 2_000, 4_000]);
    expect(captureEvents(h, 'block.stored')[0]).toMatchObject({ attempts: 4 });
    expect(h.messages.every((m) => m.acked)).toBe(true);
  });

  it('never acks while the store has not answered', async () => {
    let confirm!: () => void;
    const h = startBlock({ store: () => new Promise<void>((resolve) => (confirm = resolve)) });
    h.send({ type: 'seal', reason: 'drain' });
    await flushMicrotasks();
    expect(h.state()).toEqual({ persisting: 'storing' });
    h.clock.increment(3_600_000);
    await flushMicrotasks();
    expect(h.messages.some((m) => m.acked)).toBe(false);
    confirm();
    await flushMicrotasks();
    expect(h.messages.every((m) => m.acked)).toBe(true);
  });

  it('marks messages in progress while storing so their ack_wait does not run out', async () => {
    const h = startBlock({ store: () => new Promise<void>(() => undefined), limits: { keepAliveMs: 10 } });
    expect(h.messages[0]!.inProgressMarks).toBe(0);
    h.send({ type: 'seal', reason: 'drain' });
    // The keep-alive interval runs on real timers: wait for it to have marked every message twice.
    await vi.waitFor(() => expect(Math.min(...h.messages.map((m) => m.inProgressMarks))).toBeGreaterThanOrEqual(2));
    expect(h.state()).toEqual({ persisting: 'storing' });
    expect(h.messages.some((m) => m.acked)).toBe(false);
    h.send({ type: 'abandon' });
  });

  it('marks in progress at once when storing starts after the block was open for a keep-alive interval', async () => {
    const young = startBlock({ store: () => new Promise<void>(() => undefined) });
    young.send({ type: 'seal', reason: 'drain' });
    await flushMicrotasks();
    expect(young.state()).toEqual({ persisting: 'storing' });
    expect(young.messages.map((m) => m.inProgressMarks)).toEqual([0, 0, 0]);
    young.send({ type: 'abandon' });

    const old = startBlock({ store: () => new Promise<void>(() => undefined) });
    old.clock.increment(10_000); // keepAliveMs: its first messages may be near their ack_wait
    old.send({ type: 'seal', reason: 'drain' });
    await flushMicrotasks();
    expect(old.messages.map((m) => m.inProgressMarks)).toEqual([1, 1, 1]);
    old.send({ type: 'abandon' });
  });

  it('fails on a permanent store error without acking', async () => {
    const h = startBlock({ store: async () => { throw new StoreError('JV_STORE_FAILED', 'access denied'); } });
    h.send({ type: 'seal', reason: 'drain' });
    await flushMicrotasks();
    expect(outcome(h)).toMatchObject({ outcome: 'failed', error: expect.stringContaining('access denied') });
    expect(h.messages.some((m) => m.acked)).toBe(false);
  });

  it('fails after the retry budget is spent, without acking', async () => {
    const h = startBlock({ store: async () => { throw new StoreError('JV_STORE_UNAVAILABLE', 'still down'); }, maxAttempts: 2 });
    h.send({ type: 'seal', reason: 'drain' });
    await flushMicrotasks();
    h.clock.increment(1_000);
    await flushMicrotasks();
    expect(outcome(h)).toMatchObject({ outcome: 'failed' });
    expect(h.messages.some((m) => m.acked)).toBe(false);
  });

  it('abandons a block that is retrying: nothing acked, the buffer closed', async () => {
    const h = startBlock({ store: async () => { throw new StoreError('JV_STORE_UNAVAILABLE', 'down'); } });
    h.send({ type: 'seal', reason: 'drain' });
    await flushMicrotasks();
    expect(h.state()).toEqual({ persisting: 'retrying' });
    h.send({ type: 'abandon' });
    await flushMicrotasks();
    expect(outcome(h)).toMatchObject({ outcome: 'abandoned', messages: 3 });
    expect(h.messages.some((m) => m.acked)).toBe(false);
  });
});
