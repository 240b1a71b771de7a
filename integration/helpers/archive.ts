/**
 * Fixtures of the restore and verify integration tests: a source and a target nats-server (a restore next
 * to its source would overlap the source's subjects), temp dirs for archives, reading a stream back as
 * envelopes, and writing envelopes as blocks the way capture does.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll } from 'vitest';
import { parseTimeIso, type Envelope } from '../../src/archive/envelope.js';
import { BlockBuffer, type SealedBlock } from '../../src/capture/block-buffer.js';
import { storeBlock } from '../../src/capture/store-block.js';
import { resolveCompression } from '../../src/compression/index.js';
import { resolveFormat } from '../../src/formats/index.js';
import type { FileStore } from '../../src/stores/fs.js';
import { startNatsServer, type NatsServer } from './nats-server.js';

/** One nats-server with a connection to it. */
export interface Side {
  server: NatsServer;
  nc: NatsConnection;
  jsm: JetStreamManager;
  js: JetStreamClient;
}

export interface ServerPair {
  /** The server holding the original streams. */
  readonly source: Side;
  /** The server receiving the restores. */
  readonly target: Side;
  /** A new temp dir, removed after the test file. */
  readonly tempDir: () => string;
}

async function startSide(): Promise<Side> {
  const server = await startNatsServer();
  const nc = await connect({ servers: server.url });
  const jsm = await jetstreamManager(nc);
  return { server, nc, jsm, js: jsm.jetstream() };
}

/**
 * Registers the calling test file's beforeAll (starts both servers) and afterAll (closes them and removes
 * the temp dirs, named `jv-<label>-it-…`). `source` and `target` exist once beforeAll has run: read them
 * inside tests, not when the file is loaded.
 */
export function useServerPair(label: string): ServerPair {
  let sides: { source: Side; target: Side } | undefined;
  const dirs: string[] = [];

  beforeAll(async () => {
    const [source, target] = await Promise.all([startSide(), startSide()]);
    sides = { source, target };
  });

  afterAll(async () => {
    await Promise.all(
      [sides?.source, sides?.target].map(async (s) => {
        await s?.nc.close();
        await s?.server.dispose();
      }),
    );
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  const started = () => {
    if (!sides) throw new Error('useServerPair: the servers are started in beforeAll; use them inside tests');
    return sides;
  };
  return {
    get source() {
      return started().source;
    },
    get target() {
      return started().target;
    },
    tempDir: () => {
      const dir = mkdtempSync(join(tmpdir(), `jv-${label}-it-`));
      dirs.push(dir);
      return dir;
    },
  };
}

/** Every message of a stream as an envelope, read one by one with the direct get API (independent of restore's reader). */
export async function readEnvelopes(jsm: JetStreamManager, stream: string): Promise<Envelope[]> {
  const { state } = await jsm.streams.info(stream);
  const out: Envelope[] = [];
  if (state.messages === 0) return out;
  for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (!m) continue;
    const entries = [...m.header].map(([k, v]) => [k, [...v]] as [string, string[]]);
    out.push({ subject: m.subject, headers: entries.length > 0 ? entries : null, data: Buffer.from(m.data), stream, seq, timeNs: parseTimeIso(m.timestamp), deliveryCount: 1 });
  }
  return out;
}

export interface WriteArchiveOptions {
  /** The stream configuration written into every manifest. */
  streamConfig: Record<string, unknown>;
  /** Messages per block (default 7). */
  maxMessages?: number;
  /** Block format name (default raw). */
  format?: string;
  /** Compression name (default gzip). */
  compression?: string;
  /** One block series per key (default: the subject). */
  splitKey?: (e: Envelope) => string;
}

/** Writes envelopes as blocks the way capture does (BlockBuffer + storeBlock), one block series per split key. */
export async function writeArchive(store: FileStore, envelopes: Envelope[], options: WriteArchiveOptions): Promise<SealedBlock[]> {
  const maxMessages = options.maxMessages ?? 7;
  const open = new Map<string, BlockBuffer<Envelope>>();
  const sealed: SealedBlock[] = [];
  const seal = async (buffer: BlockBuffer<Envelope>) => {
    const block = await buffer.seal('max-messages');
    await storeBlock(store, block);
    sealed.push(block);
  };
  for (const e of envelopes) {
    const key = options.splitKey ? options.splitKey(e) : e.subject;
    let buffer = open.get(key);
    if (!buffer) {
      buffer = new BlockBuffer<Envelope>({
        stream: e.stream,
        splitKey: key,
        consumer: 'test',
        format: resolveFormat(options.format ?? 'raw'),
        compression: resolveCompression(options.compression ?? 'gzip'),
        streamConfig: options.streamConfig,
        now: () => Date.now(),
      });
      open.set(key, buffer);
    }
    buffer.append(e, { seq: e.seq, timeNs: e.timeNs });
    if (buffer.count >= maxMessages) {
      open.delete(key);
      await seal(buffer);
    }
  }
  for (const buffer of open.values()) await seal(buffer);
  return sealed;
}
