/**
 * A 3-node JetStream cluster on loopback: real nats-server processes started with the same launcher as
 * every other integration test (src/cli/local-nats-server.ts), each with its own store dir, client port and
 * cluster port, routed to the other two. Ready when every node logged "Server is ready", JetStream
 * answers API requests on each (a meta leader was elected) and a stream with one replica per node can be placed. A node can be killed (SIGKILL) and restarted on the
 * same ports with the same store dir (ready again when an R3 stream can be placed); `streamLeader()` / `consumerLeader()` say which node leads what, and
 * `createConsumerLedBy()` places a new consumer's leader.
 */
import { jetstreamManager, type ConsumerConfig, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createServer } from 'node:net';
import { startNatsServer, type NatsServer } from '../helpers/nats-server.js';

export interface ClusterNode {
  /** Server name (`-n`), as JetStream reports it in `cluster.leader`. */
  name: string;
  clusterPort: number;
  server: NatsServer;
  readonly url: string;
  /** False between kill() and restart(). */
  running: boolean;
}

export interface Cluster {
  name: string;
  nodes: ClusterNode[];
  /** Client URLs of all nodes, for a connection that may fail over to any of them. */
  urls(): string[];
  node(name: string): ClusterNode;
  /** The node leading `stream` now (asks through `nc`), waiting up to `timeoutMs` for a leader to exist. */
  streamLeader(nc: NatsConnection, stream: string, timeoutMs?: number): Promise<ClusterNode>;
  /** The node leading a consumer now. */
  consumerLeader(nc: NatsConnection, stream: string, consumer: string, timeoutMs?: number): Promise<ClusterNode>;
  /**
   * Creates the durable consumer `config` until its leader is where `wanted` says (deleting and creating it
   * again otherwise, up to 20 times; a new consumer's leader lands on any of the stream's peers), and
   * resolves with that leader. For tests that need a known placement: on the stream leader's node, or away.
   */
  createConsumerLedBy(
    nc: NatsConnection,
    stream: string,
    config: Partial<ConsumerConfig> & { durable_name: string },
    wanted: (leader: ClusterNode) => boolean,
  ): Promise<ClusterNode>;
  /** SIGKILL one node; its store dir stays. */
  kill(name: string): Promise<void>;
  /** Starts a killed node again (same ports, same store dir) and waits until it is ready. */
  restart(name: string): Promise<void>;
  dispose(): Promise<void>;
}

/** Free TCP ports on 127.0.0.1, picked by binding port 0 (all held at once, so they differ). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => {
    const address = s.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    return address.port;
  });
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

async function poll<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what} not within ${timeoutMs} ms${lastError ? `: ${String(lastError)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** JetStream answers (account info) through a connection to this node only: the meta leader is known there. */
async function waitForJetStream(url: string, timeoutMs: number): Promise<void> {
  const nc = await connect({ servers: url, maxReconnectAttempts: 0 });
  try {
    await poll(`JetStream meta leader seen from ${url}`, timeoutMs, async () => {
      const jsm: JetStreamManager = await jetstreamManager(nc, { timeout: 1_000 });
      await jsm.getAccountInfo();
      return true;
    });
  } finally {
    await nc.close();
  }
}

/**
 * Waits until the meta leader can place a stream on `replicas` peers: creates a probe stream with that many
 * replicas (retrying) and deletes it. Every node answering API requests is not enough: a node that joined
 * after the meta leader was elected is known as a peer a little later, and until then an R3 stream add
 * fails with "no suitable peers for placement" (seen on CI under load; reproduced by starting the third node
 * after the other two had elected a leader: 9 of 10 immediate R3 adds failed).
 */
export async function waitForPlacement(urls: string[], replicas: number, timeoutMs: number): Promise<void> {
  const nc = await connect({ servers: urls, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const name = `JV_PLACEMENT_PROBE_${process.pid}_${Date.now().toString(36)}`;
  try {
    await poll(`an R${replicas} stream placeable`, timeoutMs, async () => {
      const jsm = await jetstreamManager(nc, { timeout: 2_000 });
      await jsm.streams.add({ name, subjects: [`_jv_placement_probe.${name}`], num_replicas: replicas });
      await jsm.streams.delete(name);
      return true;
    });
  } finally {
    await nc.close();
  }
}

/**
 * Starts the three nodes at once (each waits for "Server is ready"), then waits until every node
 * answers JetStream API requests, i.e. the meta leader was elected and every node knows it, and until a
 * stream with one replica per node can be placed (see waitForPlacement).
 */
export async function startCluster(options: { name?: string; size?: number } = {}): Promise<Cluster> {
  // The ports are free when picked, but another test's server may take one before this cluster binds it.
  // Up to three attempts, each on fresh ports; the last error is the one reported.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startClusterOnce(options);
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}

async function startClusterOnce(options: { name?: string; size?: number }): Promise<Cluster> {
  const size = options.size ?? 3;
  const clusterName = options.name ?? `jv_chaos_${process.pid}_${Date.now().toString(36)}`;
  const ports = await freePorts(size * 2);
  const specs = Array.from({ length: size }, (_, i) => ({
    name: `n${i + 1}`,
    clientPort: ports[i * 2]!,
    clusterPort: ports[i * 2 + 1]!,
  }));
  const nodes: ClusterNode[] = [];
  const started = await Promise.allSettled(
    specs.map(async (spec) => {
      const routes = specs.filter((o) => o !== spec).map((o) => `nats://127.0.0.1:${o.clusterPort}`).join(',');
      const server = await startNatsServer({
        port: spec.clientPort,
        extraArgs: ['-n', spec.name, '--cluster_name', clusterName, '--cluster', `nats://127.0.0.1:${spec.clusterPort}`, '--routes', routes],
      });
      const node: ClusterNode = {
        name: spec.name,
        clusterPort: spec.clusterPort,
        server,
        get url() {
          return server.url;
        },
        running: true,
      };
      nodes.push(node);
      return node;
    }),
  );
  const dispose = async () => {
    await Promise.all(nodes.map((n) => n.server.dispose()));
  };
  const failure = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure) {
    await dispose();
    throw failure.reason;
  }
  nodes.sort((a, b) => a.name.localeCompare(b.name));
  try {
    await Promise.all(nodes.map((n) => waitForJetStream(n.url, 20_000)));
    await waitForPlacement(nodes.map((n) => n.url), size, 20_000);
  } catch (error) {
    const logs = nodes.map((n) => `--- ${n.name}\n${n.server.log().slice(-1500)}`).join('\n');
    await dispose();
    throw new Error(`${String(error)}\n${logs}`);
  }

  const node = (name: string): ClusterNode => {
    const found = nodes.find((n) => n.name === name);
    if (!found) throw new Error(`no cluster node named ${JSON.stringify(name)} (have ${nodes.map((n) => n.name).join(', ')})`);
    return found;
  };
  const consumerLeader = async (nc: NatsConnection, stream: string, consumer: string, timeoutMs = 15_000): Promise<ClusterNode> =>
    node(
      await poll(`a leader of consumer ${consumer}`, timeoutMs, async () => {
        const info = await (await jetstreamManager(nc, { timeout: 2_000 })).consumers.info(stream, consumer);
        const leader = info.cluster?.leader;
        return leader && nodes.some((n) => n.name === leader && n.running) ? leader : undefined;
      }),
    );
  return {
    name: clusterName,
    nodes,
    urls: () => nodes.map((n) => n.url),
    node,
    streamLeader: async (nc, stream, timeoutMs = 15_000) =>
      node(
        await poll(`a leader of stream ${stream}`, timeoutMs, async () => {
          const info = await (await jetstreamManager(nc, { timeout: 2_000 })).streams.info(stream);
          const leader = info.cluster?.leader;
          return leader && nodes.some((n) => n.name === leader && n.running) ? leader : undefined;
        }),
      ),
    consumerLeader,
    createConsumerLedBy: async (nc, stream, config, wanted) => {
      const jsm = await jetstreamManager(nc);
      for (let attempt = 0; attempt < 20; attempt++) {
        await jsm.consumers.add(stream, config);
        const leader = await consumerLeader(nc, stream, config.durable_name);
        if (wanted(leader)) return leader;
        await jsm.consumers.delete(stream, config.durable_name);
      }
      throw new Error(`consumer ${config.durable_name}: no leader in the wanted place after 20 creations`);
    },
    kill: async (name) => {
      const n = node(name);
      n.running = false;
      await n.server.kill();
    },
    restart: async (name) => {
      const n = node(name);
      await n.server.restart();
      n.running = true;
      await waitForJetStream(n.url, 20_000);
      // Until the meta leader counts the node online again, a new R3 stream (the next test's) cannot be placed.
      await waitForPlacement(nodes.map((m) => m.url), nodes.length, 20_000);
    },
    dispose,
  };
}
