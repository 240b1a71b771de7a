/**
 * Test access to a real nats-server. The launcher lives in src/cli/local-nats-server.ts, shared with
 * `jetvault demo`, so the demo and the tests run the server the same way.
 */
export {
  findNatsServerBinary,
  natsServerBinary,
  startNatsServer,
  type NatsServer,
  type StartNatsServerOptions,
} from '../../src/cli/local-nats-server.js';

/** A short unique name for streams, consumers and dirs of one test. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`.toUpperCase();
}
