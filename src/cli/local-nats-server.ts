/**
 * Starts a real `nats-server -js` on a free port with its store in a temp dir, waits for readiness from
 * its log, and can stop, kill and restart it (same port, same store dir). `jetvault demo` and the
 * integration tests share this one launcher, so the demo runs exactly what the tests run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { JetvaultError } from '../errors.js';

export interface NatsServer {
  url: string;
  port: number;
  storeDir: string;
  /** Everything the server logged so far (tail). */
  log(): string;
  /** SIGTERM, then SIGKILL after a grace period. Keeps the store dir. */
  stop(): Promise<void>;
  /** SIGKILL at once. Keeps the store dir. */
  kill(): Promise<void>;
  /** Starts again on the same port with the same store dir, resolves when ready. */
  restart(): Promise<void>;
  /** Stops the server and removes its temp dir. */
  dispose(): Promise<void>;
}

export interface StartNatsServerOptions {
  /** Extra command-line arguments (cluster, TLS, limits…). */
  extraArgs?: string[];
  /** Port to listen on; default: a free one the server picks. */
  port?: number;
}

const FALLBACK_BINARY = '/usr/sbin/nats-server';

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** NATS_SERVER_BIN, else `nats-server` on PATH, else /usr/sbin/nats-server; undefined when none exists. */
export function findNatsServerBinary(): string | undefined {
  const fromEnv = process.env.NATS_SERVER_BIN;
  if (fromEnv) return isExecutable(fromEnv) ? fromEnv : undefined;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, 'nats-server'))) return join(dir, 'nats-server');
  }
  return isExecutable(FALLBACK_BINARY) ? FALLBACK_BINARY : undefined;
}

/** The nats-server binary to run; a JV_NATS_SERVER_MISSING error saying where it looked otherwise. */
export function natsServerBinary(): string {
  const found = findNatsServerBinary();
  if (found) return found;
  const fromEnv = process.env.NATS_SERVER_BIN;
  throw new JetvaultError(
    'JV_NATS_SERVER_MISSING',
    fromEnv
      ? `NATS_SERVER_BIN=${fromEnv} is not an executable file`
      : `nats-server not found on PATH or at ${FALLBACK_BINARY}; install it or set NATS_SERVER_BIN`,
  );
}

/** Servers this process started and has not disposed, with their store dirs. */
const liveServers = new Set<ChildProcess>();
const liveStoreDirs = new Set<string>();
let exitHookInstalled = false;

/**
 * Why: a process that crashed (or exited without dispose()) left its nats-servers running and their store
 * dirs behind. On exit, whatever is still live is killed and its store dir removed (both synchronous).
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of liveServers) child.kill('SIGKILL');
    for (const dir of liveStoreDirs) rmSync(dir, { recursive: true, force: true });
  });
}

export async function startNatsServer(options: StartNatsServerOptions = {}): Promise<NatsServer> {
  const binary = natsServerBinary();
  const storeDir = mkdtempSync(join(tmpdir(), 'jv-nats-'));
  installExitHook();
  liveStoreDirs.add(storeDir);
  // -1 lets the server pick a free port; a restart then reuses the one it picked.
  let port = options.port ?? -1;
  let proc: ChildProcess | undefined;
  let logTail = '';

  const launch = async (): Promise<void> => {
    const args = ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir, ...(options.extraArgs ?? [])];
    const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    proc = child;
    liveServers.add(child);
    child.once('exit', () => liveServers.delete(child));
    let log = '';
    let listening = -1;
    await new Promise<void>((resolve, reject) => {
      const fail = (error: Error) => {
        clearTimeout(timer);
        reject(error);
      };
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        fail(new JetvaultError('JV_CONNECT_FAILED', `nats-server not ready in 10 s: ${log.slice(-500)}`));
      }, 10_000);
      child.once('error', (error) => {
        fail(new JetvaultError('JV_NATS_SERVER_MISSING', `cannot start ${binary}: ${error.message}`, { cause: error }));
      });
      const exitedEarly = (code: number | null, signal: NodeJS.Signals | null) => {
        fail(new JetvaultError('JV_CONNECT_FAILED', `nats-server exited (${code ?? signal}) before it was ready: ${log.slice(-500)}`));
      };
      child.once('exit', exitedEarly);
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
        // Keep draining, so the server never blocks on a full pipe.
        log = (log + chunk).slice(-64_000);
        logTail = log;
        const m = /Listening for client connections on [^\s:]+:(\d+)/.exec(log);
        if (m && listening === -1) listening = Number(m[1]);
        if (listening !== -1 && log.includes('Server is ready')) {
          clearTimeout(timer);
          child.off('exit', exitedEarly);
          port = listening;
          resolve();
        }
      });
    });
  };

  const waitExit = (child: ChildProcess | undefined, signal: NodeJS.Signals, graceMs: number): Promise<void> => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const force = setTimeout(() => child.kill('SIGKILL'), graceMs);
      child.once('exit', () => {
        clearTimeout(force);
        resolve();
      });
      child.kill(signal);
    });
  };

  try {
    await launch();
  } catch (error) {
    rmSync(storeDir, { recursive: true, force: true });
    liveStoreDirs.delete(storeDir);
    throw error;
  }
  const server: NatsServer = {
    get url() {
      return `nats://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    storeDir,
    log: () => logTail,
    stop: () => waitExit(proc, 'SIGTERM', 5_000),
    kill: () => waitExit(proc, 'SIGKILL', 1_000),
    restart: async () => {
      await waitExit(proc, 'SIGTERM', 5_000);
      await launch();
    },
    dispose: async () => {
      await waitExit(proc, 'SIGTERM', 5_000);
      rmSync(storeDir, { recursive: true, force: true });
      liveStoreDirs.delete(storeDir);
    },
  };
  return server;
}
