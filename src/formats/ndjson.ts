/**
 * The `ndjson` block format: one JSON object per line, with the field names nats.go gives a JetStream
 * message and its metadata, so files read like jetcapture's (see docs/archive-format.md).
 */
import { envelopeTimeIso, parseTimeIso, type Envelope } from '../archive/envelope.js';
import { decodeBase64Data, encodeBase64 } from './base64.js';
import type { BlockFormat } from './format.js';
import { TextChunkEncoder } from './text-chunks.js';

/** One NDJSON line (with its newline) for an envelope; shared with the dead-letter format. */
export function envelopeLine(envelope: Envelope): string {
  // Checked so that a bad value fails the write instead of producing a line no reader accepts (NaN is not JSON).
  checkCount(envelope.seq, 'seq');
  checkCount(envelope.deliveryCount, 'deliveryCount');
  if (envelope.timeNs < 0n) throw new RangeError(`ndjson encoder: timeNs ${envelope.timeNs} is before the epoch`);
  // Built by hand to fix the field order and to write the fields Envelope does not carry as Go's zero values.
  return (
    `{"subject":${JSON.stringify(envelope.subject)},"reply":"","header":${headerJson(envelope.headers)},` +
    `"data":"${encodeBase64(envelope.data)}","metadata":{"sequence":{"consumer_seq":0,"stream_seq":${envelope.seq}},` +
    `"num_delivered":${envelope.deliveryCount},"num_pending":0,"timestamp":"${envelopeTimeIso(envelope.timeNs)}",` +
    `"stream":${JSON.stringify(envelope.stream)},"consumer":"","domain":""}}\n`
  );
}

function checkCount(value: number, field: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`ndjson encoder: ${field} ${value} is not a non-negative safe integer`);
}

/** Go's nats.Header shape: an object of value arrays; `null` when the message had no headers. */
function headerJson(headers: Envelope['headers']): string {
  if (headers === null) return 'null';
  // No prototype, so a key named "__proto__" is an ordinary key; a repeated key keeps all its values.
  const header: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  for (const [key, values] of headers) {
    const seen = header[key];
    header[key] = seen === undefined ? values : [...seen, ...values];
  }
  return JSON.stringify(header);
}

function decodeNdjson(body: Buffer): Envelope[] {
  const envelopes: Envelope[] = [];
  let lineNumber = 0;
  for (let start = 0; start < body.length; ) {
    lineNumber++;
    const newline = body.indexOf(0x0a, start);
    const end = newline === -1 ? body.length : newline;
    const text = body.toString('utf8', start, end);
    start = end + 1;
    if (text.trim() === '') continue; // blank lines carry nothing; tolerated as most NDJSON readers do
    try {
      envelopes.push(envelopeFromJson(JSON.parse(text)));
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      throw new Error(`ndjson block: line ${lineNumber} is not a valid message: ${reason}`, { cause });
    }
  }
  return envelopes;
}

function envelopeFromJson(value: unknown): Envelope {
  const message = asObject(value, 'the line');
  const metadata = asObject(message.metadata, '"metadata"');
  const sequence = asObject(metadata.sequence, '"metadata.sequence"');
  return {
    subject: asString(message.subject, '"subject"'),
    headers: headersFromJson(message.header),
    data: dataFromJson(message.data),
    stream: asString(metadata.stream, '"metadata.stream"'),
    seq: asCount(sequence.stream_seq, '"metadata.sequence.stream_seq"'),
    timeNs: parseTimeIso(asString(metadata.timestamp, '"metadata.timestamp"')),
    deliveryCount: asCount(metadata.num_delivered, '"metadata.num_delivered"'),
  };
}

function headersFromJson(value: unknown): Envelope['headers'] {
  if (value === null || value === undefined) return null;
  const header = asObject(value, '"header"');
  return Object.entries(header).map(([key, values]): [string, string[]] => {
    // Go writes a nil value slice as null.
    if (values === null) return [key, []];
    if (!Array.isArray(values) || !values.every((v) => typeof v === 'string')) {
      throw new Error(`"header.${key}" is not an array of strings`);
    }
    return [key, values as string[]];
  });
}

function dataFromJson(value: unknown): Uint8Array {
  // Go writes a nil []byte as null.
  if (value === null || value === undefined) return new Uint8Array(0);
  return decodeBase64Data(asString(value, '"data"'));
}

function asObject(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${what} is not an object`);
  return value as Record<string, unknown>;
}

function asString(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new Error(`${what} is not a string`);
  return value;
}

function asCount(value: unknown, what: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) throw new Error(`${what} is not a non-negative safe integer`);
  return value as number;
}

export const ndjson: BlockFormat<Envelope> = {
  name: 'ndjson',
  extension: 'ndjson',
  contentType: 'application/x-ndjson',
  createEncoder: () => new TextChunkEncoder('ndjson', envelopeLine),
  decode: decodeNdjson,
};
