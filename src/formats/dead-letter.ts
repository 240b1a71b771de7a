/**
 * The dead-letter format: one JSON object per line for each message the decoder or writer rejected, with
 * why, how often it was delivered, and the whole message as the ndjson format writes it (data in base64),
 * so it can be inspected, fixed and republished by hand. Not restorable on purpose: restore never reads it.
 */
import type { Envelope } from '../archive/envelope.js';
import type { BlockFormat } from './format.js';
import { TextChunkEncoder } from './text-chunks.js';
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

function deadLetterLine(letter: DeadLetter): string {
  let message: string;
  try {
    message = envelopeLine(letter.envelope).trimEnd();
  } catch (error) {
    // Even an envelope the ndjson writer refuses is kept: its bytes are what matters.
    message = JSON.stringify({ subject: letter.envelope.subject, data: Buffer.from(letter.envelope.data).toString('base64'), encodeError: String(error) });
  }
  return `{"error":${JSON.stringify(letter.error)},"deliveries":${letter.deliveries},"dead_lettered_at":"${new Date(letter.at).toISOString()}","message":${message}}\n`;
}

export const deadLetterFormat: BlockFormat<DeadLetter> = {
  name: 'dead-letter',
  extension: 'ndjson',
  contentType: 'application/x-ndjson',
  createEncoder: () => new TextChunkEncoder('dead-letter', deadLetterLine),
};
