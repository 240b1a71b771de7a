/**
 * verify() against real nats-servers: the source server holds the archived streams, the target server
 * receives restores of them (a restore next to its source would overlap subjects).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTimeIso, type Envelope } from '../src/archive/envelope.js';
import { BlockBuffer, type SealedBlock } from '../src/capture/block-buffer.js';
import { storeBlock } from '../src/capture/store-block.js';
import { resolveCompression } from '../src/compression/index.js';
import { resolveFormat } from '../src/formats/index.js';
import { FileStore } from '../src/stores/fs.js';
import { restore } from '../restore/restore.js';
import { verify, type VerifyReport } from '../restore/verify.js';
import { startNatsServer, uniqueName, type NatsServer } from './helpers/nats-server.js';

interface Side {
  server: NatsServer;
  nc: NatsConnection;
  jsm: JetStreamManager;
  js: JetStreamClient;
}

let source: Side;
let target: Side;
const dirs: string[] = [];

async function side(): Promise<Side> {
  const server = await startNatsServer();
  const nc = await connect({ servers: server.url });
  const jsm = await jetstreamManager(nc);
  return { server, nc, jsm, js: jsm.jetstream() };
}

beforeAll(async () => {
  [source, target] = await Promise.all([side(), side()]);
});

afterAll(async () => {
  await Promise.all(
    [source, target].map(async (s) => {
      await s?.nc.close();
      await s?.server.dispose();
    }),
  );
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}, 60_000);

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'jv-verify-it-'));
  dirs.push(dir);
  return dir;
}

/** Every message of a stream as an envelope, read one by one with the direct get API. */
async function readEnvelopes(jsm: JetStreamManager, stream: string): Promise<Envelope[]> {
  const { state } = await jsm.streams.info(stream);
  const out: Envelope[] = [];
  for (let seq = state.first_seq; state.messages > 0 && seq <= state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (!m) continue;
    const entries = [...m.header].map(([k, v]) => [k, [...v]] as [string, string[]]);
    out.push({ subject: m.subject, headers: entries.length > 0 ? entries : null, data: Buffer.from(m.data), stream, seq, timeNs: parseTimeIso(m.timestamp), deliveryCount: 1 });
  }
  return out;
}

/** Writes envelopes as blocks the way capture does (BlockBuffer + storeBlock), split by subject. */
async function writeArchive(store: FileStore, envelopes: Envelope[], streamConfig: Record<string, unknown>, maxMessages = 6): Promise<SealedBlock[]> {
  const open = new Map<string, BlockBuffer<Envelope>>();
  const sealed: SealedBlock[] = [];
  const seal = async (buffer: BlockBuffer<Envelope>) => {
    const block = await buffer.seal('max-messages');
    await storeBlock(store, block);
    sealed.push(block);
  };
  for (const e of envelopes) {
    let buffer = open.get(e.subject);
    if (!buffer) {
      buffer = new BlockBuffer<Envelope>({
        stream: e.stream,
        splitKey: e.subject,
        consumer: 'test',
        format: resolveFormat('raw'),
        compression: resolveCompression('gzip'),
        streamConfig,
        now: () => Date.now(),
      });
      open.set(e.subject, buffer);
    }
    buffer.append(e, { seq: e.seq, timeNs: e.timeNs });
    if (buffer.count >= maxMessages) {
      open.delete(e.subject);
      await seal(buffer);
    }
  }
  for (const buffer of open.values()) await seal(buffer);
  return sealed;
}

/** A source stream with interleaved subjects and varied headers and payloads, and its archive. */
async function archivedSource(count = 40, tamper?: (envelopes: Envelope[]) => Envelope[]) {
  const stream = uniqueName('VSRC');
  const prefix = stream.toLowerCase();
  await source.jsm.streams.add({ name: stream, subjects: [`${prefix}.>`] });
  for (let i = 0; i < count; i++) {
    let h;
    if (i % 3 === 0) {
      h = headers();
      h.append('x-lower-case', `v${i}`);
      h.append('x-lower-case', 'again');
    }
    const data = i % 7 === 0 ? new Uint8Array() : Buffer.from([0xff, i & 0xff, 0x80]);
    await source.js.publish(`${prefix}.${['a', 'b', 'c'][i % 3] as string}`, data, h ? { headers: h } : undefined);
  }
  const info = await source.jsm.streams.info(stream);
  const envelopes = await readEnvelopes(source.jsm, stream);
  const dir = tempDir();
  const store = new FileStore(dir);
  const blocks = await writeArchive(store, tamper ? tamper(envelopes) : envelopes, info.config as unknown as Record<string, unknown>);
  return { stream, prefix, dir, store, blocks, envelopes };
}

describe('verify', () => {
  it('is ok against the source stream (sequence mode) and against a restore of it (order mode)', async () => {
    const { stream, store, blocks } = await archivedSource(40);
    expect(blocks.length).toBeGreaterThan(3);

    const progress: number[] = [];
    const atSource = await verify({ from: store, connection: source.nc, stream, onProgress: (p) => progress.push(p.messagesDone) });
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
    await restore({ from: store, connection: target.nc, stream: restoredName });
    const atRestore = await verify({ from: store, servers: target.server.url, stream: restoredName });
    expect(atRestore).toMatchObject({ ok: true, mode: 'order', matched: 40, streamMessages: 40, differences: [] });
  });

  it('stays ok when the source grew after the archive was taken (sequence mode compares the archived range)', async () => {
    const { stream, prefix, store } = await archivedSource(12);
    await source.js.publish(`${prefix}.a`, 'later');
    const report = await verify({ from: store, connection: source.nc, stream });
    expect(report).toMatchObject({ ok: true, mode: 'sequence', matched: 12, streamMessages: 12 });
  });

  it('detects a message deleted from the stream', async () => {
    const { stream, store, blocks } = await archivedSource(30);
    await source.jsm.streams.deleteMessage(stream, 11);
    const report = await verify({ from: store, connection: source.nc, stream });
    const holder = blocks.find((b) => b.manifest.firstSeq <= 11 && b.manifest.lastSeq >= 11 && (b.manifest.firstSeq - 11) % 3 === 0);
    expect(holder).toBeDefined();
    expect(report).toMatchObject({ ok: false, mode: 'sequence', matched: 29, missingInStream: 1, missingInArchive: 0, different: 0 });
    expect(report.differences).toEqual([{ kind: 'missing-in-stream', seq: 11, blockKey: holder?.key, detail: expect.stringContaining('seq 11') }]);
  });

  it('detects changed payloads, listing at most maxDifferences', async () => {
    const { stream, store, blocks } = await archivedSource(30, (envelopes) =>
      envelopes.map((e) => (e.seq === 8 || e.seq === 20 ? { ...e, data: Buffer.from('tampered') } : e)),
    );
    const report = await verify({ from: store, connection: source.nc, stream, maxDifferences: 1 });
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
    const report = await verify({ from: store, connection: source.nc, stream });
    expect(report.ok).toBe(false);
    expect(report.corruptBlocks).toEqual([victim.key]);
    expect(report.differences).toContainEqual(expect.objectContaining({ kind: 'corrupt-block', blockKey: victim.key }));
    // The other blocks still verify; the corrupt block's messages are not claimed missing from the archive.
    expect(report).toMatchObject({ mode: 'sequence', matched: 30 - victim.manifest.messages, missingInArchive: 0, missingInStream: 0, different: 0 });
  });

  it('counts extra and missing messages of a restored stream (order mode)', async () => {
    const { store, prefix } = await archivedSource(10);
    const restoredName = uniqueName('VEXTRA');
    await restore({ from: store, connection: target.nc, stream: restoredName });
    await target.js.publish(`${prefix}.a`, 'extra');
    const extra = await verify({ from: store, connection: target.nc, stream: restoredName });
    expect(extra).toMatchObject({ ok: false, mode: 'order', matched: 10, missingInArchive: 1, streamMessages: 11 });
    expect(extra.differences).toEqual([expect.objectContaining({ kind: 'missing-in-archive', seq: 11 })]);
  });

  it('throws JV_STREAM_NOT_FOUND for a stream that does not exist', async () => {
    const { store } = await archivedSource(3);
    await expect(verify({ from: store, connection: source.nc, stream: uniqueName('NOPE') })).rejects.toMatchObject({ code: 'JV_STREAM_NOT_FOUND' });
  });
});
