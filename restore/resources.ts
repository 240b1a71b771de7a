/**
 * The store and the NATS connection restore and verify work with: given by the caller (kept open) or
 * opened here (closed by `release`).
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { JetvaultError, UsageError, describeError } from '../src/errors.js';
import type { Store } from '../src/stores/store.js';
import { createStore } from '../src/stores/uri.js';

export interface Owned<T> {
  value: T;
  /** Closes the resource when this module opened it; a no-op for one the caller passed in. */
  release(): Promise<void>;
}

export function openStore(from: Store | string): Owned<Store> {
  if (typeof from !== 'string') return { value: from, release: async () => undefined };
  if (from.trim() === '') throw new UsageError('an archive location (from) is required');
  const store = createStore(from);
  return { value: store, release: async () => void (await store.close?.()) };
}

export async function openConnection(options: { servers?: string | string[]; connection?: NatsConnection }): Promise<Owned<NatsConnection>> {
  if (options.connection) return { value: options.connection, release: async () => undefined };
  const servers = options.servers;
  if (servers === undefined || servers.length === 0) throw new UsageError('a server URL (or a connection) is required');
  let nc: NatsConnection;
  try {
    // Without async traces nats.js does not build a stack-carrying error for every request it starts;
    // restore makes one request per published message.
    nc = await connect({ servers, noAsyncTraces: true });
  } catch (cause) {
    throw new JetvaultError('JV_CONNECT_FAILED', `cannot connect to ${Array.isArray(servers) ? servers.join(', ') : servers}: ${describeError(cause)}`, { cause });
  }
  return {
    value: nc,
    release: async () => {
      if (nc.isClosed()) return;
      // drain() flushes what is pending; a failed drain still must not leave the socket open.
      await nc.drain().catch(() => nc.close());
    },
  };
}
