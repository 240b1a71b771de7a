/** The router's poison-message policy: retried, then dead-lettered (bounded by max_deliver), or stop. */
import type { JsMsg } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import type { BlockBuffer } from '../src/capture/block-buffer.js';
import { BlockRouter, type PoisonPolicy, type UndecodableAction } from '../src/capture/router.js';
import { none } from '../src/compression/index.js';
import type { BlockFormat } from '../src/formats/format.js';
import { raw } from '../src/formats/index.js';
import { validateCaptureOptions } from '../src/capture/options.js';

interface FakeMessage {
  seq: number;
  delivered: number;
  naks: Array<number | undefined>;
  acks: number;
}

function message(seq: number, delivered: number, data = 'x'): { msg: JsMsg; state: FakeMessage } {
  const state: FakeMessage = { seq, delivered, naks: [], acks: 0 };
  const msg = {
    subject: 'orders.eu',
    headers: undefined,
    data: Buffer.from(data),
    reply: `$JS.ACK.ORDERS.jv.${delivered}.${seq}.${seq}.1764100000000000000.0`,
    nak: (ms?: number) => state.naks.push(ms),
    ack: () => state.acks++,
    working: () => undefined,
  } as unknown as JsMsg;
  return { msg, state };
}

function router(poison: PoisonPolicy, maxDeliver = -1) {
  const opened: Array<{ id: string; buffer: BlockBuffer<unknown> }> = [];
  const actions: Array<{ seq: number; action: UndecodableAction }> = [];
  const r = new BlockRouter({
    stream: 'ORDERS',
    consumer: 'jv',
    format: raw as BlockFormat<unknown>,
    compression: none,
    splitKeyOf: (e) => e.subject,
    decoder: (e) => {
      if (Buffer.from(e.data).toString() === 'bad') throw new Error('bad payload');
      return { value: e };
    },
    maxMessages: 1_000,
    maxBytes: 1 << 20,
    maxBuffer: 1 << 22,
    poison,
    now: () => 1_764_100_000_000,
    onOpen: (id, buffer) => opened.push({ id, buffer }),
    onFull: () => undefined,
    onUndecodable: (e, _error, action) => actions.push({ seq: e.seq, action }),
  });
  r.bound({}, { maxAckPending: 1_000, maxDeliver });
  return { r, opened, actions };
}

const policy: PoisonPolicy = { deadLetter: true, attempts: 3, retryDelayMs: 250 };

describe('poison messages', () => {
  it('naks an undecodable message until its last attempt, then puts it in a dead-letter block', async () => {
    const { r, opened, actions } = router(policy);
    const first = message(7, 1, 'bad');
    const second = message(7, 2, 'bad');
    const third = message(7, 3, 'bad');
    r.route(message(6, 1).msg);
    r.route(first.msg);
    r.route(second.msg);
    r.route(third.msg);
    expect(actions).toEqual([
      { seq: 7, action: 'retry' },
      { seq: 7, action: 'retry' },
      { seq: 7, action: 'dead-letter' },
    ]);
    expect([first.state.naks, second.state.naks, third.state.naks]).toEqual([[250], [250], []]);
    expect(opened.map((o) => [o.id.replace(/\d+$/, ''), o.buffer.deadLetter])).toEqual([
      ['b', false],
      ['dl', true],
    ]);
    const dead = opened[1]!.buffer;
    expect(r.held).toBe(2);
    // Acked only with its block, after the store: the ack handle is held like any other message's.
    expect(third.state.acks).toBe(0);
    dead.acks.ackAll();
    expect(third.state.acks).toBe(1);
    const sealed = await dead.seal('idle');
    expect(sealed.key).toMatch(/^_dead-letter\/ORDERS\/\d{4}\/\d{2}\/\d{2}\/\d{2}\/ORDERS-000000000007-000000000007\.ndjson$/);
    const line = JSON.parse(sealed.body.toString('utf8')) as { error: string; deliveries: number; message: { data: string } };
    expect(line).toMatchObject({ error: 'bad payload', deliveries: 3 });
    expect(Buffer.from(line.message.data, 'base64').toString()).toBe('bad');
    r.release(dead);
    expect(r.held).toBe(1);
  });

  it("dead-letters at the consumer's max_deliver when it is lower than the attempts", () => {
    const { r, actions } = router(policy, 2);
    r.route(message(9, 1, 'bad').msg);
    r.route(message(9, 2, 'bad').msg);
    expect(actions.map((a) => a.action)).toEqual(['retry', 'dead-letter']);
  });

  it('with dead-lettering off, naks and reports stop on the first delivery', () => {
    const { r, actions, opened } = router({ ...policy, deadLetter: false });
    const m = message(4, 1, 'bad');
    r.route(m.msg);
    expect(actions).toEqual([{ seq: 4, action: 'stop' }]);
    expect(m.state.naks).toEqual([250]);
    expect(opened).toEqual([]);
  });
});

describe('poison, buffer and pull options', () => {
  it.each([
    [{ poisonAttempts: 0 }, /poisonAttempts must be a positive integer, got 0/],
    [{ poisonAttempts: 1.5 }, /poisonAttempts must be a positive integer/],
    [{ poisonRetryDelayMs: -1 }, /poisonRetryDelayMs must be a positive duration, got -1/],
    [{ maxBufferBytes: 0 }, /maxBufferBytes must be a positive integer, got 0/],
    [{ pullBatch: 0 }, /pullBatch must be a positive integer, got 0/],
  ])('refuses %o', (bad, message) => {
    expect(() => validateCaptureOptions({ servers: 'nats://x:4222', stream: 'S', store: '/tmp/x', ...bad })).toThrow(message);
  });
});
