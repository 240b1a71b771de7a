/** The I/O the subscription machine invokes: bind (or create) the durable consumer, consume from it. */
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  type Consumer,
  type ConsumerConfig,
  type ConsumerInfo,
  type JsMsg,
  type StreamInfo,
} from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { fromCallback, fromPromise } from 'xstate';
import { JetvaultError } from '../../src/errors.js';

export interface BindInput {
  nc: NatsConnection;
  stream: string;
  consumer: string;
  /** Settings for a consumer jetvault creates. */
  create: { ackWaitMs: number; maxAckPending: number };
  /**
   * Set when binding again after the consumer was lost: if it is gone, it is re-created (with its former
   * settings) only when `allowed`, starting at `startSeq` so that what was captured is not delivered again.
   */
  rebind?: { previous: ConsumerConfig; startSeq: number; allowed: boolean };
}

/** Written on consumers jetvault creates: a consumer with it may be re-created by jetvault when deleted. */
export const JETVAULT_CONSUMER_DESCRIPTION = 'jetvault capture';

export interface BindResult {
  consumer: Consumer;
  info: ConsumerInfo;
  streamInfo: StreamInfo;
  created: boolean;
}

const isApiError = (error: unknown, code: number) => error instanceof JetStreamApiError && error.code === code;

export const bindConsumer = fromPromise<BindResult, BindInput>(async ({ input }) => {
  const jsm = await jetstreamManager(input.nc);
  let streamInfo: StreamInfo;
  try {
    streamInfo = await jsm.streams.info(input.stream);
  } catch (cause) {
    if (isApiError(cause, JetStreamApiCodes.StreamNotFound)) {
      throw new JetvaultError('JV_STREAM_NOT_FOUND', `stream ${input.stream} does not exist`, { cause });
    }
    throw cause;
  }
  let info: ConsumerInfo;
  let created = false;
  try {
    info = await jsm.consumers.info(input.stream, input.consumer);
  } catch (cause) {
    if (!isApiError(cause, JetStreamApiCodes.ConsumerNotFound)) throw cause;
    const { rebind } = input;
    if (rebind && !rebind.allowed) {
      throw new JetvaultError(
        'JV_CONSUMER_DELETED',
        `consumer ${input.consumer} was deleted during the capture; jetvault did not create it, so it re-creates it only with --recreate-consumer`,
      );
    }
    info = await jsm.consumers.add(
      input.stream,
      rebind
        ? { ...reusableConfig(rebind.previous), deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: rebind.startSeq }
        : {
            durable_name: input.consumer,
            ack_policy: AckPolicy.Explicit,
            deliver_policy: DeliverPolicy.All,
            ack_wait: nanos(input.create.ackWaitMs),
            max_ack_pending: input.create.maxAckPending,
            description: JETVAULT_CONSUMER_DESCRIPTION,
          },
    );
    created = true;
  }
  if (info.config.deliver_subject) {
    throw new JetvaultError('JV_CONSUMER_INVALID', `consumer ${input.consumer} is a push consumer; jetvault needs a pull consumer`);
  }
  if (info.config.ack_policy !== AckPolicy.Explicit) {
    throw new JetvaultError(
      'JV_CONSUMER_INVALID',
      `consumer ${input.consumer} has ack policy "${info.config.ack_policy}"; jetvault needs "explicit" to ack only what it stored`,
    );
  }
  const consumer = await jetstream(input.nc).consumers.get(input.stream, input.consumer);
  return { consumer, info, streamInfo, created };
});

/** A lost consumer's settings without its start position (the replacement starts where capture stopped). */
function reusableConfig(previous: ConsumerConfig): Partial<ConsumerConfig> {
  const { deliver_policy: _policy, opt_start_seq: _seq, opt_start_time: _time, ...rest } = previous;
  return rest;
}

/** How long one pull request lives on the server; also bounds the client's wait after a failed re-read. */
export const PULL_EXPIRES_MS = 5_000;

/**
 * Why: nats.js pulls again when a quarter of the batch was processed, so the batch is how long the server can
 * keep sending while the capture is busy sealing or acking a block. 1,000 (about 10 ms of messages here) left
 * the server idle at each block: 4,000 raised capture of 100-byte messages from about 0.76x to 0.89x of a bare
 * consume-and-ack loop in one alternating run. Large messages get fewer, so the pull stays near PULL_BUFFER_BYTES.
 */
export const MAX_PULL_BATCH = 4_000;
const MIN_PULL_BATCH = 16;
const PULL_BUFFER_BYTES = 16 * 1024 * 1024;

/** The pull batch for a stream of this average message size. */
export function pullBatchFor(state: { messages: number; bytes: number }): number {
  const average = state.messages > 0 ? state.bytes / state.messages : 0;
  if (!(average > 0)) return MAX_PULL_BATCH;
  return Math.max(MIN_PULL_BATCH, Math.min(MAX_PULL_BATCH, Math.floor(PULL_BUFFER_BYTES / average)));
}

export type ConsumeEvent = { type: 'consumer.lost'; reason: string };

export interface ConsumeInput {
  consumer: Consumer;
  onMessage: (message: JsMsg) => void;
  /** Messages the client keeps buffered ahead of processing. */
  batch: number;
}

/**
 * Pulls messages with the callback form of consume() (the fastest path in nats.js) and reports a
 * consumer that was deleted or can no longer be found, which the iterator does not end on by itself.
 */
export const consumeMessages = fromCallback<{ type: 'noop' }, ConsumeInput>(({ input, sendBack }) => {
  let stopped = false;
  let messages: Awaited<ReturnType<Consumer['consume']>> | undefined;
  void (async () => {
    // expires: after a reconnect nats.js re-reads the consumer and, if that fails (no consumer leader yet after
    // a node died), waits a jitter of `expires` before pulling again: 15-45 s with the 30 s default, 2.5-7.5 s here.
    messages = await input.consumer.consume({ max_messages: input.batch, expires: PULL_EXPIRES_MS, callback: input.onMessage });
    if (stopped) {
      messages.stop();
      return;
    }
    for await (const s of messages.status()) {
      if (stopped) break;
      if (s.type === 'consumer_deleted' || s.type === 'consumer_not_found' || s.type === 'stream_not_found') {
        sendBack({ type: 'consumer.lost', reason: s.type });
        break;
      }
    }
  })().catch((error: unknown) => {
    if (!stopped) sendBack({ type: 'consumer.lost', reason: error instanceof Error ? error.message : String(error) });
  });
  return () => {
    stopped = true;
    messages?.stop();
  };
});
