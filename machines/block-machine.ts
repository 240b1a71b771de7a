/**
 * One block's lifecycle: open → sealing → storing → acking → acked, with storing → retrying → storing
 * on a failed store. Its messages are acked only after the store confirmed the write; a permanent store
 * error (or a retry budget spent) ends in `failed`, never in an ack. `abandoned` is where shutdown leaves a
 * block it could not store in time: its messages stay unacked and are redelivered later.
 */
import { assign, sendParent, setup } from 'xstate';
import type { SealReason } from '../src/archive/manifest.js';
import { exponentialJitter } from '../src/capture/backoff.js';
import type { BlockBuffer, SealedBlock } from '../src/capture/block-buffer.js';
import type { CaptureEvent } from '../src/capture/events.js';
import { describeError, isTransient } from '../src/errors.js';
import type { Store } from '../src/stores/store.js';
import { ackMessages, keepAlive, sealBlock, storeSealedBlock } from './actors/block-actors.js';

export interface BlockLimits {
  maxAgeMs: number;
  idleMs: number;
  /** Seal before the oldest message's ack_wait runs out (ack_wait minus a safety margin). */
  ackDeadlineMs: number;
  /** How often messages of a block being stored are marked in progress (resets their ack timer). */
  keepAliveMs: number;
}

export interface BlockRetryPolicy {
  baseMs: number;
  maxMs: number;
  maxAttempts: number;
  random?: () => number;
}

export interface BlockInput {
  id: string;
  buffer: BlockBuffer<unknown>;
  store: Store;
  limits: BlockLimits;
  retry: BlockRetryPolicy;
  /** Makes sure acks reached the server (nc.flush()). */
  flush: () => Promise<void>;
  now: () => number;
}

export interface BlockContext extends BlockInput {
  sealReason: SealReason | undefined;
  sealed: SealedBlock | undefined;
  attempts: number;
  retryDelayMs: number;
  storeStartedAt: number;
  lastError: string | undefined;
  /** The error itself, handed to the supervisor so its code and cause survive. */
  lastErrorCause: unknown;
}

export type BlockEvent = { type: 'tick' } | { type: 'seal'; reason: SealReason } | { type: 'abandon' };

/** Sent to the parent (the capture supervisor). */
export type BlockParentEvent =
  | { type: 'block.event'; event: CaptureEvent }
  | {
      type: 'block.finished';
      blockId: string;
      outcome: 'acked' | 'failed' | 'abandoned';
      messages: number;
      storedBytes: number;
      error?: string;
      cause?: unknown;
    };

/** The time limits a tick checks, one per seal reason; the supervisor asks the same before it sends a tick. */
const timeLimits = {
  ackDeadline: (buffer: BlockBuffer<unknown>, limits: BlockLimits, now: number) => now - buffer.openedAt >= limits.ackDeadlineMs,
  maxAge: (buffer: BlockBuffer<unknown>, limits: BlockLimits, now: number) => now - buffer.openedAt >= limits.maxAgeMs,
  idle: (buffer: BlockBuffer<unknown>, limits: BlockLimits, now: number) => now - buffer.lastAppendAt >= limits.idleMs,
};

/** Whether a tick could seal this open block now. */
export function timeLimitReached(buffer: BlockBuffer<unknown>, limits: BlockLimits, now: number): boolean {
  return timeLimits.ackDeadline(buffer, limits, now) || timeLimits.maxAge(buffer, limits, now) || timeLimits.idle(buffer, limits, now);
}

const blockEvent = (event: CaptureEvent): BlockParentEvent => ({ type: 'block.event', event });

const finishedEvent = (context: BlockContext, outcome: 'acked' | 'failed' | 'abandoned'): BlockParentEvent => ({
  type: 'block.finished',
  blockId: context.id,
  outcome,
  messages: context.buffer.count,
  storedBytes: context.sealed?.body.length ?? 0,
  ...(context.lastError ? { error: context.lastError, cause: context.lastErrorCause } : {}),
});

export const blockMachine = setup({
  types: {
    context: {} as BlockContext,
    input: {} as BlockInput,
    events: {} as BlockEvent,
  },
  actors: { sealBlock, storeSealedBlock, ackMessages, keepAlive },
  guards: {
    ackDeadlineReached: ({ context }) => timeLimits.ackDeadline(context.buffer, context.limits, context.now()),
    maxAgeReached: ({ context }) => timeLimits.maxAge(context.buffer, context.limits, context.now()),
    idle: ({ context }) => timeLimits.idle(context.buffer, context.limits, context.now()),
    permanentError: ({ event }) => !isTransient((event as { error?: unknown }).error),
    attemptsExhausted: ({ context }) => context.attempts >= context.retry.maxAttempts,
  },
  actions: {
    // New messages for this split key go to a new block from here on.
    closeBuffer: ({ context }) => {
      context.buffer.closed = true;
    },
    recordError: assign({
      lastError: ({ event }) => describeError((event as { error?: unknown }).error),
      lastErrorCause: ({ event }) => (event as { error?: unknown }).error,
    }),
    reportSealing: sendParent(({ context: c }) =>
      blockEvent({ type: 'block.sealing', blockId: c.id, messages: c.buffer.count, reason: c.sealReason ?? 'drain' }),
    ),
    reportSealed: sendParent(({ context: c }) =>
      blockEvent({
        type: 'block.sealed',
        blockId: c.id,
        key: c.sealed!.key,
        messages: c.buffer.count,
        bytes: c.sealed!.manifest.encodedBytes,
        reason: c.sealReason ?? 'drain',
      }),
    ),
    reportRetry: sendParent(({ context: c }) =>
      blockEvent({
        type: 'block.retry',
        blockId: c.id,
        key: c.sealed!.key,
        attempt: c.attempts,
        delayMs: c.retryDelayMs,
        error: c.lastError ?? 'unknown error',
      }),
    ),
    reportStored: sendParent(({ context: c }) =>
      blockEvent({
        type: 'block.stored',
        blockId: c.id,
        key: c.sealed!.key,
        messages: c.buffer.count,
        storedBytes: c.sealed!.body.length,
        attempts: c.attempts,
        durationMs: c.now() - c.storeStartedAt,
      }),
    ),
    reportAcked: sendParent(({ context: c }) =>
      blockEvent({ type: 'block.acked', blockId: c.id, key: c.sealed!.key, messages: c.buffer.count }),
    ),
    reportFailed: sendParent(({ context: c }) =>
      blockEvent({ type: 'block.failed', blockId: c.id, key: c.sealed?.key ?? '', error: c.lastError ?? 'unknown error' }),
    ),
    reportAbandoned: sendParent(({ context: c }) =>
      blockEvent({ type: 'block.abandoned', blockId: c.id, ...(c.sealed ? { key: c.sealed.key } : {}), messages: c.buffer.count }),
    ),
    finishAcked: sendParent(({ context }) => finishedEvent(context, 'acked')),
    finishFailed: sendParent(({ context }) => finishedEvent(context, 'failed')),
    finishAbandoned: sendParent(({ context }) => finishedEvent(context, 'abandoned')),
  },
  delays: {
    retryDelay: ({ context }) => context.retryDelayMs,
  },
}).createMachine({
  id: 'block',
  context: ({ input }) => ({
    ...input,
    sealReason: undefined,
    sealed: undefined,
    attempts: 0,
    retryDelayMs: 0,
    storeStartedAt: 0,
    lastError: undefined,
    lastErrorCause: undefined,
  }),
  initial: 'open',
  on: {
    abandon: { target: '.abandoned' },
  },
  states: {
    open: {
      on: {
        seal: { target: 'sealing', actions: assign({ sealReason: ({ event }) => event.reason }) },
        tick: [
          { guard: 'ackDeadlineReached', target: 'sealing', actions: assign({ sealReason: 'ack-deadline' }) },
          { guard: 'maxAgeReached', target: 'sealing', actions: assign({ sealReason: 'max-age' }) },
          { guard: 'idle', target: 'sealing', actions: assign({ sealReason: 'idle' }) },
        ],
      },
    },
    sealing: {
      entry: ['closeBuffer', 'reportSealing'],
      invoke: {
        src: 'sealBlock',
        input: ({ context }) => ({ buffer: context.buffer, reason: context.sealReason ?? 'drain' }),
        onDone: {
          target: 'persisting',
          actions: [
            assign({ sealed: ({ event }) => event.output, storeStartedAt: ({ context }) => context.now() }),
            'reportSealed',
          ],
        },
        onError: { target: 'failed', actions: 'recordError' },
      },
    },
    // Storing and retrying share one parent so the in-progress acks keep running across retries.
    persisting: {
      initial: 'storing',
      invoke: {
        src: 'keepAlive',
        input: ({ context }) => ({
          acks: context.buffer.acks,
          intervalMs: context.limits.keepAliveMs,
          now: context.now() - context.buffer.openedAt >= context.limits.keepAliveMs,
        }),
      },
      states: {
        storing: {
          entry: assign({ attempts: ({ context }) => context.attempts + 1 }),
          invoke: {
            src: 'storeSealedBlock',
            input: ({ context }) => ({ store: context.store, block: context.sealed! }),
            onDone: { target: '#block.acking' },
            onError: [
              { guard: 'permanentError', target: '#block.failed', actions: 'recordError' },
              { guard: 'attemptsExhausted', target: '#block.failed', actions: 'recordError' },
              { target: 'retrying', actions: 'recordError' },
            ],
          },
        },
        retrying: {
          entry: [
            assign({
              retryDelayMs: ({ context }) => exponentialJitter(context.attempts, context.retry),
            }),
            'reportRetry',
          ],
          after: { retryDelay: { target: 'storing' } },
        },
      },
    },
    acking: {
      entry: 'reportStored',
      invoke: {
        src: 'ackMessages',
        input: ({ context }) => ({ acks: context.buffer.acks, flush: context.flush }),
        onDone: { target: 'acked' },
        // The block is stored; unacked messages come back and overwrite the same key.
        onError: { target: 'abandoned', actions: 'recordError' },
      },
    },
    acked: {
      type: 'final',
      entry: [
        'reportAcked',
        'finishAcked',
      ],
    },
    failed: {
      type: 'final',
      entry: [
        'reportFailed',
        'finishFailed',
      ],
    },
    abandoned: {
      type: 'final',
      entry: [
        'closeBuffer',
        'reportAbandoned',
        'finishAbandoned',
      ],
    },
  },
});
