/**
 * What every chaos test proves after its fault: the archive holds each message of the source exactly once
 * (no block overlaps another, no message missing), and a restore into a fresh server equals the source.
 */
import { connect } from '@nats-io/transport-node';
import { expect } from 'vitest';
import { appendFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, relative } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { readArchiveIndex } from '../../restore/archive-reader.js';
import { readBlock } from '../../restore/block-reader.js';
import { restore } from '../../restore/restore.js';
import { silentLogger } from '../../src/logger.js';
import { FileStore } from '../../src/stores/fs.js';
import { startNatsServer } from '../helpers/nats-server.js';
import { differences, readStream, type StoredMessage } from '../helpers/streams.js';

export interface ArchivedBlock {
  file: string;
  splitKey: string;
  firstSeq: number;
  lastSeq: number;
  messages: number;
}

/** Every block manifest under `root` (dead letters excluded), sorted by first sequence. */
export function archivedBlocks(root: string): ArchivedBlock[] {
  const out: ArchivedBlock[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const rel = relative(root, p);
      if (rel.startsWith('_dead-letter')) continue;
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.manifest.json')) {
        const m = JSON.parse(readFileSync(p, 'utf8')) as ArchivedBlock;
        out.push({ file: rel, splitKey: m.splitKey, firstSeq: m.firstSeq, lastSeq: m.lastSeq, messages: m.messages });
      }
    }
  };
  walk(root);
  return out.sort((a, b) => a.firstSeq - b.firstSeq || a.lastSeq - b.lastSeq);
}

export interface ArchiveAudit {
  blocks: number;
  /** Messages held by all blocks together (a message stored twice counts twice). */
  messages: number;
  /** Distinct stream sequences in the archive. */
  distinctMessages: number;
  /** Messages stored more than once: `messages - distinctMessages`. Must be 0. */
  duplicateMessages: number;
  /**
   * Blocks holding at least one message that another block holds too: duplicate objects. Must be 0.
   * (Blocks of two processes sharing a consumer interleave their ranges without sharing a message: not counted.)
   */
  duplicateObjects: number;
}

/** Reads every block of the archive and finds every message stored more than once, and the blocks holding them. */
export async function auditArchive(root: string): Promise<ArchiveAudit> {
  const store = new FileStore(root);
  const index = await readArchiveIndex(store, { logger: silentLogger() });
  const holders = new Map<number, string>();
  const duplicateBlocks = new Set<string>();
  let blocks = 0;
  let messages = 0;
  for (const archived of index.streams.values()) {
    for (const block of archived.blocks) {
      blocks++;
      for (const envelope of await readBlock(store, block)) {
        messages++;
        const other = holders.get(envelope.seq);
        if (other === undefined) holders.set(envelope.seq, block.key);
        else {
          duplicateBlocks.add(other);
          duplicateBlocks.add(block.key);
        }
      }
    }
  }
  return {
    blocks,
    messages,
    distinctMessages: holders.size,
    duplicateMessages: messages - holders.size,
    duplicateObjects: duplicateBlocks.size,
  };
}

export interface RoundTrip {
  source: StoredMessage[];
  restored: StoredMessage[];
  /** First differences, position by position; empty when the restored stream equals the source. */
  problems: string[];
  skippedDuplicates: number;
}

/** Restores the archive in `storeDir` into a fresh nats-server and compares it with the source stream. */
export async function restoreAndCompare(storeDir: string, sourceNc: NatsConnection, stream: string): Promise<RoundTrip> {
  const target = await startNatsServer();
  const nc = await connect({ servers: target.url });
  try {
    const report = await restore({ from: new FileStore(storeDir), connection: nc, sourceStream: stream });
    const [source, restored] = await Promise.all([readStream(sourceNc, stream), readStream(nc, stream)]);
    return { source, restored, problems: differences(source, restored), skippedDuplicates: report.skippedDuplicates };
  } finally {
    await nc.close();
    await target.dispose();
  }
}

/**
 * The verdict every chaos test ends with: the archive holds each of the `messages` source messages exactly
 * once (no object written twice, no message in two blocks) and the restore equals the source.
 */
export function expectExactlyOnce(audit: ArchiveAudit, round: RoundTrip, messages: number): void {
  expect(audit.duplicateObjects).toBe(0);
  expect(audit.duplicateMessages).toBe(0);
  expect(audit.messages).toBe(round.source.length);
  expect(round.source).toHaveLength(messages);
  expect(round.problems).toEqual([]);
  expect(round.skippedDuplicates).toBe(0);
}

export interface ChaosResult {
  fault: string;
  /** What jetvault did about it, in a few words. */
  reaction: string;
  messages: number;
  lost: number;
  duplicateObjects: number;
  /** From the fault's end (or its start, for instant faults) until capture made progress again. */
  recoveryMs: number;
  extra?: Record<string, unknown>;
}

/**
 * Prints one line per fault (`[chaos] {...}`) and appends it to integration/artifacts/chaos.jsonl, from which
 * the README's fault table is written. The assertions stay in the tests.
 */
export function recordChaos(result: ChaosResult): void {
  const line = JSON.stringify({ ...result, at: new Date().toISOString(), node: process.version });
  console.log(`[chaos] ${line}`);
  const dir = fileURLToPath(new URL('../artifacts/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  appendFileSync(join(dir, 'chaos.jsonl'), `${line}\n`);
}
