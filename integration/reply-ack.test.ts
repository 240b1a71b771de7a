/**
 * Batch acks (src/capture/reply-ack.ts) against a real nats-server: protocol lines written straight into
 * nats.js' outbound queue must be acks the server takes, in progress marks must hold off redelivery, and
 * a closed connection must refuse them as publish() does.
 */
import { AckPolicy, jetstream, type JsMsg } from '@nats-io/jetstream';
import { connect, nanos } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { ACK, rawPublishToAll, WORKING } from '../src/capture/reply-ack.js';
import { useNatsEnv } from './helpers/nats-env.js';
import { uniqueName } from './helpers/nats-server.js';

const env = useNatsEnv('reply-ack');

/**
 * A stream of n messages and a consumer that has delivered all of them, none acked yet; it keeps pulling
 * (and counting redeliveries) until stop().
 */
async function delivered(
  n: number,
  ackWaitMs = 30_000,
): Promise<{ stream: string; consumer: string; replies: string[]; redeliveries: () => number; stop: () => Promise<void> }> {
  const stream = uniqueName('ACKS');
  const consumer = 'c';
  await env.jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
  for (let i = 0; i < n; i++) env.nc.publish(`${stream}.x`, new Uint8Array([i & 0xff]));
  await env.nc.flush();
  await env.jsm.consumers.add(stream, { durable_name: consumer, ack_policy: AckPolicy.Explicit, ack_wait: nanos(ackWaitMs), max_ack_pending: n * 2 });
  const c = await jetstream(env.nc).consumers.get(stream, consumer);
  const replies: string[] = [];
  let redeliveries = 0;
  let all!: () => void;
  const received = new Promise<void>((resolve) => (all = resolve));
  const messages = await c.consume({
    max_messages: 1000,
    callback: (m: JsMsg) => {
      if (m.info.deliveryCount > 1) redeliveries++;
      else replies.push((m as JsMsg & { reply: string }).reply);
      if (replies.length === n) all();
    },
  });
  await received;
  return { stream, consumer, replies, redeliveries: () => redeliveries, stop: () => messages.close().then(() => undefined) };
}

describe('rawPublishToAll', () => {
  it('acks 3,000 messages in a few encoded batches, and the server counts none pending', async () => {
    const { stream, consumer, replies, stop } = await delivered(3000);
    await stop();
    const protocol = (env.nc as unknown as { protocol: { sendCommand: (...args: unknown[]) => void } }).protocol;
    const sendCommand = protocol.sendCommand.bind(protocol);
    let commands = 0;
    protocol.sendCommand = (...args: unknown[]) => {
      commands++;
      sendCommand(...args);
    };
    const outBefore = env.nc.stats().outMsgs;
    try {
      rawPublishToAll(env.nc)(replies, ACK);
    } finally {
      protocol.sendCommand = sendCommand;
    }
    // Three batches of at most 1,024 lines: the fast path was taken, not one publish() per ack.
    expect(commands).toBe(3);
    expect(env.nc.stats().outMsgs - outBefore).toBe(3000);
    await env.nc.flush();
    const deadline = Date.now() + 5_000;
    let info = await env.jsm.consumers.info(stream, consumer);
    while (info.num_ack_pending > 0 && Date.now() < deadline) info = await env.jsm.consumers.info(stream, consumer);
    expect(info.num_ack_pending).toBe(0);
    expect(info.ack_floor.stream_seq).toBe(3000);
  });

  it('in-progress marks keep messages from being redelivered past ack_wait', async () => {
    const { stream, consumer, replies, redeliveries, stop } = await delivered(500, 1_000);
    const publish = rawPublishToAll(env.nc);
    // 2.4 s with a 1 s ack_wait: without the marks every message would be redelivered at least twice.
    for (let i = 0; i < 6; i++) {
      publish(replies, WORKING);
      await new Promise((r) => setTimeout(r, 400));
    }
    // The consumer kept pulling all along: an expired ack_wait would have sent them again by now.
    expect(redeliveries()).toBe(0);
    const info = await env.jsm.consumers.info(stream, consumer);
    expect(info.num_redelivered).toBe(0);
    expect(info.num_ack_pending).toBe(500);
    publish(replies, ACK);
    await env.nc.flush();
    await stop();
  });

  it('a closed connection refuses the acks as publish() does, instead of queueing them', async () => {
    const nc = await connect({ servers: env.server.url });
    await nc.close();
    expect(() => rawPublishToAll(nc)(['$JS.ACK.S.c.1.1.1.0.0'], ACK)).toThrow(/closed/i);
  });
});
