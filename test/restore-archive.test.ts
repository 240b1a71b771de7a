import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { Envelope } from '../src/archive/envelope.js';
import { serializeManifest, type BlockManifest } from '../src/archive/manifest.js';
import { BlockBuffer } from '../src/capture/block-buffer.js';
import { storeBlock } from '../src/capture/store-block.js';
import { resolveCompression } from '../src/compression/index.js';
import { CorruptBlockError } from '../src/errors.js';
import { resolveFormat } from '../src/formats/index.js';
import { silentLogger } from '../src/logger.js';
import { FileStore } from '../src/stores/fs.js';
import { readArchiveIndex, selectArchivedStream, type ArchivedBlock } from '../restore/archive-reader.js';
import { codecFor, precheckBlocks, readBlock } from '../restore/block-reader.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempStore(): FileStore {
  const dir = mkdtempSync(join(tmpdir(), 'jv-restore-archive-'));
  dirs.push(dir);
  return new FileStore(dir);
}

function envelope(stream: string, seq: number, subject = 'orders.eu'): Envelope {
  return {
    subject,
    headers: seq % 2 === 0 ? [['x-lower-case', ['a', 'b']]] : null,
    data: Buffer.from([0xff, 0x00, seq & 0xff]),
    stream,
    seq,
    timeNs: 1_764_079_200_000_000_000n + BigInt(seq),
    deliveryCount: 1,
  };
}

async function writeBlock(
  store: FileStore,
  envelopes: Envelope[],
  options: { format?: string; compression?: string; splitKey?: string; appendOrder?: Envelope[]; now?: number; streamConfig?: Record<string, unknown> } = {},
): Promise<{ key: string; manifestKey: string }> {
  const first = envelopes[0] as Envelope;
  const buffer = new BlockBuffer<Envelope>({
    stream: first.stream,
    splitKey: options.splitKey ?? first.subject,
    consumer: 'test',
    format: resolveFormat(options.format ?? 'raw'),
    compression: resolveCompression(options.compression ?? 'gzip'),
    streamConfig: options.streamConfig ?? { name: first.stream, subjects: ['orders.>'] },
    now: () => options.now ?? 1_764_079_200_000,
  });
  for (const e of options.appendOrder ?? envelopes) buffer.append(e, { seq: e.seq, timeNs: e.timeNs });
  const sealed = await buffer.seal('max-messages');
  await storeBlock(store, sealed);
  return { key: sealed.key, manifestKey: sealed.manifestKey };
}

async function onlyBlock(store: FileStore): Promise<ArchivedBlock> {
  const archived = selectArchivedStream(await readArchiveIndex(store, { logger: silentLogger() }));
  expect(archived.blocks).toHaveLength(1);
  return archived.blocks[0] as ArchivedBlock;
}

describe('archive reader', () => {
  it('refuses an empty archive, naming the store', async () => {
    const store = tempStore();
    const index = await readArchiveIndex(store, { logger: silentLogger() });
    expect(() => selectArchivedStream(index)).toThrow(expect.objectContaining({ code: 'JV_ARCHIVE_EMPTY', message: expect.stringContaining(store.description) }));
  });

  it('ignores blocks without a manifest and warns with their count', async () => {
    const store = tempStore();
    await writeBlock(store, [envelope('S', 1), envelope('S', 2)]);
    const orphan = await writeBlock(store, [envelope('S', 3)], { splitKey: 'orphan' });
    await store.delete(orphan.manifestKey);
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const index = await readArchiveIndex(store, { logger });
    expect(index.unmanifestedObjects).toBe(1);
    expect(selectArchivedStream(index).blocks.map((b) => b.manifest.lastSeq)).toEqual([2]);
    expect(lines.some((l) => l.count === 1 && l.level === 40)).toBe(true);
  });

  it('groups by stream: ambiguous without sourceStream, selected with it', async () => {
    const store = tempStore();
    await writeBlock(store, [envelope('ALPHA', 1)]);
    await writeBlock(store, [envelope('BETA', 1), envelope('BETA', 2)]);
    const index = await readArchiveIndex(store, { logger: silentLogger() });
    expect(() => selectArchivedStream(index)).toThrow(expect.objectContaining({ code: 'JV_ARCHIVE_AMBIGUOUS', message: expect.stringMatching(/ALPHA, BETA/) }));
    expect(selectArchivedStream(index, 'BETA').messages).toBe(2);
    expect(() => selectArchivedStream(index, 'GAMMA')).toThrow(expect.objectContaining({ code: 'JV_ARCHIVE_EMPTY' }));
  });

  it('takes the stream configuration from the newest manifest', async () => {
    const store = tempStore();
    await writeBlock(store, [envelope('S', 5)], { splitKey: 'b', now: 1_764_079_300_000, streamConfig: { subjects: ['new.>'] } });
    await writeBlock(store, [envelope('S', 1)], { splitKey: 'a', now: 1_764_079_200_000, streamConfig: { subjects: ['old.>'] } });
    await writeBlock(store, [envelope('S', 9)], { splitKey: 'c', now: 1_764_079_250_000, streamConfig: { subjects: ['middle.>'] } });
    const archived = selectArchivedStream(await readArchiveIndex(store, { logger: silentLogger(), concurrency: 1 }));
    expect(archived.newest.streamConfig).toEqual({ subjects: ['new.>'] });
    expect(archived.blocks.map((b) => b.manifest.firstSeq)).toEqual([1, 5, 9]);
    expect(archived).toMatchObject({ firstSeq: 1, lastSeq: 9, messages: 3 });
  });

  it('refuses a stream with a block written by a non-restorable format, naming it', async () => {
    const store = tempStore();
    const { key, manifestKey } = await writeBlock(store, [envelope('S', 1)]);
    const manifest = JSON.parse(readFileSync(join(store.root, manifestKey), 'utf8')) as BlockManifest;
    writeFileSync(join(store.root, manifestKey), serializeManifest({ ...manifest, restorable: false }));
    const index = await readArchiveIndex(store, { logger: silentLogger() });
    expect(() => selectArchivedStream(index)).toThrow(expect.objectContaining({ code: 'JV_FORMAT_NOT_RESTORABLE', message: expect.stringContaining(key) }));
  });
});

describe('block reader', () => {
  for (const [format, compression] of [
    ['raw', 'gzip'],
    ['raw', 'none'],
    ['ndjson', 'snappy'],
    ['csv', 'gzip'],
  ] as const) {
    it(`reads back a ${format}/${compression} block, sorted by sequence`, async () => {
      const store = tempStore();
      const envelopes = [envelope('S', 3), envelope('S', 1), envelope('S', 2)];
      await writeBlock(store, envelopes, { format, compression });
      const block = await onlyBlock(store);
      const read = await readBlock(store, block);
      expect(read.map((e) => e.seq)).toEqual([1, 2, 3]);
      expect(read[1]?.headers).toEqual([['x-lower-case', ['a', 'b']]]);
      expect(Buffer.from(read[0]!.data)).toEqual(Buffer.from([0xff, 0x00, 1]));
    });
  }

  it('rejects a flipped byte with a CorruptBlockError naming the block', async () => {
    const store = tempStore();
    const { key } = await writeBlock(store, [envelope('S', 1), envelope('S', 2)]);
    const path = join(store.root, key);
    const bytes = readFileSync(path);
    const at = bytes.length >> 1;
    bytes[at] = (bytes[at] as number) ^ 0x01;
    writeFileSync(path, bytes);
    const block = await onlyBlock(store);
    const error = await readBlock(store, block).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptBlockError);
    expect(error).toMatchObject({ blockKey: key, message: expect.stringMatching(/SHA-256/) });
    await expect(precheckBlocks(store, [block])).rejects.toMatchObject({ blockKey: key });
  });

  it('rejects a truncated block by its size', async () => {
    const store = tempStore();
    const { key } = await writeBlock(store, [envelope('S', 1), envelope('S', 2)]);
    truncateSync(join(store.root, key), 10);
    const block = await onlyBlock(store);
    await expect(readBlock(store, block)).rejects.toMatchObject({ code: 'JV_BLOCK_CORRUPT', blockKey: key, message: expect.stringMatching(/size/) });
  });

  it('rejects a block whose manifest is gone missing its block', async () => {
    const store = tempStore();
    const { key } = await writeBlock(store, [envelope('S', 1)]);
    const block = await onlyBlock(store);
    await store.delete(key);
    await expect(readBlock(store, block)).rejects.toMatchObject({ code: 'JV_BLOCK_CORRUPT', blockKey: key, message: expect.stringMatching(/missing/) });
  });

  it('rejects a block whose messages do not match the manifest count or range', async () => {
    const store = tempStore();
    await writeBlock(store, [envelope('S', 1), envelope('S', 2)]);
    const block = await onlyBlock(store);
    const wrongCount: ArchivedBlock = { ...block, manifest: { ...block.manifest, messages: 3 } };
    await expect(readBlock(store, wrongCount)).rejects.toMatchObject({ code: 'JV_BLOCK_CORRUPT', message: expect.stringMatching(/holds 2 messages, manifest says 3/) });
    const wrongRange: ArchivedBlock = { ...block, manifest: { ...block.manifest, lastSeq: 5 } };
    await expect(readBlock(store, wrongRange)).rejects.toMatchObject({ code: 'JV_BLOCK_CORRUPT', message: expect.stringMatching(/sequences 1\.\.2/) });
  });

  it('refuses unknown formats and compressions as not restorable', async () => {
    const store = tempStore();
    await writeBlock(store, [envelope('S', 1)]);
    const block = await onlyBlock(store);
    expect(() => codecFor({ ...block, manifest: { ...block.manifest, format: 'parquet' } })).toThrow(expect.objectContaining({ code: 'JV_FORMAT_NOT_RESTORABLE' }));
    expect(() => codecFor({ ...block, manifest: { ...block.manifest, compression: 'zstd' } })).toThrow(expect.objectContaining({ code: 'JV_FORMAT_NOT_RESTORABLE' }));
  });
});
