/**
 * A small HTTP server for Prometheus and Kubernetes probes (node:http, nothing else):
 *   GET /metrics  the registry in Prometheus text format
 *   GET /healthz  200 "ok" while the process lives
 *   GET /readyz   200 when connected, bound and the store is not failing for longer than the threshold,
 *                 else 503 with a JSON reason
 * Anything else is 404. It binds to 127.0.0.1 unless told otherwise: metrics are not for the internet.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { CaptureHandle, CaptureStats } from '../capture/events.js';

export interface ReadinessOptions {
  /** Not ready once storing has been failing (since the last success) for longer than this. Default 60 s. */
  storeFailingThresholdMs?: number;
}

export interface MonitorServerOptions {
  /** The capture whose stats() decide readiness. */
  handle: Pick<CaptureHandle, 'stats'>;
  /** Port to listen on; 0 picks a free one (see the returned `port`). */
  port: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Served at /metrics; attach the capture to it with captureMetrics(). */
  registry: Registry;
  readiness?: ReadinessOptions;
}

export interface MonitorServer {
  /** e.g. http://127.0.0.1:9464 */
  url: string;
  /** The bound port (the chosen one when `port` was 0). */
  port: number;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

export const DEFAULT_STORE_FAILING_THRESHOLD_MS = 60_000;

export interface Readiness {
  ready: boolean;
  /** Why not ready; empty when ready. */
  reasons: string[];
}

/** The /readyz decision, from a stats snapshot. */
export function readinessOf(stats: CaptureStats, options: ReadinessOptions = {}): Readiness {
  const thresholdMs = options.storeFailingThresholdMs ?? DEFAULT_STORE_FAILING_THRESHOLD_MS;
  const reasons: string[] = [];
  if (stats.ended) reasons.push('capture ended');
  else {
    if (stats.connectionStatus !== 'connected') reasons.push(`connection ${stats.connectionStatus}`);
    if (!stats.consumerBound) reasons.push('consumer not bound');
  }
  if (stats.storeFailingForMs !== null && stats.storeFailingForMs > thresholdMs) {
    reasons.push(`store failing for ${stats.storeFailingForMs} ms (threshold ${thresholdMs} ms)`);
  }
  return { ready: reasons.length === 0, reasons };
}

export async function startMonitorServer(options: MonitorServerOptions): Promise<MonitorServer> {
  const host = options.host ?? '127.0.0.1';
  const { handle, registry } = options;
  const readiness = options.readiness ?? {};

  const respond = (res: ServerResponse, status: number, contentType: string, body: string) => {
    res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
    res.end(body);
  };
  const json = (res: ServerResponse, status: number, body: unknown) => respond(res, status, 'application/json', `${JSON.stringify(body)}\n`);

  const handleRequest = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== '/metrics' && path !== '/healthz' && path !== '/readyz') return respond(res, 404, 'text/plain; charset=utf-8', 'not found\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return respond(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    }
    switch (path) {
      case '/metrics':
        return respond(res, 200, registry.contentType, await registry.metrics());
      case '/healthz':
        return respond(res, 200, 'text/plain; charset=utf-8', 'ok\n');
      case '/readyz': {
        const { ready, reasons } = readinessOf(handle.stats(), readiness);
        return ready ? json(res, 200, { ready: true }) : json(res, 503, { ready: false, reason: reasons.join('; ') });
      }
    }
  };

  const server = createServer((req, res) => {
    handleRequest(req, res).catch((error: unknown) => {
      // A failing collect() must not take the process down; the scrape shows the failure.
      if (!res.headersSent) respond(res, 500, 'text/plain; charset=utf-8', `${error instanceof Error ? error.message : String(error)}\n`);
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Keep-alive connections of scrapers would hold close() open.
        server.closeAllConnections();
      }),
  };
}
