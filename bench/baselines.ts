/**
 * The bench's test data and its bare nats.js loops: what the client alone achieves on this machine,
 * so jetvault's numbers are read as ratios rather than absolute figures.
 */
import { AckPolicy, jetstream, jetstreamManager, StorageType, type StreamConfig } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { within } from './measure.js';

export const SUBJECT = 'bench.data';
export const PAYLOAD_BYTES = 100;

/** The source stream and the bare-publish stream share this config, as a restore target copies it. */
export function streamConfig(name: string): Partial<StreamConfig> & { name: string } {
  return { name, subjects: ['bench.>'], storage: StorageType.File };
}

/** `{"seq":…,"sensor":"s-…","value":…}` padded to 100 bytes; digits are written in place per message. */
const TEMPLATE = new TextEncoder().encode('{"seq":0000000000,"sensor":"s-00","value":00.000,"unit":"C"}'.padEnd(PAYLOAD_BYTES - 1, ' ') + '\n');
const SEQ_AT = 7;
const SENSOR_AT = 30;
const VALUE_AT = 42;

function writeDigits(target: Uint8Array, at: number, value: number, width: number): void {
  for (let p = at + width - 1; p >= at; p--) {
    target[p] = 48 + (value % 10);
    value = Math.floor(value / 10);
  }
}

/**
 * Message i as 100 bytes of telemetry-like JSON: neither random (nothing would compress) nor constant
 * (everything would), so the compression cases mean something. Cheap to make (a copy and a few digits),
 * so the bare publish loop measures publishing, not payload building.
 */
export function payload(i: number): Uint8Array {
  const data = TEMPLATE.slice();
  writeDigits(data, SEQ_AT, i, 10);
  writeDigits(data, SENSOR_AT, i % 97, 2);
  const value = (i * 7919) % 100_000;
  writeDigits(data, VALUE_AT, Math.floor(value / 1000), 2);
  writeDigits(data, VALUE_AT + 3, value % 1000, 3);
  return data;
}

/** Generous: a case slower than 1,000 msgs/s is broken, not slow. */
export function timeoutFor(messages: number): number {
  return 60_000 + messages;
}

/** Core publishes, flushed every 1,000 so the server keeps up, then waits until the stream holds them all. */
export async function fillStream(nc: NatsConnection, stream: string, messages: number): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add(streamConfig(stream));
  for (let i = 0; i < messages; i++) {
    nc.publish(SUBJECT, payload(i));
    if (i % 1000 === 999) await nc.flush();
  }
  await nc.flush();
  const deadline = Date.now() + 30_000;
  for (;;) {
    const have = (await jsm.streams.info(stream)).state.messages;
    if (have === messages) return;
    if (Date.now() > deadline) throw new Error(`stream ${stream} holds ${have} messages, expected ${messages} (core publishes dropped?)`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface ConsumeResult {
  /** Acks the server still counted as pending after the flush (0 expected). */
  ackPendingAfter: number;
}

/**
 * A fresh durable pull consumer read with the callback form of consume(), acking each message, until
 * all were received; then a flush, so every ack has reached the server. Includes creating the consumer,
 * as a capture does. The consumer is deleted afterwards so later cases find the same server state.
 */
export async function bareConsume(nc: NatsConnection, stream: string, consumerName: string, messages: number): Promise<ConsumeResult> {
  const jsm = await jetstreamManager(nc);
  await jsm.consumers.add(stream, { durable_name: consumerName, ack_policy: AckPolicy.Explicit, max_ack_pending: 100_000 });
  const consumer = await jetstream(nc).consumers.get(stream, consumerName);
  let received = 0;
  let allReceived!: () => void;
  const all = new Promise<void>((resolve) => (allReceived = resolve));
  const iter = await consumer.consume({
    max_messages: 1000,
    callback: (m) => {
      m.ack();
      if (++received === messages) allReceived();
    },
  });
  try {
    await within(all, timeoutFor(messages), `bare consume (${received} of ${messages} received)`);
    await nc.flush();
  } finally {
    await iter.close();
  }
  const info = await jsm.consumers.info(stream, consumerName);
  await jsm.consumers.delete(stream, consumerName);
  return { ackPendingAfter: info.num_ack_pending };
}

/**
 * js.publish() with at most `window` acks outstanding, awaited in order: the same window and ordering
 * the restore republisher uses, without anything of jetvault around it.
 */
export async function barePublish(nc: NatsConnection, messages: number, window = 256): Promise<void> {
  const js = jetstream(nc);
  const inFlight: Array<Promise<unknown>> = [];
  for (let i = 0; i < messages; i++) {
    inFlight.push(js.publish(SUBJECT, payload(i)));
    if (inFlight.length >= window) await inFlight.shift();
  }
  await Promise.all(inFlight);
}
