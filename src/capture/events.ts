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
  | { type: 'block.opened'; blockId: string; splitKey: string }
  | { type: 'block.sealed'; blockId: string; key: string; messages: number; bytes: number; reason: SealReason }
  | { type: 'block.stored'; blockId: string; key: string; messages: number; storedBytes: number; attempts: number; durationMs: number }
  | { type: 'block.retry'; blockId: string; key: string; attempt: number; delayMs: number; error: string }
  | { type: 'block.acked'; blockId: string; key: string; messages: number }
  | { type: 'block.failed'; blockId: string; key: string; error: string }
  | { type: 'block.abandoned'; blockId: string; key?: string; messages: number }
  | { type: 'message.undecodable'; seq: number; subject: string; error: string }
  /** The consumer's lag (not yet delivered) and unacknowledged count, read every few seconds. */
  | { type: 'consumer.info'; pending: number; ackPending: number }
  | { type: 'capture.caught-up'; messages: number }
  /** `--once` waits for messages an earlier run left unacknowledged; they come back after ack_wait. */
  | { type: 'capture.waiting'; unacked: number; ackWaitMs: number }
  | { type: 'capture.done'; report: CaptureReport }
  | { type: 'capture.error'; error: string; code?: string };

export interface CaptureReport {
  stream: string;
  consumer: string;
  /** Messages stored and acked. */
  messages: number;
  blocks: number;
  storedBytes: number;
  /** Blocks left unacked at shutdown (their messages will be redelivered). */
  abandonedBlocks: number;
  durationMs: number;
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
}
