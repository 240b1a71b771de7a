import { JetStreamApiError, type PubAck } from '@nats-io/jetstream';
import { ClosedConnectionError, ConnectionError, NoRespondersError, RequestError, TimeoutError, type MsgHdrs } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../src/archive/envelope.js';
import { JetvaultError } from '../src/errors.js';
import { silentLogger } from '../src/logger.js';
import {
  heldOfPending,
  isSameMessage,
  isTargetUnreachable,
  MIN_DUPLICATE_WINDOW_MS,
  msgIdOf,
  RECONNECT_BACKOFF_MS,
  republish,
  toMsgHdrs,
  type PendingPublish,
  type PublishTarget,
  type TargetMessage,
} from '../restore/republisher.js';
import { TargetUnreachableError } from '../restore/target-link.js';

interface Stored {
  subject: string;
  data: Uint8Array;
  headers: Array<[string, string[]]>;
}

/**
 * A stream on simulated time that deduplicates like the server: an id seen less than `window + lagMs`
 * ago is a duplicate (the server forgets ids on a timer, a little after the window).
 *
 * It can also be lost: from publish number `outageAt` on, the connection is down. The first
 * `storedWithoutAck` publishes of the outage are still stored but their acks never come (timeout); every
 * later one is lost. The target answers again after `unreachableProbes` failed probes; on coming back it
 * may have lost its last `crashLoses` messages, or hold `foreignOnReturn` messages someone else published.
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
  failWith?: Error;
  ackStream?: string;
  lagMs = 60;
  t = 0;
  /** The stream's last sequence before the restore (an appended stream). */
  base = 0;
  publishes = 0;
  outageAt = Number.POSITIVE_INFINITY;
  storedWithoutAck = 0;
  unreachableProbes = 0;
  crashLoses = 0;
  foreignOnReturn = 0;
  down = false;
  storedInOutage = 0;
  readonly probes: Array<string | undefined> = [];
  readonly sleeps: number[] = [];
  abandoned = 0;
  /** Reads before the first publish that fail (the target lost right after it was prepared). */
  unreachableAtStart = 0;

  constructor(windowMs: number) {
    this.windowMs = windowMs;
  }

  now = (): number => this.t;
  sleep = async (ms: number, signal?: AbortSignal): Promise<void> => {
    signal?.throwIfAborted();
    this.sleeps.push(ms);
    this.t += ms;
  };

  private store(subject: string, data: Uint8Array, headers: MsgHdrs | undefined): void {
    this.stored.push({ subject, data, headers: headers ? [...headers].map(([k, v]) => [k, [...v]] as [string, string[]]) : [] });
  }

  async publish(subject: string, data: Uint8Array, headers: MsgHdrs | undefined): Promise<PubAck> {
    const n = ++this.publishes;
    if (n === this.outageAt) this.down = true;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await new Promise((r) => setImmediate(r));
    this.inFlight--;
    if (this.down) {
      if (this.storedInOutage < this.storedWithoutAck) {
        this.storedInOutage++;
        this.store(subject, data, headers);
        throw new TimeoutError();
      }
      throw new RequestError('connection closed');
    }
    if (subject === this.failSeqOf) throw this.failWith ?? new Error('no responders');
    const id = headers?.get('Nats-Msg-Id') || undefined;
    if (id !== undefined) {
      const at = this.ids.get(id);
      if (at !== undefined && this.t - at < this.windowMs + this.lagMs) {
        this.duplicateAcks++;
        return { stream: this.stream, seq: this.base + this.stored.length, duplicate: true };
      }
      this.ids.set(id, this.t);
    }
    this.store(subject, data, headers);
    return { stream: this.ackStream ?? this.stream, seq: this.base + this.stored.length, duplicate: false };
  }

  async duplicateWindowMs(): Promise<number> {
    if (this.unreachableAtStart > 0) {
      this.unreachableAtStart--;
      throw new ClosedConnectionError();
    }
    return this.windowMs;
  }

  async setDuplicateWindowMs(ms: number): Promise<void> {
    this.windowChanges.push(ms);
    this.windowMs = ms;
  }

  async lastSeq(probeSubject?: string): Promise<number> {
    this.probes.push(probeSubject);
    if (probeSubject !== undefined) {
      if (this.unreachableProbes > 0) {
        this.unreachableProbes--;
        throw new ConnectionError('connection refused');
      }
      if (this.down) {
        this.down = false;
        this.stored.splice(this.stored.length - this.crashLoses, this.crashLoses);
        for (let i = 0; i < this.foreignOnReturn; i++) this.stored.push({ subject: 'other', data: Buffer.from(`foreign ${i}`), headers: [] });
      }
    }
    return this.base + this.stored.length;
  }

  async messageAt(seq: number): Promise<TargetMessage | undefined> {
    const m = this.stored[seq - this.base - 1];
    return m ? { data: m.data, headers: m.headers.length > 0 ? m.headers : null } : undefined;
  }

  async abandon(): Promise<void> {
    this.abandoned++;
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
    expect(result).toEqual({ published: 50, repeatedMsgIds: 0, duplicateWindowLowered: false, reconnects: 0, reconnectMs: 0 });
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

/** Publish options on the fake's simulated clock. */
const on = (target: FakeTarget) => ({ target, logger: silentLogger(), now: target.now, sleep: target.sleep });
const contentOf = (target: FakeTarget) => target.stored.map((s) => ({ subject: s.subject, data: Buffer.from(s.data).toString('hex'), headers: s.headers }));
const contentOfEnvelopes = (envelopes: Envelope[]) => envelopes.map((e) => ({ subject: e.subject, data: Buffer.from(e.data).toString('hex'), headers: e.headers ?? [] }));

/** 200 messages: some with a Nats-Msg-Id (unique), some with other headers, empty and binary payloads. */
function mixed(count = 200): Envelope[] {
  return Array.from({ length: count }, (_, i) => {
    const seq = i + 1;
    const headers: Array<[string, string[]]> | null = seq % 5 === 0 ? [['Nats-Msg-Id', [`id-${seq}`]]] : seq % 3 === 0 ? [['x-k', ['a', `${seq}`]]] : null;
    return envelope(seq, headers, seq % 7 === 0 ? new Uint8Array() : Buffer.from([0xff, seq & 0xff, seq >> 8]));
  });
}

describe('republish after losing the target', () => {
  it('continues from the first message the target does not hold: every message once, in order, no header added', async () => {
    const target = new FakeTarget(120_000);
    // The connection drops when publish 50 is sent: the window (35..50) is pending; 35..37 are stored but
    // never acked, the rest is lost.
    target.outageAt = 50;
    target.storedWithoutAck = 3;
    target.unreachableProbes = 2;
    const envelopes = mixed(200);
    const lost: Array<{ error: string; confirmed: number }> = [];
    const back: Array<{ waitedMs: number; held: number; resent: number }> = [];
    const result = await republish(source(envelopes), {
      ...on(target),
      maxInFlight: 16,
      onTargetLost: (i) => lost.push(i),
      onTargetBack: (i) => back.push(i),
    });
    expect(contentOf(target)).toEqual(contentOfEnvelopes(envelopes));
    expect(result).toMatchObject({ published: 200, reconnects: 1 });
    expect(result.reconnectMs).toBe(RECONNECT_BACKOFF_MS.first * 3);
    expect(target.abandoned).toBe(1);
    // Two failed probes, waiting 100 then 200 ms; each probe goes to the subject of the first unconfirmed message.
    expect(target.sleeps).toEqual([RECONNECT_BACKOFF_MS.first, RECONNECT_BACKOFF_MS.first * 2]);
    const probe = envelopes[34]?.subject;
    expect(target.probes).toEqual([undefined, probe, probe, probe]);
    expect(lost).toEqual([{ error: 'timeout', confirmed: 34 }]);
    // 35..37 are held without their acks; 38..50 are published again.
    expect(back).toEqual([{ waitedMs: 300, held: 37, resent: 13 }]);
    expect(target.publishes).toBe(200 + 13);
  });

  it('waits for a target lost before the first publish', async () => {
    const target = new FakeTarget(120_000);
    target.unreachableAtStart = 2;
    const envelopes = mixed(20);
    const lost: unknown[] = [];
    const back: unknown[] = [];
    const result = await republish(source(envelopes), { ...on(target), onTargetLost: (i) => lost.push(i), onTargetBack: (i) => back.push(i) });
    expect(result).toMatchObject({ published: 20, reconnects: 1, reconnectMs: 300 });
    expect(lost).toEqual([{ error: 'closed connection', confirmed: 0 }]);
    expect(back).toEqual([{ waitedMs: 300, held: 0, resent: 0 }]);
    expect(target.sleeps).toEqual([RECONNECT_BACKOFF_MS.first, RECONNECT_BACKOFF_MS.first * 2]);
    expect(contentOf(target)).toEqual(contentOfEnvelopes(envelopes));
  });

  it('counts from the sequence an appended stream had at the start', async () => {
    const target = new FakeTarget(120_000);
    target.base = 1_000;
    target.outageAt = 30;
    target.storedWithoutAck = 1;
    const envelopes = mixed(100);
    const result = await republish(source(envelopes), { ...on(target), maxInFlight: 8 });
    expect(result).toMatchObject({ published: 100, reconnects: 1 });
    expect(contentOf(target)).toEqual(contentOfEnvelopes(envelopes));
  });

  it('recovers a loss while the last window drains, and a second loss', async () => {
    const target = new FakeTarget(120_000);
    const envelopes = mixed(40);
    // The loss hits the last publishes: the source is already exhausted when it is noticed.
    target.outageAt = 38;
    target.storedWithoutAck = 1;
    let losses = 0;
    const result = await republish(source(envelopes), {
      ...on(target),
      maxInFlight: 8,
      onTargetBack: () => {
        losses++;
        // Lose it again on the first publish after the first recovery.
        if (losses === 1) target.outageAt = target.publishes + 1;
      },
    });
    expect(result).toMatchObject({ published: 40, reconnects: 2 });
    expect(contentOf(target)).toEqual(contentOfEnvelopes(envelopes));
  });

  it('recovers a loss while publishing a repeated Nats-Msg-Id alone', async () => {
    const target = new FakeTarget(120_000);
    const id = (v: string): Array<[string, string[]]> => [['Nats-Msg-Id', [v]]];
    const envelopes = [envelope(1, id('a')), envelope(2), envelope(3), envelope(4, id('a')), envelope(5), envelope(6, id('b'))];
    // Publish 4 is the repeated id, sent alone after lowering the window: stored, ack lost.
    target.outageAt = 4;
    target.storedWithoutAck = 1;
    const result = await republish(source(envelopes), { ...on(target), maxInFlight: 4 });
    expect(result).toMatchObject({ published: 6, reconnects: 1, duplicateWindowLowered: true });
    expect(contentOf(target)).toEqual(contentOfEnvelopes(envelopes));
    expect(target.windowChanges).toEqual([MIN_DUPLICATE_WINDOW_MS, 120_000]);
  });

  it('gives up with JV_CONNECT_FAILED after reconnectTimeoutMs, saying how much the target holds', async () => {
    const target = new FakeTarget(120_000);
    target.outageAt = 20;
    target.unreachableProbes = Number.POSITIVE_INFINITY;
    const lost: unknown[] = [];
    const error = await republish(source(mixed(100)), { ...on(target), maxInFlight: 8, reconnectTimeoutMs: 5_000, onTargetLost: (i) => lost.push(i) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JetvaultError);
    expect(error).toMatchObject({ code: 'JV_CONNECT_FAILED', message: expect.stringMatching(/TARGET could not be reached for 5 s .*connection refused.*holds the first 12 messages/) });
    expect((error as Error).cause).toBeInstanceOf(ConnectionError);
    expect(lost).toHaveLength(1);
    // Waited out the timeout with backoff capped at its maximum, and not longer.
    expect(target.t).toBe(5_000);
    expect(Math.max(...target.sleeps)).toBe(RECONNECT_BACKOFF_MS.max);
    expect(target.stored).toHaveLength(12);
  });

  it('fails when the target comes back without messages it had confirmed', async () => {
    const target = new FakeTarget(120_000);
    target.outageAt = 40;
    target.crashLoses = 5;
    await expect(republish(source(mixed(100)), { ...on(target), maxInFlight: 8 })).rejects.toMatchObject({
      code: 'JV_PUBLISH_FAILED',
      message: expect.stringMatching(/ends at seq 27, before seq 32 it had confirmed: it lost 5 confirmed messages/),
    });
  });

  it('fails when the message at the target’s last sequence is not the one restore published there', async () => {
    const target = new FakeTarget(120_000);
    target.outageAt = 40;
    target.foreignOnReturn = 1;
    await expect(republish(source(mixed(100)), { ...on(target), maxInFlight: 8 })).rejects.toMatchObject({
      code: 'JV_PUBLISH_FAILED',
      message: expect.stringMatching(/holds at seq 33 a message that is not archived message seq 33/),
    });
  });

  it('does not wait for a target that refused a message: the refusal fails the restore at once', async () => {
    const target = new FakeTarget(120_000);
    target.failSeqOf = 'orders.us';
    target.failWith = new JetStreamApiError({ code: 503 - 103, err_code: 10077, description: 'maximum messages exceeded' });
    await expect(republish(source(mixed(10)), on(target))).rejects.toMatchObject({ code: 'JV_PUBLISH_FAILED', message: expect.stringMatching(/seq 2 .*maximum messages exceeded/) });
    expect(target.abandoned).toBe(0);
    expect(target.probes).toEqual([undefined]);
  });

  it('stops waiting when aborted, with the abort reason', async () => {
    const target = new FakeTarget(120_000);
    target.outageAt = 5;
    target.unreachableProbes = Number.POSITIVE_INFINITY;
    const controller = new AbortController();
    const reason = new Error('stop');
    const error = await republish(source(mixed(20)), {
      ...on(target),
      signal: controller.signal,
      onTargetLost: () => controller.abort(reason),
    }).catch((e: unknown) => e);
    expect(error).toBe(reason);
  });
});

describe('heldOfPending', () => {
  const pending = (outcomes: Array<PubAck | Error>): PendingPublish[] =>
    outcomes.map((o, i) => ({ envelope: envelope(101 + i), outcome: o instanceof Error ? { status: 'rejected', reason: o } : { status: 'fulfilled', value: o } }));
  const ack = (seq: number, extra: Partial<PubAck> = {}): PubAck => ({ stream: 'T', seq, duplicate: false, ...extra });

  it('is how far the target got past the last confirmed sequence, acked or not', () => {
    const p = pending([ack(11), new TimeoutError(), new RequestError('connection closed'), new TimeoutError()]);
    expect(heldOfPending('T', 10, 10, p.slice(1))).toBe(0);
    expect(heldOfPending('T', 10, 12, p)).toBe(2);
    expect(heldOfPending('T', 10, 14, p)).toBe(4);
  });

  it('refuses a target that lost confirmed messages or holds more than was pending', () => {
    const p = pending([new TimeoutError(), new TimeoutError()]);
    expect(() => heldOfPending('T', 10, 9, p)).toThrow(/lost 1 confirmed messages/);
    expect(() => heldOfPending('T', 10, 13, p)).toThrow(/holds 3 messages after seq 10.*only 2 publishes pending/);
  });

  it('refuses publishes stored out of order (a later one acked at an earlier position, or beyond what is held)', () => {
    // Pending 0 lost, pending 1 stored at 11: the target holds one message, but it is the second one.
    expect(() => heldOfPending('T', 10, 11, pending([new RequestError('connection closed'), ack(11)]))).toThrow(/stored at seq 11 but belongs at seq 12/);
    expect(() => heldOfPending('T', 10, 12, pending([ack(12), new TimeoutError()]))).toThrow(/stored at seq 12 but belongs at seq 11/);
  });

  it('fails on a pending publish the stream refused, or dropped as a duplicate', () => {
    const refused = new JetStreamApiError({ code: 400, err_code: 10077, description: 'maximum messages exceeded' });
    expect(() => heldOfPending('T', 10, 10, pending([new TimeoutError(), refused]))).toThrow(/seq 102 .*maximum messages exceeded/);
    expect(() => heldOfPending('T', 10, 11, pending([ack(11, { duplicate: true })]))).toThrow(/dropped it as a duplicate/);
    expect(() => heldOfPending('T', 10, 11, pending([ack(11, { stream: 'OTHER' })]))).toThrow(/stored by stream OTHER/);
  });
});

describe('isTargetUnreachable / isSameMessage', () => {
  it('tells a lost target from a refusal', () => {
    for (const e of [new TimeoutError(), new RequestError('connection closed'), new ConnectionError('connection refused'), new ClosedConnectionError(), new NoRespondersError('x'), new TargetUnreachableError('no pong')]) {
      expect(isTargetUnreachable(e), e.name).toBe(true);
    }
    expect(isTargetUnreachable(new JetStreamApiError({ code: 503, err_code: 10008, description: 'JetStream system temporarily unavailable' }))).toBe(true);
    expect(isTargetUnreachable(new JetStreamApiError({ code: 400, err_code: 10077, description: 'maximum messages exceeded' }))).toBe(false);
    expect(isTargetUnreachable(new JetvaultError('JV_CONNECT_FAILED', 'closed for good'))).toBe(false);
    expect(isTargetUnreachable(new TypeError('bad header'))).toBe(false);
    expect(isTargetUnreachable('timeout')).toBe(false);
  });

  it('compares bytes and every header value, not the subject', () => {
    const e = envelope(1, [['x-k', ['a', 'b']]], Buffer.from([1, 2]));
    expect(isSameMessage({ data: Buffer.from([1, 2]), headers: [['x-k', ['a', 'b']]] }, e)).toBe(true);
    expect(isSameMessage({ data: Buffer.from([1, 3]), headers: [['x-k', ['a', 'b']]] }, e)).toBe(false);
    expect(isSameMessage({ data: Buffer.from([1, 2]), headers: [['x-k', ['b', 'a']]] }, e)).toBe(false);
    expect(isSameMessage({ data: Buffer.from([1, 2]), headers: null }, envelope(2, null, Buffer.from([1, 2])))).toBe(true);
  });
});
