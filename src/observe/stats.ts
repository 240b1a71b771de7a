/**
 * CaptureStatsCollector: folds a capture's events into the `CaptureStats` snapshot behind
 * `handle.stats()`. Pure bookkeeping, no I/O and no timers; the clock is injected so tests are exact.
 *
 * Block phases follow the block machine: block.opened → open, (sealing) → block.sealed → storing,
 * block.retry → retrying (until stored), block.stored → acking, then acked / failed / abandoned → gone.
 * `block.sealing` marks the start of sealing (also callable directly as `sealing(blockId)`).
 */
import type { BlockPhase, CaptureEvent, CaptureStats, ConnectionStatus } from '../capture/events.js';

export interface CaptureStatsCollectorOptions {
  /** Clock in ms since the epoch. Default Date.now. */
  now?: () => number;
}

export class CaptureStatsCollector {
  private readonly now: () => number;
  private readonly phases = new Map<string, BlockPhase>();
  private connectionStatus: ConnectionStatus = 'connecting';
  private consumerBound = false;
  private ended = false;
  private reconnects = 0;
  private consumerPending: number | null = null;
  private consumerAckPending: number | null = null;
  private messagesSealed = 0;
  private messagesStored = 0;
  private messagesAcked = 0;
  private messagesAbandoned = 0;
  private messagesUndecodable = 0;
  private messagesDeadLettered = 0;
  private blocksStored = 0;
  private blocksAcked = 0;
  private blocksAbandoned = 0;
  private bytesEncoded = 0;
  private bytesStored = 0;
  private storeRetries = 0;
  private storeFailures = 0;
  private latency = { count: 0, sumMs: 0, maxMs: 0, lastMs: null as number | null };
  private lastStoreAt: number | null = null;
  private lastStoreError: string | null = null;
  private storeFailingSinceMs: number | null = null;

  constructor(options: CaptureStatsCollectorOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  /** Feed every event of the capture, in order. */
  record(event: CaptureEvent): void {
    switch (event.type) {
      case 'connection.status':
        this.connectionStatus = event.status;
        if (event.status === 'reconnecting') this.reconnects++;
        break;
      case 'consumer.bound':
        this.consumerBound = true;
        this.consumerPending = event.pending;
        break;
      case 'consumer.info':
        this.consumerPending = event.pending;
        this.consumerAckPending = event.ackPending;
        break;
      case 'block.opened':
        this.phases.set(event.blockId, 'open');
        break;
      case 'block.sealing':
        this.sealing(event.blockId);
        break;
      case 'block.sealed':
        this.phases.set(event.blockId, 'storing');
        this.messagesSealed += event.messages;
        this.bytesEncoded += event.bytes;
        break;
      case 'block.retry':
        this.phases.set(event.blockId, 'retrying');
        this.storeRetries++;
        this.storeFailed(event.error);
        break;
      case 'block.stored': {
        this.phases.set(event.blockId, 'acking');
        this.blocksStored++;
        this.messagesStored += event.messages;
        this.bytesStored += event.storedBytes;
        this.latency.count++;
        this.latency.sumMs += event.durationMs;
        this.latency.maxMs = Math.max(this.latency.maxMs, event.durationMs);
        this.latency.lastMs = event.durationMs;
        this.lastStoreAt = this.now();
        this.lastStoreError = null;
        this.storeFailingSinceMs = null;
        break;
      }
      case 'block.acked':
        this.phases.delete(event.blockId);
        this.blocksAcked++;
        this.messagesAcked += event.messages;
        break;
      case 'block.failed':
        this.phases.delete(event.blockId);
        this.storeFailures++;
        this.storeFailed(event.error);
        break;
      case 'block.abandoned':
        this.phases.delete(event.blockId);
        this.blocksAbandoned++;
        this.messagesAbandoned += event.messages;
        break;
      case 'message.undecodable':
        this.messagesUndecodable++;
        if (event.action === 'dead-letter') this.messagesDeadLettered++;
        break;
      case 'capture.done':
      case 'capture.error':
        this.ended = true;
        this.consumerBound = false;
        if (this.connectionStatus !== 'failed') this.connectionStatus = 'closed';
        // Whatever was still live is gone with the capture (its messages are redelivered).
        this.phases.clear();
        break;
      case 'capture.caught-up':
      case 'capture.waiting':
        break;
    }
  }

  /** An open block began sealing (encoding and compressing); no event announces it. */
  sealing(blockId: string): void {
    if (this.phases.get(blockId) === 'open') this.phases.set(blockId, 'sealing');
  }

  snapshot(): CaptureStats {
    const at = this.now();
    const blocks: Record<BlockPhase, number> = { open: 0, sealing: 0, storing: 0, retrying: 0, acking: 0 };
    for (const phase of this.phases.values()) blocks[phase]++;
    return {
      at,
      connectionStatus: this.connectionStatus,
      consumerBound: this.consumerBound,
      ended: this.ended,
      reconnects: this.reconnects,
      consumerPending: this.consumerPending,
      consumerAckPending: this.consumerAckPending,
      messagesSealed: this.messagesSealed,
      messagesStored: this.messagesStored,
      messagesAcked: this.messagesAcked,
      messagesAbandoned: this.messagesAbandoned,
      messagesUndecodable: this.messagesUndecodable,
      messagesDeadLettered: this.messagesDeadLettered,
      blocks,
      blocksStored: this.blocksStored,
      blocksAcked: this.blocksAcked,
      blocksAbandoned: this.blocksAbandoned,
      bytesEncoded: this.bytesEncoded,
      bytesStored: this.bytesStored,
      storeRetries: this.storeRetries,
      storeFailures: this.storeFailures,
      storeLatency: { ...this.latency },
      lastStoreAt: this.lastStoreAt,
      msSinceLastStore: this.lastStoreAt === null ? null : at - this.lastStoreAt,
      lastStoreError: this.lastStoreError,
      storeFailingSinceMs: this.storeFailingSinceMs,
      storeFailingForMs: this.storeFailingSinceMs === null ? null : at - this.storeFailingSinceMs,
    };
  }

  private storeFailed(error: string): void {
    this.lastStoreError = error;
    this.storeFailingSinceMs ??= this.now();
  }
}
