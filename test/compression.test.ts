import { describe, it, expect } from 'vitest';
import { uncompressSync } from 'snappy';
import { COMPRESSION_NAMES, gzip, none, resolveCompression, snappy } from '../src/compression/index.js';
import { UsageError } from '../src/errors.js';

/** Deterministic bytes: 128 KiB stretches of repetitive text, 128 KiB stretches of noise (stored as uncompressed frames). */
function sampleBody(length: number): Buffer {
  const body = Buffer.alloc(length);
  let state = 12345;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    body[i] = (i >> 17) % 2 === 0 ? 97 + (i % 7) : state >>> 24;
  }
  return body;
}

/** Splits a body into chunks of the given sizes (cycled), as an encoder's finish() would return them. */
function chunked(body: Buffer, sizes: number[]): Buffer[] {
  const chunks: Buffer[] = [];
  for (let offset = 0, i = 0; offset < body.length; i++) {
    const size = sizes[i % sizes.length] ?? 1;
    chunks.push(body.subarray(offset, offset + size));
    offset += size;
  }
  return chunks;
}

const BODY = sampleBody(1024 * 1024 + 4321);
const CHUNKINGS: Record<string, number[]> = {
  'one chunk': [BODY.length],
  'many small chunks': [100, 7, 0, 3000],
  'chunks around 256 KiB': [256 * 1024 - 1, 256 * 1024 + 1, 10],
};

/** CRC-32C (Castagnoli), masked as the snappy framing format stores it. */
function maskedCrc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  crc = (crc ^ 0xffffffff) >>> 0;
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}

const STREAM_IDENTIFIER = Buffer.from([0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59]); // "sNaPpY"

describe('every compression', () => {
  for (const name of COMPRESSION_NAMES) {
    const compression = resolveCompression(name);
    for (const [chunking, sizes] of Object.entries(CHUNKINGS)) {
      it(`${name} round-trips ${chunking}`, async () => {
        const stored = await compression.compress(chunked(BODY, sizes));
        expect((await compression.decompress(stored)).equals(BODY)).toBe(true);
      });
    }

    it(`${name} round-trips an empty body`, async () => {
      expect((await compression.decompress(await compression.compress([]))).length).toBe(0);
      expect((await compression.decompress(await compression.compress([Buffer.alloc(0)]))).length).toBe(0);
    });
  }

  it('have the contract names and extensions', () => {
    expect([none, gzip, snappy].map((c) => [c.name, c.extension])).toEqual([
      ['none', ''],
      ['gzip', 'gz'],
      ['snappy', 'sz'],
    ]);
  });
});

describe('gzip', () => {
  it('writes a gzip member that compresses', async () => {
    const stored = await gzip.compress([BODY]);
    expect([...stored.subarray(0, 2)]).toEqual([0x1f, 0x8b]);
    expect(stored.length).toBeLessThan(BODY.length * 0.75);
  });

  it('rejects a truncated stream', async () => {
    const stored = await gzip.compress([BODY]);
    await expect(gzip.decompress(stored.subarray(0, stored.length - 1))).rejects.toThrow(/unexpected end of file/);
    await expect(gzip.decompress(stored.subarray(0, stored.length >> 1))).rejects.toThrow();
  });

  it('rejects a corrupted stream (CRC-32 trailer)', async () => {
    const stored = Buffer.from(await gzip.compress([BODY]));
    stored[stored.length - 6] = (stored[stored.length - 6] ?? 0) ^ 0x01; // inside the CRC-32 of the trailer
    await expect(gzip.decompress(stored)).rejects.toThrow(/incorrect data check/);
  });
});

describe('snappy', () => {
  it('starts with the framing-format stream identifier', async () => {
    const stored = await snappy.compress([Buffer.from('hello')]);
    expect(stored.subarray(0, STREAM_IDENTIFIER.length).equals(STREAM_IDENTIFIER)).toBe(true);
  });

  it('writes frames that follow the framing spec: ≤64 KiB each, masked CRC-32C of the uncompressed data', async () => {
    const stored = await snappy.compress(chunked(BODY, [5000]));
    let offset = STREAM_IDENTIFIER.length;
    const plain: Buffer[] = [];
    const types = new Set<number>();
    while (offset < stored.length) {
      const type = stored.readUInt8(offset);
      const length = stored.readUIntLE(offset + 1, 3);
      const chunk = stored.subarray(offset + 4, offset + 4 + length);
      offset += 4 + length;
      types.add(type);
      expect([0x00, 0x01]).toContain(type); // compressed or uncompressed data
      const data = type === 0x00 ? (uncompressSync(chunk.subarray(4)) as Buffer) : chunk.subarray(4);
      expect(data.length).toBeLessThanOrEqual(65536);
      expect(chunk.readUInt32LE(0)).toBe(maskedCrc32c(data));
      plain.push(data);
    }
    expect(Buffer.concat(plain).equals(BODY)).toBe(true);
    expect(types).toEqual(new Set([0x00, 0x01])); // the sample has both compressible and noisy stretches
  });

  it('reads a stream framed by hand, as Go writes one', async () => {
    const data = Buffer.from('written elsewhere');
    const header = Buffer.alloc(8);
    header.writeUInt8(0x01, 0); // uncompressed data chunk
    header.writeUIntLE(4 + data.length, 1, 3);
    header.writeUInt32LE(maskedCrc32c(data), 4);
    expect((await snappy.decompress(Buffer.concat([STREAM_IDENTIFIER, header, data]))).equals(data)).toBe(true);
  });

  it('gives the same bytes however the body is chunked', async () => {
    const outputs = await Promise.all(Object.values(CHUNKINGS).map((sizes) => snappy.compress(chunked(BODY, sizes))));
    for (const output of outputs) expect(output.equals(outputs[0] as Buffer)).toBe(true);
  });

  it('rejects a truncated stream', async () => {
    const stored = await snappy.compress([BODY]);
    for (const cut of [stored.length - 1, stored.length >> 1, STREAM_IDENTIFIER.length + 3, 5]) {
      await expect(snappy.decompress(stored.subarray(0, cut)), `cut at ${cut}`).rejects.toThrow();
    }
  });

  it('rejects a flipped bit through the frame CRC', async () => {
    const stored = Buffer.from(await snappy.compress([BODY]));
    // The first frame's stored checksum sits right after the identifier and the 4-byte chunk header.
    stored[STREAM_IDENTIFIER.length + 4] = (stored[STREAM_IDENTIFIER.length + 4] ?? 0) ^ 0x01;
    await expect(snappy.decompress(stored)).rejects.toThrow(/checksum/);
  });

  it('rejects a flipped bit in the data', async () => {
    const stored = Buffer.from(await snappy.compress([BODY]));
    stored[stored.length - 1] = (stored[stored.length - 1] ?? 0) ^ 0x01;
    await expect(snappy.decompress(stored)).rejects.toThrow(/snappy: corrupt input/);
  });

  it('rejects input that is not framed snappy', async () => {
    await expect(snappy.decompress(Buffer.from('plain text, not snappy'))).rejects.toThrow(/stream header/);
    await expect(snappy.decompress(await gzip.compress([BODY]))).rejects.toThrow();
  });
});

describe('none', () => {
  it('stores the body as it is', async () => {
    expect((await none.compress(chunked(BODY, [1000]))).equals(BODY)).toBe(true);
    expect(await none.decompress(BODY)).toBe(BODY);
  });
});

describe('resolveCompression', () => {
  it('resolves every name', () => {
    expect(COMPRESSION_NAMES).toEqual(['none', 'gzip', 'snappy']);
    expect(COMPRESSION_NAMES.map((name) => resolveCompression(name))).toEqual([none, gzip, snappy]);
  });

  it('throws a UsageError listing the valid names', () => {
    expect(() => resolveCompression('zstd')).toThrow(UsageError);
    expect(() => resolveCompression('__proto__')).toThrow(/unknown compression "__proto__"; expected one of none, gzip, snappy/);
  });
});
