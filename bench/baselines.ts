/**
 * The bench's bare nats.js loops: what the client alone achieves on this machine, so jetvault's numbers
 * are read as ratios rather than absolute figures.
 */
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { within } from './measure.js';
import { messagesOf, timeoutFor, type Workload } from './workload.js';

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
export async function barePublish(nc: NatsConnection, workload: Workload, window = 256): Promise<void> {
  const js = jetstream(nc);
  const inFlight: Array<Promise<unknown>> = [];
  for (const m of messagesOf(workload)) {
    inFlight.push(js.publish(m.subject, m.data));
    if (inFlight.length >= window) await inFlight.shift();
  }
  await Promise.all(inFlight);
}
