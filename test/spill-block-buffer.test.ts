/**
 * Spilled blocks (bufferDir): the encoders hand over completed chunks, a spilled block seals to exactly the
 * bytes of an in-memory one, its file is gone after seal or abandon, and memory changes are reported.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Envelope } from '../src/archive/envelope.js';
import { BlockBuffer, type BlockBufferParams } from '../src/capture/block-buffer.js';
import { SpillDirectory, type SpillDirectoryOptions, type SpillHandle } from '../src/capture/spill.js';
import { COMPRESSION_NAMES, resolveCompression } from '../src/compression/index.js';
import { deadLetterFormat, type DeadLetter } from '../src/formats/dead-letter.js';
import type { BlockFormat } from '../src/formats/format.js';
import { csv, csvFormat, ndjson, raw } from '../src/formats/index.js';
import { pseudoRandomBytes } from './helpers/bytes.js';

const T0 = 1_764_079_200_000;
const roots: string[] = [];
const dirs: SpillDirectory[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => d.close()));
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

function spillDir(options: Partial<SpillDirectoryOptions> = {}): SpillDirectory {
  const root = mkdtempSync(join(tmpdir(), 'jv-spill-block-'));
  roots.push(root);
  const dir = new SpillDirectory({ root, ...options });
  dirs.push(dir);
  return dir;
}

/** About 800 KB of data in varied sizes: several encoder chunks in every format. */
const MESSAGES: Envelope[] = Array.from({ length: 160 }, (_, i) => ({
  subject: `orders.s${i % 3}`,
  headers: i % 5 === 0 ? [['Nats-Msg-Id', [`id-${i}`]]] : null,
  data: pseudoRandomBytes(i % 7 === 0 ? 40_000 : 500 + i * 13, i),
  stream: 'ORDERS',
  seq: i + 1,
  timeNs: BigInt(T0) * 1_000_000n + BigInt(i),
  deliveryCount: 1,
}));

function params<T>(format: BlockFormat<T>, compressionName: string): BlockBufferParams<T> {
  return {
    stream: 'ORDERS',
    splitKey: 'orders.s0',
    consumer: 'jv',
    format,
    compression: resolveCompression(compressionName),
    streamConfig: { name: 'ORDERS' },
    now: () => T0,
  };
}

/** Appends the same values to both buffers, letting spill writes run now and then (as the event loop does). */
async function fill<T>(buffers: Array<BlockBuffer<T>>, values: T[]): Promise<void> {
  for (const [i, value] of values.entries()) {
    for (const b of buffers) b.append(value, { seq: i + 1, timeNs: BigInt(T0) * 1_000_000n + BigInt(i) });
    if (i % 40 === 39) await Promise.all(buffers.map((b) => b.flushSpill()));
  }
}

const letters: DeadLetter[] = MESSAGES.slice(0, 60).map((envelope, i) => ({ envelope, error: `bad ${i}`, deliveries: 3, at: T0 + i }));

describe('encoders hand over completed chunks (takeChunks)', () => {
  const cases: Array<[string, BlockFormat<unknown>, unknown[]]> = [
    ['raw', raw as BlockFormat<unknown>, MESSAGES],
    ['ndjson', ndjson as BlockFormat<unknown>, MESSAGES],
    ['csv', csv as BlockFormat<unknown>, MESSAGES],
    ['csv flatten', csvFormat<Envelope>({ columns: ['subject', 'n'], flatten: (e) => [[e.subject, String(e.data.length)], ['x'.repeat(3_000), '0']] }) as BlockFormat<unknown>, MESSAGES],
    ['dead-letter', deadLetterFormat as BlockFormat<unknown>, letters],
  ];
  for (const [name, format, values] of cases) {
    it(`${name}: the chunks taken, then finish(), are the body written in one go; write() counts add up`, () => {
      const whole = format.createEncoder();
      for (const v of values) whole.write(v);
      const body = Buffer.concat(whole.finish());

      const split = format.createEncoder();
      const taken: Buffer[] = [];
      let written = 0;
      let takes = 0;
      for (const v of values) {
        written += split.write(v);
        const chunks = split.takeChunks!();
        if (chunks.length > 0) takes++;
        taken.push(...chunks);
      }
      expect(takes).toBeGreaterThan(0); // the case is large enough to complete chunks
      const rest = split.finish();
      expect(Buffer.concat([...taken, ...rest]).equals(body)).toBe(true);
      expect(written).toBe(body.length);
      expect(split.takeChunks!()).toEqual([]); // nothing after finish()
    });
  }

  it('returns a shared frozen empty array when nothing completed', () => {
    const encoder = raw.createEncoder();
    encoder.write(MESSAGES[1]!);
    const none = encoder.takeChunks!();
    expect(none).toEqual([]);
    expect(Object.isFrozen(none)).toBe(true);
    expect(encoder.takeChunks!()).toBe(none);
  });
});

describe('a spilled block seals to the same bytes as an in-memory one', () => {
  const formats: Array<BlockFormat<Envelope>> = [raw, ndjson, csv];
  for (const format of formats) {
    for (const compressionName of COMPRESSION_NAMES) {
      it(`${format.name} + ${compressionName}`, async () => {
        const spill = spillDir();
        const deltas: number[] = [];
        const plain = new BlockBuffer(params(format, compressionName));
        const spilled = new BlockBuffer({ ...params(format, compressionName), spill, onMemoryChange: (d) => deltas.push(d) });
        await fill([plain, spilled], MESSAGES);
        await spilled.flushSpill();
        expect(spill.stats.files).toBe(1);
        expect(spill.stats.bytesWritten).toBeGreaterThan(256 * 1024);
        expect(spilled.spilledBytes).toBe(spill.stats.bytesWritten);
        expect(spilled.memoryBytes).toBe(plain.bytes - spill.stats.bytesWritten);
        expect(readdirSync(spill.dir)).toHaveLength(1);

        const [a, b] = await Promise.all([plain.seal('max-bytes'), spilled.seal('max-bytes')]);
        expect(b.body.equals(a.body)).toBe(true);
        expect(b.manifest).toEqual(a.manifest);
        expect(b.key).toBe(a.key);
        // Every byte that left memory came back at seal, once.
        expect(deltas.filter((d) => d < 0).reduce((x, y) => x + y, 0)).toBe(-spill.stats.bytesWritten);
        expect(deltas.at(-1)).toBe(spill.stats.bytesWritten);
        expect(spilled.memoryBytes).toBe(spilled.bytes);
        expect(readdirSync(spill.dir)).toEqual([]); // deleted at seal
      });
    }
  }

  it('dead-letter blocks spill too', async () => {
    const spill = spillDir();
    const plain = new BlockBuffer({ ...params(deadLetterFormat, 'gzip'), deadLetter: true });
    const spilled = new BlockBuffer({ ...params(deadLetterFormat, 'gzip'), deadLetter: true, spill });
    await fill([plain, spilled], letters);
    const [a, b] = await Promise.all([plain.seal('drain'), spilled.seal('drain')]);
    expect(spill.stats.bytesWritten).toBeGreaterThan(0);
    expect(b.body.equals(a.body)).toBe(true);
  });

  it('a small block never touches the disk', async () => {
    const spill = spillDir();
    const block = new BlockBuffer({ ...params(raw, 'none'), spill });
    await fill([block], MESSAGES.slice(1, 5));
    await block.seal('idle');
    expect(spill.stats.files).toBe(0);
  });

  it('a format without takeChunks stays in memory', async () => {
    const spill = spillDir();
    const legacy: BlockFormat<Envelope> = {
      ...raw,
      createEncoder: () => {
        const e = raw.createEncoder();
        return { write: (v) => e.write(v), finish: () => e.finish() };
      },
    };
    const block = new BlockBuffer({ ...params(legacy, 'none'), spill });
    const reference = new BlockBuffer(params(raw, 'none'));
    await fill([block, reference], MESSAGES);
    expect(spill.stats.files).toBe(0);
    expect(block.memoryBytes).toBe(block.bytes);
    expect((await block.seal('drain')).body.equals((await reference.seal('drain')).body)).toBe(true);
  });

  it('after a failed spill write (disk full) the block still seals to the same bytes, from file and memory', async () => {
    let writes = 0;
    const errors: string[] = [];
    const diskFillsUp = async (path: string, flags: number): Promise<SpillHandle> => {
      const handle = await open(path, flags);
      return {
        writev: async (buffers, position) => {
          if (++writes >= 2) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
          return handle.writev(buffers, position);
        },
        read: (buffer, offset, length, position) => handle.read(buffer, offset, length, position),
        close: () => handle.close(),
      };
    };
    const spill = spillDir({ openFile: diskFillsUp, onError: (e, { op }) => errors.push(`${op}: ${(e as Error).message}`) });
    const plain = new BlockBuffer(params(ndjson, 'snappy'));
    const spilled = new BlockBuffer({ ...params(ndjson, 'snappy'), spill });
    await fill([plain, spilled], MESSAGES);
    await spilled.flushSpill();
    expect(errors).toEqual(['write: ENOSPC: no space left on device']);
    expect(spilled.spilledBytes).toBeGreaterThan(0); // the first write stayed valid
    expect(spilled.memoryBytes).toBeGreaterThan(256 * 1024); // the rest is back to memory, and counted
    const [a, b] = await Promise.all([plain.seal('drain'), spilled.seal('drain')]);
    expect(b.body.equals(a.body)).toBe(true);
  });

  it('a failed read-back fails the seal', async () => {
    const unreadable = async (path: string, flags: number): Promise<SpillHandle> => {
      if (flags === 0) throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
      return open(path, flags);
    };
    const spill = spillDir({ openFile: unreadable });
    const block = new BlockBuffer({ ...params(raw, 'none'), spill });
    await fill([block], MESSAGES);
    await expect(block.seal('drain')).rejects.toThrow(/EIO/);
  });
});

describe('spill files of finished blocks', () => {
  it('an abandoned block (disposed without seal) deletes its file, and reports no memory change afterwards', async () => {
    const spill = spillDir();
    const deltas: number[] = [];
    const block = new BlockBuffer({ ...params(raw, 'none'), spill, onMemoryChange: (d) => deltas.push(d) });
    await fill([block], MESSAGES);
    await block.flushSpill();
    const before = deltas.length;
    const writtenBefore = spill.stats.bytesWritten;
    expect(before).toBeGreaterThan(0);
    // A record larger than a chunk completes the current one: a write is in flight when the block is disposed.
    block.append({ ...MESSAGES[0]!, data: pseudoRandomBytes(300_000, 1) }, { seq: 999, timeNs: 1n });
    await block.dispose();
    expect(spill.stats.bytesWritten).toBeGreaterThan(writtenBefore); // the write ran…
    expect(deltas.length).toBe(before); // …but was not reported after dispose
    expect(readdirSync(spill.dir)).toEqual([]);
    await block.dispose(); // idempotent
  });

  it('a block abandoned while it seals: the seal rejects or completes, the file is gone either way', async () => {
    const spill = spillDir();
    const block = new BlockBuffer({ ...params(raw, 'gzip'), spill });
    await fill([block], MESSAGES);
    const sealing = block.seal('drain').then(
      () => 'sealed',
      () => 'rejected',
    );
    await block.dispose();
    expect(['sealed', 'rejected']).toContain(await sealing);
    expect(readdirSync(spill.dir)).toEqual([]);
  });
});
