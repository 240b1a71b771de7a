/**
 * The hot path: each message is decoded, routed to the open block of its split key and appended there,
 * with no XState event per message. The router only tells the supervisor when a block opens and when one
 * is full; every other lifecycle decision (age, idle, ack deadline, storing, retrying, acking) belongs
 * to the block machines.
 */
import type { JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Envelope } from '../archive/envelope.js';
import type { SealReason } from '../archive/manifest.js';
import type { Compression } from '../compression/compression.js';
import type { BlockFormat } from '../formats/format.js';
import { BlockBuffer, type AckHandle } from './block-buffer.js';
import { ReplyAck } from './reply-ack.js';
import { envelopeOf } from './envelope-of.js';
import type { MessageDecoder } from './options.js';

export interface RouterOptions<T> {
  stream: string;
  consumer: string;
  format: BlockFormat<T>;
  compression: Compression;
  splitKeyOf: (envelope: Envelope) => string;
  decoder: MessageDecoder<T> | undefined;
  maxMessages: number;
  maxBytes: number;
  now: () => number;
  onOpen: (blockId: string, buffer: BlockBuffer<T>) => void;
  onFull: (blockId: string, reason: SealReason) => void;
  onUndecodable: (envelope: Envelope, error: unknown) => void;
}

interface OpenBlock<T> {
  id: string;
  buffer: BlockBuffer<T>;
}

export class BlockRouter<T = Envelope> {
  /** Messages appended and not yet released (acked, abandoned or failed with their block). */
  held = 0;
  /** Messages appended over the router's life. */
  received = 0;
  private accepting = true;
  private nextId = 1;
  private streamConfig: Record<string, unknown> = {};
  private maxAckPending = Number.POSITIVE_INFINITY;
  private ackHandleOf: (message: JsMsg) => AckHandle = (message) => message;
  /** How often (in messages) the ack-pending guard looks: often enough for small limits, cheap for large. */
  private reliefEvery = 64;
  private readonly open = new Map<string, OpenBlock<T>>();
  private readonly options: RouterOptions<T>;

  constructor(options: RouterOptions<T>) {
    this.options = options;
  }

  /** Called once the consumer is bound: the config goes into every manifest; the limit guards acks. */
  bound(streamConfig: Record<string, unknown>, maxAckPending: number, nc?: NatsConnection): void {
    // Blocks keep only the ack subject of each message; without a connection (tests) the message itself.
    this.ackHandleOf = nc ? (message) => new ReplyAck(nc, (message as JsMsg & { reply: string }).reply) : (message) => message;
    this.streamConfig = streamConfig;
    this.maxAckPending = maxAckPending > 0 ? maxAckPending : Number.POSITIVE_INFINITY;
    this.reliefEvery = Math.max(1, Math.min(64, Math.floor(this.maxAckPending / 4)));
  }

  /** From now on, new messages are handed back (nak) for redelivery instead of being captured. */
  stopAccepting(): void {
    this.accepting = false;
  }

  route(message: JsMsg): void {
    if (!this.accepting) {
      message.nak();
      return;
    }
    const envelope = envelopeOf(message);
    let value: T;
    let splitKey: string | undefined;
    if (this.options.decoder) {
      try {
        const decoded = this.options.decoder(envelope);
        value = decoded.value;
        splitKey = decoded.splitKey;
      } catch (error) {
        this.undecodable(message, envelope, error);
        return;
      }
    } else {
      value = envelope as unknown as T;
    }
    splitKey ??= this.options.splitKeyOf(envelope);
    let block = this.open.get(splitKey);
    if (!block || block.buffer.closed) block = this.openBlock(splitKey);
    try {
      block.buffer.append(value, envelope, this.ackHandleOf(message));
    } catch (error) {
      // The format refused the value (e.g. a CSV flatten that throws): nothing was appended.
      this.undecodable(message, envelope, error);
      return;
    }
    this.held++;
    this.received++;
    const { buffer } = block;
    if (buffer.count >= this.options.maxMessages) this.full(block, 'max-messages');
    else if (buffer.bytes >= this.options.maxBytes) this.full(block, 'max-bytes');
    else if (this.held >= this.maxAckPending / 2 && this.received % this.reliefEvery === 0) this.relieveAckPending();
  }

  private undecodable(message: JsMsg, envelope: Envelope, error: unknown): void {
    // Handed back for a later redelivery; the supervisor decides what happens to the capture.
    message.nak(5_000);
    this.options.onUndecodable(envelope, error);
  }

  /** A block finished (acked, failed or abandoned): its messages no longer count as held. */
  release(buffer: BlockBuffer<T>): void {
    this.held -= buffer.count;
    const block = this.open.get(buffer.splitKey);
    if (block && block.buffer === buffer) this.open.delete(buffer.splitKey);
  }

  private openBlock(splitKey: string): OpenBlock<T> {
    const { stream, consumer, format, compression, now } = this.options;
    const buffer = new BlockBuffer<T>({ stream, splitKey, consumer, format, compression, streamConfig: this.streamConfig, now });
    const block = { id: `b${this.nextId++}`, buffer };
    this.open.set(splitKey, block);
    this.options.onOpen(block.id, buffer);
    return block;
  }

  private full(block: OpenBlock<T>, reason: SealReason): void {
    this.open.delete(block.buffer.splitKey);
    this.options.onFull(block.id, reason);
  }

  /**
   * The server stops delivering at max_ack_pending, so blocks that wait for more messages would wait
   * until idle. Past half the limit, the largest open block seals early.
   */
  private relieveAckPending(): void {
    let largest: OpenBlock<T> | undefined;
    let openHeld = 0;
    for (const block of this.open.values()) {
      if (block.buffer.closed) continue;
      openHeld += block.buffer.count;
      if (!largest || block.buffer.count > largest.buffer.count) largest = block;
    }
    if (largest && openHeld >= this.maxAckPending / 2) this.full(largest, 'ack-pending');
  }
}
