/**
 * The acknowledgements a block owes until its store is confirmed: the ack subjects of its messages (sent as
 * batches, see reply-ack.ts), or handles that ack themselves (a JsMsg, or a test's fake message).
 */
import { ACK, WORKING, type PublishToAll } from './reply-ack.js';

/** What the block keeps of a message to acknowledge it later (a JsMsg satisfies it). */
export interface AckHandle {
  ack(): void;
  nak(millis?: number): void;
  working(): void;
}

export class BlockAcks {
  private readonly subjects: string[] = [];
  private readonly handles: AckHandle[] = [];

  /** `publish` sends to ack subjects; without it only handles can be added. */
  constructor(private readonly publish?: PublishToAll) {}

  get size(): number {
    return this.subjects.length + this.handles.length;
  }

  /** An ack subject (`$JS.ACK....`) or a handle. */
  add(ack: AckHandle | string): void {
    if (typeof ack !== 'string') this.handles.push(ack);
    else if (this.publish) this.subjects.push(ack);
    else throw new Error('block acks: an ack subject without a publisher');
  }

  /** Acknowledges every message (the block is stored). */
  ackAll(): void {
    if (this.subjects.length > 0) this.publish!(this.subjects, ACK);
    for (const handle of this.handles) handle.ack();
  }

  /** Marks every message in progress (the block is still being stored), so its ack_wait starts again. */
  workingAll(): void {
    if (this.subjects.length > 0) this.publish!(this.subjects, WORKING);
    for (const handle of this.handles) handle.working();
  }
}
