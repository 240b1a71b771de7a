/** The ack-subject parser against the plain split('.') reading, for every subject form the server sends. */
import type { JsMsg } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { envelopeOf } from '../src/capture/envelope-of.js';

function reference(reply: string) {
  const tokens = reply.split('.');
  const base = tokens.length === 9 ? 2 : 4;
  return {
    stream: tokens[base] ?? '',
    seq: Number(tokens[base + 3]),
    timeNs: BigInt(tokens[base + 5] ?? '0'),
    deliveryCount: Number(tokens[base + 2]),
  };
}

const message = (reply: string, headers?: Map<string, string[]>) =>
  ({ reply, subject: 'orders.eu', data: new Uint8Array([1, 2]), headers }) as unknown as JsMsg;

describe('envelopeOf', () => {
  it.each([
    ['v1 (9 tokens)', '$JS.ACK.ORDERS.jetvault-ORDERS.3.1234567.89.1764100000123456789.42'],
    ['v2 with domain and account (12 tokens)', '$JS.ACK.hub.ACCHASH.ORDERS.c1.1.9007199254740991.5.1764100000000000001.0.XyZ12'],
    ['v2 without the random token (11 tokens)', '$JS.ACK._.ACC.ORDERS.c1.17.1.1.1764100000999999999.0'],
  ])('reads %s exactly as split() does', (_label, reply) => {
    expect(envelopeOf(message(reply))).toMatchObject(reference(reply));
  });

  it('keeps the nanosecond timestamp exact beyond 2^53 and copies every header value in order', () => {
    const e = envelopeOf(message('$JS.ACK.S.C.1.2.3.1764100000123456789.0', new Map([['A', ['1', '2']], ['B', ['3']]])));
    expect(e.timeNs).toBe(1764100000123456789n);
    expect(e.headers).toEqual([['A', ['1', '2']], ['B', ['3']]]);
    expect(e.subject).toBe('orders.eu');
  });

  it('gives NaN, as Number() would, for a sequence that is not digits', () => {
    expect(envelopeOf(message('$JS.ACK.S.C.1.x9.3.17.0')).seq).toBeNaN();
  });
});
