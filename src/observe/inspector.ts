/**
 * The live inspector: a collector fed by XState's `inspect` hook (CaptureOptions.inspect) that keeps a
 * small model of every capture actor (supervisor, connection, subscription, one per block) and the
 * recent transitions, and a local HTTP server that shows it: `GET /` the page, `GET /state` the model
 * as JSON, `GET /events` the model pushed over server-sent events. No asset comes from the internet.
 *
 * The inspection callback runs inside the actors' own processing, so it only updates the model and
 * schedules a push; it never throws and never waits. Memory is bounded: finished blocks and transitions
 * live in rings, and a live block's message count is read from its buffer only while the block is open.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { InspectionEvent } from 'xstate';
import { INSPECTOR_HTML, INSPECTOR_SCRIPT, INSPECTOR_STYLE } from './inspector-page.js';

export type InspectedKind = 'supervisor' | 'connection' | 'subscription' | 'block';
/** XState's snapshot status: `done` is a final state, `stopped` an actor ended by its parent. */
export type InspectedStatus = 'active' | 'done' | 'error' | 'stopped';

export interface InspectedActor {
  /** XState's session id: unique per actor, stable across its transitions. */
  session: string;
  kind: InspectedKind;
  /** `capture` for the supervisor, `connection`, `subscription`, or the block id (`b1`, `b2`…). */
  id: string;
  /** The state value, dotted (`persisting.storing`); parallel regions are joined with `, `. */
  state: string;
  status: InspectedStatus;
  /** When the actor entered its current state (inspector clock, ms). */
  since: number;
  /** Blocks only: messages appended so far. */
  messages?: number;
  /** Blocks only: when the block opened (capture clock, ms). */
  openedAt?: number;
  /** Blocks only: ms since it opened (until it finished, for finished blocks). */
  ageMs?: number;
  splitKey?: string;
  /** Blocks only: the block's key in the store, once sealed. */
  key?: string;
  /** When the actor reached a final state or was stopped (inspector clock, ms). */
  finishedAt?: number;
}

export interface InspectedTransition {
  time: number;
  session: string;
  kind: InspectedKind;
  actor: string;
  /** Null for the actor's first state. */
  from: string | null;
  to: string;
  /** The event that caused it (`xstate.init` for the first state). */
  event: string;
}

export interface InspectorModel {
  /** The inspector's clock when the model was taken. */
  now: number;
  /** Supervisor, connection and subscription first, then the live blocks in the order they opened. */
  actors: InspectedActor[];
  /** The most recently finished blocks (acked, failed, abandoned), newest first. */
  finishedBlocks: InspectedActor[];
  /** The most recent state changes, oldest first. */
  transitions: InspectedTransition[];
}

export interface InspectorServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface Inspector {
  /** Pass as CaptureOptions.inspect. */
  inspect: (event: InspectionEvent) => void;
  /** The current model. */
  snapshot(): InspectorModel;
  /** Serves the page, `/state` and `/events`. Binds to 127.0.0.1 unless told otherwise. */
  listen(port: number, host?: string): Promise<InspectorServer>;
}

export interface InspectorOptions {
  /** Clock in ms; tests inject a simulated one. */
  now?: () => number;
  /** Transitions kept. Default 200. */
  maxTransitions?: number;
  /** Finished blocks kept visible. Default 50. */
  maxFinishedBlocks?: number;
  /** Least time between two pushes to the page. Default 100 ms (at most 10 a second). */
  pushIntervalMs?: number;
}

/** Machine ids (the `id` of each createMachine) that the inspector shows, by kind. */
const KIND_OF_MACHINE = new Map<string, InspectedKind>([
  ['connection', 'connection'],
  ['subscription', 'subscription'],
  ['block', 'block'],
]);
const KIND_ORDER: Record<InspectedKind, number> = { supervisor: 0, connection: 1, subscription: 2, block: 3 };

/** Only what the collector reads of a block's context (machines/block-machine.ts). */
interface BlockContextView {
  id?: unknown;
  buffer?: { count?: unknown; openedAt?: unknown; splitKey?: unknown };
  sealed?: { key?: unknown };
}
interface SnapshotView {
  status?: unknown;
  value?: unknown;
  context?: unknown;
  machine?: { id?: unknown };
}

interface Entry {
  model: InspectedActor;
  rootId: string;
  order: number;
  /** The live buffer of an open block, so its count is current between events; dropped when it finishes. */
  buffer: { count?: unknown } | undefined;
}

/** `{ persisting: 'storing' }` → `persisting.storing`; parallel regions → `a.x, b.y`. */
export function dottedState(value: unknown): string {
  const paths: string[] = [];
  const walk = (v: unknown, prefix: string) => {
    if (typeof v === 'string') paths.push(prefix + v);
    else if (v && typeof v === 'object') {
      const entries = Object.entries(v);
      if (entries.length === 0 && prefix) paths.push(prefix.slice(0, -1));
      for (const [k, child] of entries) walk(child, `${prefix}${k}.`);
    }
  };
  walk(value, '');
  return paths.join(', ');
}

function statusOf(snapshot: SnapshotView): InspectedStatus {
  const s = snapshot.status;
  return s === 'done' || s === 'error' || s === 'stopped' ? s : 'active';
}

export function createInspector(options: InspectorOptions = {}): Inspector {
  const now = options.now ?? Date.now;
  const maxTransitions = options.maxTransitions ?? 200;
  const maxFinished = options.maxFinishedBlocks ?? 50;
  const pushIntervalMs = options.pushIntervalMs ?? 100;

  const live = new Map<string, Entry>();
  const finished: InspectedActor[] = [];
  const transitions: InspectedTransition[] = [];
  let order = 0;

  const sinks = new Set<(model: InspectorModel) => void>();
  let pushTimer: NodeJS.Timeout | undefined;
  let lastPushAt = 0;

  const push = () => {
    pushTimer = undefined;
    lastPushAt = Date.now();
    if (sinks.size === 0) return;
    const model = snapshot();
    for (const sink of sinks) sink(model);
  };
  const changed = () => {
    if (sinks.size === 0 || pushTimer) return;
    pushTimer = setTimeout(push, Math.max(0, lastPushAt + pushIntervalMs - Date.now()));
    pushTimer.unref();
  };

  const record = (entry: Entry, from: string | null, event: string) => {
    const m = entry.model;
    transitions.push({ time: m.since, session: m.session, kind: m.kind, actor: m.id, from, to: m.state, event });
    if (transitions.length > maxTransitions) transitions.splice(0, transitions.length - maxTransitions);
  };

  const finish = (entry: Entry, status: InspectedStatus) => {
    const m = entry.model;
    m.status = status;
    m.finishedAt = now();
    if (entry.buffer) m.messages = countOf(entry.buffer, m.messages);
    entry.buffer = undefined;
    if (m.kind === 'block') {
      if (m.openedAt !== undefined) m.ageMs = Math.max(0, m.finishedAt - m.openedAt);
      live.delete(m.session);
      finished.unshift(m);
      if (finished.length > maxFinished) finished.length = maxFinished;
    }
  };

  const onSnapshot = (event: Extract<InspectionEvent, { type: '@xstate.snapshot' }>) => {
    const session = event.actorRef.sessionId;
    const snap = event.snapshot as SnapshotView;
    const isRoot = session === event.rootId;
    let entry = live.get(session);
    if (!entry) {
      // A first snapshot that is already final comes late, from an actor finished and forgotten.
      if (statusOf(snap) !== 'active') return;
      const machineId = typeof snap.machine?.id === 'string' ? snap.machine.id : undefined;
      const kind = isRoot ? 'supervisor' : machineId === undefined ? undefined : KIND_OF_MACHINE.get(machineId);
      if (!kind) return;
      const refId = (event.actorRef as { id?: unknown }).id;
      // A block's actor id is only its number (see the capture supervisor); its context has the block id.
      const blockId = kind === 'block' ? (snap.context as BlockContextView | undefined)?.id : undefined;
      // The root's own id is its session id (`x:0`); its machine id (`capture`) says more.
      const id = isRoot ? (machineId ?? 'capture') : typeof blockId === 'string' ? blockId : typeof refId === 'string' ? refId : session;
      forgetFinishedLike(kind, id, event.rootId);
      entry = {
        model: { session, kind, id, state: '', status: 'active', since: now() },
        rootId: event.rootId,
        order: order++,
        buffer: undefined,
      };
      live.set(session, entry);
    }
    if (entry.model.finishedAt !== undefined) return;
    const m = entry.model;
    const state = dottedState(snap.value);
    if (state !== m.state) {
      const from = m.state === '' ? null : m.state;
      m.state = state;
      m.since = now();
      record(entry, from, typeof event.event?.type === 'string' ? event.event.type : 'unknown');
    }
    if (m.kind === 'block') readBlock(entry, snap.context as BlockContextView | undefined);
    const status = statusOf(snap);
    if (status !== 'active') {
      finish(entry, status);
      // A finished capture ends every actor it owned, whether or not they said so.
      if (isRoot) {
        for (const other of [...live.values()]) {
          if (other.rootId === event.rootId && other.model.finishedAt === undefined) finish(other, 'stopped');
        }
      }
    }
    changed();
  };

  /** A new actor replaces a finished one of the same kind and id, and a new capture the last one's. */
  const forgetFinishedLike = (kind: InspectedKind, id: string, rootId: string) => {
    if (kind === 'block') return;
    for (const [session, other] of live) {
      if (other.model.finishedAt === undefined) continue;
      if ((other.model.kind === kind && other.model.id === id) || (kind === 'supervisor' && other.rootId !== rootId)) live.delete(session);
    }
  };

  const readBlock = (entry: Entry, context: BlockContextView | undefined) => {
    const m = entry.model;
    const buffer = context?.buffer;
    if (buffer) {
      entry.buffer = buffer;
      m.messages = countOf(buffer, m.messages);
      if (typeof buffer.openedAt === 'number') m.openedAt = buffer.openedAt;
      if (typeof buffer.splitKey === 'string') m.splitKey = buffer.splitKey;
    }
    if (typeof context?.sealed?.key === 'string') m.key = context.sealed.key;
  };

  const snapshot = (): InspectorModel => {
    const t = now();
    const actors = [...live.values()]
      .sort((a, b) => KIND_ORDER[a.model.kind] - KIND_ORDER[b.model.kind] || a.order - b.order)
      .map((entry) => {
        const m = { ...entry.model };
        if (entry.buffer) m.messages = countOf(entry.buffer, m.messages);
        if (m.kind === 'block' && m.openedAt !== undefined && m.finishedAt === undefined) m.ageMs = Math.max(0, t - m.openedAt);
        return m;
      });
    return { now: t, actors, finishedBlocks: finished.map((m) => ({ ...m })), transitions: transitions.map((x) => ({ ...x })) };
  };

  const inspect = (event: InspectionEvent) => {
    if (event.type !== '@xstate.snapshot') return;
    try {
      onSnapshot(event);
    } catch {
      // The page is a debugging aid: it must never break the capture it watches.
    }
  };

  return {
    inspect,
    snapshot,
    listen: (port, host = '127.0.0.1') => serve({ port, host, snapshot, sinks }),
  };
}

function countOf(buffer: { count?: unknown }, fallback: number | undefined): number {
  return typeof buffer.count === 'number' ? buffer.count : (fallback ?? 0);
}

// ---------------------------------------------------------------------------------------------------
// HTTP: the page, its script and style, the model, and the SSE stream.

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};
// Nothing but this server: no CDN, no inline script, no frames.
const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const KEEPALIVE_MS = 15_000;

interface ServeParams {
  port: number;
  host: string;
  snapshot: () => InspectorModel;
  sinks: Set<(model: InspectorModel) => void>;
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** `Host: example.com:8080` → `example.com`; `[::1]:8080` → `::1`. */
function hostnameOf(header: string | undefined): string {
  if (!header) return '';
  const bracketed = /^\[([^\]]+)\]/.exec(header);
  if (bracketed) return bracketed[1]!;
  return header.replace(/:\d+$/, '');
}

function serve({ port, host, snapshot, sinks }: ServeParams): Promise<InspectorServer> {
  const clients = new Set<ServerResponse>();
  // Bound to loopback, the page answers only to loopback names: a web page elsewhere cannot read the
  // model through DNS rebinding.
  const loopbackOnly = isLoopback(host);

  const sendModel = (() => {
    // One serialisation per push for every client; a slow client skips pushes and gets the latest on drain.
    const congested = new WeakMap<ServerResponse, boolean>();
    const pending = new WeakSet<ServerResponse>();
    let latest = '';
    const write = (res: ServerResponse) => {
      if (congested.get(res)) {
        pending.add(res);
        return;
      }
      if (!res.write(latest)) {
        congested.set(res, true);
        res.once('drain', () => {
          congested.set(res, false);
          if (pending.delete(res)) write(res);
        });
      }
    };
    return (model: InspectorModel, only?: ServerResponse) => {
      latest = `data: ${JSON.stringify(model)}\n\n`;
      if (only) write(only);
      else for (const res of clients) write(res);
    };
  })();
  const sink = (model: InspectorModel) => sendModel(model);

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    if (loopbackOnly && !isLoopback(hostnameOf(req.headers.host))) return plain(res, 403, 'forbidden host\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return plain(res, 405, 'method not allowed\n');
    }
    const path = (req.url ?? '/').split('?')[0];
    switch (path) {
      case '/':
      case '/index.html':
        return body(res, 200, 'text/html; charset=utf-8', INSPECTOR_HTML, { 'content-security-policy': PAGE_CSP });
      case '/inspector.js':
        return body(res, 200, 'text/javascript; charset=utf-8', INSPECTOR_SCRIPT);
      case '/inspector.css':
        return body(res, 200, 'text/css; charset=utf-8', INSPECTOR_STYLE);
      case '/state':
        return body(res, 200, 'application/json; charset=utf-8', JSON.stringify(snapshot()));
      case '/favicon.ico':
        res.writeHead(204, SECURITY_HEADERS).end();
        return;
      case '/events': {
        res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
        if (req.method === 'HEAD') return res.end();
        res.write('retry: 2000\n\n');
        clients.add(res);
        if (clients.size === 1) sinks.add(sink);
        res.on('close', () => {
          clients.delete(res);
          if (clients.size === 0) sinks.delete(sink);
        });
        sendModel(snapshot(), res);
        return;
      }
      default:
        return plain(res, 404, 'not found\n');
    }
  };

  const server = createServer(handle);
  const keepalive = setInterval(() => {
    for (const res of clients) res.write(': keepalive\n\n');
  }, KEEPALIVE_MS);
  keepalive.unref();

  return new Promise((resolve, reject) => {
    server.once('error', (error) => {
      clearInterval(keepalive);
      reject(error);
    });
    server.listen(port, host, () => {
      const bound = (server.address() as AddressInfo).port;
      const shown = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
      resolve({
        url: `http://${shown}:${bound}/`,
        port: bound,
        close: () =>
          new Promise<void>((done) => {
            clearInterval(keepalive);
            sinks.delete(sink);
            for (const res of clients) res.end();
            clients.clear();
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

function body(res: ServerResponse, status: number, type: string, text: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, ...extra, 'content-type': type, 'content-length': Buffer.byteLength(text) });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

function plain(res: ServerResponse, status: number, text: string): void {
  body(res, status, 'text/plain; charset=utf-8', text);
}
