import type { NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createActor, fromCallback, fromPromise, setup, SimulatedClock, type AnyActorRef } from 'xstate';
import type { ConnectInput, ConnectionStatusEvent } from '../machines/actors/connection-actors.js';
import { connectionMachine, type ConnectionInput, type ConnectionParentEvent } from '../machines/connection-machine.js';
import { JetvaultError } from '../src/errors.js';

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
