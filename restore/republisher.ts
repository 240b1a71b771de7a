/**
 * Publishes archived messages back into a stream, in order, exactly as captured: original subject, every
 * header with every value in order, the same bytes, and no header of our own.
 *
 * Publishing is windowed (at most `maxInFlight` acks pending, awaited in order). The one hazard is the
 * target's duplicate window: the source may have accepted the same Nats-Msg-Id twice because the two
 * publishes were further apart than its window, but republished back to back the server would drop the
 * second. A repeated id therefore drains the window, lowers the target's duplicate_window to its minimum,
 * waits it out, and publishes alone, retrying while the server still says duplicate. The original window
 * is put back at the end. A message is never dropped silently: a duplicate ack that cannot be resolved
 * fails the restore.
 *
 * Losing the target (a server restart, a dropped connection, publishes timing out) does not end the
 * restore; see `recover` below. The target stream itself says how far it got: restore publishes nothing
 * of its own into it (no Nats-Msg-Id, no expected-sequence header) and never republishes a message the
 * target holds.
 */
import { headers as natsHeaders, millis, nanos, Empty, type MsgHdrs } from '@nats-io/transport-node';
import { JetStreamApiError, type PubAck } from '@nats-io/jetstream';
import type { Envelope } from '../src/archive/envelope.js';
import { JetvaultError, describeError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import { headerEntries } from './stream-reader.js';
import type { TargetLink } from './target-link.js';

export const MSG_ID_HEADER = 'Nats-Msg-Id';
/** The smallest duplicate_window the server accepts (100 ms). */
export const MIN_DUPLICATE_WINDOW_MS = 100;
/** How long restore waits for a lost target before it gives up. */
export const DEFAULT_RECONNECT_TIMEOUT_MS = 60_000;
/** Waits between attempts to reach a lost target: doubling from the first to the last. */
export const RECONNECT_BACKOFF_MS = { first: 100, max: 1_000 } as const;
/** One attempt to reach a lost target (connect, probe, read the stream) may take this long. */
export const PROBE_TIMEOUT_MS = 5_000;
/**
 * The Nats-Expected-Stream of restore's probe: a name no stream can have (stream names hold no dots), so
 * the server refuses the probe (err_code 10060) and never stores it.
 */
export const PROBE_EXPECTED_STREAM = 'jetvault.probe';
const STREAM_NOT_MATCH = 10060;
/** The one warn line of a lost target. */
export const TARGET_LOST_MESSAGE = 'lost the target: waiting for it to come back, to continue after the last message it holds';

/** A stored message of the target, as compared with the envelope restore expects at its sequence. */
export interface TargetMessage {
  data: Uint8Array;
  headers: Array<[string, string[]]> | null;
}

/** What the republisher needs from the target stream; natsPublishTarget() is the real one. */
export interface PublishTarget {
  readonly stream: string;
  publish(subject: string, data: Uint8Array, headers: MsgHdrs | undefined): Promise<PubAck>;
  duplicateWindowMs(): Promise<number>;
  setDuplicateWindowMs(ms: number): Promise<void>;
  /**
   * The stream's last sequence, waiting for (or re-opening) the connection first. With `probeSubject`,
   * only after every publish sent before it has been processed: a publish the server must refuse is sent
   * to that subject first, and the stream handles the publishes of a connection in order.
   */
  lastSeq(probeSubject?: string, timeoutMs?: number): Promise<number>;
  /** The message stored at `seq`; undefined when the stream no longer holds it (limits, deletes). */
  messageAt(seq: number): Promise<TargetMessage | undefined>;
  /**
   * Called first when the target is lost: make every pending publish settle now and keep anything not yet
   * sent from reaching the server later (closes a connection restore owns). Optional.
   */
  abandon?(): Promise<void>;
}

export function natsPublishTarget(link: TargetLink, stream: string): PublishTarget {
  const ready = (timeoutMs = PROBE_TIMEOUT_MS) => link.ready(timeoutMs);
  return {
    stream,
    // The hot path: no readiness check per message; a publish on a lost connection fails and is recovered.
    publish: (subject, data, headers) => link.js.publish(subject, data, headers ? { headers } : undefined),
    duplicateWindowMs: async () => {
      await ready();
      return millis((await link.jsm.streams.info(stream)).config.duplicate_window);
    },
    setDuplicateWindowMs: async (ms) => {
      await ready();
      await link.jsm.streams.update(stream, { duplicate_window: nanos(ms) });
    },
    lastSeq: async (probeSubject, timeoutMs = PROBE_TIMEOUT_MS) => {
      await ready(timeoutMs);
      const lastSeq = async () => (await link.jsm.streams.info(stream)).state.last_seq;
      if (probeSubject !== undefined) {
        // Read first: a stream that is gone says so here, where a probe would only find no responders.
        await lastSeq();
        let ack: PubAck;
        try {
          ack = await link.js.publish(probeSubject, Empty, { expect: { streamName: PROBE_EXPECTED_STREAM }, timeout: timeoutMs });
        } catch (error) {
          if (!(error instanceof JetStreamApiError && error.code === STREAM_NOT_MATCH)) throw error;
          ack = undefined as unknown as PubAck;
        }
        if (ack !== undefined) {
          // Every JetStream server checks Nats-Expected-Stream before storing; this cannot happen.
          throw new JetvaultError('JV_PUBLISH_FAILED', `the target stored restore's probe on ${probeSubject} (seq ${ack.seq}) instead of refusing it; restore stops`);
        }
      }
      return lastSeq();
    },
    messageAt: async (seq) => {
      const m = await link.jsm.streams.getMessage(stream, { seq });
      return m ? { data: m.data, headers: headerEntries(m.header) } : undefined;
    },
    abandon: () => link.abandon(),
  };
}

/** The envelope's headers as nats.js headers, keys kept exactly (case included), values in order. */
export function toMsgHdrs(envelope: Envelope): MsgHdrs | undefined {
  if (!envelope.headers || envelope.headers.length === 0) return undefined;
  const h = natsHeaders();
  // append() with the default exact match keeps the key as given; set()/canonical forms would rewrite it.
  for (const [key, values] of envelope.headers) for (const value of values) h.append(key, value);
  return h;
}

export function msgIdOf(envelope: Envelope): string | undefined {
  if (!envelope.headers) return undefined;
  // The server reads the first value of the exact header name.
  for (const [key, values] of envelope.headers) if (key === MSG_ID_HEADER && values.length > 0) return values[0];
  return undefined;
}

const UNREACHABLE_ERRORS = new Set(['TimeoutError', 'RequestError', 'NoResponders', 'ClosedConnectionError', 'ConnectionError', 'JetStreamNotEnabled', 'TargetUnreachableError']);

/**
 * Whether a failed publish or request means the target is (for now) out of reach: a timeout, a lost or
 * closed connection, no responders while JetStream restarts, "temporarily unavailable". A refusal by the
 * stream itself (limits, message size, a wrong expected header) is not: it would be refused again.
 */
export function isTargetUnreachable(error: unknown): boolean {
  if (!(error instanceof Error) || error instanceof JetvaultError) return false;
  if (error instanceof JetStreamApiError) return error.status === 503 || error.code === 10008;
  return UNREACHABLE_ERRORS.has(error.name);
}

export interface RepublishOptions {
  target: PublishTarget;
  /** Publish window. Default 256. */
  maxInFlight?: number;
  logger: Logger;
  signal?: AbortSignal;
  /** Called in order, once per message the target stored. */
  onPublished?: (envelope: Envelope, ack: PubAck) => void;
  /** Publishes of one repeated-id message that may still come back duplicate. Default 50. */
  duplicateRetries?: number;
  /** How long to wait for a lost target before failing with JV_CONNECT_FAILED. Default 60 s. */
  reconnectTimeoutMs?: number;
  /** The target was lost; restore waits for it (one call per loss). */
  onTargetLost?: (info: { error: string; confirmed: number }) => void;
  /** The target is back; `held` messages of this restore are in it and publishing continues after them. */
  onTargetBack?: (info: { waitedMs: number; held: number; resent: number }) => void;
  /** Clock in ms and sleep; injected so unit tests run on simulated time. */
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export interface RepublishResult {
  published: number;
  /** Messages whose Nats-Msg-Id repeated within the target's window and were published after waiting. */
  repeatedMsgIds: number;
  /** Whether the target's duplicate_window was lowered (and put back). */
  duplicateWindowLowered: boolean;
  /** Times the target was lost and publishing continued. */
  reconnects: number;
  /** Time spent waiting for a lost target, in ms. */
  reconnectMs: number;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

interface InFlight {
  envelope: Envelope;
  msgId: string | undefined;
  ack: Promise<PubAck>;
}

/** A publish that was pending when the target was lost, with what became of it. */
export interface PendingPublish {
  envelope: Envelope;
  outcome: PromiseSettledResult<PubAck>;
}

function publishFailed(stream: string, envelope: Envelope, why: string, cause?: unknown): JetvaultError {
  return new JetvaultError(
    'JV_PUBLISH_FAILED',
    `publishing message seq ${envelope.seq} (subject ${envelope.subject}) to stream ${stream} failed: ${why}`,
    cause === undefined ? undefined : { cause },
  );
}

function duplicateFailure(stream: string, envelope: Envelope): JetvaultError {
  return publishFailed(stream, envelope, `the server dropped it as a duplicate of an earlier message with ${MSG_ID_HEADER} ${JSON.stringify(msgIdOf(envelope))} already in the target`);
}

/**
 * How many of the publishes pending when the target was lost it holds, from its last sequence now and
 * the sequence of the last message it had confirmed. The target is the truth: a pending publish may have
 * been stored although its ack never came. Throws when the stream cannot be continued without a gap or a
 * duplicate: it lost confirmed messages, holds more than restore sent, stored pending publishes out of
 * order, or refused one for good.
 *
 * Assumptions (kept to what the archived configuration allows):
 * - restore is the only publisher into the target while it runs, so each message it stores takes the next
 *   sequence; last_seq counts stored messages whatever limits, discard 'old', rollups, interest or
 *   work-queue retention later remove (they never reuse a sequence), which is why the message count is
 *   not used. A message so removed cannot be compared at the boundary; the check is then skipped.
 * - discard 'new' on a full stream, a too large message, a wrong expected header: the stream refuses the
 *   publish with an API error, which fails the restore as before; it is not a lost target.
 * - a stream restore creates has no subject transform (target-stream.ts leaves it out); an existing one
 *   may have one, so the boundary comparison leaves the subject out.
 */
export function heldOfPending(stream: string, lastConfirmedSeq: number, targetLastSeq: number, pending: readonly PendingPublish[]): number {
  const held = targetLastSeq - lastConfirmedSeq;
  if (held < 0) {
    throw new JetvaultError(
      'JV_PUBLISH_FAILED',
      `target stream ${stream} now ends at seq ${targetLastSeq}, before seq ${lastConfirmedSeq} it had confirmed: it lost ${-held} confirmed messages (a crash before they reached its disk?); restore cannot continue without a gap`,
    );
  }
  for (const { envelope, outcome } of pending) {
    if (outcome.status === 'fulfilled' && outcome.value.duplicate) throw duplicateFailure(stream, envelope);
    if (outcome.status === 'rejected' && !isTargetUnreachable(outcome.reason)) throw publishFailed(stream, envelope, describeError(outcome.reason), outcome.reason);
  }
  if (held > pending.length) {
    throw new JetvaultError(
      'JV_PUBLISH_FAILED',
      `target stream ${stream} holds ${held} messages after seq ${lastConfirmedSeq}, the last one restore had confirmed, but restore had only ${pending.length} publishes pending; is another publisher writing to it?`,
    );
  }
  for (let j = 0; j < pending.length; j++) {
    const { envelope, outcome } = pending[j] as PendingPublish;
    if (outcome.status !== 'fulfilled') continue;
    const ack = outcome.value;
    if (ack.stream !== stream) throw publishFailed(stream, envelope, `it was stored by stream ${ack.stream} instead (subjects overlap)`);
    const expected = lastConfirmedSeq + j + 1;
    if (ack.seq !== expected || j >= held) {
      throw publishFailed(
        stream,
        envelope,
        `after losing the target it was stored at seq ${ack.seq} but belongs at seq ${expected} (the target holds ${held} of the ${pending.length} pending publishes): publishes were stored out of order, the target no longer equals the archive`,
      );
    }
  }
  return held;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Whether a stored message is the envelope restore published there: same bytes, same headers (every
 * value, in order). The subject is not compared: a target with a subject transform stores another one.
 */
export function isSameMessage(stored: TargetMessage, envelope: Envelope): boolean {
  return sameBytes(stored.data, envelope.data) && JSON.stringify(stored.headers ?? []) === JSON.stringify(envelope.headers ?? []);
}

/** Raised inside republish when the target is lost; recovered from, never seen by callers. */
class TargetLost extends Error {
  constructor(readonly reason: unknown) {
    super(describeError(reason));
  }
}

const noop = () => undefined;

export async function republish(source: AsyncIterable<Envelope>, options: RepublishOptions): Promise<RepublishResult> {
  const { target, logger, signal } = options;
  const maxInFlight = Math.max(1, options.maxInFlight ?? 256);
  const retries = Math.max(1, options.duplicateRetries ?? 50);
  const reconnectTimeoutMs = Math.max(0, options.reconnectTimeoutMs ?? DEFAULT_RECONNECT_TIMEOUT_MS);
  const now = options.now ?? (() => performance.now());
  const wait = options.sleep ?? sleep;
  const inFlight: InFlight[] = [];
  /** Nats-Msg-Id → publishes of it in flight. */
  const inFlightIds = new Map<string, number>();
  /** Nats-Msg-Id → when its last publish was acked; insertion order is ack order, so pruning is from the front. */
  const lastAcked = new Map<string, number>();
  let windowMs = 0;
  let originalWindowMs: number | undefined;
  let published = 0;
  let repeatedMsgIds = 0;
  /** The target's last sequence before the first publish (an appended stream is not empty). */
  let baseSeq = 0;
  /** The target sequence of the last message it confirmed, and that message. */
  let lastConfirmedSeq = 0;
  let lastConfirmed: Envelope | undefined;
  /** Once the target was lost and found again, every ack must take the next sequence (see accepted). */
  let resumed = false;
  let reconnects = 0;
  let reconnectMs = 0;
  /** Messages to publish again (not held by the target after a loss) before reading on from the source. */
  let replay: Envelope[] = [];
  let replayAt = 0;
  /** The message taken from the source (or replay) and not yet sent or stored. */
  let current: Envelope | undefined;

  const failed = (envelope: Envelope, why: string, cause?: unknown) => publishFailed(target.stream, envelope, why, cause);

  const send = (envelope: Envelope): Promise<PubAck> => {
    try {
      return target.publish(envelope.subject, envelope.data, toMsgHdrs(envelope));
    } catch (error) {
      // An invalid header key throws synchronously; it must fail in order like any other publish.
      return Promise.reject(error);
    }
  };

  const accepted = (envelope: Envelope, msgId: string | undefined, ack: PubAck) => {
    if (ack.stream !== target.stream) {
      throw failed(envelope, `it was stored by stream ${ack.stream} instead (subjects overlap)`);
    }
    if (resumed && ack.seq !== lastConfirmedSeq + 1) {
      // Continuing after a loss relies on the target's sequence; a gap means a message restore did not send.
      throw failed(envelope, `the target stored it at seq ${ack.seq}, expected seq ${lastConfirmedSeq + 1} after the messages it holds: is another publisher writing to it?`);
    }
    lastConfirmedSeq = ack.seq;
    lastConfirmed = envelope;
    if (msgId !== undefined) {
      lastAcked.delete(msgId);
      lastAcked.set(msgId, now());
    }
    published++;
    options.onPublished?.(envelope, ack);
  };

  const settleOne = async (): Promise<void> => {
    const item = inFlight[0] as InFlight;
    let ack: PubAck;
    try {
      ack = await item.ack;
    } catch (error) {
      // The item stays pending: whether the target holds it is for recovery to find out.
      if (isTargetUnreachable(error)) throw new TargetLost(error);
      throw failed(item.envelope, describeError(error), error);
    }
    inFlight.shift();
    if (item.msgId !== undefined) {
      const n = (inFlightIds.get(item.msgId) ?? 1) - 1;
      if (n === 0) inFlightIds.delete(item.msgId);
      else inFlightIds.set(item.msgId, n);
    }
    if (ack.duplicate) {
      // Its id was already in the target before this restore (append) or repeated unseen: stop rather than lose it.
      throw failed(item.envelope, `the server dropped it as a duplicate of an earlier message with ${MSG_ID_HEADER} ${JSON.stringify(item.msgId)} already in the target`);
    }
    accepted(item.envelope, item.msgId, ack);
  };

  const drain = async (): Promise<void> => {
    while (inFlight.length > 0) await settleOne();
  };

  const pruneIds = () => {
    // Ids acked longer ago than the (current) window cannot collide any more.
    const horizon = now() - windowMs - 1_000;
    for (const [id, at] of lastAcked) {
      if (at >= horizon) break;
      lastAcked.delete(id);
    }
  };

  const publishRepeated = async (envelope: Envelope, msgId: string, previousAt: number): Promise<void> => {
    await drain();
    // Re-read after draining: the in-flight publish of the same id has just been acked.
    previousAt = lastAcked.get(msgId) ?? previousAt;
    if (now() - previousAt <= windowMs + 10 && windowMs > MIN_DUPLICATE_WINDOW_MS) {
      originalWindowMs ??= windowMs;
      logger.info(
        { stream: target.stream, msgId, seq: envelope.seq, fromMs: windowMs, toMs: MIN_DUPLICATE_WINDOW_MS },
        'repeated Nats-Msg-Id inside the duplicate window: lowering the target duplicate_window for the restore',
      );
      try {
        await target.setDuplicateWindowMs(MIN_DUPLICATE_WINDOW_MS);
      } catch (error) {
        if (isTargetUnreachable(error)) throw new TargetLost(error);
        throw failed(envelope, `cannot lower duplicate_window of the target to publish a repeated ${MSG_ID_HEADER}: ${describeError(error)}`, error);
      }
      windowMs = MIN_DUPLICATE_WINDOW_MS;
    }
    const remaining = previousAt + windowMs + 10 - now();
    if (remaining > 0) await wait(remaining, signal);
    for (let attempt = 1; ; attempt++) {
      const pending = send(envelope);
      let ack: PubAck;
      try {
        ack = await pending;
      } catch (error) {
        if (isTargetUnreachable(error)) {
          // Stored or not: recovery decides, as for any pending publish.
          inFlight.push({ envelope, msgId, ack: pending });
          inFlightIds.set(msgId, (inFlightIds.get(msgId) ?? 0) + 1);
          current = undefined;
          throw new TargetLost(error);
        }
        throw failed(envelope, describeError(error), error);
      }
      if (!ack.duplicate) {
        current = undefined;
        repeatedMsgIds++;
        accepted(envelope, msgId, ack);
        return;
      }
      if (attempt >= retries) {
        throw failed(envelope, `the server still treats ${MSG_ID_HEADER} ${JSON.stringify(msgId)} as a duplicate after ${attempt} attempts`);
      }
      // The server forgets ids on a timer, not exactly at the window's end: wait a little and try again.
      await wait(Math.min(50 * attempt, 500), signal);
    }
  };

  const announceLost = (reason: unknown, pending: number): number => {
    const error = describeError(reason);
    logger.warn({ stream: target.stream, error, confirmed: published, pending, reconnectTimeoutMs }, TARGET_LOST_MESSAGE);
    options.onTargetLost?.({ error, confirmed: published });
    return now();
  };

  const announceBack = (lostAt: number, heldPending: number, resent: number): void => {
    reconnects++;
    const waitedMs = Math.max(0, now() - lostAt);
    reconnectMs += waitedMs;
    logger.info({ stream: target.stream, waitedMs: Math.round(waitedMs), held: published, heldPending, resent }, 'the target is back: continuing after the last message it holds');
    options.onTargetBack?.({ waitedMs, held: published, resent });
  };

  /**
   * Retries `attempt` while the target is unreachable, with backoff, until `deadline`. With `announce`, a
   * first failure is a loss of its own (logged and reported like one; nothing is pending then).
   */
  const untilReachable = async <T>(attempt: (timeoutMs: number) => Promise<T>, deadline: number, what: string, announce = false): Promise<T> => {
    let delay: number = RECONNECT_BACKOFF_MS.first;
    let lostAt: number | undefined;
    for (let n = 1; ; n++) {
      signal?.throwIfAborted();
      try {
        const result = await attempt(Math.max(1, Math.min(PROBE_TIMEOUT_MS, deadline - now())));
        if (lostAt !== undefined) announceBack(lostAt, 0, 0);
        return result;
      } catch (error) {
        if (!isTargetUnreachable(error)) throw error;
        if (announce && lostAt === undefined) lostAt = announceLost(error, 0);
        const left = deadline - now();
        if (left <= 0) {
          throw new JetvaultError(
            'JV_CONNECT_FAILED',
            `target stream ${target.stream} could not be reached for ${Number((reconnectTimeoutMs / 1000).toFixed(1))} s (reconnect timeout) ${what}: ${describeError(error)}; it holds the first ${published} messages of this restore`,
            { cause: error },
          );
        }
        logger.debug({ stream: target.stream, attempt: n, error: describeError(error), retryInMs: Math.min(delay, left) }, 'target still unreachable');
        await wait(Math.min(delay, left), signal);
        delay = Math.min(delay * 2, RECONNECT_BACKOFF_MS.max);
      }
    }
  };

  /**
   * After a loss: stop sending, let every pending publish settle (a connection restore owns is closed, so
   * they fail at once and nothing it buffered is sent later), wait with backoff until the target answers,
   * then ask it how far it got. A probe publish the server refuses goes first, so publishes still queued
   * on the server are stored (or gone) before the stream's last sequence is read; the message at that
   * sequence must be the one restore expects there. Pending publishes the target holds count as published;
   * the rest, then the message taken but not sent, are published again, in order.
   */
  const recover = async (lost: TargetLost): Promise<void> => {
    const lostAt = announceLost(lost.reason, inFlight.length);
    const deadline = lostAt + reconnectTimeoutMs;
    await target.abandon?.();
    const outcomes = await Promise.allSettled(inFlight.map((f) => f.ack));
    const pending: PendingPublish[] = inFlight.map((f, i) => ({ envelope: f.envelope, outcome: outcomes[i] as PromiseSettledResult<PubAck> }));
    const probeSubject = inFlight[0]?.envelope.subject ?? current?.subject;
    let found: { lastSeq: number; stored: TargetMessage | undefined };
    try {
      found = await untilReachable(
        async (timeoutMs) => {
          const lastSeq = await target.lastSeq(probeSubject, timeoutMs);
          return { lastSeq, stored: lastSeq > baseSeq ? await target.messageAt(lastSeq) : undefined };
        },
        deadline,
        'after losing it',
      );
    } catch (error) {
      if (error instanceof JetvaultError || (signal?.aborted && error === signal.reason)) throw error;
      throw new JetvaultError('JV_PUBLISH_FAILED', `target stream ${target.stream} cannot be read after losing it: ${describeError(error)}`, { cause: error });
    }
    const { lastSeq, stored } = found;
    const held = heldOfPending(target.stream, lastConfirmedSeq, lastSeq, pending);
    const expected = held > 0 ? pending[held - 1]?.envelope : lastConfirmed;
    if (stored && expected && !isSameMessage(stored, expected)) {
      throw new JetvaultError(
        'JV_PUBLISH_FAILED',
        `target stream ${target.stream} holds at seq ${lastSeq} a message that is not archived message seq ${expected.seq}, which restore published there: is another publisher writing to it?`,
      );
    }
    for (let j = 0; j < held; j++) {
      const item = inFlight[j] as InFlight;
      accepted(item.envelope, item.msgId, { stream: target.stream, seq: lastConfirmedSeq + 1, duplicate: false });
    }
    const again = inFlight.slice(held).map((f) => f.envelope);
    if (current) again.push(current);
    for (let i = replayAt; i < replay.length; i++) again.push(replay[i] as Envelope);
    replay = again;
    replayAt = 0;
    current = undefined;
    inFlight.length = 0;
    inFlightIds.clear();
    resumed = true;
    announceBack(lostAt, held, pending.length - held);
  };

  const iterator = source[Symbol.asyncIterator]();
  let primary: unknown;
  try {
    // The target may be lost before the first publish too (just after it was prepared).
    const startDeadline = now() + reconnectTimeoutMs;
    windowMs = await untilReachable(() => target.duplicateWindowMs(), startDeadline, 'before publishing', true);
    baseSeq = lastConfirmedSeq = await untilReachable((timeoutMs) => target.lastSeq(undefined, timeoutMs), startDeadline, 'before publishing', true);
    for (;;) {
      try {
        for (;;) {
          let envelope: Envelope;
          if (replayAt < replay.length) envelope = replay[replayAt++] as Envelope;
          else {
            const next = await iterator.next();
            if (next.done) break;
            envelope = next.value;
          }
          current = envelope;
          signal?.throwIfAborted();
          const msgId = msgIdOf(envelope);
          const previousAt = msgId === undefined ? undefined : lastAcked.get(msgId);
          // Only acked publishes are in lastAcked; an id repeated inside the window may still be in flight.
          const repeatedInFlight = msgId !== undefined && inFlightIds.has(msgId);
          if (msgId !== undefined && (previousAt !== undefined || repeatedInFlight)) {
            await publishRepeated(envelope, msgId, previousAt ?? now());
            continue;
          }
          if (inFlight.length >= maxInFlight) {
            await settleOne();
            if (published % 4096 === 0 && lastAcked.size > 0) pruneIds();
          }
          const ack = send(envelope);
          ack.catch(noop); // awaited in order by settleOne; this only silences the meantime
          inFlight.push({ envelope, msgId, ack });
          current = undefined;
          if (msgId !== undefined) inFlightIds.set(msgId, (inFlightIds.get(msgId) ?? 0) + 1);
        }
        await drain();
        break;
      } catch (error) {
        if (!(error instanceof TargetLost)) throw error;
        await recover(error);
      }
    }
  } catch (error) {
    primary = error;
    // Let what is already sent finish, so the count and the server agree before we report.
    await Promise.allSettled(inFlight.map((f) => f.ack));
    await iterator.return?.().catch(noop);
    throw error;
  } finally {
    if (originalWindowMs !== undefined) {
      const windowBack = originalWindowMs;
      try {
        // After a loss the target may just be coming back: wait for it as for a publish (not after a failure).
        if (primary === undefined) {
          await untilReachable(() => target.setDuplicateWindowMs(windowBack), now() + reconnectTimeoutMs, 'to put its duplicate_window back', true);
        } else await target.setDuplicateWindowMs(windowBack);
        logger.info({ stream: target.stream, duplicateWindowMs: windowBack }, 'restored the target duplicate_window');
      } catch (error) {
        logger.error({ stream: target.stream, error: describeError(error), duplicateWindowMs: windowBack }, 'could not restore the target duplicate_window');
        if (primary === undefined) {
          // eslint-disable-next-line no-unsafe-finally
          throw new JetvaultError('JV_PUBLISH_FAILED', `all messages were published, but duplicate_window of stream ${target.stream} could not be set back to ${windowBack} ms`, { cause: error });
        }
      }
    }
  }
  return { published, repeatedMsgIds, duplicateWindowLowered: originalWindowMs !== undefined, reconnects, reconnectMs };
}
