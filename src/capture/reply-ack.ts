/**
 * What a block keeps of each message until its store is confirmed: only the ack subject. Holding the
 * JsMsg itself would keep its payload view, and with it the whole socket read buffer it points into,
 * alive for as long as the block is open; tens of thousands of those made garbage collection the largest
 * cost of capture. Acking is then exactly what JsMsg.ack() does: a publish of `+ACK` to that subject.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { AckHandle } from './block-buffer.js';

/** The connection's publish, looked up once per capture rather than once per ack. */
export type Publish = (subject: string, payload: Uint8Array) => void;

export function publisherOf(nc: NatsConnection): Publish {
  return nc.publish.bind(nc) as Publish;
}

const ACK = Uint8Array.of(0x2b, 0x41, 0x43, 0x4b); // +ACK
const WORKING = Uint8Array.of(0x2b, 0x57, 0x50, 0x49); // +WPI
const NAK = Uint8Array.of(0x2d, 0x4e, 0x41, 0x4b); // -NAK

export class ReplyAck implements AckHandle {
  constructor(
    private readonly publish: Publish,
    private readonly reply: string,
  ) {}

  ack(): void {
    this.publish(this.reply, ACK);
  }

  working(): void {
    this.publish(this.reply, WORKING);
  }

  nak(millis?: number): void {
    const payload = millis === undefined ? NAK : new TextEncoder().encode(`-NAK ${JSON.stringify({ delay: millis * 1_000_000 })}`);
    this.publish(this.reply, payload);
  }
}
