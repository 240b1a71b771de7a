/**
 * The `raw` block format: a versioned, lossless binary encoding of envelopes (see docs/archive-format.md).
 *
 *   block   := "JVR1" record*
 *   record  := length:u32 flags:u8 seq:u64 timeNs:u64 deliveryCount:u32 stream:str subject:str [headers] data:bytes
 *   headers := keyCount:u32 (key:str valueCount:u32 value:str*)*      present when flags bit 0 is set
 *   str     := byteLength:u32 utf8          bytes := byteLength:u32 raw
 * All integers little-endian. `length` counts the bytes after itself, so truncation is detectable.
 */
import type { Envelope } from '../archive/envelope.js';
import { NO_CHUNKS, type BlockEncoder, type BlockFormat } from './format.js';

const MAGIC = 'JVR';
const VERSION = '1';
const PREAMBLE = Buffer.from(`${MAGIC}${VERSION}`, 'latin1');
const FLAG_HAS_HEADERS = 0x01;
const KNOWN_FLAGS = FLAG_HAS_HEADERS;
/** length + flags + seq + timeNs + deliveryCount + the three length prefixes of stream, subject, data. */
const FIXED_RECORD_BYTES = 4 + 1 + 8 + 8 + 4 + 4 + 4 + 4;
/** Records are packed into chunks this large, so a block costs a few allocations, not one per message. */
const CHUNK_BYTES = 256 * 1024;
/** UTF-8 needs at most 3 bytes per UTF-16 code unit (a surrogate pair is 2 units for 4 bytes). */
const MAX_UTF8_BYTES_PER_UNIT = 3;
const TWO_POW_32 = 0x1_0000_0000;
const MAX_U64 = 0xffff_ffff_ffff_ffffn;

class RawEncoder implements BlockEncoder<Envelope> {
  private chunks: Buffer[] = [];
  private chunk: Buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  /** Integers go through a DataView: setBigUint64 is several times faster than Buffer#writeBigUInt64LE. */
  private view = viewOf(this.chunk);
  private offset = PREAMBLE.copy(this.chunk, 0);
  /** The preamble is reported by the first write, so the write() counts add up to the body length. */
  private pendingPreamble = PREAMBLE.length;
  private finished = false;

  write(envelope: Envelope): number {
    if (this.finished) throw new Error('raw encoder: write() after finish()');
    const { seq, timeNs, deliveryCount, headers, data } = envelope;
    // DataView writes wrap out-of-range values silently, so the three numbers are checked here.
    if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`raw encoder: seq ${seq} is not a non-negative safe integer`);
    if (timeNs < 0n || timeNs > MAX_U64) throw new RangeError(`raw encoder: timeNs ${timeNs} is outside u64`);
    if (deliveryCount >>> 0 !== deliveryCount) throw new RangeError(`raw encoder: deliveryCount ${deliveryCount} is outside u32`);

    this.reserve(maxRecordBytes(envelope));
    const { chunk, view } = this;
    const start = this.offset;
    let o = start + 4; // the record length is filled in last
    chunk[o++] = headers === null ? 0 : FLAG_HAS_HEADERS;
    view.setUint32(o, seq >>> 0, true); // >>> 0 is seq mod 2^32, exact for any safe integer
    view.setUint32(o + 4, Math.floor(seq / TWO_POW_32), true);
    view.setBigUint64(o + 8, timeNs, true);
    view.setUint32(o + 16, deliveryCount, true);
    o = writeString(chunk, view, o + 20, envelope.stream);
    o = writeString(chunk, view, o, envelope.subject);
    if (headers !== null) {
      view.setUint32(o, headers.length, true);
      o += 4;
      for (const [key, values] of headers) {
        o = writeString(chunk, view, o, key);
        view.setUint32(o, values.length, true);
        o += 4;
        for (const value of values) o = writeString(chunk, view, o, value);
      }
    }
    view.setUint32(o, data.byteLength, true);
    chunk.set(data, o + 4);
    o += 4 + data.byteLength;
    view.setUint32(start, o - start - 4, true);
    this.offset = o;

    const written = o - start + this.pendingPreamble;
    this.pendingPreamble = 0;
    return written;
  }

  finish(): Buffer[] {
    if (!this.finished) {
      this.finished = true;
      if (this.offset > 0) this.chunks.push(this.chunk.subarray(0, this.offset));
      this.chunk = Buffer.alloc(0);
      this.view = viewOf(this.chunk);
      this.offset = 0;
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

  /** Makes sure the current chunk has `bytes` free; records never straddle chunks. */
  private reserve(bytes: number): void {
    if (this.chunk.length - this.offset >= bytes) return;
    if (this.offset > 0) this.chunks.push(this.chunk.subarray(0, this.offset));
    this.chunk = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, bytes));
    this.view = viewOf(this.chunk);
    this.offset = 0;
  }
}

function viewOf(buf: Buffer): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** An upper bound of the record size, cheap to compute (no UTF-8 length scans). */
function maxRecordBytes(envelope: Envelope): number {
  let units = envelope.stream.length + envelope.subject.length;
  let prefixes = 0;
  if (envelope.headers !== null) {
    prefixes += 4;
    for (const [key, values] of envelope.headers) {
      units += key.length;
      prefixes += 8 + 4 * values.length;
      for (const value of values) units += value.length;
    }
  }
  return FIXED_RECORD_BYTES + prefixes + units * MAX_UTF8_BYTES_PER_UNIT + envelope.data.byteLength;
}

/** Below this length a JS loop over ASCII beats the native call of Buffer#write. */
const SHORT_STRING = 64;

/** Writes a length-prefixed UTF-8 string; the caller reserved room for its worst case. */
function writeString(buf: Buffer, view: DataView, offset: number, value: string): number {
  const start = offset + 4;
  let byteLength = -1;
  if (value.length <= SHORT_STRING) {
    let i = 0;
    for (; i < value.length; i++) {
      const code = value.charCodeAt(i);
      if (code >= 0x80) break;
      buf[start + i] = code;
    }
    if (i === value.length) byteLength = i;
  }
  if (byteLength < 0) byteLength = buf.write(value, start, 'utf8');
  view.setUint32(offset, byteLength, true);
  return start + byteLength;
}

/** Reads the fields of one record at a time, refusing to read past the record's end; reused for every record. */
class RecordReader {
  private readonly view: DataView;
  offset: number;
  /** The end of the current record, where the next one starts. */
  end: number;
  private index = -1;
  private start = 0;

  constructor(
    private readonly body: Buffer,
    firstRecord: number,
  ) {
    this.view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    this.offset = this.end = firstRecord;
  }

  /** Moves on to the next record; false when the body ends exactly after the current one. */
  next(): boolean {
    const { body } = this;
    const start = this.end;
    const index = this.index + 1;
    if (start === body.length) return false;
    this.index = index;
    this.start = start;
    if (body.length - start < 4) {
      throw new Error(`raw block: ${body.length - start} trailing bytes after ${index === 0 ? 'the magic' : `record ${index - 1}`}, too short for a record`);
    }
    const length = this.view.getUint32(start, true);
    if (body.length - start - 4 < length) this.fail(`is truncated: declares ${length} bytes, ${body.length - start - 4} remain`);
    this.offset = start + 4;
    this.end = this.offset + length;
    return true;
  }

  u8(): number {
    this.need(1);
    return this.body[this.offset++] as number;
  }

  u32(): number {
    this.need(4);
    const value = this.view.getUint32(this.offset, true);
    this.offset += 4;
    return value;
  }

  u64(): bigint {
    this.need(8);
    const value = this.view.getBigUint64(this.offset, true);
    this.offset += 8;
    return value;
  }

  string(): string {
    const length = this.u32();
    this.need(length);
    const value = this.body.toString('utf8', this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  /** A view into the body, not a copy: decoding a block allocates no payload memory. */
  bytes(): Uint8Array {
    const length = this.u32();
    this.need(length);
    const value = new Uint8Array(this.body.buffer, this.body.byteOffset + this.offset, length);
    this.offset += length;
    return value;
  }

  fail(reason: string): never {
    throw new Error(`raw block: record ${this.index} at byte ${this.start} ${reason}`);
  }

  private need(bytes: number): void {
    if (this.end - this.offset < bytes) this.fail(`is malformed: a field at byte ${this.offset} overruns the record end (byte ${this.end})`);
  }
}

function decodeRaw(body: Buffer): Envelope[] {
  if (body.length < PREAMBLE.length || body.toString('latin1', 0, MAGIC.length) !== MAGIC) {
    throw new Error(`raw block: bad magic ${JSON.stringify(body.toString('latin1', 0, PREAMBLE.length))}, expected "${MAGIC}${VERSION}"`);
  }
  const version = body.toString('latin1', MAGIC.length, PREAMBLE.length);
  if (version !== VERSION) throw new Error(`raw block: unsupported version ${JSON.stringify(version)}, this jetvault reads "${VERSION}"`);

  // Decoded in full before returning, so a corrupt block throws before any of it is republished.
  const envelopes: Envelope[] = [];
  const reader = new RecordReader(body, PREAMBLE.length);
  while (reader.next()) {
    envelopes.push(readRecord(reader));
    if (reader.offset !== reader.end) reader.fail(`has ${reader.end - reader.offset} unexpected bytes after its data`);
  }
  return envelopes;
}

function readRecord(reader: RecordReader): Envelope {
  const flags = reader.u8();
  if ((flags & ~KNOWN_FLAGS) !== 0) reader.fail(`has unknown flags 0x${flags.toString(16)}`);
  const seqLow = reader.u32();
  const seqHigh = reader.u32();
  const seq = seqHigh * TWO_POW_32 + seqLow;
  if (!Number.isSafeInteger(seq)) reader.fail(`has a seq beyond 2^53 (high word ${seqHigh})`);
  const timeNs = reader.u64();
  const deliveryCount = reader.u32();
  const stream = reader.string();
  const subject = reader.string();
  let headers: Array<[string, string[]]> | null = null;
  if ((flags & FLAG_HAS_HEADERS) !== 0) {
    const keyCount = reader.u32();
    headers = [];
    for (let k = 0; k < keyCount; k++) {
      const key = reader.string();
      const valueCount = reader.u32();
      const values: string[] = [];
      for (let v = 0; v < valueCount; v++) values.push(reader.string());
      headers.push([key, values]);
    }
  }
  const data = reader.bytes();
  return { subject, headers, data, stream, seq, timeNs, deliveryCount };
}

export const raw: BlockFormat<Envelope> = {
  name: 'raw',
  extension: 'jv',
  contentType: 'application/octet-stream',
  createEncoder: () => new RawEncoder(),
  decode: decodeRaw,
};
