/**
 * The stream sequences this capture has stored, as sorted disjoint intervals. A message redelivered after
 * its block was stored (an ack lost in a server restart or a leader change, a consumer re-created) is
 * looked up here and acked again instead of being stored a second time. Sequences at or below the
 * consumer's ack floor are never delivered again, so they are pruned.
 */
export class SeqSet {
  /** Interval i is [starts[i], ends[i]], both inclusive; sorted, disjoint and not adjacent. */
  private starts: number[] = [];
  private ends: number[] = [];

  get intervals(): number {
    return this.starts.length;
  }

  has(seq: number): boolean {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (seq < this.starts[mid]!) hi = mid - 1;
      else if (seq > this.ends[mid]!) lo = mid + 1;
      else return true;
    }
    return false;
  }

  /** Adds sequences given in any order (a block's are increasing but for redeliveries). One merge pass. */
  addAll(seqs: readonly number[]): void {
    if (seqs.length === 0) return;
    const sorted = isIncreasing(seqs) ? seqs : [...seqs].sort((a, b) => a - b);
    // Runs of consecutive sequences of the new ones, then a merge with the existing intervals.
    const runStarts: number[] = [];
    const runEnds: number[] = [];
    for (const seq of sorted) {
      const last = runEnds.length - 1;
      if (last >= 0 && seq <= runEnds[last]! + 1) runEnds[last] = Math.max(runEnds[last]!, seq);
      else {
        runStarts.push(seq);
        runEnds.push(seq);
      }
    }
    const starts: number[] = [];
    const ends: number[] = [];
    const push = (s: number, e: number) => {
      const last = ends.length - 1;
      if (last >= 0 && s <= ends[last]! + 1) ends[last] = Math.max(ends[last]!, e);
      else {
        starts.push(s);
        ends.push(e);
      }
    };
    let i = 0;
    let j = 0;
    while (i < this.starts.length || j < runStarts.length) {
      if (j >= runStarts.length || (i < this.starts.length && this.starts[i]! <= runStarts[j]!)) {
        push(this.starts[i]!, this.ends[i]!);
        i++;
      } else {
        push(runStarts[j]!, runEnds[j]!);
        j++;
      }
    }
    this.starts = starts;
    this.ends = ends;
  }

  /** Forgets every sequence below `seq`. */
  pruneBelow(seq: number): void {
    let k = 0;
    while (k < this.starts.length && this.ends[k]! < seq) k++;
    if (k > 0) {
      this.starts.splice(0, k);
      this.ends.splice(0, k);
    }
    if (this.starts.length > 0 && this.starts[0]! < seq) this.starts[0] = seq;
  }
}

function isIncreasing(seqs: readonly number[]): boolean {
  for (let i = 1; i < seqs.length; i++) if (seqs[i]! <= seqs[i - 1]!) return false;
  return true;
}
