/**
 * Reads a live stream in sequence order with an ordered consumer, from a start sequence up to the last
 * sequence the stream had when reading began (messages published meanwhile are not waited for). Only
 * one pull batch is in memory at a time.
 */
import type { JetStreamClient, JetStreamManager, JsMsg, StoredMsg } from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/transport-node';
import { parseTimeIso } from '../src/archive/envelope.js';

/** A stored message, as compared with an archived envelope. */
export interface StreamMessage {
  seq: number;
  subject: string;
  headers: Array<[string, string[]]> | null;
  data: Uint8Array;
  /** When the stream stored it, ns since the epoch. */
  timeNs: bigint;
}

export function headerEntries(headers: MsgHdrs | undefined): Array<[string, string[]]> | null {
  if (!headers) return null;
  const entries: Array<[string, string[]]> = [];
  for (const [key, values] of headers) entries.push([key, [...values]]);
  return entries.length > 0 ? entries : null;
}

export function fromJsMsg(m: JsMsg): StreamMessage {
  return { seq: m.seq, subject: m.subject, headers: headerEntries(m.headers), data: m.data, timeNs: m.timestampNanos };
}

export function fromStoredMsg(m: StoredMsg): StreamMessage {
  return { seq: m.seq, subject: m.subject, headers: headerEntries(m.header), data: m.data, timeNs: parseTimeIso(m.timestamp) };
}

export interface ReadStreamOptions {
  /** First sequence to read (clamped to the stream's first). */
  startSeq: number;
  /** Last sequence to read (clamped to the stream's last at start). */
  endSeq?: number;
  signal?: AbortSignal;
  /** Messages per pull. Default 256. */
  batch?: number;
}

export async function* readStream(js: JetStreamClient, jsm: JetStreamManager, stream: string, options: ReadStreamOptions): AsyncGenerator<StreamMessage> {
  const info = await jsm.streams.info(stream);
  const endSeq = Math.min(options.endSeq ?? Number.POSITIVE_INFINITY, info.state.last_seq);
  const startSeq = Math.max(options.startSeq, info.state.first_seq, 1);
  if (info.state.messages === 0 || endSeq < startSeq) return;
  const consumer = await js.consumers.get(stream, { opt_start_seq: startSeq });
  try {
    // Interior deletes can leave nothing at or after startSeq although the stream is not empty.
    if ((await consumer.info(true)).num_pending === 0) return;
    const messages = await consumer.consume({ max_messages: options.batch ?? 256 });
    try {
      for await (const m of messages) {
        options.signal?.throwIfAborted();
        if (m.seq > endSeq) break;
        yield fromJsMsg(m);
        if (m.seq >= endSeq || m.info.pending === 0) break;
      }
    } finally {
      await messages.close();
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
}
