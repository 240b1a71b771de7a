import { describe, expect, it } from 'vitest';
import type { Envelope } from '../src/archive/envelope.js';
import type { BlockManifest } from '../src/archive/manifest.js';
import { CorruptBlockError } from '../src/errors.js';
import { compareBlocks, type ArchivedBlock } from '../restore/archive-reader.js';
import { MinHeap, mergeBlocks, newMergeStats, sameHeaders } from '../restore/merge.js';

function envelope(seq: number, subject = `s.${seq % 3}`, data = `m${seq}`): Envelope {
  return { subject, headers: null, data: Buffer.from(data), stream: 'S', seq, timeNs: BigInt(seq) * 1_000_000n, deliveryCount: 1 };
}

/** An in-memory block: just what the merge looks at (key, firstSeq, lastSeq) plus its envelopes. */
function block(key: string, seqs: number[], make: (seq: number) => Envelope = (s) => envelope(s)): { block: ArchivedBlock; envelopes: Envelope[] } {
  const envelopes = seqs.map(make);
  const manifest = { key, stream: 'S', firstSeq: Math.min(...seqs), lastSeq: Math.max(...seqs), messages: seqs.length } as BlockManifest;
  return { block: { key, manifestKey: `${key}.manifest.json`, manifest }, envelopes };
}

async function collect(it: AsyncIterable<Envelope>): Promise<Envelope[]> {
  const out: Envelope[] = [];
  for await (const e of it) out.push(e);
  return out;
}

describe('MinHeap', () => {
  it('pops in ascending order whatever the push order', () => {
    const heap = new MinHeap<number>((a, b) => a < b);
    const values = [5, 3, 9, 1, 7, 3, 8, 2, 6, 4, 0];
    for (const v of values) heap.push(v);
    const out: number[] = [];
    while (heap.size > 0) out.push(heap.pop() as number);
    expect(out).toEqual([...values].sort((a, b) => a - b));
    expect(heap.pop()).toBeUndefined();
  });
});

describe('mergeBlocks', () => {
  it('interleaves blocks split by subject back into stream order', async () => {
    const parts = [block('a', [1, 4, 7, 10]), block('b', [2, 5, 8]), block('c', [3, 6, 9, 11, 12])];
    const byKey = new Map(parts.map((p) => [p.block.key, p.envelopes]));
    const blocks = parts.map((p) => p.block).sort(compareBlocks);
    const merged = await collect(mergeBlocks(blocks, { open: async (b) => byKey.get(b.key) as Envelope[] }));
    expect(merged.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });

  it('opens a block only when the frontier reaches its first sequence', async () => {
    // Three consecutive, non-overlapping blocks: never more than the current one and one read ahead.
    const parts = [block('a', [1, 2, 3]), block('b', [4, 5, 6]), block('c', [7, 8, 9]), block('d', [10, 11])];
    const byKey = new Map(parts.map((p) => [p.block.key, p.envelopes]));
    const opened: string[] = [];
    const stats = newMergeStats();
    const iterator = mergeBlocks(
      parts.map((p) => p.block),
      {
        open: async (b) => {
          opened.push(b.key);
          return byKey.get(b.key) as Envelope[];
        },
        stats,
      },
    );
    const first = await iterator.next();
    expect((first.value as Envelope).seq).toBe(1);
    expect(opened).toEqual(['a', 'b']); // a, plus b read ahead
    const rest = await collect({ [Symbol.asyncIterator]: () => iterator });
    expect(rest.map((e) => e.seq)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(stats.maxOpenBlocks).toBeLessThanOrEqual(2);
    expect(stats.blocksDone).toBe(4);
  });

  it('does not read ahead with prefetch 0', async () => {
    const parts = [block('a', [1, 2]), block('b', [3, 4])];
    const byKey = new Map(parts.map((p) => [p.block.key, p.envelopes]));
    const opened: string[] = [];
    const iterator = mergeBlocks(
      parts.map((p) => p.block),
      { prefetch: 0, open: async (b) => (opened.push(b.key), byKey.get(b.key) as Envelope[]) },
    );
    await iterator.next();
    expect(opened).toEqual(['a']);
    await iterator.next();
    await iterator.next();
    expect(opened).toEqual(['a', 'b']);
  });

  it('skips a sequence held by two overlapping blocks and counts it', async () => {
    // After a crash: block b re-stored 4..6 that block a (1..6) already holds.
    const parts = [block('a', [1, 2, 3, 4, 5, 6]), block('b', [4, 5, 6, 7])];
    const byKey = new Map(parts.map((p) => [p.block.key, p.envelopes]));
    const stats = newMergeStats();
    const merged = await collect(mergeBlocks(parts.map((p) => p.block).sort(compareBlocks), { open: async (b) => byKey.get(b.key) as Envelope[], stats }));
    expect(merged.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(stats.skippedDuplicates).toBe(3);
  });

  it('reports a conflicting duplicate (same seq, other content)', async () => {
    const parts = [block('a', [1, 2]), block('b', [2, 3], (s) => envelope(s, 'other', 'x'))];
    const byKey = new Map(parts.map((p) => [p.block.key, p.envelopes]));
    const conflicts: number[] = [];
    const merged = await collect(
      mergeBlocks(parts.map((p) => p.block), { open: async (b) => byKey.get(b.key) as Envelope[], onConflict: (kept) => conflicts.push(kept.seq) }),
    );
    expect(merged.map((e) => e.subject)).toEqual(['s.1', 's.2', 'other']);
    expect(conflicts).toEqual([2]);
  });

  it('ends with the CorruptBlockError without a handler, and goes on without the block with one', async () => {
    const parts = [block('a', [1, 3]), block('bad', [2, 4]), block('c', [5])];
    const byKey = new Map(parts.map((p) => [p.block.key, p.envelopes]));
    const open = async (b: ArchivedBlock) => {
      if (b.key === 'bad') throw new CorruptBlockError('bad', 'test');
      return byKey.get(b.key) as Envelope[];
    };
    const blocks = parts.map((p) => p.block);
    await expect(collect(mergeBlocks(blocks, { open }))).rejects.toMatchObject({ code: 'JV_BLOCK_CORRUPT', blockKey: 'bad' });
    const corrupt: string[] = [];
    const merged = await collect(mergeBlocks(blocks, { open, onCorrupt: (_e, b) => corrupt.push(b.key) }));
    expect(merged.map((e) => e.seq)).toEqual([1, 3, 5]);
    expect(corrupt).toEqual(['bad']);
  });

  it('stops when aborted', async () => {
    const parts = [block('a', [1, 2, 3])];
    const controller = new AbortController();
    const iterator = mergeBlocks(parts.map((p) => p.block), { open: async () => parts[0]!.envelopes, signal: controller.signal });
    await iterator.next();
    controller.abort(new Error('stop'));
    await expect(iterator.next()).rejects.toThrow('stop');
  });
});

describe('sameHeaders', () => {
  it('compares keys (case included), values and their order', () => {
    expect(sameHeaders(null, [])).toBe(true);
    expect(sameHeaders([['a', ['1', '2']]], [['a', ['1', '2']]])).toBe(true);
    expect(sameHeaders([['a', ['1', '2']]], [['a', ['2', '1']]])).toBe(false);
    expect(sameHeaders([['x-lower', ['1']]], [['X-Lower', ['1']]])).toBe(false);
    expect(sameHeaders([['a', ['1']]], null)).toBe(false);
  });
});
