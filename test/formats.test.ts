import { describe, it, expect } from 'vitest';
import { envelopeTimeIso, type Envelope } from '../src/archive/envelope.js';
import { COMPRESSION_NAMES, resolveCompression } from '../src/compression/index.js';
import { UsageError } from '../src/errors.js';
import type { BlockFormat } from '../src/formats/format.js';
import { csv, csvFormat, FORMAT_NAMES, ndjson, raw, resolveFormat } from '../src/formats/index.js';
import { pseudoRandomBytes } from './helpers/bytes.js';

/** Bytes that are not valid UTF-8, so a format that round-trips data through a string would break them. */
const NON_UTF8 = Uint8Array.from([0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0xf8]);

function envelope(overrides: Partial<Envelope>): Envelope {
  return {
    subject: 'orders.eu.created',
    headers: null,
    data: Buffer.from('{"id":1}'),
    stream: 'ORDERS',
    seq: 1,
    timeNs: 1_764_079_200_123_456_789n,
    deliveryCount: 1,
    ...overrides,
  };
}

/** Every case each format must carry losslessly. */
const MESSAGES: Envelope[] = [
  envelope({
    subject: 'orders.eu.created',
    // Not sorted, so a format that sorts keys fails; mixed and lower case, so one that canonicalises fails.
    headers: [
      ['Nats-Msg-Id', ['id-1']],
      ['x-lower', ['lower-case name']],
      ['X-Multi', ['third', 'first', 'second']],
      ['Content-Type', ['application/json']],
      ['x-empty-value', ['']],
      ['x-no-values', []],
    ],
    deliveryCount: 3,
  }),
  envelope({ subject: 'orders.empty', data: new Uint8Array(0), seq: 2 }),
  envelope({ subject: 'orders.headers.present.but.empty', headers: [], seq: 3 }),
  envelope({ subject: 'orders.binary', data: NON_UTF8, headers: [['bin', ['ÿ unicode ✓ value']]], seq: 4 }),
  envelope({ subject: 'orders.big', data: pseudoRandomBytes(1024 * 1024, 7), seq: 5, timeNs: 1n }),
  envelope({ subject: 'orders.last', seq: Number.MAX_SAFE_INTEGER, timeNs: 18_446_744_073_709_551_615n, deliveryCount: 4_294_967_295 }),
  envelope({ subject: 'заказы.日本.🚀', stream: 'ПОТОК', data: Buffer.from('ünïcødé 🚀'), seq: 6, timeNs: 999_999_999n }),
  envelope({ subject: 'orders.zero.time', seq: 0, timeNs: 0n, deliveryCount: 0 }),
];

/** Envelopes with data as base64, so equality compares bytes whatever the view type, and quickly. */
function comparable(envelopes: Iterable<Envelope>) {
  return [...envelopes].map((e) => ({ ...e, data: Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength).toString('base64') }));
}

function encode<T>(format: BlockFormat<T>, values: T[]): { body: Buffer; written: number } {
  const encoder = format.createEncoder();
  let written = 0;
  for (const value of values) written += encoder.write(value);
  return { body: Buffer.concat(encoder.finish()), written };
}

function decodeAll(format: BlockFormat, body: Buffer): Envelope[] {
  if (format.decode === undefined) throw new Error(`${format.name} has no decode`);
  return [...format.decode(body)];
}

const RESTORABLE_FORMATS = [raw, ndjson, csv];

describe('every format × compression', () => {
  for (const format of RESTORABLE_FORMATS) {
    for (const compressionName of COMPRESSION_NAMES) {
      it(`${format.name} + ${compressionName} round-trips every message losslessly`, async () => {
        const compression = resolveCompression(compressionName);
        const encoder = format.createEncoder();
        for (const message of MESSAGES) encoder.write(message);
        const stored = await compression.compress(encoder.finish());
        const decoded = decodeAll(format, await compression.decompress(stored));
        expect(comparable(decoded)).toEqual(comparable(MESSAGES));
      });
    }
  }
});

describe('every format', () => {
  for (const format of RESTORABLE_FORMATS) {
    it(`${format.name}: write() counts add up to the body length`, () => {
      const { body, written } = encode(format, MESSAGES);
      expect(written).toBe(body.length);
    });

    it(`${format.name}: an empty block decodes to no messages`, () => {
      expect(decodeAll(format, encode(format, []).body)).toEqual([]);
    });

    it(`${format.name}: headers null and headers [] stay distinct`, () => {
      const decoded = decodeAll(format, encode(format, [envelope({ headers: null }), envelope({ headers: [] })]).body);
      expect(decoded.map((e) => e.headers)).toEqual([null, []]);
    });

    it(`${format.name}: finish() is idempotent and write() after it throws`, () => {
      const encoder = format.createEncoder();
      encoder.write(envelope({}));
      const first = Buffer.concat(encoder.finish());
      expect(Buffer.concat(encoder.finish()).equals(first)).toBe(true);
      expect(() => encoder.write(envelope({}))).toThrow(/after finish/);
    });

    it(`${format.name}: refuses a seq, deliveryCount or timeNs it could not write back`, () => {
      const bad: Array<Partial<Envelope>> = [
        { seq: -1 },
        { seq: 1.5 },
        { seq: 2 ** 53 + 2 },
        { deliveryCount: -1 },
        { deliveryCount: Number.NaN },
        { timeNs: -1n },
      ];
      for (const overrides of bad) expect(() => format.createEncoder().write(envelope(overrides)), Object.keys(overrides)[0]).toThrow(RangeError);
    });
  }
});

describe('raw', () => {
  it('has the contract names', () => {
    expect([raw.name, raw.extension, raw.contentType]).toEqual(['raw', 'jv', 'application/octet-stream']);
  });

  it('writes the documented byte layout (docs/archive-format.md)', () => {
    const { body } = encode(raw, [
      envelope({ subject: 'a.b', stream: 'S', headers: [['K', ['v1', 'v2']]], data: Uint8Array.from([0xff, 0x00]), seq: 2 ** 32 + 5, timeNs: 0x0102030405060708n, deliveryCount: 2 }),
    ]);
    const expected = [
      '4a565231', // "JVR1"
      '40000000', // record length 64
      '01', // flags: has headers
      '05000000' + '01000000', // seq low, high
      '0807060504030201', // timeNs
      '02000000', // deliveryCount
      '01000000' + '53', // stream "S"
      '03000000' + '612e62', // subject "a.b"
      '01000000', // one header key
      '01000000' + '4b', // "K"
      '02000000', // two values
      '02000000' + '7631', // "v1"
      '02000000' + '7632', // "v2"
      '02000000' + 'ff00', // data
    ].join('');
    expect(body.toString('hex')).toBe(expected);
    expect(comparable(decodeAll(raw, Buffer.from(expected, 'hex')))[0]).toMatchObject({ seq: 2 ** 32 + 5, timeNs: 0x0102030405060708n, data: '/wA=' });
  });

  it('spreads a large block over several chunks without splitting records', () => {
    const messages = Array.from({ length: 5000 }, (_, i) => envelope({ seq: i + 1, data: pseudoRandomBytes(100, i) }));
    const chunks = raw.createEncoder();
    for (const message of messages) chunks.write(message);
    const body = chunks.finish();
    expect(body.length).toBeGreaterThan(1);
    expect(comparable(decodeAll(raw, Buffer.concat(body)))).toEqual(comparable(messages));
  });

  it('refuses a timeNs outside u64 and a deliveryCount outside u32, instead of wrapping them', () => {
    for (const bad of [{ timeNs: -1n }, { timeNs: 2n ** 64n }, { deliveryCount: -1 }, { deliveryCount: 2 ** 32 }, { deliveryCount: 1.5 }]) {
      expect(() => raw.createEncoder().write(envelope(bad)), JSON.stringify(bad, (_, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))).toThrow(RangeError);
    }
  });

  it('returns data as a plain Uint8Array', () => {
    const [decoded] = decodeAll(raw, encode(raw, [envelope({})]).body);
    expect(decoded?.data).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(decoded?.data)).toBe(false);
  });

  it('rejects a bad magic, an unknown version and an empty body', () => {
    const { body } = encode(raw, [envelope({})]);
    expect(() => decodeAll(raw, Buffer.concat([Buffer.from('XVR1'), body.subarray(4)]))).toThrow(/bad magic/);
    expect(() => decodeAll(raw, Buffer.concat([Buffer.from('JVR2'), body.subarray(4)]))).toThrow(/unsupported version "2"/);
    expect(() => decodeAll(raw, Buffer.alloc(0))).toThrow(/bad magic/);
    expect(() => decodeAll(raw, Buffer.from('{"subject":"x"}\n'))).toThrow(/bad magic/);
  });

  it('rejects a body cut anywhere but between records', () => {
    const messages = [MESSAGES[0], MESSAGES[3], MESSAGES[6]] as Envelope[];
    const boundaries = new Set<number>([4]);
    const encoder = raw.createEncoder();
    let end = 0;
    for (const message of messages) boundaries.add((end += encoder.write(message)));
    const body = Buffer.concat(encoder.finish());
    let accepted = 0;
    for (let cut = 0; cut < body.length; cut++) {
      const truncated = body.subarray(0, cut);
      if (boundaries.has(cut)) {
        // A cut between records is a valid shorter block; the manifest's count and checksum catch it.
        expect(decodeAll(raw, truncated)).toHaveLength(accepted++);
      } else {
        expect(() => decodeAll(raw, truncated), `cut at ${cut}`).toThrow(/raw block: /);
      }
    }
    expect(accepted).toBe(messages.length); // cuts after the magic and after each record but the last
  });

  it('rejects trailing garbage', () => {
    const { body } = encode(raw, [envelope({})]);
    expect(() => decodeAll(raw, Buffer.concat([body, Buffer.from([1, 2])]))).toThrow(/trailing bytes/);
    expect(() => decodeAll(raw, Buffer.concat([body, Buffer.from('garbage!')]))).toThrow(/truncated/);
  });

  it('rejects a record whose fields do not fill it exactly', () => {
    const { body } = encode(raw, [envelope({ data: Buffer.from('abcd') })]);
    const longer = Buffer.from(body);
    longer.writeUInt32LE(longer.readUInt32LE(4) - 1, 4); // record one byte shorter than its fields
    expect(() => decodeAll(raw, longer.subarray(0, longer.length - 1))).toThrow(/overruns the record end/);
    const padded = Buffer.concat([body, Buffer.from([0])]);
    padded.writeUInt32LE(padded.readUInt32LE(4) + 1, 4); // record one byte longer than its fields
    expect(() => decodeAll(raw, padded)).toThrow(/1 unexpected bytes/);
  });

  it('rejects unknown flags', () => {
    const body = Buffer.from(encode(raw, [envelope({})]).body);
    body[8] = 0x80;
    expect(() => decodeAll(raw, body)).toThrow(/unknown flags 0x80/);
  });
});

describe('ndjson', () => {
  it('has the contract names', () => {
    expect([ndjson.name, ndjson.extension, ndjson.contentType]).toEqual(['ndjson', 'ndjson', 'application/x-ndjson']);
  });

  it('writes one line per message with the nats.go field names', () => {
    const message = envelope({ headers: [['X-Multi', ['a', 'b']], ['Nats-Msg-Id', ['id-1']]], seq: 42, deliveryCount: 2 });
    const text = encode(ndjson, [message, envelope({ seq: 43 })]).body.toString('utf8');
    const lines = text.split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe('');
    const parsed: unknown = JSON.parse(lines[0] ?? '');
    expect(parsed).toEqual({
      subject: 'orders.eu.created',
      reply: '',
      header: { 'X-Multi': ['a', 'b'], 'Nats-Msg-Id': ['id-1'] },
      data: Buffer.from('{"id":1}').toString('base64'),
      metadata: {
        sequence: { consumer_seq: 0, stream_seq: 42 },
        num_delivered: 2,
        num_pending: 0,
        timestamp: envelopeTimeIso(message.timeNs),
        stream: 'ORDERS',
        consumer: '',
        domain: '',
      },
    });
    expect(Object.keys(parsed as object)).toEqual(['subject', 'reply', 'header', 'data', 'metadata']);
    expect(JSON.parse(lines[1] ?? '')).toMatchObject({ header: null });
  });

  it('reads a line as Go writes it (sorted keys, trimmed nanoseconds, null data)', () => {
    const goLine =
      '{"subject":"a.b","reply":"","header":{"A":["1"],"B":null},"data":null,"metadata":{"sequence":{"consumer_seq":9,' +
      '"stream_seq":7},"num_delivered":1,"num_pending":3,"timestamp":"2026-11-25T14:00:00.1Z","stream":"S","consumer":"c","domain":""}}';
    expect(comparable(decodeAll(ndjson, Buffer.from(`${goLine}\r\n\n`)))).toEqual([
      { subject: 'a.b', headers: [['A', ['1']], ['B', []]], data: '', stream: 'S', seq: 7, timeNs: 1_795_615_200_100_000_000n, deliveryCount: 1 },
    ]);
  });

  it('keeps header key order, except that integer-like keys come first (the documented caveat)', () => {
    const headers: Array<[string, string[]]> = [['b', ['1']], ['20', ['x']], ['a', ['2']], ['3', ['y']]];
    const [decoded] = decodeAll(ndjson, encode(ndjson, [envelope({ headers })]).body);
    expect(decoded?.headers).toEqual([['3', ['y']], ['20', ['x']], ['b', ['1']], ['a', ['2']]]);
  });

  it('keeps a key named __proto__ as an ordinary header', () => {
    const [decoded] = decodeAll(ndjson, encode(ndjson, [envelope({ headers: [['__proto__', ['p']], ['k', ['v']]] })]).body);
    expect(decoded?.headers).toEqual([['__proto__', ['p']], ['k', ['v']]]);
  });

  it('rejects a corrupt line and names it', () => {
    const good = encode(ndjson, [envelope({})]).body.toString('utf8');
    expect(() => decodeAll(ndjson, Buffer.from(`${good}{"subject":"x","reply":`))).toThrow(/line 2 is not a valid message/);
    expect(() => decodeAll(ndjson, Buffer.from(good.slice(0, -20)))).toThrow(/line 1/);
  });

  it('rejects lines with missing or mistyped fields', () => {
    const line = JSON.parse(encode(ndjson, [envelope({})]).body.toString('utf8')) as Record<string, unknown>;
    const metadata = line.metadata as Record<string, unknown>;
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...line, data: 'not base64!' }, /"data" is not standard padded base64/],
      [{ ...line, data: 'QUJD Q===' }, /"data" is not standard padded base64/],
      [{ ...line, subject: 5 }, /"subject" is not a string/],
      [{ ...line, header: { K: 'v' } }, /"header.K" is not an array of strings/],
      [{ ...line, metadata: undefined }, /"metadata" is not an object/],
      [{ ...line, metadata: { ...metadata, sequence: { stream_seq: 1.5 } } }, /stream_seq" is not a non-negative safe integer/],
      [{ ...line, metadata: { ...metadata, timestamp: 'yesterday' } }, /not an RFC 3339 timestamp/],
    ];
    for (const [value, error] of cases) expect(() => decodeAll(ndjson, Buffer.from(JSON.stringify(value)))).toThrow(error);
  });
});

describe('csv', () => {
  it('has the contract names', () => {
    expect([csv.name, csv.extension, csv.contentType]).toEqual(['csv', 'csv', 'text/csv']);
  });

  it('writes the default columns with a header row', () => {
    const message = envelope({ headers: [['K', ['a', 'b']]], seq: 9, deliveryCount: 2, data: Buffer.from('hi') });
    const text = encode(csv, [message]).body.toString('utf8');
    expect(text).toBe(
      'stream,seq,subject,time,delivery_count,headers,data\n' +
        `ORDERS,9,orders.eu.created,${envelopeTimeIso(message.timeNs)},2,"[[""K"",[""a"",""b""]]]",aGk=\n`,
    );
  });

  it('writes a selection of envelope columns, which is not restorable', () => {
    const format = csvFormat({ columns: ['seq', 'subject'] });
    expect(encode(format, [envelope({ seq: 4 })]).body.toString('utf8')).toBe('seq,subject\n4,orders.eu.created\n');
    expect(format.decode).toBeUndefined();
    expect(csvFormat({ columns: ['data', 'headers', 'delivery_count', 'time', 'subject', 'seq', 'stream'] }).decode).toBeDefined();
  });

  it('refuses unknown or repeated envelope columns', () => {
    expect(() => csvFormat({ columns: ['seq', 'nope' as 'seq'] })).toThrow(UsageError);
    expect(() => csvFormat({ columns: ['seq', 'seq'] })).toThrow(/distinct names/);
    expect(() => csvFormat({ columns: [] })).toThrow(UsageError);
  });

  it('writes rows from a user flatten, zero or more per value, and has no decode', () => {
    const format = csvFormat<{ id: number; tags: string[] }>({
      columns: ['id', 'tag'],
      flatten: (order) => order.tags.map((tag) => [String(order.id), tag]),
    });
    const { body, written } = encode(format, [{ id: 1, tags: ['a', 'b,c'] }, { id: 2, tags: [] }, { id: 3, tags: ['"q"'] }]);
    expect(body.toString('utf8')).toBe('id,tag\n1,a\n1,"b,c"\n3,"""q"""\n');
    expect(written).toBe(body.length);
    expect(format.decode).toBeUndefined();
  });

  it('refuses a flatten row of the wrong width', () => {
    const format = csvFormat<number>({ columns: ['a', 'b'], flatten: (n) => [[String(n)]] });
    expect(() => format.createEncoder().write(1)).toThrow(/row of 1 fields, the columns name 2/);
  });

  it('writes only the header row for an empty block', () => {
    expect(encode(csv, []).body.toString('utf8')).toBe('stream,seq,subject,time,delivery_count,headers,data\n');
  });

  it('rejects a truncated body, a wrong header row and bad cells', () => {
    const { body } = encode(csv, [envelope({ headers: [['K', ['v']]] })]);
    const text = body.toString('utf8');
    expect(() => decodeAll(csv, body.subarray(0, text.indexOf('"[[') + 5))).toThrow(/not valid CSV/);
    expect(() => decodeAll(csv, body.subarray(0, body.length - 8))).toThrow(/csv block: /);
    expect(() => decodeAll(csv, Buffer.from(text.replace('delivery_count', 'deliveries')))).toThrow(/header row/);
    expect(() => decodeAll(csv, Buffer.alloc(0))).toThrow(/empty/);
    const row = (cells: string[]) => Buffer.from(`stream,seq,subject,time,delivery_count,headers,data\n${cells.join(',')}\n`);
    const ok = ['S', '1', 'a', '2026-11-25T14:00:00Z', '1', '', 'AA=='];
    expect(comparable(decodeAll(csv, row(ok)))).toHaveLength(1);
    expect(() => decodeAll(csv, row(ok.with(1, '-1')))).toThrow(/row 1 .*"seq" is not a non-negative safe integer/);
    expect(() => decodeAll(csv, row(ok.with(1, '9007199254740993')))).toThrow(/"seq"/);
    expect(() => decodeAll(csv, row(ok.with(5, '"{""K"":1}"')))).toThrow(/pairs/);
    expect(() => decodeAll(csv, row(ok.with(6, 'A')))).toThrow(/base64/);
    expect(() => decodeAll(csv, row(ok.with(3, 'noon')))).toThrow(/RFC 3339/);
  });
});

describe('resolveFormat', () => {
  it('resolves every built-in name', () => {
    expect(FORMAT_NAMES).toEqual(['raw', 'ndjson', 'csv']);
    expect(FORMAT_NAMES.map((name) => resolveFormat(name))).toEqual([raw, ndjson, csv]);
  });

  it('throws a UsageError listing the valid names', () => {
    expect(() => resolveFormat('parquet')).toThrow(UsageError);
    expect(() => resolveFormat('toString')).toThrow(/unknown format "toString"; expected one of raw, ndjson, csv/);
  });
});
