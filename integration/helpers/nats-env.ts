/**
 * One nats-server, a connection and temp dirs for a whole test file: started in beforeAll, stopped and
 * removed in afterAll. Read the fields inside tests (they are set once beforeAll ran).
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { startNatsServer, type NatsServer } from './nats-server.js';

export interface NatsEnv {
  readonly server: NatsServer;
  readonly nc: NatsConnection;
  readonly jsm: JetStreamManager;
  /** A fresh temp dir, removed after the file's tests. */
  tempDir(): string;
}

export function useNatsEnv(label: string): NatsEnv {
  let started: { server: NatsServer; nc: NatsConnection; jsm: JetStreamManager } | undefined;
  const dirs: string[] = [];
  const get = () => {
    if (!started) throw new Error('useNatsEnv: used before beforeAll ran');
    return started;
  };
  beforeAll(async () => {
    const server = await startNatsServer();
    const nc = await connect({ servers: server.url });
    started = { server, nc, jsm: await jetstreamManager(nc) };
  });
  afterAll(async () => {
    await started?.nc.close();
    await started?.server.dispose();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  return {
    get server() {
      return get().server;
    },
    get nc() {
      return get().nc;
    },
    get jsm() {
      return get().jsm;
    },
    tempDir: () => {
      const dir = mkdtempSync(join(tmpdir(), `jv-${label}-`));
      dirs.push(dir);
      return dir;
    },
  };
}
