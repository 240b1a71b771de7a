/**
 * The capture supervisor with every piece of I/O stubbed: the connection and subscription machines run
 * with provide() stubs for their actors (no server), the ticker is a callback the test fires, the store is
 * an in-memory map whose writes the test can hold, and time is XState's SimulatedClock (delays) plus the
 * same clock as the injected `now` (block ages and idleness). Block machines are the real ones.
 */
import type { ConsumerInfo, JsMsg, StreamInfo, Consumer } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { createActor, fromCallback, fromPromise, SimulatedClock, type AnyActorRef, type InspectionEvent } from 'xstate';
import type { CaughtUpInput, ConsumerInfoInput } from '../machines/actors/supervisor-actors.js';
import type { BindInput, BindResult, ConsumeInput } from '../machines/actors/subscription-actors.js';
import type { ConnectInput } from '../machines/actors/connection-actors.js';
import { captureSupervisorMachine, type CaptureSupervisorInput } from '../machines/capture-supervisor.js';
import { connectionMachine } from '../machines/connection-machine.js';
import { subscriptionMachine } from '../machines/subscription-machine.js';
import type { Envelope } from '../src/archive/envelope.js';
import { MANIFEST_SUFFIX } from '../src/archive/keys.js';
import type { CaptureEvent, CaptureEventOf, CaptureEventType } from '../src/capture/events.js';
import { splitKeyFunction } from '../src/capture/split.js';
import { none } from '../src/compression/index.js';
import { JetvaultError, StoreError } from '../src/errors.js';
import { raw } from '../src/formats/index.js';
import type { BlockFormat } from '../src/formats/format.js';
import type { PutOptions, Store, StoredObject } from '../src/stores/store.js';

const STREAM = 'ORDERS';
const CONSUMER = 'jv-test';
/** Wall-clock origin of the simulated time: 2025-11-25T14:00:00Z. */
const T0 = 1_764_079_200_000;
const T0_NS = BigInt(T0) * 1_000_000n;

/** Everything that happened to messages and the store, in order: proves "stored, then acked". */
type LogEntry = string;

interface HeldPut {
  key: string;
  body: Buffer;
  signal: AbortSignal | undefined;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** A Store in a Map. `hold` keeps matching puts pending until the test releases them. */
class MemoryStore implements Store {
  readonly description = 'memory://test';
  readonly objects = new Map<string, Buffer>();
  readonly held: HeldPut[] = [];
  putCalls = 0;
  hold: (key: string) => boolean = () => false;
  failWith: unknown = undefined;
  check?: () => Promise<void>;

  constructor(private readonly log: LogEntry[]) {}

  put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    this.putCalls++;
    if (this.failWith !== undefined) return Promise.reject(this.failWith);
    const write = () => {
      this.objects.set(key, Buffer.from(body));
      this.log.push(`put ${key}`);
    };
    if (!this.hold(key)) {
      write();
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      this.held.push({ key, body: Buffer.from(body), signal: options?.signal, resolve: () => (write(), resolve()), reject });
    });
  }

  /** Resolves the held puts whose key matches (all by default); returns their keys. */
  release(match: (key: string) => boolean = () => true): string[] {
    const released = this.held.filter((p) => match(p.key));
    for (const p of released) {
      this.held.splice(this.held.indexOf(p), 1);
      p.resolve();
    }
    return released.map((p) => p.key);
  }

  get(key: string): Promise<Buffer> {
    const body = this.objects.get(key);
    return body ? Promise.resolve(body) : Promise.reject(new StoreError('JV_STORE_NOT_FOUND', `${key} not found`));
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    for (const key of [...this.objects.keys()].sort()) if (key.startsWith(prefix)) yield { key, size: this.objects.get(key)!.length };
  }

  exists(key: string): Promise<boolean> {
    return Promise.resolve(this.objects.has(key));
  }

  delete(key: string): Promise<void> {
    this.objects.delete(key);
    return Promise.resolve();
  }

  /** Stored block bodies (manifests left out). */
  blocks(): Map<string, Buffer> {
    return new Map([...this.objects].filter(([key]) => !key.endsWith(MANIFEST_SUFFIX)));
  }
}

/** A JetStream message as the router sees it; records what was done to it. */
class FakeMsg {
  acks = 0;
  naks = 0;
  readonly reply: string;
  readonly timeNs: bigint;

  constructor(
    private readonly log: LogEntry[],
    readonly subject: string,
    readonly seq: number,
    readonly headers: Map<string, string[]> | undefined = undefined,
    readonly data: Uint8Array = Buffer.from(`m${seq}`),
    delivered = 1,
    /** The consumer's delivery sequence: each delivery has its own, so its own ack subject. */
    deliverySeq = seq,
  ) {
    this.timeNs = T0_NS + BigInt(seq);
    // $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<tsNanos>.<pending>
    this.reply = `$JS.ACK.${STREAM}.${CONSUMER}.${delivered}.${seq}.${deliverySeq}.${this.timeNs}.0`;
  }

  ack(): void {
    this.acks++;
    this.log.push(`ack ${this.seq}`);
  }

  nak(): void {
    this.naks++;
    this.log.push(`nak ${this.seq}`);
  }

  working(): void {
    this.log.push(`working ${this.seq}`);
  }
}

interface StartOptions {
  maxMessages?: number;
  maxBytes?: number;
  maxBuffer?: number;
  /** The bound consumer has unacknowledged messages at bind: an earlier run crashed. */
  crashed?: boolean;
  idleMs?: number;
  maxAgeMs?: number;
  drainTimeoutMs?: number;
  /** The bound consumer's ack_wait (ms) and max_ack_pending. */
  ackWaitMs?: number;
  maxAckPending?: number;
  once?: boolean;
  connect?: (input: ConnectInput, attempt: number) => Promise<NatsConnection>;
  /** The store's check(), run before anything is consumed. */
  storeCheck?: () => Promise<void>;
  /** XState's inspection events of every actor (as createCapture's `inspect` option gets them). */
  inspect?: (event: InspectionEvent) => void;
}

const running: Array<{ actor: AnyActorRef; errors: unknown[] }> = [];
afterEach(() => {
  for (const { actor, errors } of running.splice(0)) {
    actor.stop();
    expect(errors).toEqual([]);
  }
});

/** Lets every promise chain and the actor events they cause run to completion. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

function start(options: StartOptions = {}) {
  const clock = new SimulatedClock();
  const now = () => T0 + clock.now();
  const log: LogEntry[] = [];
  const store = new MemoryStore(log);
  if (options.storeCheck) store.check = options.storeCheck;
  let flushes = 0;
  const messages: FakeMsg[] = [];
  /** Deliveries of a sequence delivered before (redeliver, deliverAs), with delivery sequences from 1,000,000 on. */
  const again: FakeMsg[] = [];
  const nc = {
    flush: () => {
      flushes++;
      log.push('flush');
      return Promise.resolve();
    },
    // Blocks ack by publishing to a message's ack subject, as JsMsg.ack() does.
    publish: (subject: string, payload: Uint8Array) => {
      const message = messages.find((m) => m.reply === subject) ?? again.find((m) => m.reply === subject);
      if (!message) throw new Error(`publish to an unknown subject ${subject}`);
      const verb = Buffer.from(payload).toString();
      if (verb === '+ACK') message.ack();
      else if (verb === '+WPI') message.working();
      else if (verb.startsWith('-NAK')) message.nak();
      else throw new Error(`unexpected ack payload ${verb}`);
    },
  } as unknown as NatsConnection;

  const calls = {
    connects: [] as ConnectInput[],
    closes: [] as Array<{ nc: NatsConnection | undefined; owned: boolean }>,
    binds: [] as BindInput[],
    consumers: [] as ConsumeInput[],
    consuming: false,
    tickIntervals: [] as number[],
    recoveries: [] as Array<{ needed: boolean; floorSeq: number }>,
    caughtUp: [] as CaughtUpInput[],
    consumerInfo: [] as ConsumerInfoInput[],
  };
  let consumerInfo_: ((pending: number, ackPending: number, ackFloor: number) => void) | undefined;
  let natsStatus: ((event: { type: 'nats.disconnected' | 'nats.reconnected'; server: string } | { type: 'nats.closed'; error?: string }) => void) | undefined;
  let tick: (() => void) | undefined;
  let caughtUp: (() => void) | undefined;
  let waiting: ((unacked: number) => void) | undefined;

  const consumerInfo = {
    name: CONSUMER,
    stream_name: STREAM,
    config: { durable_name: CONSUMER, ack_wait: (options.ackWaitMs ?? 60_000) * 1e6, max_ack_pending: options.maxAckPending ?? 1_000 },
    // With options.crashed, an earlier run left 2 messages delivered and unacked above the floor.
    num_pending: options.crashed ? 40 : 42,
    num_ack_pending: options.crashed ? 2 : 0,
    num_redelivered: 0,
    ack_floor: { stream_seq: 0, consumer_seq: 0 },
  } as unknown as ConsumerInfo;
  let finishRecovery: ((seqs: number[]) => void) | undefined;
  const streamInfo = {
    config: { name: STREAM, subjects: ['orders.>'] },
    state: { last_seq: 42 },
  } as unknown as StreamInfo;

  const connection = connectionMachine.provide({
    actors: {
      openConnection: fromPromise<NatsConnection, ConnectInput>(({ input }) => {
        calls.connects.push(input);
        return options.connect ? options.connect(input, calls.connects.length) : Promise.resolve(nc);
      }),
      watchConnection: fromCallback<{ type: 'noop' }, { nc: NatsConnection }>(({ sendBack }) => {
        natsStatus = sendBack;
        return () => (natsStatus = undefined);
      }),
      closeConnection: fromPromise<void, { nc: NatsConnection | undefined; owned: boolean }>(async ({ input }) => {
        calls.closes.push(input);
      }),
    },
  });
  const subscription = subscriptionMachine.provide({
    actors: {
      bindConsumer: fromPromise<BindResult, BindInput>(async ({ input }) => {
        calls.binds.push(input);
        return { consumer: {} as Consumer, info: consumerInfo, streamInfo, created: true };
      }),
      consumeMessages: fromCallback<{ type: 'noop' }, ConsumeInput>(({ input }) => {
        calls.consumers.push(input);
        calls.consuming = true;
        return () => (calls.consuming = false);
      }),
    },
  });
  const machine = captureSupervisorMachine.provide({
    actors: {
      connection,
      subscription,
      ticker: fromCallback<{ type: 'noop' }, { intervalMs: number }>(({ input, sendBack }) => {
        calls.tickIntervals.push(input.intervalMs);
        tick = () => sendBack({ type: 'tick' });
        return () => (tick = undefined);
      }),
      watchCaughtUp: fromCallback<{ type: 'noop' }, CaughtUpInput>(({ input, sendBack }) => {
        calls.caughtUp.push(input);
        caughtUp = () => sendBack({ type: 'once.caught-up' });
        waiting = (unacked) => sendBack({ type: 'once.waiting', unacked, ackWaitNs: 30e9 });
        return () => {
          caughtUp = undefined;
          waiting = undefined;
        };
      }),
      watchConsumerInfo: fromCallback<{ type: 'noop' }, ConsumerInfoInput>(({ input, sendBack }) => {
        calls.consumerInfo.push(input);
        consumerInfo_ = (pending, ackPending, ackFloor) => sendBack({ type: 'consumer.info', pending, ackPending, ackFloor });
        return () => (consumerInfo_ = undefined);
      }),
      // The archive's answer after a crash: held until the test resolves it.
      recoverStored: fromPromise<{ seqs: number[]; blocks: number; unreadable: number; durationMs: number }, { needed: boolean; store: Store; stream: string; floorSeq: number }>(
        ({ input }) => {
          calls.recoveries.push({ needed: input.needed, floorSeq: input.floorSeq });
          if (!input.needed) return Promise.resolve({ seqs: [], blocks: 0, unreadable: 0, durationMs: 0 });
          return new Promise((resolve) => (finishRecovery = (seqs) => resolve({ seqs, blocks: 1, unreadable: 0, durationMs: 5 })));
        },
      ),
    },
  });

  const input: CaptureSupervisorInput = {
    servers: ['nats://fake:4222'],
    connectOptions: {},
    connection: undefined,
    stream: STREAM,
    consumer: CONSUMER,
    // What a created consumer would get; the bound consumer's own settings (above) must win.
    create: { ackWaitMs: 3_600_000, maxAckPending: 99_999 },
    recreateConsumer: false,
    consumerInfoIntervalMs: 5_000,
    store,
    router: {
      stream: STREAM,
      consumer: CONSUMER,
      format: raw as BlockFormat<unknown>,
      compression: none,
      splitKeyOf: splitKeyFunction('subject'),
      decoder: undefined,
      maxMessages: options.maxMessages ?? 1_000,
      maxBytes: options.maxBytes ?? 64 * 1024 * 1024,
      maxBuffer: options.maxBuffer ?? 256 * 1024 * 1024,
      poison: { deadLetter: true, attempts: 3, retryDelayMs: 1_000 },
      now,
    },
    maxAgeMs: options.maxAgeMs ?? 600_000,
    idleMs: options.idleMs ?? 300_000,
    retry: { baseMs: 1_000, maxMs: 8_000, maxAttempts: Number.POSITIVE_INFINITY, random: () => 1 },
    drainTimeoutMs: options.drainTimeoutMs ?? 30_000,
    once: options.once ?? false,
    now,
  };

  const actor = createActor(machine, { input, clock, ...(options.inspect ? { inspect: options.inspect } : {}) });
  const emitted: CaptureEvent[] = [];
  actor.on('*', (event) => emitted.push(event));
  const errors: unknown[] = [];
  actor.subscribe({ error: (error) => errors.push(error) });
  running.push({ actor, errors });
  actor.start();

  return {
    actor,
    clock,
    store,
    log,
    nc,
    calls,
    emitted,
    messages,
    flushes: () => flushes,
    state: () => actor.getSnapshot().value,
    held: () => actor.getSnapshot().context.router.held,
    /** Hands a message to the subscription's onMessage, as nats.js' consume() callback does. */
    deliver(subject: string, extra: { headers?: Map<string, string[]>; data?: Uint8Array; delivered?: number } = {}): FakeMsg {
      const consumer = calls.consumers.at(-1);
      if (!consumer) throw new Error('no consume() running yet');
      const message = new FakeMsg(log, subject, messages.length + 1, extra.headers, extra.data, extra.delivered);
      messages.push(message);
      consumer.onMessage(message as unknown as JsMsg);
      return message;
    },
    tick() {
      if (!tick) throw new Error('no ticker running');
      tick();
    },
    caughtUp() {
      if (!caughtUp) throw new Error('no caught-up watcher running');
      caughtUp();
    },
    waiting(unacked: number) {
      if (!waiting) throw new Error('no caught-up watcher running');
      waiting(unacked);
    },
    consumerInfo(pending: number, ackPending: number, ackFloor = 0) {
      if (!consumerInfo_) throw new Error('no consumer info watcher running');
      consumerInfo_(pending, ackPending, ackFloor);
    },
    /** A message with a given sequence and delivery count (a redelivery from an earlier run). */
    deliverAs(seq: number, subject: string, delivered: number): FakeMsg {
      const consumer = calls.consumers.at(-1);
      if (!consumer) throw new Error('no consume() running yet');
      const message = new FakeMsg(log, subject, seq, undefined, undefined, delivered, 1_000_000 + again.length);
      again.push(message);
      consumer.onMessage(message as unknown as JsMsg);
      return message;
    },
    finishRecovery(seqs: number[]) {
      if (!finishRecovery) throw new Error('no recovery running');
      finishRecovery(seqs);
    },
    /** The server delivers an earlier message again (its ack was lost, or ack_wait ran out). */
    redeliver(seq: number): FakeMsg {
      const consumer = calls.consumers.at(-1);
      if (!consumer) throw new Error('no consume() running yet');
      const first = messages[seq - 1]!;
      const message = new FakeMsg(log, first.subject, seq, first.headers, first.data, 2, 1_000_000 + again.length);
      again.push(message);
      consumer.onMessage(message as unknown as JsMsg);
      return message;
    },
    natsStatus(event: Parameters<NonNullable<typeof natsStatus>>[0]) {
      if (!natsStatus) throw new Error('no connection watcher running');
      natsStatus(event);
    },
    of<K extends CaptureEventType>(type: K): Array<CaptureEventOf<K>> {
      return emitted.filter((e): e is CaptureEventOf<K> => e.type === type);
    },
    subscriptionState: () => (actor.getSnapshot().children.subscription as AnyActorRef | undefined)?.getSnapshot().value,
  };
}

type Harness = ReturnType<typeof start>;

/** Starts and waits until the consumer is bound and messages flow. */
async function started(options: StartOptions = {}): Promise<Harness> {
  const h = start(options);
  await settle();
  expect(h.state()).toEqual({ capturing: { running: options.once ? 'untilCaughtUp' : 'continuous' } });
  return h;
}

const acked = (h: Harness) => h.messages.filter((m) => m.acks > 0).map((m) => m.seq);
const blockKeyOf = (subject: string, first: number, last: number) =>
  `${STREAM}/${subject}/2025/11/25/14/${STREAM}-${String(first).padStart(12, '0')}-${String(last).padStart(12, '0')}.jv`;
const decoded = (body: Buffer): Array<Pick<Envelope, 'subject' | 'seq' | 'deliveryCount'> & { data: string; headers: Envelope['headers'] }> =>
  Array.from(raw.decode!(body), (e) => ({
    subject: e.subject,
    seq: e.seq,
    deliveryCount: e.deliveryCount,
    headers: e.headers,
    data: Buffer.from(e.data).toString('utf8'),
  }));

describe('capture supervisor', () => {
  it('connects, binds the consumer with its own settings and announces both', async () => {
    const h = await started({ ackWaitMs: 90_000, maxAckPending: 500 });
    expect(h.calls.connects).toEqual([{ servers: ['nats://fake:4222'], connectOptions: {}, existing: undefined }]);
    expect(h.calls.binds).toEqual([{ nc: h.nc, stream: STREAM, consumer: CONSUMER, create: { ackWaitMs: 3_600_000, maxAckPending: 99_999 } }]);
    expect(h.emitted).toEqual([
      { type: 'connection.status', status: 'connecting' },
      { type: 'connection.status', status: 'connected' },
      { type: 'consumer.bound', stream: STREAM, consumer: CONSUMER, created: true, ackWaitMs: 90_000, maxAckPending: 500, pending: 42 },
    ]);
    expect(h.actor.getSnapshot().context.lastSeqAtStart).toBe(42);
    expect(h.calls.consuming).toBe(true);
  });

  it('acks a redelivery of a stored message again instead of storing it twice, until the ack floor passes it', async () => {
    const h = await started({ maxMessages: 2 });
    h.deliver('orders.eu');
    h.deliver('orders.us');
    h.deliver('orders.eu'); // fills b1: seqs 1 and 3
    await settle();
    expect(acked(h)).toEqual([1, 3]);
    const again = h.redeliver(3);
    expect(again.acks).toBe(1);
    expect(h.of('block.opened').map((e) => e.blockId)).toEqual(['b1', 'b2']);
    // seq 2 sits in the open block b2, not stored yet: the redelivery is acked with b2, not captured again.
    const twoAgain = h.redeliver(2);
    expect(twoAgain.acks).toBe(0);
    // Below the ack floor nothing comes back; the set forgets it (a message there would be captured again).
    h.consumerInfo(0, 0, 3);
    await settle();
    const oneAgain = h.redeliver(1);
    expect(oneAgain.acks).toBe(0);
    h.actor.send({ type: 'drain' });
    await settle();
    expect(twoAgain.acks).toBe(1);
    expect(oneAgain.acks).toBe(1);
    const b2 = [...h.store.objects].find(([key]) => key.startsWith(`${STREAM}/orders.us/`) && !key.endsWith(MANIFEST_SUFFIX))!;
    expect(decoded(b2[1]).map((e) => e.seq)).toEqual([2]);
    expect(h.actor.getSnapshot().output?.report).toMatchObject({ redeliveriesSkipped: 2 });
  });

  it('a held message sent again as a first delivery (server restart) is acked with its block, not stored twice', async () => {
    const h = await started({ maxMessages: 3 });
    h.deliver('orders.eu');
    h.deliver('orders.eu');
    h.deliverAs(6, 'orders.us', 1);
    h.deliverAs(7, 'orders.us', 1);
    // The server forgot it delivered 1, 2, 6 and 7 and sends them again as first deliveries, in another order.
    const again = [h.deliverAs(7, 'orders.us', 1), h.deliverAs(1, 'orders.eu', 1), h.deliverAs(2, 'orders.eu', 1), h.deliverAs(6, 'orders.us', 1)];
    await settle();
    expect(again.map((m) => m.acks)).toEqual([0, 0, 0, 0]);
    expect(h.held()).toBe(4);
    h.deliver('orders.eu'); // seq 3 (deliver() numbers its own deliveries): fills the orders.eu block
    await settle();
    expect(again.map((m) => m.acks)).toEqual([0, 1, 1, 0]);
    h.actor.send({ type: 'drain' });
    await settle();
    expect(again.map((m) => m.acks)).toEqual([1, 1, 1, 1]);
    const stored = [...h.store.objects].filter(([key]) => !key.endsWith(MANIFEST_SUFFIX)).flatMap(([, body]) => decoded(body).map((e) => e.seq));
    expect(stored.sort((a, b) => a - b)).toEqual([1, 2, 3, 6, 7]);
    expect(h.actor.getSnapshot().output?.report).toMatchObject({ redeliveriesSkipped: 4, messages: 5 });
  });

  it('after a crash, holds back redeliveries until the archive says which are stored, then acks those and captures the rest', async () => {
    const h = await started({ crashed: true, maxMessages: 100 });
    expect(h.calls.recoveries).toEqual([{ needed: true, floorSeq: 0 }]);
    h.deliver('orders.eu'); // seq 1, first delivery: captured at once
    const [two, three] = [h.deliverAs(2, 'orders.eu', 2), h.deliverAs(3, 'orders.eu', 2)];
    expect(h.held()).toBe(1);
    h.finishRecovery([2, 5]);
    await settle();
    expect(two.acks).toBe(1); // in the archive already: acked, not stored again
    expect(three.acks).toBe(0); // not in the archive: captured
    expect(h.held()).toBe(2);
    expect(h.of('capture.recovered')).toEqual([
      { type: 'capture.recovered', floorSeq: 0, blocks: 1, storedMessages: 2, unreadableBlocks: 0, durationMs: 5 },
    ]);
  });

  it('--once: while waiting for unacked messages it does not hold, seals and acks what it holds', async () => {
    const h = await started({ once: true });
    h.deliver('orders.eu');
    h.deliver('orders.us');
    h.waiting(5); // another process on the consumer holds 5 (or a crashed run left them)
    await settle();
    expect(h.of('block.sealed').map((e) => e.reason)).toEqual(['drain', 'drain']);
    expect(acked(h)).toEqual([1, 2]);
    expect(h.of('capture.waiting')).toEqual([{ type: 'capture.waiting', unacked: 5, ackWaitMs: 30_000 }]);
    expect(h.state()).toEqual({ capturing: { running: 'untilCaughtUp' } });
  });

  it('routes messages by subject into separate blocks, stores a full block, and acks only after both writes', async () => {
    const h = await started({ maxMessages: 3 });
    h.store.hold = () => true;
    h.deliver('orders.eu', { headers: new Map([['X-Multi', ['a', 'b']]]) });
    h.deliver('orders.us');
    h.deliver('orders.eu', { data: new Uint8Array(0), delivered: 2 });
    h.deliver('orders.us');
    expect(h.of('block.opened')).toEqual([
      { type: 'block.opened', blockId: 'b1', splitKey: 'orders.eu' },
      { type: 'block.opened', blockId: 'b2', splitKey: 'orders.us' },
    ]);
    expect(h.of('block.sealed')).toEqual([]);

    h.deliver('orders.eu'); // the third orders.eu message fills b1
    await settle();
    const key = blockKeyOf('orders.eu', 1, 5);
    expect(h.of('block.sealed')).toEqual([{ type: 'block.sealed', blockId: 'b1', key, messages: 3, bytes: expect.any(Number), reason: 'max-messages' }]);
    expect(h.store.held.map((p) => p.key)).toEqual([key]);
    expect(acked(h)).toEqual([]);

    // The block is written, its manifest not yet: still nothing acked.
    expect(h.store.release()).toEqual([key]);
    await settle();
    expect(h.store.held.map((p) => p.key)).toEqual([key + MANIFEST_SUFFIX]);
    expect(acked(h)).toEqual([]);

    h.store.release();
    await settle();
    expect(acked(h)).toEqual([1, 3, 5]);
    expect(h.messages.map((m) => m.acks)).toEqual([1, 0, 1, 0, 1]);
    expect(h.log).toEqual([`put ${key}`, `put ${key}${MANIFEST_SUFFIX}`, 'ack 1', 'ack 3', 'ack 5', 'flush']);
    expect(h.of('block.stored')).toEqual([
      { type: 'block.stored', blockId: 'b1', key, messages: 3, storedBytes: h.store.objects.get(key)!.length, attempts: 1, durationMs: 0 },
    ]);
    expect(h.of('block.acked')).toEqual([{ type: 'block.acked', blockId: 'b1', key, messages: 3 }]);
    expect(h.held()).toBe(2);

    expect(decoded(h.store.objects.get(key)!)).toEqual([
      { subject: 'orders.eu', seq: 1, deliveryCount: 1, headers: [['X-Multi', ['a', 'b']]], data: 'm1' },
      { subject: 'orders.eu', seq: 3, deliveryCount: 2, headers: null, data: '' },
      { subject: 'orders.eu', seq: 5, deliveryCount: 1, headers: null, data: 'm5' },
    ]);
    const manifest = JSON.parse(h.store.objects.get(key + MANIFEST_SUFFIX)!.toString('utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({ key, stream: STREAM, splitKey: 'orders.eu', consumer: CONSUMER, messages: 3, firstSeq: 1, lastSeq: 5, sealedBy: 'max-messages' });
    expect(manifest.streamConfig).toEqual({ name: STREAM, subjects: ['orders.>'] });

    // The next orders.eu message starts a new block; orders.us keeps its open one.
    h.deliver('orders.eu');
    expect(h.of('block.opened').map((e) => [e.blockId, e.splitKey])).toEqual([
      ['b1', 'orders.eu'],
      ['b2', 'orders.us'],
      ['b3', 'orders.eu'],
    ]);
  });

  it('seals a block on the first tick after it has been idle for idleMs, each split key on its own clock', async () => {
    const h = await started({ idleMs: 5_000, maxAgeMs: 600_000, ackWaitMs: 60_000 });
    // Shortest of idle 5 s, max age 10 min and ack deadline 45 s, a quarter of it, at most 1 s.
    expect(h.calls.tickIntervals).toEqual([1_000]);
    h.deliver('orders.eu');
    h.clock.increment(3_000);
    h.deliver('orders.us');
    h.clock.increment(1_999); // t = 4.999 s
    h.tick();
    await settle();
    expect(h.of('block.sealed')).toEqual([]);

    h.clock.increment(1); // t = 5 s: orders.eu idle for 5 s, orders.us for 2 s
    h.tick();
    await settle();
    expect(h.of('block.sealed').map((e) => [e.blockId, e.reason])).toEqual([['b1', 'idle']]);
    expect(acked(h)).toEqual([1]);

    h.clock.increment(2_999);
    h.tick();
    await settle();
    expect(acked(h)).toEqual([1]);
    h.clock.increment(1); // t = 8 s
    h.tick();
    await settle();
    expect(h.of('block.sealed').map((e) => [e.blockId, e.reason])).toEqual([['b1', 'idle'], ['b2', 'idle']]);
    expect(acked(h)).toEqual([1, 2]);
    expect(h.held()).toBe(0);
  });

  it('sends a tick only to open blocks past one of their time limits', async () => {
    const ticked: string[] = [];
    const h = await started({
      idleMs: 5_000,
      maxAgeMs: 600_000,
      ackWaitMs: 60_000,
      inspect: (e) => {
        if (e.type !== '@xstate.event' || e.event.type !== 'tick') return;
        // Block actors carry their block id in their context (their actor id is only its number).
        const blockId = ((e.actorRef as AnyActorRef).getSnapshot()?.context as { id?: unknown } | undefined)?.id;
        if (typeof blockId === 'string') ticked.push(blockId);
      },
    });
    for (const region of ['eu', 'us', 'apac']) h.deliver(`orders.${region}`);
    h.clock.increment(3_000);
    h.deliver('orders.us');
    h.deliver('orders.apac');
    h.clock.increment(1_000); // t = 4 s: nothing idle for 5 s yet
    h.tick();
    await settle();
    expect(ticked).toEqual([]);

    h.clock.increment(1_000); // t = 5 s: orders.eu idle for 5 s, the others for 2 s
    h.tick();
    await settle();
    expect(ticked).toEqual(['b1']);
    expect(h.of('block.sealed').map((e) => [e.blockId, e.reason])).toEqual([['b1', 'idle']]);

    h.clock.increment(1_000); // b1 is sealed (stored and acked): no tick for it, still none for the others
    h.tick();
    await settle();
    expect(ticked).toEqual(['b1']);
    h.clock.increment(2_000); // t = 8 s: orders.us and orders.apac idle for 5 s
    h.tick();
    await settle();
    expect(ticked.slice(1).sort()).toEqual(['b2', 'b3']);
    expect(h.of('block.sealed').map((e) => e.blockId).sort()).toEqual(['b1', 'b2', 'b3']);
  });

  it("seals before the bound consumer's ack_wait runs out, even while messages keep arriving", async () => {
    // ack_wait 8 s → seal 2 s (a quarter) before it, less one tick (1 s, ticks may come late): at 5 s.
    // The create settings (1 h) must not be used.
    const h = await started({ idleMs: 300_000, ackWaitMs: 8_000 });
    for (let t = 0; t < 5; t++) {
      h.deliver('orders.eu');
      h.clock.increment(1_000);
      if (t < 4) {
        h.tick();
        await settle();
        expect(h.of('block.sealed')).toEqual([]);
      }
    }
    h.tick(); // t = 5 s
    await settle();
    expect(h.of('block.sealed').map((e) => [e.blockId, e.messages, e.reason])).toEqual([['b1', 5, 'ack-deadline']]);
    expect(acked(h)).toEqual([1, 2, 3, 4, 5]);
  });

  it('seals the largest open block early once held messages reach half of max_ack_pending', async () => {
    const h = await started({ maxAckPending: 128 });
    // 5 of every 8 messages go to orders.eu: 40 of the first 64.
    const subjectOf = (i: number) => (i % 8 < 5 ? 'orders.eu' : 'orders.us');
    for (let i = 1; i <= 63; i++) h.deliver(subjectOf(i));
    await settle();
    expect(h.of('block.sealed')).toEqual([]);
    h.deliver(subjectOf(64)); // held = 64 = 128 / 2
    await settle();
    expect(h.of('block.sealed').map((e) => [e.blockId, e.messages, e.reason])).toEqual([['b1', 40, 'ack-pending']]);
    expect(h.messages.filter((m) => m.acks > 0).every((m) => m.subject === 'orders.eu')).toBe(true);
    expect(acked(h)).toHaveLength(40);
    expect(h.held()).toBe(24);

    // Below half the limit nothing seals early.
    const roomy = await started({ maxAckPending: 129 });
    for (let i = 1; i <= 64; i++) roomy.deliver(subjectOf(i));
    await settle();
    expect(roomy.of('block.sealed')).toEqual([]);
  });

  it('seals the largest open block when all blocks together reach the buffer limit, and no smaller ones while that one stores', async () => {
    // raw: 100 B of data + subject + framing per message, about 150 B; limit 30 KB: reached near 200 messages.
    const h = await started({ maxBuffer: 30_000 });
    h.store.hold = () => true;
    const data = new Uint8Array(100);
    const subjectOf = (i: number) => (i % 4 === 0 ? 'orders.us' : 'orders.eu');
    let i = 0;
    while (h.of('block.sealed').length === 0 && i < 1_000) {
      h.deliver(subjectOf(++i), { data });
      await settle();
    }
    const [first] = h.of('block.sealed');
    expect(first).toMatchObject({ blockId: 'b1', reason: 'max-buffer' });
    expect(i).toBeGreaterThan(150);
    expect(i).toBeLessThan(260);
    // The eu block now stores (held), keeping ~3/4 of the limit: the us block alone stays open until it holds half.
    const sealedAt = i;
    while (h.of('block.sealed').length === 1 && i < sealedAt + 2_000) {
      h.deliver(subjectOf(++i), { data });
      await settle();
    }
    // Then eu (b3) and us (b2) hold about the same: either one may go.
    expect(h.of('block.sealed').map((e) => [e.blockId, e.reason])).toEqual([['b1', 'max-buffer'], [expect.stringMatching(/^b[23]$/), 'max-buffer']]);
    expect(i - sealedAt).toBeGreaterThan(50);
    expect(acked(h)).toEqual([]);
  });

  // BUG (src/capture/router.ts, route(): `this.received % 64 === 0`): the guard is only evaluated on every
  // 64th message received. With max_ack_pending below 64 the server stops delivering at max_ack_pending
  // unacked messages, `received` never reaches 64, and every block waits for its idle/age seal instead.
  it('seals early with a max_ack_pending below 64 too', async () => {
    const h = await started({ maxAckPending: 10 });
    for (let i = 1; i <= 10; i++) h.deliver(i <= 6 ? 'orders.eu' : 'orders.us'); // the server delivers no more than this
    await settle();
    expect(h.of('block.sealed').map((e) => [e.blockId, e.reason])).toEqual([['b1', 'ack-pending']]);
  });

  it('drains: stops consuming, seals every open block, waits for the stores, acks, closes and reports exact counts', async () => {
    const h = await started();
    h.store.hold = () => true;
    h.deliver('orders.eu');
    h.deliver('orders.us');
    h.deliver('orders.eu');
    h.clock.increment(2_500);
    h.actor.send({ type: 'drain' });
    await settle();
    expect(h.state()).toBe('draining');
    expect(h.calls.consuming).toBe(false);
    expect(h.of('block.sealed').map((e) => [e.blockId, e.key, e.messages, e.reason])).toEqual([
      ['b1', blockKeyOf('orders.eu', 1, 3), 2, 'drain'],
      ['b2', blockKeyOf('orders.us', 2, 2), 1, 'drain'],
    ]);
    expect(acked(h)).toEqual([]);
    expect(h.calls.closes).toEqual([]);

    h.store.release();
    await settle();
    expect(acked(h)).toEqual([]); // manifests still pending
    h.store.release();
    await settle();

    expect(acked(h)).toEqual([1, 2, 3]);
    expect(h.messages.map((m) => [m.acks, m.naks])).toEqual([[1, 0], [1, 0], [1, 0]]);
    expect(h.calls.closes).toEqual([{ nc: h.nc, owned: true }]);
    expect(h.actor.getSnapshot().status).toBe('done');
    expect(h.state()).toBe('stopped');
    const storedBytes = [...h.store.blocks().values()].reduce((n, b) => n + b.length, 0);
    expect(storedBytes).toBeGreaterThan(0);
    expect(h.actor.getSnapshot().output).toEqual({
      report: { stream: STREAM, consumer: CONSUMER, messages: 3, deadLettered: 0, redeliveriesSkipped: 0, blocks: 2, storedBytes, abandonedBlocks: 0, durationMs: 2_500 },
      error: undefined,
    });
    expect(h.of('block.acked').map((e) => [e.blockId, e.messages])).toEqual([['b1', 2], ['b2', 1]]);
  });

  it('drain with nothing open ends at once', async () => {
    const h = await started();
    h.actor.send({ type: 'drain' });
    await settle();
    expect(h.actor.getSnapshot().output).toEqual({
      report: { stream: STREAM, consumer: CONSUMER, messages: 0, deadLettered: 0, redeliveriesSkipped: 0, blocks: 0, storedBytes: 0, abandonedBlocks: 0, durationMs: 0 },
      error: undefined,
    });
    expect(h.calls.closes).toHaveLength(1);
  });

  it('naks messages that arrive after drain started, and never captures them', async () => {
    const h = await started();
    h.store.hold = () => true;
    h.deliver('orders.eu');
    h.actor.send({ type: 'drain' });
    await settle();
    // Already in the client's buffer when consume() stopped: handed back for redelivery.
    const late = h.deliver('orders.eu');
    const lateOther = h.deliver('orders.us');
    expect([late.naks, lateOther.naks]).toEqual([1, 1]);
    expect(h.of('block.opened')).toHaveLength(1);
    h.store.release();
    await settle();
    h.store.release();
    await settle();
    expect(h.messages.map((m) => [m.acks, m.naks])).toEqual([[1, 0], [0, 1], [0, 1]]);
    expect(h.actor.getSnapshot().output?.report).toMatchObject({ messages: 1, blocks: 1, abandonedBlocks: 0 });
  });

  it('abandons a block whose store does not finish within the drain timeout: never acked, counted as abandoned', async () => {
    const h = await started({ drainTimeoutMs: 10_000 });
    h.store.hold = (key) => key.includes('/orders.eu/');
    h.deliver('orders.eu');
    h.deliver('orders.us');
    h.deliver('orders.eu');
    h.actor.send({ type: 'drain' });
    await settle();
    expect(acked(h)).toEqual([2]); // orders.us stored and acked
    const stuck = h.store.held[0]!;
    expect(stuck.key).toBe(blockKeyOf('orders.eu', 1, 3));

    h.clock.increment(9_999);
    await settle();
    expect(h.state()).toBe('draining');
    h.clock.increment(1);
    await settle();

    expect(h.state()).toBe('stopped');
    expect(stuck.signal?.aborted).toBe(true);
    expect(h.of('block.abandoned')).toEqual([{ type: 'block.abandoned', blockId: 'b1', key: stuck.key, messages: 2 }]);
    const usBytes = h.store.objects.get(blockKeyOf('orders.us', 2, 2))!.length;
    expect(h.actor.getSnapshot().output).toEqual({
      report: { stream: STREAM, consumer: CONSUMER, messages: 1, deadLettered: 0, redeliveriesSkipped: 0, blocks: 1, storedBytes: usBytes, abandonedBlocks: 1, durationMs: 10_000 },
      error: undefined,
    });
    // The store answering after shutdown changes nothing.
    h.store.release();
    await settle();
    expect(h.messages.map((m) => [m.acks, m.naks])).toEqual([[0, 0], [1, 0], [0, 0]]);
  });

  it('ends with JV_STORE_FAILED on a permanent store error, acking nothing', async () => {
    const h = await started({ maxMessages: 2 });
    h.store.failWith = new StoreError('JV_STORE_FAILED', 'access denied');
    h.deliver('orders.us'); // stays open, abandoned at shutdown
    h.deliver('orders.eu');
    h.deliver('orders.eu'); // fills b2, whose store fails
    await settle();

    expect(h.state()).toBe('stopped');
    expect(h.store.putCalls).toBe(1); // not retried
    expect(h.messages.map((m) => [m.acks, m.naks])).toEqual([[0, 0], [0, 0], [0, 0]]);
    expect(h.of('block.failed')).toEqual([{ type: 'block.failed', blockId: 'b2', key: blockKeyOf('orders.eu', 2, 3), error: 'access denied' }]);
    expect(h.of('block.abandoned')).toEqual([{ type: 'block.abandoned', blockId: 'b1', messages: 1 }]);
    const output = h.actor.getSnapshot().output!;
    expect(output.report).toEqual({ stream: STREAM, consumer: CONSUMER, messages: 0, deadLettered: 0, redeliveriesSkipped: 0, blocks: 0, storedBytes: 0, abandonedBlocks: 2, durationMs: 0 });
    expect(output.error).toBeInstanceOf(JetvaultError);
    expect(output.error).toMatchObject({ code: 'JV_STORE_FAILED', message: 'block b2 could not be stored: access denied' });
    expect(h.calls.closes).toHaveLength(1);
  });

  it('stop ends at once: open and storing blocks are abandoned, nothing acked', async () => {
    const h = await started({ maxMessages: 2 });
    h.store.hold = () => true;
    h.deliver('orders.eu');
    h.deliver('orders.eu'); // b1 full, storing
    h.deliver('orders.us'); // b2 open
    await settle();
    h.actor.send({ type: 'stop' });
    await settle();
    expect(h.state()).toBe('stopped');
    expect(acked(h)).toEqual([]);
    expect(h.actor.getSnapshot().output?.report).toMatchObject({ messages: 0, blocks: 0, abandonedBlocks: 2 });
    expect(h.actor.getSnapshot().output?.error).toBeUndefined();
  });

  it('pauses the subscription while the connection is down and resumes it after', async () => {
    const h = await started();
    expect(h.subscriptionState()).toEqual({ active: 'consuming' });
    h.natsStatus({ type: 'nats.disconnected', server: 'fake:4222' });
    expect(h.subscriptionState()).toEqual({ active: 'paused' });
    h.natsStatus({ type: 'nats.reconnected', server: 'fake:4223' });
    expect(h.subscriptionState()).toEqual({ active: 'consuming' });
    expect(h.of('connection.status').slice(2)).toEqual([
      { type: 'connection.status', status: 'reconnecting', server: 'fake:4222' },
      { type: 'connection.status', status: 'connected', server: 'fake:4223' },
    ]);
  });

  it('ends with the connect error when the first connect keeps failing', async () => {
    const refused = new JetvaultError('JV_CONNECT_FAILED', 'cannot connect to NATS at nats://fake:4222');
    const h = start({ connect: () => Promise.reject(refused) });
    await settle();
    // Backoff ceilings 250 ms then 500 ms (jittered below them).
    h.clock.increment(250);
    await settle();
    h.clock.increment(500);
    await settle();
    expect(h.calls.connects).toHaveLength(3);
    expect(h.state()).toBe('stopped');
    expect(h.actor.getSnapshot().output).toEqual({
      report: { stream: STREAM, consumer: CONSUMER, messages: 0, deadLettered: 0, redeliveriesSkipped: 0, blocks: 0, storedBytes: 0, abandonedBlocks: 0, durationMs: 750 },
      error: refused,
    });
    expect(h.of('connection.status')).toEqual([
      { type: 'connection.status', status: 'connecting' },
      { type: 'connection.status', status: 'failed', error: String(refused) },
    ]);
    expect(h.calls.binds).toEqual([]);
  });

  it('ends with JV_CONNECT_FAILED when an established connection closes for good, acking nothing', async () => {
    const h = await started();
    h.deliver('orders.eu');
    h.natsStatus({ type: 'nats.closed', error: 'stale connection' });
    await settle();
    expect(h.state()).toBe('stopped');
    expect(h.actor.getSnapshot().output?.error).toMatchObject({ code: 'JV_CONNECT_FAILED' });
    expect(h.messages.map((m) => [m.acks, m.naks])).toEqual([[0, 0]]);
  });

  // BUG (machines/capture-supervisor.ts, the root invoke's onDone, second branch): when the connection
  // ends on its own (nats.closed) the supervisor jumps straight to `stopped`; open blocks are stopped as
  // children without `abandon`, so no block.abandoned event is emitted and report.abandonedBlocks stays 0.
  it('counts blocks left open by a lost connection as abandoned', async () => {
    const h = await started();
    h.deliver('orders.eu');
    h.natsStatus({ type: 'nats.closed' });
    await settle();
    expect(h.of('block.abandoned')).toEqual([{ type: 'block.abandoned', blockId: 'b1', messages: 1 }]);
    expect(h.actor.getSnapshot().output?.report.abandonedBlocks).toBe(1);
  });

  it('--once: drains when everything pending at start is captured', async () => {
    const h = await started({ once: true });
    h.deliver('orders.eu');
    h.deliver('orders.us');
    const watcher = h.calls.caughtUp[0]!;
    expect(watcher).toMatchObject({ nc: h.nc, stream: STREAM, consumer: CONSUMER, lastSeqAtStart: 42 });
    expect(watcher.held()).toBe(2);
    h.caughtUp();
    await settle();
    expect(h.of('capture.caught-up')).toEqual([{ type: 'capture.caught-up', messages: 2 }]);
    expect(h.state()).toBe('stopped');
    expect(acked(h)).toEqual([1, 2]);
    expect(h.actor.getSnapshot().output?.report).toMatchObject({ messages: 2, blocks: 2, abandonedBlocks: 0 });
  });

  it('checks the store first: a missing bucket ends the capture before anything is bound', async () => {
    const h = start({ storeCheck: () => Promise.reject(new StoreError('JV_STORE_FAILED', 'bucket nope does not exist')) });
    await settle();
    expect(h.calls.binds).toEqual([]);
    expect(h.actor.getSnapshot().status).toBe('done');
    expect(h.actor.getSnapshot().output?.error).toMatchObject({ code: 'JV_STORE_FAILED', message: 'bucket nope does not exist' });
  });

  it('waits for a slow store check even when the connection is ready first', async () => {
    let passCheck!: () => void;
    const h = start({ storeCheck: () => new Promise<void>((resolve) => (passCheck = resolve)) });
    await settle();
    expect(h.actor.getSnapshot().value).toBe('checkingStore');
    expect(h.calls.binds).toEqual([]);
    passCheck();
    await settle();
    expect(h.state()).toEqual({ capturing: { running: 'continuous' } });
    expect(h.calls.binds).toHaveLength(1);
  });

  it('reports the consumer lag it reads while running, as consumer.info events', async () => {
    const h = await started();
    expect(h.calls.consumerInfo).toEqual([{ nc: h.nc, stream: STREAM, consumer: CONSUMER, intervalMs: 5_000 }]);
    h.consumerInfo(120, 7);
    expect(h.of('consumer.info')).toEqual([{ type: 'consumer.info', pending: 120, ackPending: 7 }]);
  });
});
