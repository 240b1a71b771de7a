/** The hot-path conversion of a JetStream message into an envelope: every header value, in order. */
import type { JsMsg } from '@nats-io/jetstream';
import type { Envelope } from '../archive/envelope.js';

const DOT = 0x2e;
const ZERO = 0x30;
/** Dots in the longest ack subject (12 tokens): more are never looked for. */
const MAX_DOTS = 11;
const dots = new Int32Array(MAX_DOTS);

/**
 * Reads stream, delivery count, stream sequence and the exact nanosecond timestamp from the ack subject
 * (nats.js' `info.timestampNanos` is a lossy number):
 * $JS.ACK[.<domain>.<account>].<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ns>.<pending>[.<token>]
 * One pass over the dots instead of split('.'): this runs for every message, and the dozen strings split()
 * makes per message were a visible share of capture's CPU time and garbage.
 */
export function envelopeOf(message: JsMsg): Envelope {
  // JsMsgImpl has `reply`; the public JsMsg type does not declare it.
  const reply = (message as JsMsg & { reply: string }).reply;
  let count = 0;
  for (let i = reply.indexOf('.'); i !== -1 && count < MAX_DOTS; i = reply.indexOf('.', i + 1)) dots[count++] = i;
  // 9 tokens (8 dots): no domain and account; otherwise they take tokens 2 and 3.
  const base = count === 8 ? 2 : 4;
  const tokenEnd = (token: number) => (token < count ? dots[token]! : reply.length);
  const tokenStart = (token: number) => dots[token - 1]! + 1;
  let headers: Array<[string, string[]]> | null = null;
  if (message.headers) {
    headers = [];
    for (const [key, values] of message.headers) headers.push([key, [...values]]);
  }
  return {
    subject: message.subject,
    headers,
    data: message.data,
    stream: reply.slice(tokenStart(base), tokenEnd(base)),
    seq: digits(reply, tokenStart(base + 3), tokenEnd(base + 3)),
    timeNs: BigInt(reply.slice(tokenStart(base + 5), tokenEnd(base + 5)) || '0'),
    deliveryCount: digits(reply, tokenStart(base + 2), tokenEnd(base + 2)),
  };
}

/** A decimal number from reply[start, end) without a substring; NaN for anything but digits (as Number() would). */
function digits(text: string, start: number, end: number): number {
  if (end <= start) return Number.NaN;
  let value = 0;
  for (let i = start; i < end; i++) {
    const d = text.charCodeAt(i) - ZERO;
    if (d < 0 || d > 9) return Number.NaN;
    value = value * 10 + d;
  }
  return value;
}
