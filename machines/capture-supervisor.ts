/**
 * The capture supervisor owns the connection, the consumer subscription and one block machine per open
 * block. Messages flow through the router (src/capture/router.ts) into block buffers; the supervisor
 * spawns a block machine for each new block, forwards seals and clock ticks, and on shutdown drains:
 * it stops accepting messages, seals every open block and waits, up to the drain timeout, until each is
 * stored and acked. Blocks not stored by then are abandoned, never acked.
 *
 *   checkingStore → connecting → capturing (binding → running) → draining → stopping → stopped
 */
import type { ConsumerInfo, JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { and, assign, emit, enqueueActions, sendTo, setup, stateIn, stopChild, type ActorRefFrom } from 'xstate';
import type { SealReason } from '../src/archive/manifest.js';
import type { BlockBuffer } from '../src/capture/block-buffer.js';
import type { CaptureEvent, CaptureReport } from '../src/capture/events.js';
import { BlockRouter, type RouterOptions, type UndecodableAction } from '../src/capture/router.js';
import { describeError, JetvaultError } from '../src/errors.js';
import type { Store } from '../src/stores/store.js';
import { checkStore, recoverStored, ticker, watchCaughtUp, watchConsumerInfo } from './actors/supervisor-actors.js';
import { blockMachine, timeLimitReached, type BlockLimits, type BlockParentEvent, type BlockRetryPolicy } from './block-machine.js';
import { connectionMachine, type ConnectionParentEvent } from './connection-machine.js';
import { subscriptionMachine, type SubscriptionParentEvent } from './subscription-machine.js';

export interface CaptureSupervisorInput {
  servers: string[];
  connectOptions: Record<string, unknown>;
  connection: NatsConnection | undefined;
  stream: string;
  consumer: string;
  create: { ackWaitMs: number; maxAckPending: number };
  /** Re-create the consumer when it is deleted even though jetvault did not create it. */
  recreateConsumer: boolean;
  /** Messages pulled ahead; default sized by the stream's average message size (see pullBatchFor). */
  pullBatch?: number;
  store: Store;
  router: Omit<RouterOptions<unknown>, 'onOpen' | 'onFull' | 'onUndecodable'>;
  maxAgeMs: number;
  idleMs: number;
  retry: BlockRetryPolicy;
  drainTimeoutMs: number;
  once: boolean;
  /** How often the consumer's lag and unacknowledged count are read for stats. */
  consumerInfoIntervalMs: number;
  now: () => number;
}

type BlockRef = ActorRefFrom<typeof blockMachine>;

export interface CaptureSupervisorContext extends Omit<CaptureSupervisorInput, 'router'> {
  router: BlockRouter<unknown>;
  nc: NatsConnection | undefined;
  consumerInfo: ConsumerInfo | undefined;
  lastSeqAtStart: number;
  ackWaitMs: number;
  /** Set at the first bind when the consumer has unacknowledged messages (an earlier run crashed). */
  recovery: { floorSeq: number } | undefined;
  /**
   * Live blocks by id. A Map changed in place: copying a table of thousands of open blocks for every block
   * that opens or ends made split keys cost time proportional to their number.
   */
  blocks: Map<string, { ref: BlockRef; buffer: BlockBuffer<unknown>; limits: BlockLimits }>;
  startedAt: number;
  messages: number;
  deadLettered: number;
  blocksAcked: number;
  storedBytes: number;
  abandonedBlocks: number;
  error: unknown;
}

export type CaptureSupervisorEvent =
  | ConnectionParentEvent
  | SubscriptionParentEvent
  | BlockParentEvent
  | { type: 'block.open'; blockId: string; buffer: BlockBuffer<unknown> }
  | { type: 'block.full'; blockId: string; reason: SealReason }
  | { type: 'message.undecodable'; seq: number; subject: string; error: string; deliveries: number; action: UndecodableAction }
  | { type: 'tick' }
  | { type: 'once.caught-up' }
  | { type: 'once.waiting'; unacked: number; ackWaitNs: number }
  | { type: 'consumer.info'; pending: number; ackPending: number; ackFloor: number }
  | { type: 'drain' }
  | { type: 'stop' };

export interface CaptureSupervisorOutput {
  report: CaptureReport;
  error: unknown;
}

/** Seal before the ack deadline with a margin for storing (a quarter of ack_wait, at most 30 s). */
export function ackDeadlineMs(ackWaitMs: number): number {
  return ackWaitMs - Math.min(ackWaitMs / 4, 30_000);
}

function tickIntervalMs(context: Pick<CaptureSupervisorContext, 'idleMs' | 'maxAgeMs' | 'ackWaitMs'>): number {
  const shortest = Math.min(context.idleMs, context.maxAgeMs, ackDeadlineMs(context.ackWaitMs));
  return Math.max(20, Math.min(1_000, Math.floor(shortest / 4)));
}

/**
 * The block actor's id in XState's children map: the block id's number ('b12' → '12'; the router numbers
 * blocks and dead-letter blocks from one counter, so they stay unique). XState copies the children object on
 * every spawn and stop; with names like 'b12' V8 builds that copy property by property (3.3 ms per copy with
 * 1,000 open blocks, measured), with integer-like keys it copies them as elements (0.27 ms). Events and the
 * inspector keep the block id.
 */
function blockActorId(blockId: string): string {
  const digits = /\d+$/.exec(blockId)?.[0];
  return digits ?? blockId;
}

// Closures for child actors, built from the values they need only (see spawnBlock).
const flushOf = (nc: NatsConnection) => () => nc.flush();
const routeOf = (router: BlockRouter<unknown>) => (message: JsMsg) => router.route(message);
const resumeSeqOf = (router: BlockRouter<unknown>) => () => router.resumeSeq();
const heldOf = (router: BlockRouter<unknown>) => () => router.held;
const highestSeqOf = (router: BlockRouter<unknown>) => () => router.highestSeen;

/** The error a failed block ends the capture with: its own code (e.g. JV_UNSAFE_KEY), the block named. */
function blockFailure(event: Extract<BlockParentEvent, { type: 'block.finished' }>): JetvaultError {
  const code = event.cause instanceof JetvaultError ? event.cause.code : 'JV_STORE_FAILED';
  return new JetvaultError(code, `block ${event.blockId} could not be stored: ${event.error ?? 'unknown error'}`, { cause: event.cause });
}

export const captureSupervisorMachine = setup({
  types: {
    context: {} as CaptureSupervisorContext,
    input: {} as CaptureSupervisorInput,
    events: {} as CaptureSupervisorEvent,
    output: {} as CaptureSupervisorOutput,
    emitted: {} as CaptureEvent,
  },
  actors: {
    connection: connectionMachine,
    subscription: subscriptionMachine,
    block: blockMachine,
    ticker,
    watchCaughtUp,
    checkStore,
    watchConsumerInfo,
    recoverStored,
  },
  guards: {
    isOnce: ({ context }) => context.once,
    connected: ({ context }) => context.nc !== undefined,
    noBlocks: ({ context }) => context.blocks.size === 0,
    blockFailed: ({ event }) => event.type === 'block.finished' && event.outcome === 'failed',
    stopOnUndecodable: ({ event }) => event.type === 'message.undecodable' && event.action === 'stop',
  },
  delays: {
    drainTimeout: ({ context }) => context.drainTimeoutMs,
  },
  actions: {
    spawnBlock: assign({
      blocks: ({ context, event, spawn }) => {
        if (event.type !== 'block.open') return context.blocks;
        const ackWaitMs = context.ackWaitMs;
        const limits: BlockLimits = {
          maxAgeMs: context.maxAgeMs,
          idleMs: context.idleMs,
          // Ticks check the deadline: one tick late must still be in time.
          ackDeadlineMs: ackDeadlineMs(ackWaitMs) - tickIntervalMs(context),
          keepAliveMs: Math.max(100, Math.floor(ackWaitMs / 3)),
        };
        const ref = spawn('block', {
          id: blockActorId(event.blockId),
          input: {
            id: event.blockId,
            buffer: event.buffer,
            store: context.store,
            limits,
            retry: context.retry,
            // Closures handed to children must not capture `context`: each context holds the blocks of its
            // time, whose snapshots hold their sealed bodies, so one captured context kept every block alive.
            flush: flushOf(context.nc!),
            now: context.now,
          },
        });
        context.blocks.set(event.blockId, { ref, buffer: event.buffer, limits });
        return context.blocks;
      },
    }),
    announceBlockOpened: emit(({ event }) =>
      event.type === 'block.open'
        ? ({ type: 'block.opened', blockId: event.blockId, splitKey: event.buffer.splitKey, ...(event.buffer.deadLetter ? { deadLetter: true } : {}) } as const)
        : ({ type: 'capture.error', error: 'unexpected event' } as const),
    ),
    sealFullBlock: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'block.full') return;
      const block = context.blocks.get(event.blockId);
      if (block) enqueue.sendTo(block.ref, { type: 'seal', reason: event.reason });
    }),
    sealAllBlocks: enqueueActions(({ context, enqueue }) => {
      for (const { ref } of context.blocks.values()) enqueue.sendTo(ref, { type: 'seal', reason: 'drain' });
    }),
    abandonAllBlocks: enqueueActions(({ context, enqueue }) => {
      for (const { ref } of context.blocks.values()) enqueue.sendTo(ref, { type: 'abandon' });
    }),
    // Only blocks that are open and past one of their time limits get the tick; the block's guards still
    // decide. A tick to every block cost one XState transition per open block per tick for nothing (thousands
    // with thousands of split keys).
    forwardTick: enqueueActions(({ context, enqueue }) => {
      const now = context.now();
      for (const { ref, buffer, limits } of context.blocks.values()) {
        if (!buffer.closed && timeLimitReached(buffer, limits, now)) enqueue.sendTo(ref, { type: 'tick' });
      }
    }),
    forwardBlockEvent: emit(({ event }) => (event.type === 'block.event' ? event.event : { type: 'capture.error', error: 'unexpected event' })),
    rememberStored: ({ context, event }) => {
      if (event.type !== 'block.event' || event.event.type !== 'block.stored') return;
      const block = context.blocks.get(event.event.blockId);
      if (block) context.router.stored(block.buffer);
    },
    countStored: assign({
      storedBytes: ({ context, event }) =>
        event.type === 'block.event' && event.event.type === 'block.stored' ? context.storedBytes + event.event.storedBytes : context.storedBytes,
    }),
    finishBlock: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'block.finished') return;
      const block = context.blocks.get(event.blockId);
      if (!block) return;
      context.router.release(block.buffer);
      enqueue(stopChild(block.ref));
      context.blocks.delete(event.blockId);
      const acked = event.outcome === 'acked' ? event.messages : 0;
      enqueue.assign({
        messages: context.messages + (block.buffer.deadLetter ? 0 : acked),
        deadLettered: context.deadLettered + (block.buffer.deadLetter ? acked : 0),
        blocksAcked: context.blocksAcked + (event.outcome === 'acked' ? 1 : 0),
        abandonedBlocks: context.abandonedBlocks + (event.outcome === 'acked' ? 0 : 1),
        error: context.error ?? (event.outcome === 'failed' ? blockFailure(event) : undefined),
      });
    }),
    recordBound: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'subscription.bound') return;
      const ackWaitMs = Math.max(1, Math.round((event.info.config.ack_wait ?? 30e9) / 1e6));
      context.router.bound(
        event.streamInfo.config as unknown as Record<string, unknown>,
        { maxAckPending: event.info.config.max_ack_pending ?? -1, maxDeliver: event.info.config.max_deliver ?? -1 },
        context.nc,
      );
      // First bind with messages delivered and never acked: a crashed run may have stored some of them.
      const firstBind = context.consumerInfo === undefined;
      const recover = firstBind && (event.info.num_ack_pending > 0 || event.info.num_redelivered > 0);
      if (recover) context.router.beginRecovery();
      enqueue.assign({
        consumerInfo: event.info,
        ...(recover ? { recovery: { floorSeq: event.info.ack_floor.stream_seq } } : {}),
        ackWaitMs,
        lastSeqAtStart: context.consumerInfo ? context.lastSeqAtStart : event.streamInfo.state.last_seq,
      });
      enqueue.emit({
        type: 'consumer.bound',
        stream: context.stream,
        consumer: context.consumer,
        created: event.created,
        ackWaitMs,
        maxAckPending: event.info.config.max_ack_pending ?? -1,
        pending: event.info.num_pending + event.info.num_ack_pending,
      });
    }),
    stopAccepting: ({ context }) => context.router.stopAccepting(),
    announceUndecodable: emit(({ event }) =>
      event.type === 'message.undecodable'
        ? ({ type: 'message.undecodable', seq: event.seq, subject: event.subject, error: event.error, deliveries: event.deliveries, action: event.action } as const)
        : ({ type: 'capture.error', error: 'unexpected event' } as const),
    ),
    closeConnection: enqueueActions(({ enqueue, self }) => {
      if (self.getSnapshot().children.connection) enqueue.sendTo('connection', { type: 'close' });
    }),
  },
}).createMachine({
  id: 'capture',
  context: ({ input, self }) => ({
    ...input,
    router: new BlockRouter<unknown>({
      ...input.router,
      onOpen: (blockId, buffer) => self.send({ type: 'block.open', blockId, buffer }),
      onFull: (blockId, reason) => self.send({ type: 'block.full', blockId, reason }),
      onUndecodable: (envelope, error, action) =>
        self.send({
          type: 'message.undecodable',
          seq: envelope.seq,
          subject: envelope.subject,
          error: error instanceof Error ? error.message : String(error),
          deliveries: envelope.deliveryCount,
          action,
        }),
    }),
    nc: undefined,
    consumerInfo: undefined,
    lastSeqAtStart: 0,
    ackWaitMs: input.create.ackWaitMs,
    recovery: undefined,
    blocks: new Map(),
    startedAt: input.now(),
    messages: 0,
    deadLettered: 0,
    blocksAcked: 0,
    storedBytes: 0,
    abandonedBlocks: 0,
    error: undefined,
  }),
  invoke: {
    id: 'connection',
    src: 'connection',
    input: ({ context }) => ({
      servers: context.servers,
      connectOptions: context.connectOptions,
      ...(context.connection ? { existing: context.connection } : {}),
    }),
    onDone: [
      { guard: stateIn('stopping'), target: '.stopped' },
      {
        target: '.connectionLost',
        actions: assign({
          error: ({ context }) => context.error ?? new JetvaultError('JV_CONNECT_FAILED', 'the NATS connection closed unexpectedly'),
        }),
      },
    ],
  },
  on: {
    'block.open': { actions: ['spawnBlock', 'announceBlockOpened'] },
    'block.full': { actions: 'sealFullBlock' },
    'block.event': { actions: ['rememberStored', 'countStored', 'forwardBlockEvent'] },
    'block.finished': [
      { guard: 'blockFailed', target: '.stopping', actions: 'finishBlock' },
      { actions: 'finishBlock' },
    ],
    // Undecodable messages are retried, then dead-lettered by the router. With dead-lettering off, the first
    // one stops the capture loudly: what came before is drained (stored and acked), the bad one stays unacked.
    'message.undecodable': [
      {
        guard: and(['stopOnUndecodable', stateIn('capturing')]),
        target: '.draining',
        actions: [
          'announceUndecodable',
          assign({
            error: ({ context, event }) =>
              context.error ??
              new JetvaultError('JV_DECODE_FAILED', `message ${event.seq} on ${event.subject} cannot be captured: ${event.error}`),
          }),
        ],
      },
      { actions: 'announceUndecodable' },
    ],
    tick: { actions: 'forwardTick' },
    'connection.lost': {
      actions: emit(({ event }) => ({ type: 'connection.status', status: 'reconnecting', server: event.server }) as const),
    },
    'connection.restored': {
      actions: emit(({ event }) => ({ type: 'connection.status', status: 'connected', server: event.server }) as const),
    },
    stop: { target: '.stopping' },
  },
  initial: 'checkingStore',
  states: {
    // A missing bucket or rejected credentials fail here, before a single message is pulled.
    checkingStore: {
      entry: emit({ type: 'connection.status', status: 'connecting' }),
      invoke: {
        src: 'checkStore',
        input: ({ context }) => ({ store: context.store }),
        onDone: [{ guard: 'connected', target: 'capturing' }, { target: 'connecting' }],
        onError: { target: 'stopping', actions: assign({ error: ({ event }) => event.error }) },
      },
      on: {
        // The connection opens in parallel with the check.
        'connection.ready': { actions: [assign({ nc: ({ event }) => event.nc }), emit({ type: 'connection.status', status: 'connected' })] },
        'connection.failed': { actions: assign({ error: ({ event }) => event.error }) },
        drain: 'stopping',
      },
    },
    connecting: {
      on: {
        'connection.ready': {
          target: 'capturing',
          actions: [assign({ nc: ({ event }) => event.nc }), emit({ type: 'connection.status', status: 'connected' })],
        },
        'connection.failed': {
          // The connection machine is final already; its onDone lands in `stopped`.
          actions: [
            assign({ error: ({ event }) => event.error }),
            emit(({ event }) => ({ type: 'connection.status', status: 'failed', error: String(event.error) }) as const),
          ],
        },
        drain: 'stopping',
      },
    },
    capturing: {
      invoke: {
        id: 'subscription',
        src: 'subscription',
        input: ({ context }) => ({
          nc: context.nc!,
          stream: context.stream,
          consumer: context.consumer,
          create: context.create,
          recreate: context.recreateConsumer,
          ...(context.pullBatch !== undefined ? { batch: context.pullBatch } : {}),
          resumeSeq: resumeSeqOf(context.router),
          onMessage: routeOf(context.router),
        }),
      },
      on: {
        'subscription.bound': { target: '.running', actions: 'recordBound' },
        'subscription.failed': { target: 'stopping', actions: assign({ error: ({ event }) => event.error }) },
        'connection.lost': {
          actions: [
            sendTo('subscription', { type: 'pause' }),
            emit(({ event }) => ({ type: 'connection.status', status: 'reconnecting', server: event.server }) as const),
          ],
        },
        'connection.restored': {
          actions: [
            sendTo('subscription', { type: 'resume' }),
            emit(({ event }) => ({ type: 'connection.status', status: 'connected', server: event.server }) as const),
          ],
        },
        drain: 'draining',
      },
      initial: 'binding',
      states: {
        binding: {},
        running: {
          invoke: [
            { src: 'ticker', input: ({ context }) => ({ intervalMs: tickIntervalMs(context) }) },
            {
              src: 'recoverStored',
              input: ({ context }) => ({
                needed: context.recovery !== undefined,
                store: context.store,
                stream: context.stream,
                floorSeq: context.recovery?.floorSeq ?? 0,
              }),
              onDone: {
                actions: enqueueActions(({ context, event, enqueue }) => {
                  if (!context.recovery) return;
                  context.router.endRecovery(event.output.seqs);
                  enqueue.assign({ recovery: undefined });
                  enqueue.emit({
                    type: 'capture.recovered',
                    floorSeq: context.recovery.floorSeq,
                    blocks: event.output.blocks,
                    storedMessages: event.output.seqs.length,
                    unreadableBlocks: event.output.unreadable,
                    durationMs: event.output.durationMs,
                  });
                }),
              },
              // Without the archive's answer nothing is lost, but redeliveries may be stored a second time.
              onError: {
                actions: enqueueActions(({ context, event, enqueue }) => {
                  context.router.endRecovery([]);
                  enqueue.emit({ type: 'capture.recovered', floorSeq: context.recovery?.floorSeq ?? 0, blocks: 0, storedMessages: 0, unreadableBlocks: 0, durationMs: 0, error: describeError(event.error) });
                  enqueue.assign({ recovery: undefined });
                }),
              },
            },
            {
              src: 'watchConsumerInfo',
              input: ({ context }) => ({ nc: context.nc!, stream: context.stream, consumer: context.consumer, intervalMs: context.consumerInfoIntervalMs }),
            },
          ],
          on: {
            'consumer.info': {
              actions: [
                ({ context, event }) => context.router.ackFloor(event.ackFloor),
                emit(({ event }) => ({ type: 'consumer.info', pending: event.pending, ackPending: event.ackPending }) as const),
              ],
            },
          },
          initial: 'choosing',
          states: {
            choosing: {
              always: [{ guard: 'isOnce', target: 'untilCaughtUp' }, { target: 'continuous' }],
            },
            continuous: {},
            untilCaughtUp: {
              invoke: {
                src: 'watchCaughtUp',
                input: ({ context }) => ({
                  nc: context.nc!,
                  stream: context.stream,
                  consumer: context.consumer,
                  lastSeqAtStart: context.lastSeqAtStart,
                  held: heldOf(context.router),
                  highestSeq: highestSeqOf(context.router),
                  intervalMs: 100,
                }),
              },
              on: {
                // Everything was delivered but the server counts more unacked messages than this capture holds:
                // another process on the consumer holds them, or a crashed run did (they come back after
                // ack_wait). What this capture holds is sealed now, so a second --once process is not kept
                // waiting for this one's idle seals, and both finish when every message is acked.
                'once.waiting': {
                  actions: [
                    'sealAllBlocks',
                    emit(({ event }) => ({ type: 'capture.waiting', unacked: event.unacked, ackWaitMs: Math.round(event.ackWaitNs / 1e6) }) as const),
                  ],
                },
                'once.caught-up': {
                  target: '#capture.draining',
                  actions: emit(({ context }) => ({ type: 'capture.caught-up', messages: context.router.held }) as const),
                },
              },
            },
          },
        },
      },
    },
    draining: {
      entry: ['stopAccepting', 'sealAllBlocks'],
      always: { guard: 'noBlocks', target: 'stopping' },
      after: { drainTimeout: 'stopping' },
    },
    stopping: {
      entry: ['stopAccepting', 'abandonAllBlocks', 'closeConnection'],
      // Closing flushes pending acks; a server that never answers must not hold shutdown forever.
      after: { 10_000: 'stopped' },
    },
    // The connection ended by itself: nothing can be acked any more, so every block is abandoned.
    connectionLost: {
      entry: ['stopAccepting', 'abandonAllBlocks'],
      always: { guard: 'noBlocks', target: 'stopped' },
    },
    stopped: {
      type: 'final',
    },
  },
  output: ({ context }) => ({
    report: {
      stream: context.stream,
      consumer: context.consumer,
      messages: context.messages,
      deadLettered: context.deadLettered,
      redeliveriesSkipped: context.router.redeliveriesSkipped,
      blocks: context.blocksAcked,
      storedBytes: context.storedBytes,
      abandonedBlocks: context.abandonedBlocks,
      durationMs: context.now() - context.startedAt,
    },
    error: context.error,
  }),
});
