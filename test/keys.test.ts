import { describe, expect, it } from 'vitest';
import {
  MANIFEST_SUFFIX,
  assertSafeKey,
  blockKey,
  blockKeyOfManifest,
  formatSeq,
  isManifestKey,
  joinKey,
  keySegment,
  manifestKeyFor,
  normalizePrefix,
} from '../src/archive/keys.js';

/** 2026-11-25T14:37:12.345678901Z in ns since the epoch. */
const T_2026_11_25_14 = BigInt(Date.UTC(2026, 10, 25, 14, 37, 12, 345)) * 1_000_000n + 678_901n;

function unsafeKeyError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('keySegment', () => {
  it('keeps ordinary subject tokens as they are', () => {
    expect(keySegment('orders.eu')).toBe('orders.eu');
    expect(keySegment('ORDERS')).toBe('ORDERS');
    expect(keySegment('a_b-c=d.9')).toBe('a_b-c=d.9');
  });

  it.each([
    ['/', '%2F'],
    ['a/b', 'a%2Fb'],
    ['\\', '%5C'],
    ['\u0000', '%00'],
    ['..', '%2E%2E'],
    ['.', '%2E'],
    ['...', '%2E%2E%2E'],
    ['%', '%25'],
    ['%2e%2e', '%252e%252e'],
    ['a b', 'a%20b'],
    ['é', '%C3%A9'],
    ['日本', '%E6%97%A5%E6%9C%AC'],
    ['🙂', '%F0%9F%99%82'],
    ['~', '%7E'],
    ['\n', '%0A'],
    ['*', '%2A'],
    ['>', '%3E'],
  ])('encodes %j as %s', (value, encoded) => {
    expect(keySegment(value)).toBe(encoded);
  });

  it('never yields a separator, a dot-only segment, a control character or an empty segment', () => {
    const hostile = ['', '/', '//', '.', '..', '../..', '\u0000', '\u007f', 'a\\b', ' ', '\t', '../../etc/passwd', '%2F'];
    for (const value of hostile) {
      const segment = keySegment(value);
      expect(segment, JSON.stringify(value)).not.toBe('');
      expect(segment).not.toMatch(/[/\\\u0000-\u001f\u007f]/);
      expect(segment).not.toMatch(/^\.+$/);
    }
  });

  it('is deterministic', () => {
    const values = ['orders.eu', '../x', 'é/\u0000', 'x'.repeat(500)];
    for (const value of values) expect(keySegment(value)).toBe(keySegment(value));
  });

  it('is reversible for short values (percent-decoding gives the value back)', () => {
    const values = ['orders.eu', '/', '..', '.', '%', '%2e', 'a b', 'é', '🙂', 'a\\b', '\u0000x', '~'];
    for (const value of values) expect(decodeURIComponent(keySegment(value))).toBe(value);
  });

  it('gives the empty value a segment no other value encodes to', () => {
    // '%00empty' used to be both keySegment('') and keySegment('\u0000empty').
    const empty = keySegment('');
    expect(empty).not.toBe('');
    for (const value of ['\u0000empty', '~empty', '%00empty', 'empty', '\u0000']) expect(keySegment(value)).not.toBe(empty);
  });

  it('bounds long values to 120 characters and keeps distinct long values distinct', () => {
    const a = `${'x'.repeat(300)}a`;
    const b = `${'x'.repeat(300)}b`;
    const multiByte = 'é'.repeat(1000);
    for (const value of [a, b, multiByte, '/'.repeat(200)]) {
      const segment = keySegment(value);
      expect(segment.length).toBeLessThanOrEqual(120);
      expect(segment).not.toMatch(/[/\\\u0000-\u001f]/);
    }
    expect(keySegment(a)).not.toBe(keySegment(b));
    expect(keySegment(multiByte)).not.toBe(keySegment('é'.repeat(1001)));
    // A short value whose encoding is exactly at the limit stays reversible, one past it does not.
    expect(keySegment('y'.repeat(120))).toBe('y'.repeat(120));
    expect(keySegment('y'.repeat(121))).not.toBe('y'.repeat(121));
    expect(keySegment('y'.repeat(121)).length).toBeLessThanOrEqual(120);
  });
});

describe('blockKey', () => {
  it('names a block by stream, split, UTC hour and sequence range', () => {
    expect(
      blockKey({
        stream: 'ORDERS',
        splitKey: 'orders.eu',
        firstSeq: 1,
        lastSeq: 5000,
        firstTimeNs: T_2026_11_25_14,
        extension: 'jv.gz',
      }),
    ).toBe('ORDERS/orders.eu/2026/11/25/14/ORDERS-000000000001-000000005000.jv.gz');
  });

  it('uses the UTC hour, whatever the local time zone says', () => {
    // 23:59:59.999 UTC on Dec 31st: any non-UTC computation lands on another day, month or year.
    const ns = BigInt(Date.UTC(2025, 11, 31, 23, 59, 59, 999)) * 1_000_000n;
    expect(blockKey({ stream: 'S', splitKey: 'k', firstSeq: 7, lastSeq: 7, firstTimeNs: ns, extension: 'jv' })).toBe(
      'S/k/2025/12/31/23/S-000000000007-000000000007.jv',
    );
  });

  it('encodes hostile streams and split keys into safe keys', () => {
    for (const splitKey of ['../../../../tmp/evil', '/etc/passwd', '..', 'a/../../b', '\u0000', '%2e%2e', '']) {
      for (const stream of ['..', 'ORDERS', '.']) {
        const key = blockKey({ stream, splitKey, firstSeq: 1, lastSeq: 2, firstTimeNs: T_2026_11_25_14, extension: 'jv.gz' });
        expect(assertSafeKey(key)).toBe(key);
        expect(key.split('/')).toHaveLength(7);
      }
    }
  });

  it('pads sequences to 12 digits so keys sort by sequence', () => {
    expect(formatSeq(1)).toBe('000000000001');
    expect(formatSeq(999_999_999_999)).toBe('999999999999');
    const early = blockKey({ stream: 'S', splitKey: 'k', firstSeq: 9, lastSeq: 10, firstTimeNs: T_2026_11_25_14, extension: 'jv' });
    const later = blockKey({ stream: 'S', splitKey: 'k', firstSeq: 11, lastSeq: 100, firstTimeNs: T_2026_11_25_14, extension: 'jv' });
    expect(early < later).toBe(true);
  });
});

describe('assertSafeKey', () => {
  it.each([
    ['empty', ''],
    ['absolute', '/abs'],
    ['dot-dot segment', 'a/../b'],
    ['leading dot-dot', '../b'],
    ['dot-dot alone', '..'],
    ['dot segment', 'a/./b'],
    ['dot alone', '.'],
    ['double slash', 'a//b'],
    ['trailing slash', 'a/'],
    ['backslash', 'a\\b'],
    ['NUL', 'a\u0000b'],
    ['other control character', 'a\u001fb'],
    ['DEL', 'a\u007fb'],
    ['over 1024 characters', 'k'.repeat(1025)],
  ])('refuses %s', (_why, key) => {
    const error = unsafeKeyError(() => assertSafeKey(key));
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ code: 'JV_UNSAFE_KEY' });
  });

  it('accepts and returns ordinary keys, including dots inside segments', () => {
    for (const key of ['a', 'a/b', 'ORDERS/orders.eu/2026/11/25/14/ORDERS-000000000001-000000005000.jv.gz', 'a/..b/c..', 'x/.hidden']) {
      expect(assertSafeKey(key)).toBe(key);
    }
  });
});

describe('normalizePrefix and joinKey', () => {
  it('strips outer slashes and refuses unsafe prefixes', () => {
    expect(normalizePrefix('')).toBe('');
    expect(normalizePrefix('/')).toBe('');
    expect(normalizePrefix('/team/archive/')).toBe('team/archive');
    expect(unsafeKeyError(() => normalizePrefix('a/../b'))).toMatchObject({ code: 'JV_UNSAFE_KEY' });
  });

  it('skips empty parts', () => {
    expect(joinKey('', 'a', '', 'b')).toBe('a/b');
  });
});

describe('manifest keys', () => {
  it('round-trips between a block key and its manifest key', () => {
    const block = 'ORDERS/orders.eu/2026/11/25/14/ORDERS-000000000001-000000005000.jv.gz';
    const manifest = manifestKeyFor(block);
    expect(manifest).toBe(`${block}${MANIFEST_SUFFIX}`);
    expect(manifest).toBe('ORDERS/orders.eu/2026/11/25/14/ORDERS-000000000001-000000005000.jv.gz.manifest.json');
    expect(isManifestKey(manifest)).toBe(true);
    expect(isManifestKey(block)).toBe(false);
    expect(blockKeyOfManifest(manifest)).toBe(block);
    expect(assertSafeKey(manifest)).toBe(manifest);
  });
});
