/**
 * One captured message, losslessly: what the `raw` format stores and every reader gives back.
 * This is part of the archive contract (see README "Archive format").
 */
export interface Envelope {
  /** The subject the message was published to. */
  subject: string;
  /** Every header with every value, in the order the message carried them; null when it had none. */
  headers: Array<[string, string[]]> | null;
  /** The payload bytes, unchanged. */
  data: Uint8Array;
  /** The stream that stored the message. */
  stream: string;
  /** The stream sequence. */
  seq: number;
  /** When the stream stored the message, in nanoseconds since the Unix epoch. */
  timeNs: bigint;
  /** How many times the message had been delivered when captured (1 on first delivery). */
  deliveryCount: number;
}

/** The timestamp of an envelope as an RFC 3339 string with nanoseconds (lossless). */
export function envelopeTimeIso(timeNs: bigint): string {
  const ms = timeNs / 1_000_000n;
  const nanos = (timeNs % 1_000_000_000n).toString().padStart(9, '0');
  const base = new Date(Number(ms)).toISOString(); // 2026-11-25T14:00:00.123Z
  return `${base.slice(0, 19)}.${nanos}Z`;
}

/** Parses an RFC 3339 timestamp with up to nanosecond precision back to nanoseconds. */
export function parseTimeIso(iso: string): bigint {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(iso);
  if (!m) throw new Error(`not an RFC 3339 timestamp: ${iso}`);
  const seconds = BigInt(Date.parse(`${m[1]}${m[3]}`) / 1000);
  const fraction = BigInt((m[2] ?? '').padEnd(9, '0'));
  return seconds * 1_000_000_000n + fraction;
}
