/**
 * What every chaos test proves after its fault: the archive holds each message of the source exactly once
 * (no block overlaps another, no message missing), and a restore into a fresh server equals the source.
 */
import { connect } from '@nats-io/transport-node';
import { appendFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, relative } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { restore } from '../../restore/restore.js';
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
  /** Messages held by all blocks together. */
  messages: number;
  /** Pairs of blocks of one split key whose sequence ranges overlap: a duplicate object. Must be 0. */
  overlappingBlocks: number;
}

/** Counts blocks and messages, and finds overlaps: two blocks of one split key sharing a sequence range. */
export function auditArchive(root: string): ArchiveAudit {
  const blocks = archivedBlocks(root);
  const bySplit = new Map<string, ArchivedBlock[]>();
  for (const b of blocks) bySplit.set(b.splitKey, [...(bySplit.get(b.splitKey) ?? []), b]);
  let overlappingBlocks = 0;
  for (const list of bySplit.values()) {
    for (let i = 1; i < list.length; i++) if (list[i]!.firstSeq <= list[i - 1]!.lastSeq) overlappingBlocks++;
  }
  const messages = blocks.reduce((n, b) => n + b.messages, 0);
  return { blocks: blocks.length, messages, overlappingBlocks };
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
