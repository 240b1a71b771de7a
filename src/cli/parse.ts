/**
 * Option values the CLI accepts: durations (`500ms`, `30s`, `15m`, `1h30m`), sizes (`64MiB`, `500KB`,
 * `1048576`), positive integers and server lists. Each bad value is a UsageError naming its flag, in one line.
 */
import { UsageError } from '../errors.js';

/** Node's timers overflow past 2^31-1 ms (about 24.8 days) and would fire at once instead. */
export const MAX_DURATION_MS = 2 ** 31 - 1;

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1_000,
  mb: 1_000_000,
  gb: 1_000_000_000,
  tb: 1_000_000_000_000,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

const show = (value: string) => JSON.stringify(value);

/** `500ms`, `30s`, `15m`, `1h`, `1h30m`, `1.5s`, `2d` → milliseconds (a positive integer). */
export function parseDuration(value: string, flag: string): number {
  const text = value.trim().toLowerCase();
  const bad = (why: string) => new UsageError(`${flag} ${why}, got ${show(value)} (use e.g. 500ms, 30s, 15m, 1h30m)`);
  if (/^\d+(\.\d+)?$/.test(text)) throw bad('needs a unit');
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  // The parts must cover the whole text, so `15x` or `1h 30m` are not half-accepted.
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) throw bad('is not a duration');
  let ms = 0;
  for (const [, amount, unit] of parts) ms += Number(amount) * (DURATION_UNITS_MS[unit ?? ''] ?? Number.NaN);
  ms = Math.round(ms);
  if (!Number.isFinite(ms) || ms <= 0) throw bad('must be longer than 0');
  if (ms > MAX_DURATION_MS) throw bad('must be at most 24 days');
  return ms;
}

/** `64MiB`, `1GiB`, `500KB`, `10MB`, `1048576` → bytes (a positive safe integer). KB/MB are 1000-based, KiB/MiB 1024-based. */
export function parseSize(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
  const bad = (why: string) => new UsageError(`${flag} ${why}, got ${show(value)} (use e.g. 64MiB, 500KB, 1048576)`);
  if (!m) throw bad('is not a size');
  const unit = (m[2] ?? '').toLowerCase();
  const factor = unit === '' ? 1 : SIZE_UNITS[unit];
  if (factor === undefined) throw bad(`has an unknown unit ${show(m[2] ?? '')} (B, KB, MB, GB, KiB, MiB, GiB)`);
  const bytes = Math.floor(Number(m[1]) * factor);
  if (bytes <= 0) throw bad('must be at least 1 byte');
  if (!Number.isSafeInteger(bytes)) throw bad('is too large');
  return bytes;
}

/** Digits only, greater than 0 (`1e3`, `10.5`, `-1` and `0` are refused). */
export function parsePositiveInt(value: string, flag: string): number {
  const text = value.trim();
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n <= 0) {
    throw new UsageError(`${flag} must be a positive integer, got ${show(value)}`);
  }
  return n;
}

/** A TCP port to listen on: 0 (any free port) to 65535. */
export function parsePort(value: string, flag: string): number {
  const text = value.trim();
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65_535) throw new UsageError(`${flag} must be a port number from 0 to 65535, got ${show(value)}`);
  return n;
}

/** `--server` may repeat and may hold a comma-separated list; both forms collect into one list. */
export function collectServers(value: string, previous: string[] | undefined): string[] {
  const servers = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (servers.length === 0) throw new UsageError(`--server needs a URL, got ${show(value)}`);
  return [...(previous ?? []), ...servers];
}

/** 500 → `500ms`, 30000 → `30s`, 5400000 → `1h30m`: defaults shown in --help the way users type them. */
export function formatDuration(ms: number): string {
  if (!Number.isInteger(ms) || ms <= 0 || ms % 1000 !== 0) return `${ms}ms`;
  let s = ms / 1000;
  const parts: string[] = [];
  for (const [unit, size] of [['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  return parts.join('');
}

/** 67108864 → `64MiB`; sizes that are not whole KiB/MiB/GiB stay in bytes. */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}
