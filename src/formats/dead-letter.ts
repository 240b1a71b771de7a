/**
 * The dead-letter format: one JSON object per line for each message the decoder or writer rejected, with
 * why, how often it was delivered, and the whole message as the ndjson format writes it (data in base64),
 * so it can be inspected, fixed and republished by hand. Not restorable on purpose: restore never reads it.
 */
import type { Envelope } from '../archive/envelope.js';
import { NO_CHUNKS, type BlockEncoder, type BlockFormat } from './format.js';
import { envelopeLine } from './ndjson.js';

export interface DeadLetter {
  envelope: Envelope;
  /** The decoder's or writer's error message. */
  error: string;
  /** Deliveries of the message when it was dead-lettered. */
  deliveries: number;
  /** When jetvault gave up on it (ms since the epoch). */
  at: number;
}

/** Lines are gathered into a string this long before one UTF-8 conversion, as the ndjson format does. */
const CHUNK_CHARS = 256 * 1024;

class DeadLetterEncoder implements BlockEncoder<DeadLetter> {
  private chunks: Buffer[] = [];
  private pending = '';
  private finished = false;

  write(letter: DeadLetter): number {
    if (this.finished) throw new Error('dead-letter encoder: write() after finish()');
    let message: string;
    try {
      message = envelopeLine(letter.envelope).trimEnd();
    } catch (error) {
      // Even an envelope the ndjson writer refuses is kept: its bytes are what matters.
      message = JSON.stringify({ subject: letter.envelope.subject, data: Buffer.from(letter.envelope.data).toString('base64'), encodeError: String(error) });
    }
    const line = `{"error":${JSON.stringify(letter.error)},"deliveries":${letter.deliveries},"dead_lettered_at":"${new Date(letter.at).toISOString()}","message":${message}}\n`;
    this.pending += line;
    if (this.pending.length >= CHUNK_CHARS) this.flush();
    return Buffer.byteLength(line, 'utf8');
  }

  finish(): Buffer[] {
    if (!this.finished) {
      this.finished = true;
      this.flush();
    }
    return this.chunks;
  }

  /** The chunks completed so far (see BlockEncoder.takeChunks); cheap when there are none. */
  takeChunks(): Buffer[] {
    const { chunks } = this;
    if (chunks.length === 0 || this.finished) return NO_CHUNKS;
    this.chunks = [];
    return chunks;
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    this.chunks.push(Buffer.from(this.pending, 'utf8'));
    this.pending = '';
  }
}

export const deadLetterFormat: BlockFormat<DeadLetter> = {
  name: 'dead-letter',
  extension: 'ndjson',
  contentType: 'application/x-ndjson',
  createEncoder: () => new DeadLetterEncoder(),
};
