/**
 * The archive contract across versions: test/fixtures/archive-v1 was written once by jetvault 0.1.0 and is
 * never regenerated (see its README). The current code must list, check and decode it into exactly the
 * messages that were captured, and must still name blocks the way that archive names them.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../src/archive/envelope.js';
import { parseTimeIso } from '../src/archive/envelope.js';
import { blockKey } from '../src/archive/keys.js';
import { parseManifest } from '../src/archive/manifest.js';
import { silentLogger } from '../src/logger.js';
import { FileStore } from '../src/stores/fs.js';
import { readArchiveIndex, selectArchivedStream } from '../restore/archive-reader.js';
import { readBlock } from '../restore/block-reader.js';
import { mergeBlocks } from '../restore/merge.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/archive-v1/', import.meta.url));

/** An envelope with its payload as hex, so a difference shows as text. */
interface PlainEnvelope {
  subject: string;
  headers: Array<[string, string[]]> | null;
  data: string;
  stream: string;
  seq: number;
  timeNs: bigint;
  deliveryCount: number;
}

const plain = (e: Envelope): PlainEnvelope => ({
  subject: e.subject,
  headers: e.headers,
  data: Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength).toString('hex'),
  stream: e.stream,
  seq: e.seq,
  timeNs: e.timeNs,
  deliveryCount: e.deliveryCount,
});

const hex = (text: string) => Buffer.from(text, 'utf8').toString('hex');
const base = 1_764_079_200_000_000_000n; // 2025-11-25T14:00:00Z

/** The six messages captured into every variant (the fixture README lists them too). */
const MESSAGES: PlainEnvelope[] = [
  { subject: 'orders.eu', headers: [['Nats-Msg-Id', ['id-1']], ['X-Multi', ['a', 'b', 'c']]], data: hex('{"id":1}'), stream: 'ORDERS', seq: 1, timeNs: base + 123_456_789n, deliveryCount: 1 },
  { subject: 'orders.us', headers: null, data: '', stream: 'ORDERS', seq: 2, timeNs: base + 1_000_000_001n, deliveryCount: 1 },
  { subject: 'orders.eu', headers: [['x-lower-case', ['v']], ['X-Empty-Value', ['']]], data: 'fffe0080c3', stream: 'ORDERS', seq: 3, timeNs: base + 1_800_500_000_000n, deliveryCount: 2 },
  { subject: 'orders.us', headers: [], data: hex('Grüße 🌍'), stream: 'ORDERS', seq: 4, timeNs: base + 3_599_999_999_999n, deliveryCount: 1 },
  { subject: 'orders.us', headers: [['Nats-Msg-Id', ['id-5']]], data: Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('hex'), stream: 'ORDERS', seq: 5, timeNs: base + 3_600_000_000_000n, deliveryCount: 3 },
  { subject: 'orders.eu', headers: [['X-Multi', ['z']], ['Nats-Msg-Id', ['id-6']]], data: '', stream: 'ORDERS', seq: 6, timeNs: base + 3_600_000_000_001n, deliveryCount: 1 },
];

const bySubject = (subject: string) => MESSAGES.filter((m) => m.subject === subject);

/** What each variant's manifests recorded; a change here means the fixture was rewritten. */
const VARIANTS = [
  {
    dir: 'raw-gzip',
    format: 'raw',
    compression: 'gzip',
    extension: 'jv.gz',
    eu: { storedBytes: 219, encodedBytes: 339, sha256: 'db3264024b90f16a5f4002bbcdbb9123b0377e91455531ee83f5848c8f834411' },
    us: { storedBytes: 413, encodedBytes: 463, sha256: '564d5408a21dbd49c6a7cdc8b39cdf42f0dda6326f09ef7c1edc7b6a779c5f37' },
  },
  {
    dir: 'raw-snappy',
    format: 'raw',
    compression: 'snappy',
    extension: 'jv.sz',
    eu: { storedBytes: 252, encodedBytes: 339, sha256: 'd7df6f8f3e91226bb9697ddd5212e6fbf801f778cae648dc7bec40e795d62892' },
    us: { storedBytes: 419, encodedBytes: 463, sha256: '1121f3f3d4f88a8c333bff66d06e0dff96a0cb890289f1fd85eb2f968d3229a4' },
  },
  {
    dir: 'ndjson-none',
    format: 'ndjson',
    compression: 'none',
    extension: 'ndjson',
    eu: { storedBytes: 859, encodedBytes: 859, sha256: '6dd795e5bea0ffa5796b86013edc4cbe494455838d5e7968eb61dd4dd37f0ee7' },
    us: { storedBytes: 1098, encodedBytes: 1098, sha256: 'fd591e401c1849fc2e1ca8c83a4b023837217db8269f1223a1aa050f60fe5b97' },
  },
] as const;

const STREAM_CONFIG = { name: 'ORDERS', subjects: ['orders.>'], retention: 'limits', storage: 'file', num_replicas: 1 };

async function openVariant(dir: string) {
  const store = new FileStore(`${FIXTURE}${dir}`);
  const index = await readArchiveIndex(store, { logger: silentLogger() });
  return { store, index, archived: selectArchivedStream(index) };
}

describe('archive format 1 fixture (written by jetvault 0.1.0)', () => {
  for (const variant of VARIANTS) {
    describe(`${variant.format} + ${variant.compression}`, () => {
      const euKey = `ORDERS/orders.eu/2025/11/25/14/ORDERS-000000000001-000000000006.${variant.extension}`;
      const usKey = `ORDERS/orders.us/2025/11/25/14/ORDERS-000000000002-000000000005.${variant.extension}`;

      it('lists both blocks under the documented keys, with their manifests as written', async () => {
        const { store, index, archived } = await openVariant(variant.dir);
        expect([...index.streams.keys()]).toEqual(['ORDERS']);
        expect(index.unmanifestedObjects).toBe(0);
        expect(archived).toMatchObject({ stream: 'ORDERS', messages: 6, firstSeq: 1, lastSeq: 6 });
        expect(archived.blocks.map((b) => [b.key, b.manifestKey])).toEqual([
          [euKey, `${euKey}.manifest.json`],
          [usKey, `${usKey}.manifest.json`],
        ]);
        // STREAM/split/yyyy/mm/dd/hh/STREAM-<first seq, 12 digits>-<last seq, 12 digits>.<format ext>[.<compression ext>]
        for (const block of archived.blocks) {
          expect(block.key).toMatch(/^ORDERS\/orders\.(eu|us)\/2025\/11\/25\/14\/ORDERS-\d{12}-\d{12}\.(jv\.gz|jv\.sz|ndjson)$/);
        }
        const common = {
          archiveVersion: 1,
          jetvaultVersion: '0.1.0',
          stream: 'ORDERS',
          consumer: 'jetvault-ORDERS',
          format: variant.format,
          compression: variant.compression,
          restorable: true,
          messages: 3,
          sealedBy: 'drain',
          createdAt: '2025-11-25T15:05:00.000Z',
          streamConfig: STREAM_CONFIG,
        };
        const expected = [
          {
            ...common,
            key: euKey,
            splitKey: 'orders.eu',
            firstSeq: 1,
            lastSeq: 6,
            firstTime: '2025-11-25T14:00:00.123456789Z',
            lastTime: '2025-11-25T15:00:00.000000001Z',
            ...variant.eu,
          },
          {
            ...common,
            key: usKey,
            splitKey: 'orders.us',
            firstSeq: 2,
            lastSeq: 5,
            firstTime: '2025-11-25T14:00:01.000000001Z',
            lastTime: '2025-11-25T15:00:00.000000000Z',
            ...variant.us,
          },
        ];
        // Every manifest as stored, parsed by today's parser.
        for (const [i, block] of archived.blocks.entries()) {
          expect(parseManifest(await store.get(block.manifestKey), block.manifestKey)).toEqual(expected[i]);
        }
        // The index keeps the stream configuration of the newest manifest only (same createdAt: the higher lastSeq).
        expect(archived.newest).toEqual(expected[0]);
        expect(archived.blocks.map((b) => b.manifest)).toEqual([expected[0], { ...expected[1], streamConfig: {} }]);
      });

      it('reads every message back exactly: subject, headers, data bytes, seq, timeNs, deliveryCount', async () => {
        const { store, archived } = await openVariant(variant.dir);
        const [eu, us] = archived.blocks;
        expect((await readBlock(store, eu!)).map(plain)).toEqual(bySubject('orders.eu'));
        expect((await readBlock(store, us!)).map(plain)).toEqual(bySubject('orders.us'));
      });

      it('merges the two blocks back into stream order', async () => {
        const { store, archived } = await openVariant(variant.dir);
        const merged: PlainEnvelope[] = [];
        for await (const envelope of mergeBlocks(archived.blocks, { open: (block) => readBlock(store, block) })) merged.push(plain(envelope));
        expect(merged).toEqual(MESSAGES);
      });

      it('still derives the same block keys from the manifest fields', async () => {
        const { archived } = await openVariant(variant.dir);
        for (const block of archived.blocks) {
          const { manifest } = block;
          const derived = blockKey({
            stream: manifest.stream,
            splitKey: manifest.splitKey,
            firstSeq: manifest.firstSeq,
            lastSeq: manifest.lastSeq,
            firstTimeNs: parseTimeIso(manifest.firstTime),
            extension: variant.extension,
          });
          expect(derived).toBe(block.key);
        }
      });
    });
  }
});
