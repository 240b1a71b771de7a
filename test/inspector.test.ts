import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createActor, fromPromise, setup, type InspectionEvent } from 'xstate';
import { blockMachine, type BlockInput } from '../machines/block-machine.js';
import type { Envelope } from '../src/archive/envelope.js';
import { BlockBuffer, type AckHandle } from '../src/capture/block-buffer.js';
import { none } from '../src/compression/index.js';
import { raw } from '../src/formats/index.js';
import { createInspector, dottedState, type InspectorModel, type InspectorServer } from '../src/observe/inspector.js';
import { INSPECTOR_HTML, INSPECTOR_SCRIPT } from '../src/observe/inspector-page.js';
import type { Store } from '../src/stores/store.js';

/** A clock the test moves by hand. */
function manualClock(start = 10_000) {
  let t = start;
  return { now: () => t, set: (v: number) => void (t = v), add: (ms: number) => void (t += ms) };
}

interface FakeActor {
  session: string;
  id: string;
  machine?: string;
}

/** A scripted `@xstate.snapshot` inspection event, shaped like XState's. */
function snapshotEvent(
  actor: FakeActor,
  value: unknown,
  options: { root?: string; event?: string; status?: string; context?: unknown } = {},
): InspectionEvent {
  return {
    type: '@xstate.snapshot',
    rootId: options.root ?? 'x:0',
    actorRef: { sessionId: actor.session, id: actor.id } as never,
    event: { type: options.event ?? 'xstate.init' },
    snapshot: {
      status: options.status ?? 'active',
      value,
      context: options.context ?? {},
      ...(actor.machine ? { machine: { id: actor.machine } } : {}),
    } as never,
  };
}

const root: FakeActor = { session: 'x:0', id: 'x:0', machine: 'capture' };
const connection: FakeActor = { session: 'x:1', id: 'connection', machine: 'connection' };
const checkStore: FakeActor = { session: 'x:2', id: '0.capture.checkingStore' };
const subscription: FakeActor = { session: 'x:3', id: 'subscription', machine: 'subscription' };
const b1: FakeActor = { session: 'x:7', id: 'b1', machine: 'block' };

describe('inspector model', () => {
  it('turns a scripted capture into the exact live model: actors, block counts and age, transitions', () => {
    const clock = manualClock();
    const inspector = createInspector({ now: clock.now });
    const send = (e: InspectionEvent) => inspector.inspect(e);

    send(snapshotEvent(root, 'checkingStore'));
    clock.add(5);
    send(snapshotEvent(connection, 'connecting'));
    send(snapshotEvent(checkStore, undefined)); // a promise actor: not shown
    clock.add(10);
    send(snapshotEvent(connection, { open: 'connected' }, { event: 'xstate.done.actor.0.connection.connecting' }));
    send(snapshotEvent(root, { capturing: 'binding' }, { event: 'xstate.done.actor.0.capture.checkingStore' }));
    send(snapshotEvent(subscription, 'binding'));
    clock.add(20);
    send(snapshotEvent(subscription, { active: 'consuming' }, { event: 'xstate.done.actor.0.subscription.binding' }));
    send(snapshotEvent(root, { capturing: { running: 'continuous' } }, { event: 'subscription.bound' }));
    // Events that are not snapshots carry nothing the page shows.
    send({ type: '@xstate.event', rootId: 'x:0', actorRef: { sessionId: 'x:0' } as never, sourceRef: undefined, event: { type: 'tick' } });

    const buffer = { count: 3, openedAt: 10_030, splitKey: 'orders.eu' };
    clock.set(10_040);
    send(snapshotEvent(b1, 'open', { context: { buffer } }));
    clock.set(10_500);
    buffer.count = 5;
    send(snapshotEvent(b1, 'open', { event: 'tick', context: { buffer } })); // no state change: no transition
    buffer.count = 7; // appended on the hot path, no event: read live

    clock.set(11_000);
    expect(inspector.snapshot()).toEqual({
      now: 11_000,
      actors: [
        { session: 'x:0', kind: 'supervisor', id: 'capture', state: 'capturing.running.continuous', status: 'active', since: 10_035 },
        { session: 'x:1', kind: 'connection', id: 'connection', state: 'open.connected', status: 'active', since: 10_015 },
        { session: 'x:3', kind: 'subscription', id: 'subscription', state: 'active.consuming', status: 'active', since: 10_035 },
        { session: 'x:7', kind: 'block', id: 'b1', state: 'open', status: 'active', since: 10_040, messages: 7, openedAt: 10_030, ageMs: 970, splitKey: 'orders.eu' },
      ],
      finishedBlocks: [],
      transitions: [
        { time: 10_000, session: 'x:0', kind: 'supervisor', actor: 'capture', from: null, to: 'checkingStore', event: 'xstate.init' },
        { time: 10_005, session: 'x:1', kind: 'connection', actor: 'connection', from: null, to: 'connecting', event: 'xstate.init' },
        { time: 10_015, session: 'x:1', kind: 'connection', actor: 'connection', from: 'connecting', to: 'open.connected', event: 'xstate.done.actor.0.connection.connecting' },
        { time: 10_015, session: 'x:0', kind: 'supervisor', actor: 'capture', from: 'checkingStore', to: 'capturing.binding', event: 'xstate.done.actor.0.capture.checkingStore' },
        { time: 10_015, session: 'x:3', kind: 'subscription', actor: 'subscription', from: null, to: 'binding', event: 'xstate.init' },
        { time: 10_035, session: 'x:3', kind: 'subscription', actor: 'subscription', from: 'binding', to: 'active.consuming', event: 'xstate.done.actor.0.subscription.binding' },
        { time: 10_035, session: 'x:0', kind: 'supervisor', actor: 'capture', from: 'capturing.binding', to: 'capturing.running.continuous', event: 'subscription.bound' },
        { time: 10_040, session: 'x:7', kind: 'block', actor: 'b1', from: null, to: 'open', event: 'xstate.init' },
      ],
    } satisfies InspectorModel);

    // Seal, store, ack: the block leaves the live actors and stays visible as finished, its age frozen.
    const key = 'ORDERS/orders.eu/2026/11/25/14/ORDERS-000000000001-000000000007.jv';
    clock.set(11_100);
    send(snapshotEvent(b1, 'sealing', { event: 'tick', context: { buffer } }));
    send(snapshotEvent(b1, { persisting: 'storing' }, { event: 'xstate.done.actor.0.block.sealing', context: { buffer, sealed: { key } } }));
    clock.set(11_150);
    send(snapshotEvent(b1, 'acking', { event: 'xstate.done.actor.0.block.persisting.storing', context: { buffer, sealed: { key } } }));
    clock.set(11_160);
    send(snapshotEvent(b1, 'acked', { event: 'xstate.done.actor.0.block.acking', status: 'done', context: { buffer, sealed: { key } } }));
    buffer.count = 99; // a finished block no longer reads its buffer
    clock.set(12_000);

    const model = inspector.snapshot();
    expect(model.actors.map((a) => a.id)).toEqual(['capture', 'connection', 'subscription']);
    expect(model.finishedBlocks).toEqual([
      {
        session: 'x:7',
        kind: 'block',
        id: 'b1',
        state: 'acked',
        status: 'done',
        since: 11_160,
        finishedAt: 11_160,
        messages: 7,
        openedAt: 10_030,
        ageMs: 1_130,
        splitKey: 'orders.eu',
        key,
      },
    ]);
    expect(model.transitions.slice(-4).map((t) => `${t.actor} ${t.from} → ${t.to} @${t.time}`)).toEqual([
      'b1 open → sealing @11100',
      'b1 sealing → persisting.storing @11100',
      'b1 persisting.storing → acking @11150',
      'b1 acking → acked @11160',
    ]);
    // A late snapshot of the finished block (its stop) does not bring it back.
    send(snapshotEvent(b1, 'acked', { event: 'xstate.stop', status: 'stopped', context: { buffer } }));
    expect(inspector.snapshot().actors.map((a) => a.id)).toEqual(['capture', 'connection', 'subscription']);
    expect(inspector.snapshot().finishedBlocks).toHaveLength(1);
  });

  it('keeps the last transitions and the last finished blocks only', () => {
    const clock = manualClock();
    const inspector = createInspector({ now: clock.now, maxTransitions: 5, maxFinishedBlocks: 3 });
    inspector.inspect(snapshotEvent(root, 'capturing'));
    for (let i = 1; i <= 60; i++) {
      const block = { session: `x:${100 + i}`, id: `b${i}`, machine: 'block' };
      const context = { buffer: { count: i, openedAt: clock.now(), splitKey: 's' } };
      inspector.inspect(snapshotEvent(block, 'open', { context }));
      clock.add(1);
      inspector.inspect(snapshotEvent(block, 'acked', { status: 'done', context }));
    }
    const model = inspector.snapshot();
    expect(model.finishedBlocks.map((b) => [b.id, b.messages])).toEqual([['b60', 60], ['b59', 59], ['b58', 58]]);
    expect(model.transitions.map((t) => `${t.actor}:${t.to}`)).toEqual(['b58:acked', 'b59:open', 'b59:acked', 'b60:open', 'b60:acked']);
    expect(model.actors.map((a) => a.kind)).toEqual(['supervisor']);
  });

  it('a finished capture stops what it owned; the next capture replaces it', () => {
    const clock = manualClock();
    const inspector = createInspector({ now: clock.now });
    inspector.inspect(snapshotEvent(root, 'capturing'));
    inspector.inspect(snapshotEvent(connection, { open: 'connected' }));
    inspector.inspect(snapshotEvent(b1, 'open', { context: { buffer: { count: 2, openedAt: 10_000, splitKey: 'a' } } }));
    clock.add(50);
    inspector.inspect(snapshotEvent(root, 'stopped', { event: 'xstate.after.10000.capture.stopping', status: 'done' }));
    let model = inspector.snapshot();
    expect(model.actors.map((a) => `${a.id}:${a.state}:${a.status}`)).toEqual(['capture:stopped:done', 'connection:open.connected:stopped']);
    expect(model.finishedBlocks.map((a) => `${a.id}:${a.state}:${a.status}:${a.messages}:${a.ageMs}`)).toEqual(['b1:open:stopped:2:50']);

    const root2 = { session: 'y:0', id: 'y:0', machine: 'capture' };
    inspector.inspect(snapshotEvent(root2, 'checkingStore', { root: 'y:0' }));
    model = inspector.snapshot();
    expect(model.actors.map((a) => `${a.session}:${a.state}`)).toEqual(['y:0:checkingStore']);
    expect(model.finishedBlocks).toHaveLength(1);
  });

  it('never throws into the actor it watches', () => {
    const inspector = createInspector();
    const broken = [
      { type: '@xstate.snapshot', rootId: 'x:0', actorRef: { sessionId: 'x:9' }, event: undefined, snapshot: undefined },
      { type: '@xstate.snapshot', rootId: 'x:0', actorRef: undefined, snapshot: {} },
      { type: '@xstate.snapshot', rootId: 'x:0', actorRef: { sessionId: 'x:1' }, event: {}, snapshot: { machine: { id: 'block' }, value: 'open', context: { buffer: null } } },
    ];
    for (const event of broken) expect(() => inspector.inspect(event as unknown as InspectionEvent)).not.toThrow();
    expect(inspector.snapshot().actors.map((a) => [a.kind, a.state, a.messages])).toEqual([['block', 'open', undefined]]);
  });

  it('writes state values dotted', () => {
    expect(dottedState('open')).toBe('open');
    expect(dottedState({ persisting: 'storing' })).toBe('persisting.storing');
    expect(dottedState({ capturing: { running: 'continuous' } })).toBe('capturing.running.continuous');
    expect(dottedState({ p: { a: 'x', b: { c: 'y' } } })).toBe('p.a.x, p.b.c.y');
    expect(dottedState(undefined)).toBe('');
  });
});

describe('inspector on real actors', () => {
  it('follows a real block machine from open to acked under its parent', async () => {
    const clock = manualClock(1_000);
    const buffer = new BlockBuffer<Envelope>({
      stream: 'ORDERS',
      splitKey: 'orders.eu',
      consumer: 'c',
      format: raw,
      compression: none,
      streamConfig: {},
      now: clock.now,
    });
    const ack: AckHandle = { ack() {}, nak() {}, working() {} };
    for (let seq = 1; seq <= 4; seq++) {
      buffer.append({ subject: 'orders.eu', headers: null, data: Buffer.from(`m${seq}`), stream: 'ORDERS', seq, timeNs: 1_764_079_200_000_000_000n, deliveryCount: 1 }, { seq, timeNs: 1_764_079_200_000_000_000n }, ack);
    }
    const block = blockMachine.provide({ actors: { storeSealedBlock: fromPromise(async (): Promise<void> => {}) } });
    const parent = setup({ actors: { block } }).createMachine({
      id: 'capture',
      invoke: {
        // As the capture supervisor spawns blocks: the actor id is the block id's number, the context has 'b1'.
        id: '1',
        src: 'block',
        input: {
          id: 'b1',
          buffer: buffer as BlockBuffer<unknown>,
          store: {} as Store,
          limits: { maxAgeMs: 60_000, idleMs: 5_000, ackDeadlineMs: 120_000, keepAliveMs: 10_000 },
          retry: { baseMs: 1, maxMs: 1, maxAttempts: 3 },
          flush: () => Promise.resolve(),
          now: clock.now,
        } satisfies BlockInput,
      },
    });
    const inspector = createInspector({ now: clock.now });
    const actor = createActor(parent, { inspect: inspector.inspect }).start();
    const child = actor.getSnapshot().children['1']!;

    expect(inspector.snapshot().actors.map((a) => [a.kind, a.id, a.state, a.messages])).toEqual([
      ['supervisor', 'capture', '', undefined],
      ['block', 'b1', 'open', 4],
    ]);
    child.send({ type: 'seal', reason: 'drain' });
    await expect.poll(() => inspector.snapshot().finishedBlocks.length).toBe(1);
    actor.stop();

    const [finished] = inspector.snapshot().finishedBlocks;
    expect(finished).toMatchObject({ kind: 'block', id: 'b1', state: 'acked', status: 'done', messages: 4, splitKey: 'orders.eu' });
    expect(finished!.key).toMatch(/^ORDERS\/orders\.eu\/.*ORDERS-000000000001-000000000004/);
    expect(inspector.snapshot().transitions.filter((t) => t.actor === 'b1').map((t) => `${t.from} → ${t.to} (${t.event})`)).toEqual([
      'null → open (xstate.init)',
      'open → sealing (seal)',
      'sealing → persisting.storing (xstate.done.actor.0.block.sealing)',
      'persisting.storing → acking (xstate.done.actor.0.block.persisting.storing)',
      'acking → acked (xstate.done.actor.0.block.acking)',
    ]);
  });
});

describe('inspector server', () => {
  const servers: InspectorServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });

  it('serves the page with local assets only, and the model as JSON', async () => {
    const inspector = createInspector();
    inspector.inspect(snapshotEvent(root, 'capturing'));
    const server = await inspector.listen(0);
    servers.push(server);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/`);

    const page = await fetch(server.url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await page.text();
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    for (const asset of ['inspector.js', 'inspector.css']) {
      expect(html).toContain(asset);
      expect((await fetch(new URL(asset, server.url))).status).toBe(200);
    }
    // Capture data reaches the page as text only.
    expect(INSPECTOR_SCRIPT).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    expect(INSPECTOR_HTML).not.toMatch(/<script>|\son\w+=/);

    const state = await fetch(new URL('/state', server.url));
    expect(await state.json()).toMatchObject({ actors: [{ kind: 'supervisor', id: 'capture', state: 'capturing' }] });
    expect((await fetch(new URL('/nope', server.url))).status).toBe(404);
    expect((await fetch(server.url, { method: 'POST' })).status).toBe(405);
  });

  it('refuses other host names while bound to loopback', async () => {
    const server = await createInspector().listen(0);
    servers.push(server);
    const status = (host: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: server.port, path: '/state', headers: { host } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    expect(await status('evil.example:80')).toBe(403);
    expect(await status(`localhost:${server.port}`)).toBe(200);
    expect(await status(`[::1]:${server.port}`)).toBe(200);
  });

  it('pushes the model over server-sent events, throttled', async () => {
    const clock = manualClock();
    const inspector = createInspector({ now: clock.now, pushIntervalMs: 100 });
    const server = await inspector.listen(0);
    servers.push(server);
    const models: InspectorModel[] = [];
    const controller = new AbortController();
    const response = await fetch(new URL('/events', server.url), { signal: controller.signal });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reading = (async () => {
      const decoder = new TextDecoder();
      let text = '';
      try {
        for await (const chunk of response.body!) {
          text += decoder.decode(chunk as Uint8Array, { stream: true });
          let end: number;
          while ((end = text.indexOf('\n\n')) >= 0) {
            const frame = text.slice(0, end);
            text = text.slice(end + 2);
            const data = frame.split('\n').find((l) => l.startsWith('data: '));
            if (data) models.push(JSON.parse(data.slice(6)) as InspectorModel);
          }
        }
      } catch {
        // aborted
      }
    })();
    await expect.poll(() => models.length).toBe(1);
    expect(models[0]!.actors).toEqual([]);

    // A burst of 50 block state changes in one go reaches the page as one or two pushes, with the end state.
    const startedAt = Date.now();
    inspector.inspect(snapshotEvent(root, 'capturing'));
    for (let i = 1; i <= 25; i++) {
      const block = { session: `x:${100 + i}`, id: `b${i}`, machine: 'block' };
      const context = { buffer: { count: 1, openedAt: 0, splitKey: 's' } };
      inspector.inspect(snapshotEvent(block, 'open', { context }));
      inspector.inspect(snapshotEvent(block, 'acked', { status: 'done', context }));
    }
    await expect.poll(() => models.at(-1)?.finishedBlocks.length).toBe(25);
    await new Promise((r) => setTimeout(r, 250));
    const pushes = models.length - 1;
    expect(pushes).toBeGreaterThanOrEqual(1);
    expect(pushes).toBeLessThanOrEqual(Math.ceil((Date.now() - startedAt) / 100) + 1);
    expect(models.at(-1)!.finishedBlocks[0]).toMatchObject({ id: 'b25', state: 'acked' });
    controller.abort();
    await reading;
  });
});
