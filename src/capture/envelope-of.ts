/** The hot-path conversion of a JetStream message into an envelope: every header value, in order. */
import type { JsMsg } from '@nats-io/jetstream';
import type { Envelope } from '../archive/envelope.js';

/**
 * Reads stream, delivery count, stream sequence and the exact nanosecond timestamp from the ack subject
 * in one pass (nats.js' `info.timestampNanos` is a lossy number):
 * $JS.ACK[.<domain>.<account>].<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ns>.<pending>[.<token>]
 */
export function envelopeOf(message: JsMsg): Envelope {
  // JsMsgImpl has `reply`; the public JsMsg type does not declare it.
  const tokens = (message as JsMsg & { reply: string }).reply.split('.');
  const base = tokens.length === 9 ? 2 : 4;
  let headers: Array<[string, string[]]> | null = null;
  if (message.headers) {
    headers = [];
    for (const [key, values] of message.headers) headers.push([key, [...values]]);
  }
  return {
    subject: message.subject,
    headers,
    data: message.data,
    stream: tokens[base] ?? '',
    seq: Number(tokens[base + 3]),
    timeNs: BigInt(tokens[base + 5] ?? '0'),
    deliveryCount: Number(tokens[base + 2]),
  };
}
