/**
 * Azurite's Blob service started in-process by the tests themselves: no Docker, no child process. It
 * listens on 127.0.0.1 on a free port, keeps blobs in memory (a chunk store of its own, so two servers in
 * one process never share data), and writes nothing outside a temp dir that close() removes.
 *
 * Azurite ships no type declarations, so it is loaded with require() and typed here by the few members
 * used. Telemetry is off: it is only switched on by Azurite's own CLI entry (AzuriteTelemetryClient.init),
 * which we never call. Debug and access logs are off.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface Azurite {
  /** `http://127.0.0.1:PORT/devstoreaccount1`: path-style, the account is the first path segment. */
  accountUrl: string;
  connectionString: string;
  account: string;
  accountKey: string;
  close(): Promise<void>;
}

/** The well-known development account every Azurite and the old storage emulator accept (Azurite docs). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_ACCOUNT_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

interface BlobServerInstance {
  start(): Promise<void>;
  close(): Promise<void>;
  clean(): Promise<void>;
  getHttpServerAddress(): string;
}
type BlobConfigurationCtor = new (...args: unknown[]) => object;
type BlobServerCtor = new (config: object) => BlobServerInstance;
type ChunkStoreCtor = new (sizeLimit?: number) => object;

const require = createRequire(import.meta.url);
const AZURITE_BLOB = 'azurite/dist/src/blob';

function loadAzurite() {
  return {
    BlobServer: (require(`${AZURITE_BLOB}/BlobServer.js`) as { default: BlobServerCtor }).default,
    BlobConfiguration: (require(`${AZURITE_BLOB}/BlobConfiguration.js`) as { default: BlobConfigurationCtor }).default,
    MemoryExtentChunkStore: (
      require('azurite/dist/src/common/persistence/MemoryExtentStore.js') as { MemoryExtentChunkStore: ChunkStoreCtor }
    ).MemoryExtentChunkStore,
  };
}

/** Memory one emulator may hold; the conformance suite stores well under 200 MiB. */
const MEMORY_LIMIT_BYTES = 1024 * 1024 * 1024;

export async function startAzurite(): Promise<Azurite> {
  const { BlobServer, BlobConfiguration, MemoryExtentChunkStore } = loadAzurite();
  const dir = await mkdtemp(path.join(tmpdir(), 'jv-azurite-'));
  // Positional, as BlobConfiguration's constructor takes them (azurite 3.35).
  const config = new BlobConfiguration(
    '127.0.0.1',
    0, // a free port, chosen by the OS
    5, // keep-alive timeout, seconds (Azurite's default)
    path.join(dir, '__azurite_db_blob__.json'),
    path.join(dir, '__azurite_db_blob_extent__.json'),
    [{ locationId: 'Default', locationPath: path.join(dir, '__blobstorage__'), maxConcurrency: 10 }],
    false, // access log
    undefined, // access log stream
    false, // debug log
    undefined, // debug log path
    false, // loose: strict mode, so the SDK meets the same checks as in Azure
    true, // skipApiVersionCheck: the SDK may speak a newer API version than this Azurite knows
    '', // cert
    '', // key
    '', // pwd
    undefined, // oauth
    false, // disableProductStyleUrl
    true, // in-memory persistence
    new MemoryExtentChunkStore(MEMORY_LIMIT_BYTES),
  );
  const server = new BlobServer(config);
  try {
    await server.start();
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const port = new URL(server.getHttpServerAddress()).port;
  const accountUrl = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  let closed = false;
  return {
    accountUrl,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_ACCOUNT_KEY};BlobEndpoint=${accountUrl};`,
    account: AZURITE_ACCOUNT,
    accountKey: AZURITE_ACCOUNT_KEY,
    async close() {
      if (closed) return;
      closed = true;
      try {
        await server.close();
        // Drops the in-memory extents and databases.
        await server.clean();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
