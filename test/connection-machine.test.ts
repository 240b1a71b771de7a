import type { NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createActor, fromCallback, fromPromise, setup, SimulatedClock, type AnyActorRef } from 'xstate';
import { ACK_REPLAY_WINDOW_MS, acksSurviveReconnects, rawConnection, type ConnectInput, type ConnectionStatusEvent } from '../machines/actors/connection-actors.js';
import { connectionMachine, type ConnectionInput, type ConnectionParentEvent } from '../machines/connection-machine.js';
import { JetvaultError } from '../src/errors.js';
import { publishToAllOf } from '../src/capture/reply-ack.js';

const fakeNc = { name: 'fake connection' } as unknown as NatsConnection;

afterEach(() => {
  vi.restoreAllMocks();
});

const settle = async () => {
  for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

/** Runs the connection machine, with stubbed I/O, under a parent that records what it is told. */
function run(options: { input?: Partial<ConnectionInput>; connect?: (attempt: number) => Promise<NatsConnection>; close?: () => Promise<void> } = {}) {
  const clock = new SimulatedClock();
  const connects: Array<{ input: ConnectInput; at: number }> = [];
  const closes: Array<{ nc: NatsConnection | undefined; owned: boolean }> = [];
  const watcher = { active: false, send: undefined as ((event: ConnectionStatusEvent) => void) | undefined };
  const machine = connectionMachine.provide({
    actors: {
      openConnection: fromPromise<NatsConnection, ConnectInput>(({ input }) => {
        connects.push({ input, at: clock.now() });
        return options.connect ? options.connect(connects.length) : Promise.resolve(fakeNc);
      }),
      watchConnection: fromCallback<{ type: 'noop' }, { nc: NatsConnection }>(({ sendBack }) => {
        watcher.active = true;
        watcher.send = sendBack;
        return () => (watcher.active = false);
      }),
      closeConnection: fromPromise<void, { nc: NatsConnection | undefined; owned: boolean }>(({ input }) => {
        closes.push(input);
        return options.close ? options.close() : Promise.resolve();
      }),
    },
  });
  const told: Array<{ type: string }> = [];
  const parent = setup({ actors: { connection: machine } }).createMachine({
    invoke: { id: 'connection', src: 'connection', input: { servers: ['nats://a:4222'], ...options.input } },
    on: { '*': { actions: ({ event }) => void told.push(event) } },
  });
  const actor = createActor(parent, { clock });
  const errors: unknown[] = [];
  actor.subscribe({ error: (e) => errors.push(e) });
  actor.start();
  const child = () => actor.getSnapshot().children.connection as AnyActorRef | undefined;
  return {
    clock,
    connects,
    closes,
    watcher,
    errors,
    /** What the parent was told, without XState's own done event. */
    told: () => told.filter((e) => !e.type.startsWith('xstate.')) as ConnectionParentEvent[],
    childDone: () => told.some((e) => e.type === 'xstate.done.actor.connection'),
    state: () => child()?.getSnapshot().value,
    send: (event: { type: 'close' }) => child()!.send(event),
    status: (event: ConnectionStatusEvent) => watcher.send!(event),
  };
}

describe('connection machine', () => {
  it('retries a failed first connect with exponential backoff, then announces the connection', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0); // jitter at its floor: half the ceiling
    const refused = new Error('ECONNREFUSED');
    const h = run({ connect: (attempt) => (attempt < 3 ? Promise.reject(refused) : Promise.resolve(fakeNc)) });
    await settle();
    expect(h.state()).toBe('backoff');
    h.clock.increment(124);
    await settle();
    expect(h.connects).toHaveLength(1);
    h.clock.increment(1); // 125 ms: half of 250
    await settle();
    expect(h.state()).toBe('backoff');
    h.clock.increment(249);
    await settle();
    expect(h.connects).toHaveLength(2);
    h.clock.increment(1); // 250 ms more: half of 500
    await settle();
    expect(h.connects.map((c) => c.at)).toEqual([0, 125, 375]);
    expect(h.connects[0]!.input).toEqual({ servers: ['nats://a:4222'], connectOptions: {}, existing: undefined });
    expect(h.state()).toEqual({ open: 'connected' });
    expect(h.told()).toEqual([{ type: 'connection.ready', nc: fakeNc }]);
    expect(h.watcher.active).toBe(true);
  });

  it('gives up after maxConnectAttempts and tells its parent connection.failed with the error', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const refused = new JetvaultError('JV_CONNECT_FAILED', 'cannot connect');
    const h = run({ input: { maxConnectAttempts: 2, retryBaseMs: 1_000 }, connect: () => Promise.reject(refused) });
    await settle();
    h.clock.increment(500);
    await settle();
    expect(h.connects).toHaveLength(2);
    expect(h.state()).toBe('failed');
    expect(h.childDone()).toBe(true);
    expect(h.told()).toEqual([{ type: 'connection.failed', error: refused }]);
    h.clock.increment(60_000);
    await settle();
    expect(h.connects).toHaveLength(2);
  });

  it('defaults to three attempts', async () => {
    const h = run({ connect: () => Promise.reject(new Error('refused')) });
    await settle();
    for (const ceiling of [250, 500, 1_000]) {
      h.clock.increment(ceiling);
      await settle();
    }
    expect(h.connects).toHaveLength(3);
    expect(h.told().map((e) => e.type)).toEqual(['connection.failed']);
  });

  it('mirrors nats.js: connected → reconnecting → connected, telling its parent each time', async () => {
    const h = run();
    await settle();
    expect(h.state()).toEqual({ open: 'connected' });
    h.status({ type: 'nats.disconnected', server: 'a:4222' });
    expect(h.state()).toEqual({ open: 'reconnecting' });
    h.status({ type: 'nats.disconnected', server: 'a:4222' }); // repeated: no second announcement
    h.status({ type: 'nats.reconnected', server: 'b:4222' });
    expect(h.state()).toEqual({ open: 'connected' });
    h.status({ type: 'nats.reconnected', server: 'b:4222' });
    expect(h.told()).toEqual([
      { type: 'connection.ready', nc: fakeNc },
      { type: 'connection.lost', server: 'a:4222' },
      { type: 'connection.restored', server: 'b:4222' },
    ]);
  });

  it('close: closing until the connection is closed, then closed', async () => {
    let closed!: () => void;
    const h = run({ close: () => new Promise<void>((resolve) => (closed = resolve)) });
    await settle();
    h.send({ type: 'close' });
    expect(h.state()).toBe('closing');
    expect(h.watcher.active).toBe(false);
    expect(h.closes).toEqual([{ nc: fakeNc, owned: true }]);
    await settle();
    expect(h.childDone()).toBe(false);
    closed();
    await settle();
    expect(h.state()).toBe('closed');
    expect(h.childDone()).toBe(true);
    expect(h.errors).toEqual([]);
  });

  it('closes even when closing the connection fails', async () => {
    const h = run({ close: () => Promise.reject(new Error('already gone')) });
    await settle();
    h.send({ type: 'close' });
    await settle();
    expect(h.childDone()).toBe(true);
  });

  it('never owns a connection it was given', async () => {
    const given = { name: 'caller connection' } as unknown as NatsConnection;
    const h = run({ input: { existing: given }, connect: async () => given });
    await settle();
    expect(h.connects[0]!.input.existing).toBe(given);
    h.send({ type: 'close' });
    await settle();
    expect(h.closes).toEqual([{ nc: given, owned: false }]);
  });

  it('close during the backoff ends without another attempt', async () => {
    const h = run({ connect: () => Promise.reject(new Error('refused')) });
    await settle();
    expect(h.state()).toBe('backoff');
    h.send({ type: 'close' });
    await settle();
    expect(h.state()).toBe('closed');
    expect(h.childDone()).toBe(true);
    h.clock.increment(10_000);
    await settle();
    expect(h.connects).toHaveLength(1);
    expect(h.closes).toEqual([]);
    expect(h.told()).toEqual([]);
  });

  it('ends when nats.js closes the connection for good, telling its parent', async () => {
    const h = run();
    await settle();
    h.status({ type: 'nats.closed', error: 'stale connection' });
    await settle();
    expect(h.childDone()).toBe(true);
    expect(h.told().at(-1)).toMatchObject({ type: 'connection.closed' });
    expect(h.closes).toEqual([]);
  });
});

/** A nats.js connection stand-in: records publishes, fails flushes on demand, emits status by hand. */
function fakeConnection() {
  const published: Array<{ subject: string; payload: string }> = [];
  const statuses: Array<{ type: string; server?: string }> = [];
  let wake: (() => void) | undefined;
  let closedResolve!: () => void;
  const closed = new Promise<void>((resolve) => (closedResolve = resolve));
  const state = { isClosed: false, flushes: 0, failFlush: false };
  const nc = {
    name: 'fake',
    publish: (subject: string, payload: Uint8Array) => void published.push({ subject, payload: new TextDecoder().decode(payload) }),
    flush: () => {
      state.flushes++;
      return state.failFlush ? Promise.reject(new Error('connection disconnected')) : Promise.resolve();
    },
    status: () => ({
      async *[Symbol.asyncIterator]() {
        for (;;) {
          while (statuses.length > 0) yield statuses.shift()!;
          if (state.isClosed) return;
          await new Promise<void>((resolve) => (wake = resolve));
        }
      },
    }),
    closed: () => closed.then(() => undefined),
    isClosed: () => state.isClosed,
  } as unknown as NatsConnection;
  return {
    nc,
    published,
    state,
    emit: (status: { type: string; server?: string }) => {
      statuses.push(status);
      wake?.();
    },
    close: () => {
      state.isClosed = true;
      closedResolve();
      wake?.();
    },
  };
}

describe('acksSurviveReconnects', () => {
  const ACK = new TextEncoder().encode('+ACK');
  const WPI = new TextEncoder().encode('+WPI');

  it('publishes acks from shortly before a disconnect and during it again after the reconnect, nothing else', async () => {
    let now = 0;
    const f = fakeConnection();
    const nc = acksSurviveReconnects(f.nc, () => now);
    nc.publish('$JS.ACK.S.C.1.1.1.0.0', ACK); // two windows before the disconnect: not replayed
    now += ACK_REPLAY_WINDOW_MS;
    nc.publish('$JS.ACK.S.C.1.2.2.0.0', ACK);
    now += ACK_REPLAY_WINDOW_MS;
    nc.publish('$JS.ACK.S.C.1.3.3.0.0', ACK); // the window before the disconnect
    nc.publish('$JS.ACK.S.C.1.4.4.0.0', WPI); // in progress, not an ack
    nc.publish('orders.eu', ACK); // not an ack subject
    f.emit({ type: 'disconnect', server: 'a' });
    await settle();
    now += 10 * ACK_REPLAY_WINDOW_MS; // a long outage does not age out what waits for the reconnect
    nc.publish('$JS.ACK.S.C.1.5.5.0.0', ACK); // dropped by nats.js while disconnected
    f.published.length = 0;
    f.emit({ type: 'reconnect', server: 'a' });
    await settle();
    expect(f.published).toEqual([
      { subject: '$JS.ACK.S.C.1.2.2.0.0', payload: '+ACK' },
      { subject: '$JS.ACK.S.C.1.3.3.0.0', payload: '+ACK' },
      { subject: '$JS.ACK.S.C.1.5.5.0.0', payload: '+ACK' },
    ]);
    f.close();
  });

  it('replays the batch acks of a block (publishToAllOf) like single ones, and does not keep in-progress marks', async () => {
    const f = fakeConnection();
    const nc = acksSurviveReconnects(f.nc, () => 0);
    const toAll = publishToAllOf(nc);
    toAll(['$JS.ACK.S.C.1.1.1.0.0', '$JS.ACK.S.C.1.2.2.0.0'], ACK);
    toAll(['$JS.ACK.S.C.1.3.3.0.0'], WPI);
    // The fake has no nats.js protocol handler: each subject goes through publish().
    expect(f.published.map((p) => p.payload)).toEqual(['+ACK', '+ACK', '+WPI']);
    f.published.length = 0;
    f.emit({ type: 'disconnect', server: 'a' });
    f.emit({ type: 'reconnect', server: 'a' });
    await settle();
    expect(f.published).toEqual([
      { subject: '$JS.ACK.S.C.1.1.1.0.0', payload: '+ACK' },
      { subject: '$JS.ACK.S.C.1.2.2.0.0', payload: '+ACK' },
    ]);
    f.close();
  });

  it('flush() waits through a disconnect and flushes again after the reconnect', async () => {
    const f = fakeConnection();
    const nc = acksSurviveReconnects(f.nc);
    f.state.failFlush = true;
    let flushed = false;
    const flushing = nc.flush().then(() => (flushed = true));
    await settle();
    expect(f.state.flushes).toBe(1);
    expect(flushed).toBe(false);
    f.emit({ type: 'disconnect', server: 'a' });
    f.state.failFlush = false;
    f.emit({ type: 'reconnect', server: 'a' });
    await flushing;
    expect(f.state.flushes).toBe(2);
    f.close();
  });

  it('flush() fails once the connection is closed for good', async () => {
    const f = fakeConnection();
    const nc = acksSurviveReconnects(f.nc);
    f.state.failFlush = true;
    const flushing = nc.flush();
    await settle();
    f.close();
    await expect(flushing).rejects.toMatchObject({ code: 'JV_CONNECT_FAILED' });
  });

  it('is the nats.js connection for everything else; rawConnection() gives the connection itself', () => {
    const f = fakeConnection();
    const nc = acksSurviveReconnects(f.nc);
    expect((nc as unknown as { name: string }).name).toBe('fake');
    expect(nc.isClosed()).toBe(false);
    expect(rawConnection(nc)).toBe(f.nc);
    expect(rawConnection(f.nc)).toBe(f.nc);
    f.close();
  });
});
