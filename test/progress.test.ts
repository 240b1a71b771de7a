import { describe, expect, it } from 'vitest';
import {
  createProgress,
  formatEta,
  formatFinalLine,
  formatPlainLine,
  formatTtyLine,
  type ProgressOptions,
} from '../src/cli/progress.js';

/** A stderr stand-in that records every write, and a clock the test moves by hand. */
function setup(tty: boolean, options: Partial<ProgressOptions> = {}) {
  const writes: string[] = [];
  let t = 1_000_000;
  const progress = createProgress({
    label: 'restore',
    sink: { isTTY: tty, write: (text: string) => writes.push(text) },
    now: () => t,
    ...options,
  });
  return {
    progress,
    writes,
    advance: (ms: number) => {
      t += ms;
    },
    /** What a terminal would show: each `\r` starts the line over, `\x1b[K` erases what follows. */
    screen: () => {
      const lines: string[] = [''];
      for (const ch of writes.join('').replace(/\x1b\[K/g, '')) {
        if (ch === '\r') lines[lines.length - 1] = '';
        else if (ch === '\n') lines.push('');
        else lines[lines.length - 1] += ch;
      }
      return lines.filter((l, i) => l !== '' || i < lines.length - 1);
    },
  };
}

describe('progress line formats', () => {
  const state = { label: 'restore', done: 12_000, total: 20_000, elapsedMs: 1_477 };

  it('on a TTY: grouped counts, percent, rate and ETA', () => {
    expect(formatTtyLine(state)).toBe('restore  12,000/20,000 messages  60%  8,125 msg/s  ETA 1s');
    expect(formatTtyLine({ ...state, done: 20_000, elapsedMs: 2_460 }, true)).toBe('restore  20,000/20,000 messages  100%  8,130 msg/s  done in 2.46 s');
  });

  it('as plain lines for logs', () => {
    expect(formatPlainLine(state)).toBe('restore: 12000/20000 messages (60%), 8125 msg/s');
    expect(formatFinalLine({ ...state, done: 20_000, elapsedMs: 2_460 })).toBe('restore: 20000/20000 messages (100%), 8130 msg/s, done in 2.46 s');
  });

  it('without a known total: no percent and no ETA', () => {
    expect(formatTtyLine({ ...state, total: undefined })).toBe('restore  12,000 messages  8,125 msg/s');
    expect(formatPlainLine({ ...state, total: undefined })).toBe('restore: 12000 messages, 8125 msg/s');
  });

  it('an empty job is 100% when finished, and never more than 100%', () => {
    expect(formatFinalLine({ label: 'capture', done: 0, total: 0, elapsedMs: 50 })).toBe('capture: 0/0 messages (100%), 0 msg/s, done in 0.05 s');
    // More done than pending at bind (messages arrived meanwhile): the total grows with it.
    expect(formatPlainLine({ label: 'capture', done: 12, total: 10, elapsedMs: 1000 })).toBe('capture: 12/12 messages (100%), 12 msg/s');
  });

  it('no rate before any time has passed', () => {
    expect(formatTtyLine({ label: 'verify', done: 0, total: 10, elapsedMs: 0 })).toBe('verify  0/10 messages  0%  0 msg/s');
  });

  it.each([
    [400, '1s'],
    [59_000, '59s'],
    [125_000, '2m05s'],
    [3_720_000, '1h02m'],
  ])('ETA %i ms is %s', (ms, text) => {
    expect(formatEta(ms)).toBe(text);
  });
});

describe('not a TTY', () => {
  it('writes at most one line per interval, then a final line', () => {
    const { progress, writes, advance } = setup(false, { intervalMs: 5_000 });
    for (let i = 1; i <= 12; i++) {
      advance(1_000);
      progress.update(i * 1_000, 20_000);
    }
    progress.finish();
    expect(writes).toEqual([
      'restore: 5000/20000 messages (25%), 1000 msg/s\n',
      'restore: 10000/20000 messages (50%), 1000 msg/s\n',
      'restore: 12000/20000 messages (60%), 1000 msg/s, done in 12.00 s\n',
    ]);
  });

  it('a short job writes only the final line', () => {
    const { progress, writes, advance } = setup(false);
    progress.update(1_000, 3_000);
    advance(100);
    progress.update(3_000, 3_000);
    progress.finish();
    expect(writes).toEqual(['restore: 3000/3000 messages (100%), 30000 msg/s, done in 0.10 s\n']);
  });

  it('the default interval is 5 s', () => {
    const { progress, writes, advance } = setup(false);
    advance(4_999);
    progress.update(1, 10);
    expect(writes).toEqual([]);
    advance(1);
    progress.update(2, 10);
    expect(writes).toHaveLength(1);
  });

  it('abort after a failure writes nothing more; finish and update after it do nothing', () => {
    const { progress, writes, advance } = setup(false, { intervalMs: 1_000 });
    advance(1_000);
    progress.update(5, 10);
    progress.abort();
    advance(5_000);
    progress.update(10, 10);
    progress.finish();
    expect(writes).toEqual(['restore: 5/10 messages (50%), 5 msg/s\n']);
  });

  it('clear() does nothing without a TTY line to hide', () => {
    const { progress, writes } = setup(false);
    progress.clear();
    expect(writes).toEqual([]);
  });
});

describe('a TTY', () => {
  it('redraws one line in place, throttled, and ends it with the final line', () => {
    const { progress, writes, advance, screen } = setup(true, { redrawMs: 100 });
    advance(500);
    progress.update(1_000, 4_000); // first draw
    advance(50);
    progress.update(1_500, 4_000); // within 100 ms: skipped
    advance(50);
    progress.update(2_000, 4_000);
    advance(400);
    progress.finish();
    expect(writes.every((w) => w.startsWith('\r\x1b[K'))).toBe(true);
    expect(writes).toHaveLength(3);
    // The final line shows the latest counts, also those of a skipped redraw.
    expect(screen()).toEqual(['restore  2,000/4,000 messages  50%  2,000 msg/s  done in 1.00 s']);
  });

  it('shows rate and ETA while running', () => {
    const { progress, advance, screen } = setup(true);
    advance(1_000);
    progress.update(1_000, 4_000);
    expect(screen()).toEqual(['restore  1,000/4,000 messages  25%  1,000 msg/s  ETA 3s']);
  });

  it('clear() hides the line for a log line; the next update draws it again at once', () => {
    const { progress, writes, advance, screen } = setup(true, { redrawMs: 1_000 });
    advance(1_000);
    progress.update(1_000, 2_000);
    progress.clear();
    writes.push('{"level":40,"msg":"a log line"}\n');
    advance(10); // within the redraw interval, yet the hidden line comes back
    progress.update(1_010, 2_000);
    expect(screen()).toEqual(['{"level":40,"msg":"a log line"}', 'restore  1,010/2,000 messages  50%  1,000 msg/s  ETA 1s']);
  });

  it('abort clears the line so an error line starts clean', () => {
    const { progress, writes, advance } = setup(true);
    advance(1_000);
    progress.update(1, 2);
    progress.abort();
    expect(writes.at(-1)).toBe('\r\x1b[K');
  });
});

describe('--quiet', () => {
  it.each([true, false])('writes nothing at all (TTY: %s)', (tty) => {
    const { progress, writes, advance } = setup(tty, { quiet: true, intervalMs: 1 });
    for (let i = 0; i < 5; i++) {
      advance(10_000);
      progress.update(i, 5);
    }
    progress.clear();
    progress.finish();
    progress.abort();
    expect(writes).toEqual([]);
  });
});
