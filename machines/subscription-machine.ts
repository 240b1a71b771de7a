/**
 * The consumer subscription: binding (bind to the durable consumer, or create it) → consuming ⇄ paused
 * (connection down; nats.js resumes the pull by itself) → rebinding (consumer deleted: bind again after
 * a backoff, re-creating it) → stopped. A stream that does not exist or an unusable consumer is `failed`.
 */
import type { Consumer, ConsumerInfo, JsMsg, StreamInfo } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { assign, fromCallback, sendParent, setup } from 'xstate';
import { exponentialJitter } from '../src/capture/backoff.js';
import { JetvaultError } from '../src/errors.js';
import {
  bindConsumer,
  consumeMessages,
  JETVAULT_CONSUMER_DESCRIPTION,
  MAX_PULL_BATCH,
  pullBatchFor,
  type ConsumeEvent,
} from './actors/subscription-actors.js';

export interface SubscriptionInput {
  nc: NatsConnection;
  stream: string;
  consumer: string;
  create: { ackWaitMs: number; maxAckPending: number };
  /** Re-create a deleted consumer jetvault did not create (one it created is always re-created). */
  recreate: boolean;
  /** The sequence a re-created consumer starts at: nothing captured already is delivered again. */
  resumeSeq: () => number;
  onMessage: (message: JsMsg) => void;
  /** Messages pulled ahead; without it, sized at bind by the stream's average message size (pullBatchFor). */
  batch?: number;
}

export interface SubscriptionContext extends SubscriptionInput {
  /** The batch consume() pulls with, set at bind. */
  pullBatch: number;
  handle: Consumer | undefined;
  info: ConsumerInfo | undefined;
  attempts: number;
  error: unknown;
}

export type SubscriptionEvent = ConsumeEvent | { type: 'pause' } | { type: 'resume' } | { type: 'stop' };

/**
 * Why: nats.js' consume() reports a deleted consumer only after two missed idle heartbeats (about 30-45 s
 * with its defaults; nats-server 2.9 does not answer a waiting pull with "409 Consumer Deleted"), and the
 * capture stood still that long. The server's deletion advisory says it at once. Without permission for
 * advisories (or without a real connection) this watches nothing and the heartbeat check still applies.
 */
export const watchConsumerDeleted = fromCallback<{ type: 'noop' }, { nc: NatsConnection; stream: string; consumer: string }>(({ input, sendBack }) => {
  let sub: { unsubscribe(): void } | undefined;
  try {
    sub = input.nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.DELETED.${input.stream}.${input.consumer}`, {
      callback: (error) => {
        if (!error) sendBack({ type: 'consumer.lost', reason: 'consumer_deleted' } satisfies ConsumeEvent);
      },
    });
  } catch {
    sub = undefined;
  }
  return () => sub?.unsubscribe();
});

export type SubscriptionParentEvent =
  | { type: 'subscription.bound'; info: ConsumerInfo; streamInfo: StreamInfo; created: boolean }
  | { type: 'subscription.lost'; reason: string }
  | { type: 'subscription.failed'; error: unknown };

export const subscriptionMachine = setup({
  types: {
    context: {} as SubscriptionContext,
    input: {} as SubscriptionInput,
    events: {} as SubscriptionEvent,
  },
  actors: { bindConsumer, consumeMessages, watchConsumerDeleted },
  guards: {
    // A missing stream or a consumer of the wrong kind will not fix itself by retrying.
    permanentBindError: ({ event }) => (event as { error?: unknown }).error instanceof JetvaultError,
  },
  delays: {
    rebindBackoff: ({ context }) => exponentialJitter(context.attempts, { baseMs: 250, maxMs: 10_000 }),
  },
  actions: {
    announceLost: sendParent(({ event }) => ({
      type: 'subscription.lost',
      reason: event.type === 'consumer.lost' ? event.reason : 'unknown',
    }) satisfies SubscriptionParentEvent),
    announceFailed: sendParent(({ context }) => ({ type: 'subscription.failed', error: context.error }) satisfies SubscriptionParentEvent),
  },
}).createMachine({
  id: 'subscription',
  context: ({ input }) => ({ ...input, pullBatch: input.batch ?? MAX_PULL_BATCH, handle: undefined, info: undefined, attempts: 0, error: undefined }),
  initial: 'binding',
  on: { stop: '.stopped' },
  states: {
    binding: {
      entry: assign({ attempts: ({ context }) => context.attempts + 1 }),
      invoke: {
        src: 'bindConsumer',
        input: ({ context }) => ({
          nc: context.nc,
          stream: context.stream,
          consumer: context.consumer,
          create: context.create,
          ...(context.info
            ? {
                rebind: {
                  previous: context.info.config,
                  startSeq: context.resumeSeq(),
                  allowed: context.recreate || context.info.config.description === JETVAULT_CONSUMER_DESCRIPTION,
                },
              }
            : {}),
        }),
        onDone: {
          target: 'active',
          actions: [
            assign({
              handle: ({ event }) => event.output.consumer,
              info: ({ event }) => event.output.info,
              pullBatch: ({ context, event }) => context.batch ?? pullBatchFor(event.output.streamInfo.state),
              attempts: 0,
            }),
            sendParent(({ event }) => ({
              type: 'subscription.bound',
              info: event.output.info,
              streamInfo: event.output.streamInfo,
              created: event.output.created,
            }) satisfies SubscriptionParentEvent),
          ],
        },
        onError: [
          { guard: 'permanentBindError', target: 'failed', actions: assign({ error: ({ event }) => event.error }) },
          { target: 'rebinding', actions: assign({ error: ({ event }) => event.error }) },
        ],
      },
    },
    active: {
      invoke: [
        {
          src: 'consumeMessages',
          input: ({ context }) => ({ consumer: context.handle!, onMessage: context.onMessage, batch: context.pullBatch }),
        },
        { src: 'watchConsumerDeleted', input: ({ context }) => ({ nc: context.nc, stream: context.stream, consumer: context.consumer }) },
      ],
      on: { 'consumer.lost': { target: 'rebinding', actions: 'announceLost' } },
      initial: 'consuming',
      states: {
        consuming: { on: { pause: 'paused' } },
        paused: { on: { resume: 'consuming' } },
      },
    },
    rebinding: {
      after: { rebindBackoff: 'binding' },
    },
    stopped: { type: 'final' },
    failed: { type: 'final', entry: 'announceFailed' },
  },
});
