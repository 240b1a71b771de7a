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
import { deadLetterFormat, type DeadLetter } from '../formats/dead-letter.js';
import type { BlockFormat } from '../formats/format.js';
import { BlockBuffer, type AckHandle } from './block-buffer.js';
import { publishToAllOf, type PublishToAll } from './reply-ack.js';
import { envelopeOf } from './envelope-of.js';
import { SeqSet } from './seq-set.js';
import type { MessageDecoder } from './options.js';
import type { SpillDirectory } from './spill.js';

export interface RouterOptions<T> {
  stream: string;
  consumer: string;
  format: BlockFormat<T>;
  compression: Compression;
  splitKeyOf: (envelope: Envelope) => string;
  decoder: MessageDecoder<T> | undefined;
  maxMessages: number;
  maxBytes: number;
  /**
   * Encoded bytes all blocks not yet acked may hold together in memory; past it the largest open block
   * seals. Bytes spilled to disk (`spill`) do not count until their block seals and reads them back.
   */
  maxBuffer: number;
  /** Spill the bodies of open blocks to this directory (`bufferDir`). */
  spill?: SpillDirectory;
  poison: PoisonPolicy;
  now: () => number;
  onOpen: (blockId: string, buffer: BlockBuffer<unknown>) => void;
  onFull: (blockId: string, reason: SealReason) => void;
  onUndecodable: (envelope: Envelope, error: unknown, action: UndecodableAction) => void;
}

/** What happens to a message the decoder or format rejects. */
export interface PoisonPolicy {
  /** Dead-letter it (true), or stop the capture loudly (false). */
  deadLetter: boolean;
  /** Deliveries before it is dead-lettered; lowered to the consumer's max_deliver so the server cannot drop it first. */
  attempts: number;
  /** Delay of the nak that asks for the next attempt. */
  retryDelayMs: number;
}

/** `retry`: nak'ed for another attempt; `dead-letter`: into the dead-letter block; `stop`: the capture stops. */
export type UndecodableAction = 'retry' | 'dead-letter' | 'stop';

/** Consumer settings the router works within, read at bind time. */
export interface ConsumerLimits {
  maxAckPending: number;
  maxDeliver: number;
}

interface OpenBlock<T> {
  id: string;
  buffer: BlockBuffer<T>;
  /** The stream sequences appended, for the stored set once the block is stored. */
  seqs: number[];
}

export class BlockRouter<T = Envelope> {
  /** Messages appended and not yet released (acked, abandoned or failed with their block). */
  held = 0;
  /** Messages appended over the router's life. */
  received = 0;
  /** Encoded bytes in memory of every block not yet released (open, sealing, storing, retrying, acking). */
  bufferedBytes = 0;
  /** The buffer limit is looked at again only past this, so a limit held by storing blocks is not rescanned per message. */
  private nextBufferCheck = 0;
  /** Highest stream sequence routed so far (appended, dead-lettered or handed back). */
  private highestSeq = 0;
  /** Redelivered messages that were already stored: acked again, not stored twice. */
  redeliveriesSkipped = 0;
  private readonly storedSeqs = new SeqSet();
  /** The sequences of every block not yet stored, by its buffer. */
  private readonly seqsOf = new Map<BlockBuffer<unknown>, number[]>();
  /** Blocks' sequence lists that are not increasing (a redelivery appended after later ones): searched linearly. */
  private readonly unsortedSeqs = new WeakSet<number[]>();
  /** Sequences handed back for another attempt, not seen again yet: a re-created consumer must deliver them. */
  private readonly retrying = new Set<number>();
  private accepting = true;
  private nextId = 1;
  private streamConfig: Record<string, unknown> = {};
  private maxAckPending = Number.POSITIVE_INFINITY;
  /** What a block keeps to ack a message: its ack subject once bound to a connection, else the message. */
  private ackOf: (message: JsMsg) => AckHandle | string = (message) => message;
  private publishAcks: PublishToAll | undefined;
  /** How often (in messages) the ack-pending guard looks: often enough for small limits, cheap for large. */
  private reliefEvery = 64;
  private readonly open = new Map<string, OpenBlock<T>>();
  /** The open dead-letter block, apart from the split keys (no split key can collide with it). */
  private deadLetters: OpenBlock<DeadLetter> | undefined;
  private poisonAttempts: number;
  private readonly options: RouterOptions<T>;

  constructor(options: RouterOptions<T>) {
    this.options = options;
    this.poisonAttempts = options.poison.attempts;
  }

  /** Called once the consumer is bound: the config goes into every manifest; the limits guard acks and retries. */
  bound(streamConfig: Record<string, unknown>, limits: ConsumerLimits, nc?: NatsConnection): void {
    const { maxAckPending, maxDeliver } = limits;
    this.poisonAttempts = maxDeliver > 0 ? Math.min(this.options.poison.attempts, maxDeliver) : this.options.poison.attempts;
    // Blocks keep only the ack subject of each message; without a connection (tests) the message itself.
    if (nc) {
      this.publishAcks = publishToAllOf(nc);
      this.ackOf = (message) => (message as JsMsg & { reply: string }).reply;
    } else {
      this.publishAcks = undefined;
      this.ackOf = (message) => message;
    }
    this.streamConfig = streamConfig;
    this.maxAckPending = maxAckPending > 0 ? maxAckPending : Number.POSITIVE_INFINITY;
    this.reliefEvery = Math.max(1, Math.min(64, Math.floor(this.maxAckPending / 4)));
  }

  /** The highest stream sequence routed so far. */
  get highestSeen(): number {
    return this.highestSeq;
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
    if (this.deferred !== undefined && envelope.deliveryCount > 1) {
      // A redelivery while the archive is being read: it may be stored already; decided once that is known.
      this.deferred.push(message);
      return;
    }
    // Only a redelivery (or a message of a re-created consumer, at or below the highest seen) can be stored already.
    if ((envelope.seq <= this.highestSeq || envelope.deliveryCount > 1) && this.storedSeqs.has(envelope.seq)) {
      // Its block was stored, its ack lost (server restart, leader change, crash): acked again, not stored twice.
      message.ack();
      this.redeliveriesSkipped++;
      return;
    }
    if (envelope.seq <= this.highestSeq) {
      // Delivered again while a block still holds it (not stored yet): a server restart can roll the consumer's
      // delivered state back and send held messages again, even as first deliveries. The new delivery is acked
      // with the holding block instead of being captured a second time; if that block fails, neither is acked.
      const holder = this.bufferHolding(envelope.seq);
      if (holder) {
        holder.acks.add(this.ackOf(message));
        this.redeliveriesSkipped++;
        return;
      }
    }
    if (envelope.seq > this.highestSeq) this.highestSeq = envelope.seq;
    if (this.retrying.size > 0) this.retrying.delete(envelope.seq);
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
    const { buffer } = block;
    const bytesBefore = buffer.bytes;
    try {
      buffer.append(value, envelope, this.ackOf(message));
      this.pushSeq(block.seqs, envelope.seq);
    } catch (error) {
      // The format refused the value (e.g. a CSV flatten that throws): nothing was appended.
      this.undecodable(message, envelope, error);
      return;
    }
    this.held++;
    this.received++;
    this.bufferedBytes += buffer.bytes - bytesBefore;
    if (buffer.count >= this.options.maxMessages) this.full(block, 'max-messages');
    else if (buffer.bytes >= this.options.maxBytes) this.full(block, 'max-bytes');
    else if (this.bufferedBytes >= this.options.maxBuffer && this.bufferedBytes >= this.nextBufferCheck) this.relieveBuffer();
    else if (this.held >= this.maxAckPending / 2 && this.received % this.reliefEvery === 0) this.relieveAckPending();
  }

  /**
   * Over the buffer limit: the largest open block seals, so its bytes leave memory once stored. When blocks
   * that are already storing hold most of it, open blocks are left alone until they hold half the limit
   * (sealing tiny blocks would not free anything); the server's max_ack_pending bounds the rest.
   */
  private relieveBuffer(): void {
    let largest: OpenBlock<T> | undefined;
    let openBytes = 0;
    // In-memory bytes: sealing a block whose body sits in its spill file would free nothing.
    for (const block of this.open.values()) {
      if (block.buffer.closed) continue;
      openBytes += block.buffer.memoryBytes;
      if (!largest || block.buffer.memoryBytes > largest.buffer.memoryBytes) largest = block;
    }
    if (largest && openBytes >= this.options.maxBuffer / 2) this.full(largest, 'max-buffer');
    this.nextBufferCheck = this.bufferedBytes + Math.max(1, Math.floor(this.options.maxBuffer / 64));
  }

  /**
   * A message the decoder or format rejected: retried a few times (a decoder may depend on something that
   * comes back), then stored in the dead-letter block and acked with it. Never retried forever.
   */
  private undecodable(message: JsMsg, envelope: Envelope, error: unknown): void {
    const { poison } = this.options;
    if (!poison.deadLetter) {
      // Handed back for a later redelivery; the supervisor stops the capture.
      this.retrying.add(envelope.seq);
      message.nak(poison.retryDelayMs);
      this.options.onUndecodable(envelope, error, 'stop');
      return;
    }
    if (envelope.deliveryCount < this.poisonAttempts) {
      this.retrying.add(envelope.seq);
      message.nak(poison.retryDelayMs);
      this.options.onUndecodable(envelope, error, 'retry');
      return;
    }
    let block = this.deadLetters;
    if (!block || block.buffer.closed) block = this.openDeadLetterBlock();
    const letter: DeadLetter = { envelope, error: errorText(error), deliveries: envelope.deliveryCount, at: this.options.now() };
    const bytesBefore = block.buffer.bytes;
    block.buffer.append(letter, envelope, this.ackOf(message));
    this.pushSeq(block.seqs, envelope.seq);
    this.held++;
    this.bufferedBytes += block.buffer.bytes - bytesBefore;
    this.options.onUndecodable(envelope, error, 'dead-letter');
    if (block.buffer.count >= this.options.maxMessages || block.buffer.bytes >= this.options.maxBytes) {
      this.deadLetters = undefined;
      this.options.onFull(block.id, block.buffer.count >= this.options.maxMessages ? 'max-messages' : 'max-bytes');
    }
  }

  private openDeadLetterBlock(): OpenBlock<DeadLetter> {
    const { stream, consumer, compression, now } = this.options;
    const buffer = new BlockBuffer<DeadLetter>({
      stream,
      splitKey: '',
      consumer,
      format: deadLetterFormat,
      compression,
      streamConfig: {},
      deadLetter: true,
      now,
      publishAcks: this.publishAcks,
      ...this.spillParams(),
    });
    const block = { id: `dl${this.nextId++}`, buffer, seqs: [] };
    this.seqsOf.set(buffer, block.seqs);
    this.deadLetters = block;
    this.options.onOpen(block.id, buffer as BlockBuffer<unknown>);
    return block;
  }

  /**
   * Where a re-created consumer starts so that nothing already captured comes again (it would make a second,
   * overlapping block) and nothing is skipped: after the highest sequence seen, or at the lowest one still
   * waiting for another attempt. Messages held in open blocks are stored by those blocks.
   */
  resumeSeq(): number {
    let seq = this.highestSeq + 1;
    for (const s of this.retrying) if (s < seq) seq = s;
    return seq;
  }

  /** Redeliveries wait here (not nak'ed: that would spend max_deliver) until endRecovery(). */
  private deferred: JsMsg[] | undefined;

  /** Holds back redeliveries until the archive tells which of them are stored already (see recover-stored.ts). */
  beginRecovery(): void {
    this.deferred ??= [];
  }

  /** The archive holds these sequences: their redeliveries are acked; then the held-back messages are routed. */
  endRecovery(storedSeqs: readonly number[]): void {
    this.storedSeqs.addAll(storedSeqs);
    const deferred = this.deferred ?? [];
    this.deferred = undefined;
    for (const message of deferred) this.route(message);
  }

  /** A block was stored: a redelivery of any of its messages is acked, not captured again. */
  stored(buffer: BlockBuffer<unknown>): void {
    const seqs = this.seqsOf.get(buffer);
    if (!seqs) return;
    this.storedSeqs.addAll(seqs);
    this.seqsOf.delete(buffer);
  }

  private pushSeq(seqs: number[], seq: number): void {
    if (seqs.length > 0 && seq < seqs[seqs.length - 1]!) this.unsortedSeqs.add(seqs);
    seqs.push(seq);
  }

  /** The buffer of a block not stored yet that holds `seq`, if any. Only asked for sequences seen before. */
  private bufferHolding(seq: number): BlockBuffer<unknown> | undefined {
    for (const [buffer, seqs] of this.seqsOf) {
      if (this.unsortedSeqs.has(seqs) ? seqs.includes(seq) : sortedIncludes(seqs, seq)) return buffer;
    }
    return undefined;
  }

  /** The consumer's ack floor: nothing at or below it is delivered again, so the stored set forgets it. */
  ackFloor(streamSeq: number): void {
    this.storedSeqs.pruneBelow(streamSeq + 1);
  }

  /** A block finished (acked, failed or abandoned): its messages no longer count as held. */
  release(buffer: BlockBuffer<unknown>): void {
    this.seqsOf.delete(buffer);
    this.held -= buffer.count;
    this.bufferedBytes -= buffer.memoryBytes;
    void buffer.dispose(); // deletes its spill file, if any; no memory changes are reported after this
    this.nextBufferCheck = 0;
    if (this.deadLetters?.buffer === buffer) this.deadLetters = undefined;
    const block = this.open.get(buffer.splitKey);
    if (block && block.buffer === buffer) this.open.delete(buffer.splitKey);
  }

  private openBlock(splitKey: string): OpenBlock<T> {
    const { stream, consumer, format, compression, now } = this.options;
    const buffer = new BlockBuffer<T>({ stream, splitKey, consumer, format, compression, streamConfig: this.streamConfig, now, publishAcks: this.publishAcks, ...this.spillParams() });
    const block = { id: `b${this.nextId++}`, buffer, seqs: [] };
    this.seqsOf.set(buffer, block.seqs);
    this.open.set(splitKey, block);
    this.options.onOpen(block.id, buffer as BlockBuffer<unknown>);
    return block;
  }

  /** With spilling on: the directory, and the callback that keeps bufferedBytes to memory only. */
  private spillParams(): { spill?: SpillDirectory; onMemoryChange?: (delta: number) => void } {
    const { spill } = this.options;
    return spill ? { spill, onMemoryChange: (delta) => (this.bufferedBytes += delta) } : {};
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

function sortedIncludes(seqs: readonly number[], seq: number): boolean {
  let lo = 0;
  let hi = seqs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const value = seqs[mid]!;
    if (value === seq) return true;
    if (value < seq) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
