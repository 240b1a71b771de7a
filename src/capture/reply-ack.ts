/**
 * How a block acknowledges its messages once its store is confirmed: a publish of `+ACK` (or `+WPI` while it
 * is still storing) to each message's ack subject, exactly what JsMsg.ack() does. A block keeps only those
 * subjects: holding the JsMsg itself would keep its payload view, and with it the whole socket read buffer
 * it points into, alive for as long as the block is open.
 *
 * A block acks tens of thousands of messages at once. nats.js' publish() validates the subject, builds the
 * protocol line and encodes it for each of them (about 3 µs per ack here, a fifth of capture's client CPU);
 * so acks go out as batches of protocol lines, each encoded once, through the connection's own outbound
 * queue (nats.js' protocol handler). Anything that does not look like that handler, and a connection that is
 * closed or draining, takes publish() per subject.
 */
import type { NatsConnection } from '@nats-io/transport-node';

export const ACK = Uint8Array.of(0x2b, 0x41, 0x43, 0x4b); // +ACK
export const WORKING = Uint8Array.of(0x2b, 0x57, 0x50, 0x49); // +WPI

/** Publishes one 4-byte payload (ACK or WORKING) to each subject, in order. */
export type PublishToAll = (subjects: readonly string[], payload: Uint8Array) => void;

/**
 * A connection may bring its own PublishToAll under this key (machines/actors/connection-actors.ts does: it
 * keeps recent acks to send them again after a reconnect).
 */
export const PUBLISH_TO_ALL = Symbol.for('jetvault.publishToAll');

/** Protocol lines per encoded batch: large enough to amortize, small enough to keep strings short. */
const LINES_PER_BATCH = 1024;

/** The parts of nats.js' (3.x) protocol handler the batch path uses; checked at run time. */
interface ProtocolHandler {
  sendCommand(cmd: string | Uint8Array): void;
  outMsgs: number;
  outBytes: number;
}

export function publishToAllOf(nc: NatsConnection): PublishToAll {
  const own = (nc as unknown as Record<symbol, unknown>)[PUBLISH_TO_ALL];
  return typeof own === 'function' ? (own as PublishToAll) : rawPublishToAll(nc);
}

/** The batch path on a nats.js connection itself (no replay of acks). */
export function rawPublishToAll(nc: NatsConnection): PublishToAll {
  const one = (subjects: readonly string[], payload: Uint8Array) => {
    for (const subject of subjects) nc.publish(subject, payload);
  };
  return (subjects, payload) => {
    // Looked up on each call: the handler is nats.js' own business.
    const handler = protocolOf(nc);
    // publish() refuses these with nats.js' own errors; the batch must not queue bytes nobody will send.
    if (!handler || nc.isClosed() || nc.isDraining() || payload.length !== 4) return one(subjects, payload);
    const text = Buffer.from(payload).toString('latin1');
    for (let i = 0; i < subjects.length; i += LINES_PER_BATCH) {
      const end = Math.min(subjects.length, i + LINES_PER_BATCH);
      let lines = '';
      for (let j = i; j < end; j++) lines += `PUB ${subjects[j]} 4\r\n${text}\r\n`;
      handler.sendCommand(lines);
      handler.outMsgs += end - i;
      handler.outBytes += 4 * (end - i);
    }
  };
}

/** nats.js' protocol handler, when it has the shape the batch path relies on. */
function protocolOf(nc: NatsConnection): ProtocolHandler | undefined {
  const protocol = (nc as unknown as { protocol?: Partial<ProtocolHandler> }).protocol;
  if (!protocol || typeof protocol.sendCommand !== 'function' || typeof protocol.outMsgs !== 'number' || typeof protocol.outBytes !== 'number') {
    return undefined;
  }
  return protocol as ProtocolHandler;
}
