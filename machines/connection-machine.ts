/**
 * The NATS connection: connecting → connected ⇄ reconnecting → closing → closed. A failed first connect
 * is retried with backoff a few times, then `failed`. Once connected, nats.js reconnects by itself; the
 * machine mirrors it and tells its parent (the capture supervisor) through `connection.*` events.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { assign, sendParent, setup } from 'xstate';
import { exponentialJitter } from '../src/capture/backoff.js';
import { closeConnection, openConnection, watchConnection, type ConnectionStatusEvent } from './actors/connection-actors.js';

export interface ConnectionInput {
  servers: string[];
  connectOptions?: Record<string, unknown>;
  /** Use this connection instead of opening one (it is then never closed by jetvault). */
  existing?: NatsConnection;
  /** Attempts for the first connect before giving up. Default 3. */
  maxConnectAttempts?: number;
  retryBaseMs?: number;
}

export interface ConnectionContext {
  servers: string[];
  connectOptions: Record<string, unknown>;
  existing: NatsConnection | undefined;
  maxConnectAttempts: number;
  retryBaseMs: number;
  nc: NatsConnection | undefined;
  attempts: number;
  error: unknown;
}

export type ConnectionEvent = ConnectionStatusEvent | { type: 'close' };

export type ConnectionParentEvent =
  | { type: 'connection.ready'; nc: NatsConnection }
  | { type: 'connection.lost'; server: string }
  | { type: 'connection.restored'; server: string }
  | { type: 'connection.closed'; error?: string }
  | { type: 'connection.failed'; error: unknown };

export const connectionMachine = setup({
  types: {
    context: {} as ConnectionContext,
    input: {} as ConnectionInput,
    events: {} as ConnectionEvent,
  },
  actors: { openConnection, watchConnection, closeConnection },
  guards: {
    canRetry: ({ context }) => context.attempts < context.maxConnectAttempts,
  },
  delays: {
    connectBackoff: ({ context }) => exponentialJitter(context.attempts, { baseMs: context.retryBaseMs, maxMs: 5_000 }),
  },
  actions: {
    announceReady: sendParent(({ context }) => ({ type: 'connection.ready', nc: context.nc! }) satisfies ConnectionParentEvent),
    announceLost: sendParent(({ event }) => ({
      type: 'connection.lost',
      server: event.type === 'nats.disconnected' ? event.server : '',
    }) satisfies ConnectionParentEvent),
    announceRestored: sendParent(({ event }) => ({
      type: 'connection.restored',
      server: event.type === 'nats.reconnected' ? event.server : '',
    }) satisfies ConnectionParentEvent),
    announceClosed: sendParent(() => ({ type: 'connection.closed' }) satisfies ConnectionParentEvent),
    announceFailed: sendParent(({ context }) => ({ type: 'connection.failed', error: context.error }) satisfies ConnectionParentEvent),
  },
}).createMachine({
  id: 'connection',
  context: ({ input }) => ({
    servers: input.servers,
    connectOptions: input.connectOptions ?? {},
    existing: input.existing,
    maxConnectAttempts: input.maxConnectAttempts ?? 3,
    retryBaseMs: input.retryBaseMs ?? 250,
    nc: undefined,
    attempts: 0,
    error: undefined,
  }),
  initial: 'connecting',
  states: {
    connecting: {
      entry: assign({ attempts: ({ context }) => context.attempts + 1 }),
      invoke: {
        src: 'openConnection',
        input: ({ context }) => ({ servers: context.servers, connectOptions: context.connectOptions, existing: context.existing }),
        onDone: { target: 'open', actions: [assign({ nc: ({ event }) => event.output }), 'announceReady'] },
        onError: [
          { guard: 'canRetry', target: 'backoff', actions: assign({ error: ({ event }) => event.error }) },
          { target: 'failed', actions: assign({ error: ({ event }) => event.error }) },
        ],
      },
      on: { close: 'closed' },
    },
    backoff: {
      after: { connectBackoff: 'connecting' },
      on: { close: 'closed' },
    },
    open: {
      invoke: { src: 'watchConnection', input: ({ context }) => ({ nc: context.nc! }) },
      initial: 'connected',
      on: {
        close: 'closing',
        'nats.closed': { target: 'closed', actions: 'announceClosed' },
      },
      states: {
        connected: {
          on: { 'nats.disconnected': { target: 'reconnecting', actions: 'announceLost' } },
        },
        reconnecting: {
          on: { 'nats.reconnected': { target: 'connected', actions: 'announceRestored' } },
        },
      },
    },
    closing: {
      invoke: {
        src: 'closeConnection',
        input: ({ context }) => ({ nc: context.nc, owned: context.existing === undefined }),
        onDone: 'closed',
        onError: 'closed',
      },
    },
    closed: { type: 'final' },
    failed: {
      type: 'final',
      entry: 'announceFailed',
    },
  },
});
