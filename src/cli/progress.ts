/**
 * Progress of `capture --once`, `restore` and `verify` on stderr (stdout keeps only results). On a TTY one
 * line redrawn in place (`\r`): done/total, percent, rate, ETA. Elsewhere (CI logs, pipes) a plain line at
 * most every `intervalMs`, so logs stay short. Both end with one final line; `--quiet` turns all of it off.
 * The rate is the average since the command started: steady, and honest about time spent connecting.
 */

import { Option } from 'commander';

/** Where progress goes: process.stderr, or a fake in tests. */
export interface ProgressSink {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface ProgressOptions {
  /** The command, first on every line: `restore`, `verify`, `capture`. */
  label: string;
  /** Nothing is written at all (`--quiet`). */
  quiet?: boolean;
  sink?: ProgressSink;
  /** Not a TTY: at most one line per this many ms (default 5 s). */
  intervalMs?: number;
  /** A TTY: the line is redrawn at most this often (default 100 ms). */
  redrawMs?: number;
  now?: () => number;
}

export interface Progress {
  /** The latest counts; `total` undefined while unknown. Writes only when a line is due. */
  update(done: number, total?: number): void;
  /** Hides the TTY line before other stderr output (a log line); the next update redraws it. */
  clear(): void;
  /** The final line (ends the TTY line with a newline). Later calls do nothing. */
  finish(): void;
  /** Clears the TTY line without a final line, so an error line that follows starts clean. */
  abort(): void;
}

export interface ProgressState {
  label: string;
  done: number;
  total: number | undefined;
  elapsedMs: number;
}

export const DEFAULT_PROGRESS_INTERVAL_MS = 5_000;
const DEFAULT_REDRAW_MS = 100;
/** Carriage return and erase to the end of the line. */
const CLEAR_LINE = '\r\x1b[K';

/** `--quiet`, offered by the commands that report progress. */
export function quietOption(): Option {
  return new Option('--quiet', 'no progress lines on stderr (results still go to stdout)');
}

const NOOP: Progress = { update: () => undefined, clear: () => undefined, finish: () => undefined, abort: () => undefined };

export function createProgress(options: ProgressOptions): Progress {
  if (options.quiet) return NOOP;
  const sink = options.sink ?? process.stderr;
  const tty = sink.isTTY === true;
  const now = options.now ?? Date.now;
  const every = tty ? (options.redrawMs ?? DEFAULT_REDRAW_MS) : (options.intervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS);
  const started = now();
  let lastWrite = started;
  let done = 0;
  let total: number | undefined;
  let shown = false;
  let ended = false;
  const state = (): ProgressState => ({ label: options.label, done, total, elapsedMs: now() - started });

  return {
    update(d, t) {
      if (ended) return;
      done = d;
      total = t;
      // A hidden TTY line comes back at once; otherwise a line is due when the interval has passed.
      const due = (tty && !shown) || now() - lastWrite >= every;
      if (!due) return;
      lastWrite = now();
      if (tty) {
        sink.write(`${CLEAR_LINE}${formatTtyLine(state())}`);
        shown = true;
      } else sink.write(`${formatPlainLine(state())}\n`);
    },
    clear() {
      if (tty && shown && !ended) {
        sink.write(CLEAR_LINE);
        shown = false;
      }
    },
    finish() {
      if (ended) return;
      ended = true;
      if (tty) sink.write(`${CLEAR_LINE}${formatTtyLine(state(), true)}\n`);
      else sink.write(`${formatFinalLine(state())}\n`);
    },
    abort() {
      if (ended) return;
      ended = true;
      if (tty && shown) sink.write(CLEAR_LINE);
    },
  };
}

/** `restore  12,000/20,000 messages  60%  8,123 msg/s  ETA 1s` (the final one ends `done in 2.46 s`). */
export function formatTtyLine(s: ProgressState, final = false): string {
  const rate = ratePerSecond(s);
  const parts = [`${s.label}  ${counts(s, grouped)} messages`];
  const pct = percent(s, final);
  if (pct !== undefined) parts.push(`${pct}%`);
  parts.push(`${grouped(rate)} msg/s`);
  if (final) parts.push(`done in ${(s.elapsedMs / 1000).toFixed(2)} s`);
  else {
    const eta = etaMs(s, rate);
    if (eta !== undefined) parts.push(`ETA ${formatEta(eta)}`);
  }
  return parts.join('  ');
}

/** `restore: 12000/20000 messages (60%), 8123 msg/s`. */
export function formatPlainLine(s: ProgressState): string {
  const pct = percent(s, false);
  return `${s.label}: ${counts(s, String)} messages${pct !== undefined ? ` (${pct}%)` : ''}, ${Math.round(ratePerSecond(s))} msg/s`;
}

/** `restore: 20000/20000 messages (100%), 8123 msg/s, done in 2.46 s`. */
export function formatFinalLine(s: ProgressState): string {
  const pct = percent(s, true);
  return (
    `${s.label}: ${counts(s, String)} messages${pct !== undefined ? ` (${pct}%)` : ''}, ` +
    `${Math.round(ratePerSecond(s))} msg/s, done in ${(s.elapsedMs / 1000).toFixed(2)} s`
  );
}

/** `1s`, `59s`, `2m05s`, `1h02m`. */
export function formatEta(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function grouped(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** `12000/20000`; just `12000` while the total is unknown. More done than expected raises the total. */
function counts(s: ProgressState, show: (n: number) => string): string {
  return s.total === undefined ? show(s.done) : `${show(s.done)}/${show(Math.max(s.total, s.done))}`;
}

/** Floored, so 100% means all of it; an empty job is 100% once finished. */
function percent(s: ProgressState, final: boolean): number | undefined {
  if (s.total === undefined) return undefined;
  if (s.total <= 0) return final ? 100 : 0;
  return Math.min(100, Math.floor((s.done / s.total) * 100));
}

function ratePerSecond(s: ProgressState): number {
  return s.elapsedMs > 0 ? (s.done * 1000) / s.elapsedMs : 0;
}

function etaMs(s: ProgressState, rate: number): number | undefined {
  if (s.total === undefined || rate <= 0) return undefined;
  return (Math.max(0, s.total - s.done) / rate) * 1000;
}
