import { describe, expect, it } from 'vitest';
import { SeqSet } from '../src/capture/seq-set.js';

/** The same operations on a plain Set, to compare with. */
function check(set: SeqSet, reference: Set<number>, upTo: number): void {
  for (let seq = 0; seq <= upTo; seq++) expect(set.has(seq), `seq ${seq}`).toBe(reference.has(seq));
}

describe('SeqSet', () => {
  it('merges interleaved blocks into intervals and answers like a Set', () => {
    const set = new SeqSet();
    const reference = new Set<number>();
    // Four split keys, every 4th sequence each, stored out of order.
    for (const offset of [2, 0, 3]) {
      const seqs = Array.from({ length: 25 }, (_, i) => 1 + offset + i * 4);
      set.addAll(seqs);
      for (const s of seqs) reference.add(s);
    }
    check(set, reference, 110);
    expect(set.intervals).toBe(26); // [1], [3..5], [7..9] … [95..97], [99..100]
    const last = Array.from({ length: 25 }, (_, i) => 2 + i * 4);
    set.addAll(last);
    for (const s of last) reference.add(s);
    check(set, reference, 110);
    expect(set.intervals).toBe(1);
  });

  it('takes unsorted and repeated sequences', () => {
    const set = new SeqSet();
    set.addAll([9, 3, 4, 3, 20, 5]);
    expect([2, 3, 4, 5, 6, 9, 10, 19, 20, 21].map((s) => set.has(s))).toEqual([false, true, true, true, false, true, false, false, true, false]);
    expect(set.intervals).toBe(3);
  });

  it('prunes below the ack floor, cutting an interval that spans it', () => {
    const set = new SeqSet();
    set.addAll([1, 2, 3, 10, 11, 12, 20]);
    set.pruneBelow(11);
    expect([3, 10, 11, 12, 20].map((s) => set.has(s))).toEqual([false, false, true, true, true]);
    expect(set.intervals).toBe(2);
    set.pruneBelow(100);
    expect(set.intervals).toBe(0);
  });
});
