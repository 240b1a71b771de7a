/**
 * Object keys of the archive: how blocks are named, and the one place where keys are made safe.
 *
 * A block key is deterministic: stream, split key, the hour of its first message, and its first and last
 * stream sequence. A block re-captured after a crash (stored, not yet acked) gets the same key and
 * overwrites itself instead of leaving a duplicate.
 *
 *   ORDERS/orders.eu/2026/11/25/14/ORDERS-000000000001-000000005000.jv.gz
 *   ORDERS/orders.eu/2026/11/25/14/ORDERS-000000000001-000000005000.jv.gz.manifest.json
 */
import { createHash } from 'node:crypto';
import { JetvaultError } from '../errors.js';

export const MANIFEST_SUFFIX = '.manifest.json';
const SEQ_DIGITS = 12;
const MAX_SEGMENT_LENGTH = 120;
/** Characters kept as they are in a key segment; every other byte is percent-encoded. */
const SAFE_CHAR = /[A-Za-z0-9_.=-]/;

/**
 * Turns any string (a subject, a header value, a payload field) into one safe path segment:
 * no separators, no `.`/`..`, no NUL, no control characters, bounded length. Reversible for short values
 * (percent-encoding), and stable: the same value always gives the same segment.
 */
export function keySegment(value: string): string {
  // '~' never survives encoding (it becomes %7E), so this cannot collide with an encoded value;
  // '%00empty' did: it is also the encoding of "\u0000empty".
  if (value === '') return '~empty';
  let out = '';
  for (const ch of value) {
    if (SAFE_CHAR.test(ch)) out += ch;
    else for (const byte of Buffer.from(ch, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  // A segment made only of dots would walk up the tree on some stores.
  if (/^\.+$/.test(out)) out = out.replace(/\./g, '%2E');
  if (out.length > MAX_SEGMENT_LENGTH) {
    const digest = createHash('sha256').update(value).digest('hex').slice(0, 16);
    out = `${out.slice(0, MAX_SEGMENT_LENGTH - 18)}~${digest}`;
  }
  return out;
}

/**
 * Refuses a key that could escape a store's root: empty, absolute, `.`/`..` segments, backslashes,
 * NUL or other control characters. Stores call this on every key they are given.
 */
export function assertSafeKey(key: string): string {
  const problem = unsafeKeyReason(key);
  if (problem) throw new JetvaultError('JV_UNSAFE_KEY', `refused unsafe object key ${JSON.stringify(key)}: ${problem}`);
  return key;
}

function unsafeKeyReason(key: string): string | undefined {
  if (key.length === 0) return 'empty';
  if (key.length > 1024) return 'longer than 1024 characters';
  if (key.startsWith('/')) return 'absolute';
  if (/[\u0000-\u001f\u007f]/.test(key)) return 'control character';
  if (key.includes('\\')) return 'backslash';
  for (const segment of key.split('/')) {
    if (segment === '') return 'empty segment';
    if (segment === '.' || segment === '..') return `"${segment}" segment`;
  }
  return undefined;
}

/** Sanitises a key prefix given by the user (may be empty); returns it without leading/trailing slashes. */
export function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return '';
  return assertSafeKey(trimmed);
}

export function joinKey(...parts: string[]): string {
  return parts.filter((p) => p !== '').join('/');
}

/** Where undecodable messages go, in the same store as the archive; restore and verify never read it. */
export const DEAD_LETTER_PREFIX = '_dead-letter';

export function isDeadLetterKey(key: string): boolean {
  return key.startsWith(`${DEAD_LETTER_PREFIX}/`);
}

export interface BlockKeyParts {
  stream: string;
  splitKey: string;
  /** A dead-letter block: `_dead-letter/STREAM/yyyy/mm/dd/hh/STREAM-first-last.ext` (no split segment). */
  deadLetter?: boolean;
  firstSeq: number;
  lastSeq: number;
  /** Time of the block's first message, ns since the epoch: picks the yyyy/mm/dd/hh folder (UTC). */
  firstTimeNs: bigint;
  /** File extension without the dot, e.g. `jv.gz`. */
  extension: string;
}

export function formatSeq(seq: number): string {
  return String(seq).padStart(SEQ_DIGITS, '0');
}

export function blockKey(parts: BlockKeyParts): string {
  const stream = keySegment(parts.stream);
  const t = new Date(Number(parts.firstTimeNs / 1_000_000n));
  const pad = (n: number) => String(n).padStart(2, '0');
  const key = joinKey(
    parts.deadLetter ? DEAD_LETTER_PREFIX : '',
    stream,
    parts.deadLetter ? '' : keySegment(parts.splitKey),
    String(t.getUTCFullYear()),
    pad(t.getUTCMonth() + 1),
    pad(t.getUTCDate()),
    pad(t.getUTCHours()),
    `${stream}-${formatSeq(parts.firstSeq)}-${formatSeq(parts.lastSeq)}.${parts.extension}`,
  );
  return assertSafeKey(key);
}

export function manifestKeyFor(blockKeyValue: string): string {
  return `${blockKeyValue}${MANIFEST_SUFFIX}`;
}

export function isManifestKey(key: string): boolean {
  return key.endsWith(MANIFEST_SUFFIX);
}

export function blockKeyOfManifest(manifestKey: string): string {
  return manifestKey.slice(0, -MANIFEST_SUFFIX.length);
}
