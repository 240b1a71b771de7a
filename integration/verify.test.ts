/**
 * verify() against real nats-servers: the source server holds the archived streams, the target server
 * receives restores of them (a restore next to its source would overlap subjects).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { headers } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../src/archive/envelope.js';
import type { SealedBlock } from '../src/capture/block-buffer.js';
import { FileStore } from '../src/stores/fs.js';
import { restore } from '../restore/restore.js';
import { verify, type VerifyReport } from '../restore/verify.js';
import { readEnvelopes, useServerPair, writeArchive } from './helpers/archive.js';
import { uniqueName } from './helpers/nats-server.js';

const pair = useServerPair('verify');
const { tempDir } = pair;

/** A source stream with interleaved subjects and varied headers and payloads, and its archive. */
async function archivedSource(count = 40, tamper?: (envelopes: Envelope[]) => Envelope[]) {
  const stream = uniqueName('VSRC');
  const prefix = stream.toLowerCase();
  await pair.source.jsm.streams.add({ name: stream, subjects: [`${prefix}.>`] });
  for (let i = 0; i < count; i++) {
    let h;
    if (i % 3 === 0) {
      h = headers();
      h.append('x-lower-case', `v${i}`);
      h.append('x-lower-case', 'again');
    }
    const data = i % 7 === 0 ? new Uint8Array() : Buffer.from([0xff, i & 0xff, 0x80]);
    await pair.source.js.publish(`${prefix}.${['a', 'b', 'c'][i % 3] as string}`, data, h ? { headers: h } : undefined);
  }
  const info = await pair.source.jsm.streams.info(stream);
  const envelopes = await readEnvelopes(pair.source.jsm, stream);
  const dir = tempDir();
  const store = new FileStore(dir);
  const blocks = await writeArchive(store, tamper ? tamper(envelopes) : envelopes, { streamConfig: info.config as unknown as Record<string, unknown>, maxMessages: 6 });
  return { stream, prefix, dir, store, blocks, envelopes };
}

describe('verify', () => {
  it('is ok against the source stream (sequence mode) and against a restore of it (order mode)', async () => {
    const { stream, store, blocks } = await archivedSource(40);
    expect(blocks.length).toBeGreaterThan(3);

    const progress: number[] = [];
    const atSource = await verify({ from: store, connection: pair.source.nc, stream, onProgress: (p) => progress.push(p.messagesDone) });
    expect(atSource).toEqual<VerifyReport>({
      ok: true,
      stream,
      sourceStream: stream,
      mode: 'sequence',
      archivedMessages: 40,
      streamMessages: 40,
      matched: 40,
      missingInStream: 0,
      missingInArchive: 0,
      different: 0,
      corruptBlocks: [],
      differences: [],
    });
    expect(progress.at(-1)).toBe(40);

    const restoredName = uniqueName('VRESTORED');
    await restore({ from: store, connection: pair.target.nc, stream: restoredName });
    const atRestore = await verify({ from: store, servers: pair.target.server.url, stream: restoredName });
    expect(atRestore).toMatchObject({ ok: true, mode: 'order', matched: 40, streamMessages: 40, differences: [] });
  });

  it('stays ok when the source grew after the archive was taken (sequence mode compares the archived range)', async () => {
    const { stream, prefix, store } = await archivedSource(12);
    await pair.source.js.publish(`${prefix}.a`, 'later');
    const report = await verify({ from: store, connection: pair.source.nc, stream });
    expect(report).toMatchObject({ ok: true, mode: 'sequence', matched: 12, streamMessages: 12 });
  });

  it('detects a message deleted from the stream', async () => {
    const { stream, store, blocks } = await archivedSource(30);
    await pair.source.jsm.streams.deleteMessage(stream, 11);
    const report = await verify({ from: store, connection: pair.source.nc, stream });
    const holder = blocks.find((b) => b.manifest.firstSeq <= 11 && b.manifest.lastSeq >= 11 && (b.manifest.firstSeq - 11) % 3 === 0);
    expect(holder).toBeDefined();
    expect(report).toMatchObject({ ok: false, mode: 'sequence', matched: 29, missingInStream: 1, missingInArchive: 0, different: 0 });
    expect(report.differences).toEqual([{ kind: 'missing-in-stream', seq: 11, blockKey: holder?.key, detail: expect.stringContaining('seq 11') }]);
  });

  it('detects changed payloads, listing at most maxDifferences', async () => {
    const { stream, store, blocks } = await archivedSource(30, (envelopes) =>
      envelopes.map((e) => (e.seq === 8 || e.seq === 20 ? { ...e, data: Buffer.from('tampered') } : e)),
    );
    const report = await verify({ from: store, connection: pair.source.nc, stream, maxDifferences: 1 });
    expect(report).toMatchObject({ ok: false, mode: 'sequence', matched: 28, different: 2, missingInStream: 0, missingInArchive: 0 });
    expect(report.differences).toHaveLength(1);
    const holder = blocks.find((b) => b.manifest.firstSeq <= 8 && b.manifest.lastSeq >= 8 && (b.manifest.firstSeq - 8) % 3 === 0);
    expect(holder).toBeDefined();
    expect(report.differences[0]).toMatchObject({ kind: 'different', seq: 8, blockKey: holder?.key, detail: expect.stringMatching(/data of 8 bytes in the archive/) });
  });

  it('reports a corrupt block as a difference instead of throwing', async () => {
    const { stream, dir, store, blocks } = await archivedSource(30);
    const victim = blocks[1] as SealedBlock;
    const path = join(dir, victim.key);
    const bytes = readFileSync(path);
    bytes[bytes.length - 2] = (bytes[bytes.length - 2] as number) ^ 0xff;
    writeFileSync(path, bytes);
    const report = await verify({ from: store, connection: pair.source.nc, stream });
    expect(report.ok).toBe(false);
    expect(report.corruptBlocks).toEqual([victim.key]);
    expect(report.differences).toContainEqual(expect.objectContaining({ kind: 'corrupt-block', blockKey: victim.key }));
    // The other blocks still verify; the corrupt block's messages are not claimed missing from the archive.
    expect(report).toMatchObject({ mode: 'sequence', matched: 30 - victim.manifest.messages, missingInArchive: 0, missingInStream: 0, different: 0 });
  });

  it('counts extra and missing messages of a restored stream (order mode)', async () => {
    const { store, prefix } = await archivedSource(10);
    const restoredName = uniqueName('VEXTRA');
    await restore({ from: store, connection: pair.target.nc, stream: restoredName });
    await pair.target.js.publish(`${prefix}.a`, 'extra');
    const extra = await verify({ from: store, connection: pair.target.nc, stream: restoredName });
    expect(extra).toMatchObject({ ok: false, mode: 'order', matched: 10, missingInArchive: 1, streamMessages: 11 });
    expect(extra.differences).toEqual([expect.objectContaining({ kind: 'missing-in-archive', seq: 11 })]);
  });

  it('throws JV_STREAM_NOT_FOUND for a stream that does not exist', async () => {
    const { store } = await archivedSource(3);
    await expect(verify({ from: store, connection: pair.source.nc, stream: uniqueName('NOPE') })).rejects.toMatchObject({ code: 'JV_STREAM_NOT_FOUND' });
  });
});
