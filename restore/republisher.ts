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
 */
import { headers as natsHeaders, millis, nanos, type MsgHdrs } from '@nats-io/transport-node';
import type { JetStreamClient, JetStreamManager, PubAck } from '@nats-io/jetstream';
import type { Envelope } from '../src/archive/envelope.js';
import { JetvaultError, describeError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';

export const MSG_ID_HEADER = 'Nats-Msg-Id';
/** The smallest duplicate_window the server accepts (100 ms). */
export const MIN_DUPLICATE_WINDOW_MS = 100;

/** What the republisher needs from the target stream; natsPublishTarget() is the real one. */
export interface PublishTarget {
  readonly stream: string;
  publish(subject: string, data: Uint8Array, headers: MsgHdrs | undefined): Promise<PubAck>;
  duplicateWindowMs(): Promise<number>;
  setDuplicateWindowMs(ms: number): Promise<void>;
}

export function natsPublishTarget(js: JetStreamClient, jsm: JetStreamManager, stream: string): PublishTarget {
  return {
    stream,
    publish: (subject, data, headers) => js.publish(subject, data, headers ? { headers } : undefined),
    duplicateWindowMs: async () => millis((await jsm.streams.info(stream)).config.duplicate_window),
    setDuplicateWindowMs: async (ms) => {
      await jsm.streams.update(stream, { duplicate_window: nanos(ms) });
    },
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

const noop = () => undefined;

export async function republish(source: AsyncIterable<Envelope>, options: RepublishOptions): Promise<RepublishResult> {
  const { target, logger, signal } = options;
  const maxInFlight = Math.max(1, options.maxInFlight ?? 256);
  const retries = Math.max(1, options.duplicateRetries ?? 50);
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

  const failed = (envelope: Envelope, why: string, cause?: unknown) =>
    new JetvaultError('JV_PUBLISH_FAILED', `publishing message seq ${envelope.seq} (subject ${envelope.subject}) to stream ${target.stream} failed: ${why}`, cause === undefined ? undefined : { cause });

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
    if (msgId !== undefined) {
      lastAcked.delete(msgId);
      lastAcked.set(msgId, now());
    }
    published++;
    options.onPublished?.(envelope, ack);
  };

  const settleOne = async (): Promise<void> => {
    const item = inFlight.shift() as InFlight;
    if (item.msgId !== undefined) {
      const n = (inFlightIds.get(item.msgId) ?? 1) - 1;
      if (n === 0) inFlightIds.delete(item.msgId);
      else inFlightIds.set(item.msgId, n);
    }
    let ack: PubAck;
    try {
      ack = await item.ack;
    } catch (error) {
      throw failed(item.envelope, describeError(error), error);
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
        throw failed(envelope, `cannot lower duplicate_window of the target to publish a repeated ${MSG_ID_HEADER}: ${describeError(error)}`, error);
      }
      windowMs = MIN_DUPLICATE_WINDOW_MS;
    }
    const remaining = previousAt + windowMs + 10 - now();
    if (remaining > 0) await wait(remaining, signal);
    repeatedMsgIds++;
    for (let attempt = 1; ; attempt++) {
      let ack: PubAck;
      try {
        ack = await send(envelope);
      } catch (error) {
        throw failed(envelope, describeError(error), error);
      }
      if (!ack.duplicate) {
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

  let primary: unknown;
  try {
    windowMs = await target.duplicateWindowMs();
    for await (const envelope of source) {
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
      if (msgId !== undefined) inFlightIds.set(msgId, (inFlightIds.get(msgId) ?? 0) + 1);
    }
    await drain();
  } catch (error) {
    primary = error;
    // Let what is already sent finish, so the count and the server agree before we report.
    await Promise.allSettled(inFlight.map((f) => f.ack));
    throw error;
  } finally {
    if (originalWindowMs !== undefined) {
      try {
        await target.setDuplicateWindowMs(originalWindowMs);
        logger.info({ stream: target.stream, duplicateWindowMs: originalWindowMs }, 'restored the target duplicate_window');
      } catch (error) {
        logger.error({ stream: target.stream, error: describeError(error), duplicateWindowMs: originalWindowMs }, 'could not restore the target duplicate_window');
        if (primary === undefined) {
          // eslint-disable-next-line no-unsafe-finally
          throw new JetvaultError('JV_PUBLISH_FAILED', `all messages were published, but duplicate_window of stream ${target.stream} could not be set back to ${originalWindowMs} ms`, { cause: error });
        }
      }
    }
  }
  return { published, repeatedMsgIds, duplicateWindowLowered: originalWindowMs !== undefined };
}
