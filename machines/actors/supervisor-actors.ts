/** The I/O the capture supervisor invokes besides its child machines: the clock tick and the `--once` check. */
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { fromCallback, fromPromise } from 'xstate';
import { storedSeqsAbove, type RecoveredSeqs } from '../../src/capture/recover-stored.js';
import type { Store } from '../../src/stores/store.js';

/** Asks the store whether it can be used at all (bucket exists, credentials accepted). */
export const checkStore = fromPromise<void, { store: Store }>(async ({ input }) => {
  await input.store.check?.();
});

/** Ticks drive the blocks' time-based seals (age, idle, ack deadline) without a timer per block. */
export const ticker = fromCallback<{ type: 'noop' }, { intervalMs: number }>(({ input, sendBack }) => {
  const timer = setInterval(() => sendBack({ type: 'tick' }), input.intervalMs);
  return () => clearInterval(timer);
});

/** After a crash: which sequences above the ack floor the archive already holds (see recover-stored.ts). */
export const recoverStored = fromPromise<RecoveredSeqs & { durationMs: number }, { needed: boolean; store: Store; stream: string; floorSeq: number }>(
  async ({ input, signal }) => {
    const started = Date.now();
    if (!input.needed) return { seqs: [], blocks: 0, unreadable: 0, durationMs: 0 };
    const found = await storedSeqsAbove(input.store, input.stream, input.floorSeq, signal);
    return { ...found, durationMs: Date.now() - started };
  },
);

export interface CaughtUpInput {
  nc: NatsConnection;
  stream: string;
  consumer: string;
  /** The stream's last sequence when capture bound: `--once` captures up to here. */
  lastSeqAtStart: number;
  /** Messages this capture holds unacked right now. */
  held: () => number;
  /** The highest stream sequence this capture received so far. */
  highestSeq?: () => number;
  intervalMs: number;
}

/** How often the highest sequence received is looked at between two polls of the server. */
const LOCAL_CHECK_MS = 5;

/**
 * `--once`: polls the consumer until everything pending at start was delivered and every message the
 * server counts as unacknowledged is one this capture holds (none left with an earlier, crashed run).
 * The server is asked at once when the last sequence at start arrives, not at the next poll: the end of a
 * --once run waited up to a poll interval (100 ms) for nothing.
 */
export const watchCaughtUp = fromCallback<{ type: 'noop' }, CaughtUpInput>(({ input, sendBack }) => {
  let stopped = false;
  let checking = false;
  let timer: NodeJS.Timeout | undefined;
  let reportedWaiting = -1;
  let lastObserved = '';
  let askedAtSeq = -1;
  const local = input.highestSeq
    ? setInterval(() => {
        const seq = input.highestSeq!();
        if (checking || stopped || seq < input.lastSeqAtStart || seq === askedAtSeq) return;
        askedAtSeq = seq;
        if (timer) clearTimeout(timer);
        void check();
      }, LOCAL_CHECK_MS)
    : undefined;
  const check = async () => {
    if (stopped || checking) return;
    checking = true;
    try {
      const jsm = await jetstreamManager(input.nc);
      const info = await jsm.consumers.info(input.stream, input.consumer);
      const delivered = info.num_pending === 0 || info.delivered.stream_seq >= input.lastSeqAtStart;
      const held = input.held();
      if (!stopped && delivered && info.num_ack_pending <= held) {
        sendBack({ type: 'once.caught-up' });
        return;
      }
      // Only when it holds still between two polls: messages on their way to the client count as unacked on the
      // server before they reach the capture, and 'waiting' makes the capture seal what it holds.
      const observed = `${held}/${info.num_ack_pending}`;
      const still = observed === lastObserved;
      lastObserved = observed;
      // Said once per change, not on every poll.
      if (!stopped && delivered && still && info.num_ack_pending > held && info.num_ack_pending - held !== reportedWaiting) {
        reportedWaiting = info.num_ack_pending - held;
        sendBack({ type: 'once.waiting', unacked: info.num_ack_pending - held, ackWaitNs: info.config.ack_wait ?? 0 });
      }
    } catch {
      // Connection blips are the connection machine's business; just look again.
    } finally {
      checking = false;
    }
    if (!stopped) timer = setTimeout(check, input.intervalMs);
  };
  timer = setTimeout(check, 0);
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    if (local) clearInterval(local);
  };
});

export interface ConsumerInfoInput {
  nc: NatsConnection;
  stream: string;
  consumer: string;
  intervalMs: number;
}

/** Reads the consumer's lag and unacknowledged count now and then, for stats and metrics. */
export const watchConsumerInfo = fromCallback<{ type: 'noop' }, ConsumerInfoInput>(({ input, sendBack }) => {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const poll = async () => {
    try {
      const jsm = await jetstreamManager(input.nc);
      const info = await jsm.consumers.info(input.stream, input.consumer);
      if (!stopped) sendBack({ type: 'consumer.info', pending: info.num_pending, ackPending: info.num_ack_pending, ackFloor: info.ack_floor.stream_seq });
    } catch {
      // Unavailable for a moment (reconnecting): the next poll tells.
    }
    if (!stopped) timer = setTimeout(poll, input.intervalMs);
  };
  timer = setTimeout(poll, 0);
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
});
