/**
 * The connection restore publishes on, and what restore may do when it loses it.
 *
 * Restore's own connection (opened from `servers`) does not reconnect by itself: when it drops, nats.js
 * closes it, which fails every pending publish at once and throws away whatever it still had buffered,
 * so nothing restore sent before the loss can reach the server later, behind the messages that follow.
 * The republisher then dials a new one (`ready`). A connection the caller passed in is never closed or
 * replaced: restore waits for the caller's reconnect policy to bring it back, and gives up when it is
 * closed for good.
 */
import { jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { JetvaultError, describeError } from '../src/errors.js';

export interface TargetLink {
  /** Whether restore opened the connection (and may close and replace it). */
  readonly owned: boolean;
  /** The current connection and its JetStream clients; replaced by `ready` after a loss (owned only). */
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** Owned: closes the connection now (pending requests fail, buffered data is dropped). Otherwise nothing. */
  abandon(): Promise<void>;
  /**
   * Resolves when the connection is up; owned: dials a new one when the current one is closed. Throws
   * while the target is unreachable, and a JetvaultError when it can never come back (the caller's
   * connection was closed).
   */
  ready(timeoutMs: number): Promise<void>;
  /** Closes restore's own connection; leaves the caller's open. */
  release(): Promise<void>;
}

/** The target cannot be reached (yet); raised by restore itself, next to nats.js's own errors. */
export class TargetUnreachableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TargetUnreachableError';
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TargetUnreachableError(`${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A link over a connection the caller owns: never closed here. */
export async function givenTargetLink(nc: NatsConnection): Promise<TargetLink> {
  const jsm = await jetstreamManager(nc);
  return {
    owned: false,
    nc,
    js: jsm.jetstream(),
    jsm,
    abandon: async () => undefined,
    ready: async (timeoutMs) => {
      if (nc.isClosed()) {
        throw new JetvaultError('JV_CONNECT_FAILED', 'the connection restore was given is closed; restore cannot reopen a connection it does not own');
      }
      // rtt() fails at once while nats.js is reconnecting, and is a PING/PONG round trip once it is back.
      await withTimeout(nc.rtt(), timeoutMs, 'the target did not answer a ping');
    },
    release: async () => undefined,
  };
}

/** Restore's own connection: no automatic reconnect (see the file comment); `ready` dials anew. */
export async function ownedTargetLink(servers: string | string[]): Promise<TargetLink> {
  const options: ConnectionOptions = {
    servers,
    // Without async traces nats.js does not build a stack-carrying error for every request it starts;
    // restore makes one request per published message.
    noAsyncTraces: true,
    reconnect: false,
  };
  let nc: NatsConnection;
  try {
    nc = await connect(options);
  } catch (cause) {
    throw new JetvaultError('JV_CONNECT_FAILED', `cannot connect to ${Array.isArray(servers) ? servers.join(', ') : servers}: ${describeError(cause)}`, { cause });
  }
  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(nc);
  } catch (cause) {
    await nc.close();
    throw new JetvaultError('JV_CONNECT_FAILED', `JetStream is not available on the target: ${describeError(cause)}`, { cause });
  }
  const link: TargetLink = {
    owned: true,
    nc,
    js: jsm.jetstream(),
    jsm,
    abandon: async () => {
      if (!link.nc.isClosed()) await link.nc.close();
    },
    ready: async (timeoutMs) => {
      if (!link.nc.isClosed()) return;
      const fresh = await connect({ ...options, timeout: Math.max(1, timeoutMs) });
      // No API check here: the caller's next request is the check, and fails (retried) while JetStream recovers.
      const freshJsm = await jetstreamManager(fresh, { checkAPI: false });
      link.nc = fresh;
      link.jsm = freshJsm;
      link.js = freshJsm.jetstream();
    },
    release: async () => {
      if (link.nc.isClosed()) return;
      // drain() flushes what is pending; a failed drain still must not leave the socket open.
      await link.nc.drain().catch(() => link.nc.close());
    },
  };
  return link;
}
