/** The I/O the connection machine invokes: connect, watch status, close. */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { fromCallback, fromPromise } from 'xstate';
import { JetvaultError } from '../../src/errors.js';
import { ACK, PUBLISH_TO_ALL, rawPublishToAll, type PublishToAll } from '../../src/capture/reply-ack.js';

export interface ConnectInput {
  servers: string[];
  connectOptions: Record<string, unknown>;
  existing: NatsConnection | undefined;
}

export const openConnection = fromPromise<NatsConnection, ConnectInput>(async ({ input, signal }) => {
  if (input.existing) return acksSurviveReconnects(input.existing);
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
  return acksSurviveReconnects(nc);
});

const ACK_PREFIX = '$JS.ACK.';
const isAck = (payload: unknown) =>
  payload instanceof Uint8Array && payload.length === 4 && payload[0] === ACK[0] && payload[1] === ACK[1] && payload[2] === ACK[2] && payload[3] === ACK[3];
/** Acks published this recently before a disconnect are sent again after the reconnect. */
export const ACK_REPLAY_WINDOW_MS = 1_000;
const RAW = Symbol('jetvault.rawConnection');

/**
 * Why: a server restart lost acks of blocks that were already stored. nats.js drops whatever was published
 * while disconnected (the outbound buffer is reset on every dial), rejects a pending flush() on disconnect
 * (the block machine then abandons a stored block), and a restarting nats-server can lose acks it already
 * answered a PING for (JetStream processes acks asynchronously). Each lost ack left a stored message pending
 * on the server until ack_wait (16 min by default), holding max_ack_pending, and its redelivery was then
 * stored a second time, in another block. So the connection jetvault hands out keeps the `+ACK`s of the
 * last one to two seconds and everything acked while disconnected, publishes them again right after a
 * reconnect (acks are only ever sent for stored messages, so a second one is harmless), and its flush()
 * waits for the reconnect instead of failing. Everything else is the nats.js connection itself. (For a
 * caller's connection the status listener stays until that connection closes.)
 */
export function acksSurviveReconnects(nc: NatsConnection, now: () => number = Date.now): NatsConnection {
  let current: string[] = [];
  let previous: string[] = [];
  let rotatedAt = now();
  let down = false;
  let reconnects = 0;
  let waiters: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
  const rotate = () => {
    if (!down && now() - rotatedAt >= ACK_REPLAY_WINDOW_MS) {
      previous = current;
      current = [];
      rotatedAt = now();
    }
  };
  const publish: NatsConnection['publish'] = (subject, payload, options) => {
    if (subject.startsWith(ACK_PREFIX) && isAck(payload)) {
      rotate();
      current.push(subject);
    }
    nc.publish(subject, payload, options);
  };
  // A block's acks, in batches (src/capture/reply-ack.ts); kept for replay like single ones.
  const toAll = rawPublishToAll(nc);
  const publishToAll: PublishToAll = (subjects, payload) => {
    if (isAck(payload)) {
      rotate();
      for (const subject of subjects) current.push(subject);
    }
    toAll(subjects, payload);
  };
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') down = true;
      else if (s.type === 'reconnect') {
        const replay = previous.concat(current);
        toAll(replay, ACK);
        previous = replay;
        current = [];
        rotatedAt = now();
        down = false;
        reconnects++;
        const ready = waiters;
        waiters = [];
        for (const w of ready) w.resolve();
      }
    }
  })().catch(() => undefined);
  void nc.closed().then(() => {
    const gone = waiters;
    waiters = [];
    for (const w of gone) w.reject(new JetvaultError('JV_CONNECT_FAILED', 'the NATS connection closed'));
  });
  const flush = async (): Promise<void> => {
    for (;;) {
      const seen = reconnects;
      try {
        return await nc.flush();
      } catch (error) {
        if (nc.isClosed()) throw error;
        // Disconnected: once reconnected (acks replayed by then), flush again.
        if (reconnects === seen) await new Promise<void>((resolve, reject) => waiters.push({ resolve, reject }));
      }
    }
  };
  return new Proxy(nc, {
    get(target, property) {
      if (property === 'publish') return publish;
      if (property === 'flush') return flush;
      if (property === PUBLISH_TO_ALL) return publishToAll;
      if (property === RAW) return target;
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** The nats.js connection under acksSurviveReconnects() (the connection itself for any other). */
export function rawConnection(nc: NatsConnection): NatsConnection {
  return (nc as NatsConnection & { [RAW]?: NatsConnection })[RAW] ?? nc;
}

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
  // The plain flush: shutdown must not wait for a server that is down.
  const nc = rawConnection(input.nc);
  await nc.flush().catch(() => undefined);
  await nc.close();
});
