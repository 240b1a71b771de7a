/**
 * An HTTP proxy in front of a storage emulator that can fail on demand: answer 503 (with a body the SDKs
 * read as a throttling / server-busy error) or drop connections, for a while or until told otherwise.
 * Only loopback traffic: it listens on 127.0.0.1 and forwards to a 127.0.0.1 target.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type FaultMode = 'pass' | '503' | 'drop';

export interface FaultProxy {
  /** Base URL to give the store client instead of the emulator's. */
  url: string;
  port: number;
  mode: FaultMode;
  /** Requests answered since start, by what happened to them. */
  counts: Record<FaultMode, number>;
  /** Fails every request with `mode` for `ms`, then passes again. */
  failFor(mode: Exclude<FaultMode, 'pass'>, ms: number): Promise<void>;
  close(): Promise<void>;
}

export async function startFaultProxy(targetUrl: string): Promise<FaultProxy> {
  const target = new URL(targetUrl);
  const sockets = new Set<Socket>();
  const proxy: FaultProxy = {
    url: '',
    port: 0,
    mode: 'pass',
    counts: { pass: 0, '503': 0, drop: 0 },
    failFor: (mode, ms) => {
      proxy.mode = mode;
      return new Promise((resolve) =>
        setTimeout(() => {
          proxy.mode = 'pass';
          resolve();
        }, ms),
      );
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const mode = proxy.mode;
    proxy.counts[mode]++;
    if (mode === 'drop') {
      req.socket.destroy();
      return;
    }
    if (mode === '503') {
      // Drain the request body first so the client sees the response, not a reset.
      req.resume();
      req.once('end', () => {
        res.writeHead(503, { 'content-type': 'application/xml', 'retry-after': '0' });
        res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code><Message>injected outage</Message></Error>');
      });
      return;
    }
    const upstream = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.once('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.port = (server.address() as AddressInfo).port;
  proxy.url = `http://127.0.0.1:${proxy.port}`;
  return proxy;
}
