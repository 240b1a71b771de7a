import type { PubAck } from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../src/archive/envelope.js';
import { silentLogger } from '../src/logger.js';
import { MIN_DUPLICATE_WINDOW_MS, msgIdOf, republish, toMsgHdrs, type PublishTarget } from '../restore/republisher.js';

interface Stored {
  subject: string;
  data: Uint8Array;
  headers: Array<[string, string[]]>;
}

/**
 * A stream on simulated time that deduplicates like the server: an id seen less than `window + lagMs`
 * ago is a duplicate (the server forgets ids on a timer, a little after the window).
 */
class FakeTarget implements PublishTarget {
  readonly stream = 'TARGET';
  readonly stored: Stored[] = [];
  readonly windowChanges: number[] = [];
  readonly ids = new Map<string, number>();
  windowMs: number;
  inFlight = 0;
  maxInFlight = 0;
  duplicateAcks = 0;
  failSeqOf?: string;
  ackStream?: string;
  lagMs = 60;
  t = 0;

  constructor(windowMs: number) {
    this.windowMs = windowMs;
  }

  now = (): number => this.t;
  sleep = async (ms: number): Promise<void> => {
    this.t += ms;
  };

  async publish(subject: string, data: Uint8Array, headers: MsgHdrs | undefined): Promise<PubAck> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await new Promise((r) => setImmediate(r));
    this.inFlight--;
    if (subject === this.failSeqOf) throw new Error('no responders');
    const id = headers?.get('Nats-Msg-Id') || undefined;
    if (id !== undefined) {
      const at = this.ids.get(id);
      if (at !== undefined && this.t - at < this.windowMs + this.lagMs) {
        this.duplicateAcks++;
        return { stream: this.stream, seq: this.stored.length, duplicate: true };
      }
      this.ids.set(id, this.t);
    }
    this.stored.push({ subject, data, headers: headers ? [...headers].map(([k, v]) => [k, [...v]] as [string, string[]]) : [] });
    return { stream: this.ackStream ?? this.stream, seq: this.stored.length, duplicate: false };
  }

  async duplicateWindowMs(): Promise<number> {
    return this.windowMs;
  }

  async setDuplicateWindowMs(ms: number): Promise<void> {
    this.windowChanges.push(ms);
    this.windowMs = ms;
  }
}

function envelope(seq: number, headers: Array<[string, string[]]> | null = null, data: Uint8Array = Buffer.from(`m${seq}`)): Envelope {
  return { subject: `orders.${seq % 2 ? 'eu' : 'us'}`, headers, data, stream: 'SRC', seq, timeNs: BigInt(seq), deliveryCount: 1 };
}

async function* source(envelopes: Envelope[], onEach?: (e: Envelope) => void): AsyncGenerator<Envelope> {
  for (const e of envelopes) {
    onEach?.(e);
    yield e;
  }
}

describe('toMsgHdrs / msgIdOf', () => {
  it('keeps every key as written (case included), every value, in order, and adds nothing', () => {
    const h = toMsgHdrs(envelope(1, [['x-lower-case', ['1', '2']], ['X-Upper', ['']], ['Nats-Msg-Id', ['abc']]])) as MsgHdrs;
    expect([...h]).toEqual([
      ['x-lower-case', ['1', '2']],
      ['X-Upper', ['']],
      ['Nats-Msg-Id', ['abc']],
    ]);
    expect(toMsgHdrs(envelope(1, null))).toBeUndefined();
    expect(toMsgHdrs(envelope(1, []))).toBeUndefined();
  });

  it('finds the Nats-Msg-Id by its exact name', () => {
    expect(msgIdOf(envelope(1, [['Nats-Msg-Id', ['a', 'b']]]))).toBe('a');
    expect(msgIdOf(envelope(1, [['nats-msg-id', ['a']]]))).toBeUndefined();
    expect(msgIdOf(envelope(1, null))).toBeUndefined();
  });
});

describe('republish', () => {
  it('publishes in order, within the window, exactly as archived', async () => {
    const target = new FakeTarget(120_000);
    const envelopes = Array.from({ length: 50 }, (_, i) => envelope(i + 1, i % 3 === 0 ? [['x-k', ['a', 'b']]] : null, i === 7 ? new Uint8Array() : Buffer.from([0xff, i])));
    const result = await republish(source(envelopes), { target, maxInFlight: 8, logger: silentLogger(), now: target.now, sleep: target.sleep });
    expect(result).toEqual({ published: 50, repeatedMsgIds: 0, duplicateWindowLowered: false });
    expect(target.stored.map((s) => s.subject)).toEqual(envelopes.map((e) => e.subject));
    expect(target.stored.map((s) => Buffer.from(s.data))).toEqual(envelopes.map((e) => Buffer.from(e.data)));
    expect(target.stored.map((s) => s.headers)).toEqual(envelopes.map((e) => e.headers ?? []));
    expect(target.maxInFlight).toBeGreaterThan(1);
    expect(target.maxInFlight).toBeLessThanOrEqual(8);
    expect(target.windowChanges).toEqual([]);
  });

  it('publishes a Nats-Msg-Id repeated inside the window after lowering it, then puts the window back', async () => {
    const target = new FakeTarget(120_000);
    const id = (v: string): Array<[string, string[]]> => [['Nats-Msg-Id', [v]]];
    const envelopes = [envelope(1, id('a')), envelope(2, id('b')), envelope(3), envelope(4, id('a')), envelope(5, id('a')), envelope(6, id('c'))];
    const windowDuringPublish: number[] = [];
    const result = await republish(source(envelopes), {
      target,
      maxInFlight: 4,
      logger: silentLogger(),
      now: target.now,
      sleep: target.sleep,
      onPublished: () => windowDuringPublish.push(target.windowMs),
    });
    expect(result.published).toBe(6);
    expect(result.repeatedMsgIds).toBe(2);
    expect(result.duplicateWindowLowered).toBe(true);
    expect(target.stored.map((s) => s.subject)).toEqual(envelopes.map((e) => e.subject));
    expect(target.stored.map((s) => s.headers)).toEqual(envelopes.map((e) => e.headers ?? []));
    // Lowered once, to the minimum, and set back afterwards.
    expect(target.windowChanges).toEqual([MIN_DUPLICATE_WINDOW_MS, 120_000]);
    expect(windowDuringPublish.at(-1)).toBe(MIN_DUPLICATE_WINDOW_MS);
    // The fake forgets ids 60 ms after the window: the first attempt came back duplicate and was retried.
    expect(target.duplicateAcks).toBeGreaterThan(0);
  });

  it('leaves the window alone when the repeat is already outside it', async () => {
    const target = new FakeTarget(1_000);
    target.lagMs = 0;
    const id: Array<[string, string[]]> = [['Nats-Msg-Id', ['same']]];
    const result = await republish(
      source([envelope(1, id), envelope(2), envelope(3, id)], (e) => {
        if (e.seq === 3) target.t += 5_000;
      }),
      // One in flight: the first publish is acked before the clock jumps.
      { target, maxInFlight: 1, logger: silentLogger(), now: target.now, sleep: target.sleep },
    );
    expect(result).toMatchObject({ published: 3, duplicateWindowLowered: false });
    expect(target.windowChanges).toEqual([]);
  });

  it('fails loudly when an id is already in the target (never drops a message silently)', async () => {
    const target = new FakeTarget(120_000);
    target.ids.set('taken', 0);
    const envelopes = [envelope(1), envelope(2, [['Nats-Msg-Id', ['taken']]]), envelope(3)];
    await expect(republish(source(envelopes), { target, logger: silentLogger(), now: target.now, sleep: target.sleep })).rejects.toMatchObject({
      code: 'JV_PUBLISH_FAILED',
      message: expect.stringMatching(/seq 2 .*duplicate.*"taken"/),
    });
  });

  it('gives up after the bounded retries and still puts the window back', async () => {
    const target = new FakeTarget(120_000);
    target.lagMs = 1e9; // the server never forgets
    const id: Array<[string, string[]]> = [['Nats-Msg-Id', ['x']]];
    await expect(
      republish(source([envelope(1, id), envelope(2, id)]), { target, logger: silentLogger(), now: target.now, sleep: target.sleep, duplicateRetries: 3 }),
    ).rejects.toMatchObject({ code: 'JV_PUBLISH_FAILED', message: expect.stringMatching(/after 3 attempts/) });
    expect(target.windowChanges).toEqual([MIN_DUPLICATE_WINDOW_MS, 120_000]);
  });

  it('names seq and subject of a failed publish and keeps the cause', async () => {
    const target = new FakeTarget(120_000);
    target.failSeqOf = 'orders.us';
    const error = await republish(source([envelope(1), envelope(2), envelope(3)]), { target, logger: silentLogger() }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'JV_PUBLISH_FAILED', message: expect.stringMatching(/seq 2 \(subject orders\.us\)/) });
    expect((error as Error).cause).toBeInstanceOf(Error);
  });

  it('fails when another stream stored the message (overlapping subjects)', async () => {
    const target = new FakeTarget(120_000);
    target.ackStream = 'OTHER';
    await expect(republish(source([envelope(1)]), { target, logger: silentLogger() })).rejects.toMatchObject({
      code: 'JV_PUBLISH_FAILED',
      message: expect.stringMatching(/stored by stream OTHER/),
    });
  });
});
