/** Typed events a capture emits to its listeners (`capture.on(type, fn)` / `capture.subscribe(fn)`). */
import type { SealReason } from '../archive/manifest.js';

export type ConnectionStatus = 'connecting' | 'connected' | 'reconnecting' | 'closed' | 'failed';

export type CaptureEvent =
  | { type: 'connection.status'; status: ConnectionStatus; server?: string; error?: string }
  | {
      type: 'consumer.bound';
      stream: string;
      consumer: string;
      created: boolean;
      ackWaitMs: number;
      maxAckPending: number;
      /** Messages waiting for this consumer at bind time (delivered-but-unacked ones included). */
      pending: number;
    }
  /** `deadLetter`: the block collects undecodable messages under `_dead-letter/`. */
  | { type: 'block.opened'; blockId: string; splitKey: string; deadLetter?: true }
  | { type: 'block.sealing'; blockId: string; messages: number; reason: SealReason }
  | { type: 'block.sealed'; blockId: string; key: string; messages: number; bytes: number; reason: SealReason }
  | { type: 'block.stored'; blockId: string; key: string; messages: number; storedBytes: number; attempts: number; durationMs: number }
  | { type: 'block.retry'; blockId: string; key: string; attempt: number; delayMs: number; error: string }
  | { type: 'block.acked'; blockId: string; key: string; messages: number }
  | { type: 'block.failed'; blockId: string; key: string; error: string }
  | { type: 'block.abandoned'; blockId: string; key?: string; messages: number }
  /**
   * The decoder or format rejected a message. `action`: `retry` (nak'ed, it comes back), `dead-letter` (it goes
   * into the dead-letter block and is acked once that is stored), `stop` (dead-lettering is off: capture stops).
   */
  | { type: 'message.undecodable'; seq: number; subject: string; error: string; deliveries: number; action: 'retry' | 'dead-letter' | 'stop' }
  /** The consumer's lag (not yet delivered) and unacknowledged count, read every few seconds. */
  | { type: 'consumer.info'; pending: number; ackPending: number }
  | { type: 'capture.caught-up'; messages: number }
  /**
   * At the first bind the consumer had unacknowledged messages (an earlier run crashed): the archive's blocks
   * above the ack floor were read, and redeliveries of the `storedMessages` found there are acked, not stored
   * again. `error`: the archive could not be read; redeliveries are then captured (maybe a second time).
   */
  | { type: 'capture.recovered'; floorSeq: number; blocks: number; storedMessages: number; unreadableBlocks: number; durationMs: number; error?: string }
  /** `--once` waits for messages an earlier run left unacknowledged; they come back after ack_wait. */
  | { type: 'capture.waiting'; unacked: number; ackWaitMs: number }
  | { type: 'capture.done'; report: CaptureReport }
  | { type: 'capture.error'; error: string; code?: string };

export interface CaptureReport {
  stream: string;
  consumer: string;
  /** Messages stored and acked (dead letters not included). */
  messages: number;
  /** Undecodable messages stored in the dead-letter prefix and acked. */
  deadLettered: number;
  /**
   * Messages delivered again after they were captured: after their block was stored (a lost ack), acked again;
   * while a block not stored yet holds them (a server restart), acked with that block. Never stored twice.
   */
  redeliveriesSkipped: number;
  blocks: number;
  storedBytes: number;
  /** Blocks left unacked at shutdown (their messages will be redelivered). */
  abandonedBlocks: number;
  durationMs: number;
}

/** Where a live block is in its lifecycle (see machines/block-machine.ts). */
export type BlockPhase = 'open' | 'sealing' | 'storing' | 'retrying' | 'acking';

/**
 * A point-in-time snapshot of a capture (`handle.stats()`), derived from its events: what the Prometheus
 * metrics (src/observe/metrics.ts) and the readiness probe read. Times are ms on the capture's clock.
 */
export interface CaptureStats {
  /** When the snapshot was taken (ms since the epoch). */
  at: number;
  /** Latest `connection.status`; `closed` once the capture ended. */
  connectionStatus: ConnectionStatus;
  /** True from `consumer.bound` until the capture ends. */
  consumerBound: boolean;
  /** True after `capture.done` or `capture.error`. */
  ended: boolean;
  /** `connection.status` reconnecting events seen. */
  reconnects: number;
  /**
   * Messages not yet delivered to this consumer (its lag), from the latest `consumer.info`. Before the
   * first one it is the bind-time count, which includes delivered-but-unacked messages; null before binding.
   */
  consumerPending: number | null;
  /** Delivered but unacknowledged messages, from the latest `consumer.info`; null before the first. */
  consumerAckPending: number | null;
  /** Messages in sealed blocks (the capture's "received" count; messages of open blocks are not in it). */
  messagesSealed: number;
  /** Messages in blocks the store confirmed. */
  messagesStored: number;
  /** Messages acknowledged to the server (after their block was stored). */
  messagesAcked: number;
  /** Messages of abandoned blocks: left unacked, the server redelivers them. */
  messagesAbandoned: number;
  /** `message.undecodable` events. */
  messagesUndecodable: number;
  /** Undecodable messages put into the dead-letter block (acked once it is stored). */
  messagesDeadLettered: number;
  /** Live blocks by phase. `retrying` counts blocks whose store failed at least once and has not succeeded yet. */
  blocks: Record<BlockPhase, number>;
  blocksStored: number;
  blocksAcked: number;
  blocksAbandoned: number;
  /** Encoded bytes of sealed blocks, before compression. */
  bytesEncoded: number;
  /** Bytes written to the store, after compression. */
  bytesStored: number;
  /** Failed store attempts that are retried (`block.retry`). */
  storeRetries: number;
  /** Blocks given up (`block.failed`): a permanent error or the attempt budget spent. */
  storeFailures: number;
  /** From seal to confirmed store, retries included (`block.stored` durationMs). */
  storeLatency: { count: number; sumMs: number; maxMs: number; lastMs: number | null };
  /** When a block was last stored (ms since the epoch); null before the first. */
  lastStoreAt: number | null;
  msSinceLastStore: number | null;
  /** Error of the latest failed store attempt; cleared by the next successful store. */
  lastStoreError: string | null;
  /** When storing started failing: the first failure since the last success (ms since the epoch). */
  storeFailingSinceMs: number | null;
  /** How long storing has been failing; null while it is not. */
  storeFailingForMs: number | null;
}

export type CaptureEventType = CaptureEvent['type'];
export type CaptureEventOf<K extends CaptureEventType> = Extract<CaptureEvent, { type: K }>;

/** What createCapture() returns: a started, supervised capture. */
export interface CaptureHandle {
  /** Settles when capture ends: after `--once` completes, or after drain()/stop(); rejects on a fatal error. */
  readonly done: Promise<CaptureReport>;
  /** Stops fetching, seals, stores and acks every open block within the drain timeout, then ends. */
  drain(): Promise<CaptureReport>;
  /** Ends at once: nothing more is stored or acked (unacked messages are redelivered later). */
  stop(): Promise<void>;
  on<K extends CaptureEventType>(type: K, listener: (event: CaptureEventOf<K>) => void): () => void;
  subscribe(listener: (event: CaptureEvent) => void): () => void;
  /** A snapshot of the capture's counters, live blocks and health; cheap, call it as often as needed. */
  stats(): CaptureStats;
}
