/**
 * Merges the blocks of one stream back into original stream order. Blocks are split by key (subject,
 * header…), so their sequence ranges interleave; a k-way merge over block cursors, ordered by the next
 * sequence of each, gives ascending sequences. A block is opened only when the merge frontier reaches
 * its firstSeq, so only overlapping blocks (plus one prefetched) are in memory at once.
 */
import type { Envelope } from '../src/archive/envelope.js';
import { CorruptBlockError } from '../src/errors.js';
import type { ArchivedBlock } from './archive-reader.js';

/** A binary min-heap; small, because the standard library has none. */
export class MinHeap<T> {
  private readonly items: T[] = [];

  constructor(private readonly less: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(items[i] as T, items[parent] as T)) break;
      [items[i], items[parent]] = [items[parent] as T, items[i] as T];
      i = parent;
    }
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let smallest = i;
        if (l < items.length && this.less(items[l] as T, items[smallest] as T)) smallest = l;
        if (r < items.length && this.less(items[r] as T, items[smallest] as T)) smallest = r;
        if (smallest === i) break;
        [items[i], items[smallest]] = [items[smallest] as T, items[i] as T];
        i = smallest;
      }
    }
    return top;
  }
}

export interface MergeStats {
  /** Blocks opened (read, checked, decoded). */
  blocksOpened: number;
  /** Blocks whose every message has been handed out. */
  blocksDone: number;
  /** Messages skipped because an earlier block already gave the same sequence. */
  skippedDuplicates: number;
  /** Most blocks held in memory at once (open cursors plus the prefetched one). */
  maxOpenBlocks: number;
  /** The block the message yielded last came from (verify names it in differences). */
  lastBlockKey: string | undefined;
}

export interface MergeOptions {
  /** Reads, checks and decodes a block; envelopes ascending by seq (block-reader's readBlock). */
  open: (block: ArchivedBlock) => Promise<Envelope[]>;
  /**
   * Called for a block that fails with a CorruptBlockError; the merge then goes on without it. Without
   * this handler the error ends the merge (restore); verify reports it instead.
   */
  onCorrupt?: (error: CorruptBlockError, block: ArchivedBlock) => void;
  /** Called when two blocks hold the same sequence with different content (kept: the first one). */
  onConflict?: (kept: Envelope, skipped: Envelope, block: ArchivedBlock) => void;
  onBlockDone?: (block: ArchivedBlock) => void;
  /** Blocks read ahead of the frontier, so the consumer rarely waits on the store. Default 1. */
  prefetch?: number;
  signal?: AbortSignal;
  stats?: MergeStats;
}

export function newMergeStats(): MergeStats {
  return { blocksOpened: 0, blocksDone: 0, skippedDuplicates: 0, maxOpenBlocks: 0, lastBlockKey: undefined };
}

interface Cursor {
  block: ArchivedBlock;
  envelopes: Envelope[];
  index: number;
}

/** Identical subject, headers and data: what "the same message" means for restore and verify. */
export function sameMessage(a: Envelope, b: Envelope): boolean {
  return a.subject === b.subject && sameHeaders(a.headers, b.headers) && Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(b.data);
}

export function sameHeaders(a: Array<[string, string[]]> | null, b: Array<[string, string[]]> | null): boolean {
  const x = a ?? [];
  const y = b ?? [];
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) {
    const [ka, va] = x[i] as [string, string[]];
    const [kb, vb] = y[i] as [string, string[]];
    if (ka !== kb || va.length !== vb.length) return false;
    for (let j = 0; j < va.length; j++) if (va[j] !== vb[j]) return false;
  }
  return true;
}

/**
 * Yields the envelopes of `blocks` (sorted by firstSeq, see compareBlocks) in ascending sequence, each
 * sequence once. Overlapping blocks left by a crash hold the same message twice; the repeat is skipped
 * and counted.
 */
export async function* mergeBlocks(blocks: readonly ArchivedBlock[], options: MergeOptions): AsyncGenerator<Envelope, MergeStats, undefined> {
  const stats = options.stats ?? newMergeStats();
  const prefetch = Math.max(0, options.prefetch ?? 1);
  const heap = new MinHeap<Cursor>((a, b) => {
    const sa = (a.envelopes[a.index] as Envelope).seq;
    const sb = (b.envelopes[b.index] as Envelope).seq;
    return sa < sb || (sa === sb && a.block.manifest.firstSeq < b.block.manifest.firstSeq);
  });
  // Reads in flight or done ahead of the frontier, in block order.
  const ahead: Array<{ block: ArchivedBlock; result: Promise<Envelope[]> }> = [];
  let nextBlock = 0;
  let lastSeq = 0;
  let last: Envelope | undefined;

  const startRead = (block: ArchivedBlock) => {
    const result = options.open(block);
    // Handled when awaited; this keeps a rejected read-ahead from being reported as unhandled meanwhile.
    result.catch(() => undefined);
    ahead.push({ block, result });
  };
  const fillAhead = (count: number) => {
    while (ahead.length < count && nextBlock < blocks.length) startRead(blocks[nextBlock++] as ArchivedBlock);
  };
  const pendingFirstSeq = (): number | undefined => {
    if (ahead.length > 0) return (ahead[0] as { block: ArchivedBlock }).block.manifest.firstSeq;
    const block = blocks[nextBlock];
    return block?.manifest.firstSeq;
  };

  for (;;) {
    options.signal?.throwIfAborted();
    // Open every block whose range starts at or before the smallest sequence still to hand out.
    for (;;) {
      const first = pendingFirstSeq();
      if (first === undefined) break;
      const top = heap.peek();
      if (top && (top.envelopes[top.index] as Envelope).seq < first) break;
      if (ahead.length === 0) fillAhead(1);
      const { block, result } = ahead.shift() as { block: ArchivedBlock; result: Promise<Envelope[]> };
      let envelopes: Envelope[];
      try {
        envelopes = await result;
      } catch (error) {
        if (error instanceof CorruptBlockError && options.onCorrupt) {
          options.onCorrupt(error, block);
          stats.blocksDone++;
          continue;
        }
        throw error;
      }
      stats.blocksOpened++;
      if (envelopes.length === 0) {
        stats.blocksDone++;
        options.onBlockDone?.(block);
        continue;
      }
      heap.push({ block, envelopes, index: 0 });
    }
    fillAhead(prefetch);
    stats.maxOpenBlocks = Math.max(stats.maxOpenBlocks, heap.size + ahead.length);

    const cursor = heap.pop();
    if (!cursor) return stats;
    const envelope = cursor.envelopes[cursor.index] as Envelope;
    cursor.index++;
    if (cursor.index < cursor.envelopes.length) heap.push(cursor);
    else {
      stats.blocksDone++;
      options.onBlockDone?.(cursor.block);
    }
    if (last !== undefined && envelope.seq === lastSeq) {
      stats.skippedDuplicates++;
      if (options.onConflict && !sameMessage(last, envelope)) options.onConflict(last, envelope, cursor.block);
      continue;
    }
    lastSeq = envelope.seq;
    last = envelope;
    stats.lastBlockKey = cursor.block.key;
    yield envelope;
  }
}
