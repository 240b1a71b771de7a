/** The I/O the connection machine invokes: connect, watch status, close. */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { fromCallback, fromPromise } from 'xstate';
import { JetvaultError } from '../../src/errors.js';

export interface ConnectInput {
  servers: string[];
  connectOptions: Record<string, unknown>;
  existing: NatsConnection | undefined;
}

export const openConnection = fromPromise<NatsConnection, ConnectInput>(async ({ input, signal }) => {
  if (input.existing) return input.existing;
  let nc: NatsConnection;
  try {
    nc = await connect({
      ...input.connectOptions,
      servers: input.servers,
      name: 'jetvault',
      // After the first connect, nats.js reconnects by itself for as long as it takes.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      // Skips building a stack-carrying error for every request (consumer info polls, pulls).
      noAsyncTraces: true,
    });
  } catch (cause) {
    throw new JetvaultError('JV_CONNECT_FAILED', `cannot connect to NATS at ${input.servers.join(', ')}`, { cause });
  }
  // Closed while connecting: nobody will own this connection, and it would reconnect forever.
  if (signal.aborted) {
    await nc.close();
    throw signal.reason;
  }
  return nc;
});

export type ConnectionStatusEvent =
  | { type: 'nats.disconnected'; server: string }
  | { type: 'nats.reconnected'; server: string }
  | { type: 'nats.closed'; error?: string };

/** Turns nats.js status notifications into machine events. */
export const watchConnection = fromCallback<{ type: 'noop' }, { nc: NatsConnection }>(({ input, sendBack }) => {
  let stopped = false;
  const status = input.nc.status();
  void (async () => {
    for await (const s of status) {
      if (stopped) break;
      if (s.type === 'disconnect') sendBack({ type: 'nats.disconnected', server: s.server });
      else if (s.type === 'reconnect') sendBack({ type: 'nats.reconnected', server: s.server });
    }
  })().catch(() => undefined);
  void input.nc.closed().then((error) => {
    if (!stopped) sendBack(error ? { type: 'nats.closed', error: error.message } : { type: 'nats.closed' });
  });
  return () => {
    stopped = true;
  };
});

/** Closes a connection jetvault opened (drains pending acks first); leaves a caller's connection open. */
export const closeConnection = fromPromise<void, { nc: NatsConnection | undefined; owned: boolean }>(async ({ input }) => {
  if (!input.nc || !input.owned || input.nc.isClosed()) return;
  await input.nc.flush().catch(() => undefined);
  await input.nc.close();
});
