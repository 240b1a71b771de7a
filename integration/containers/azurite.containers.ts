/**
 * The store conformance suite against Azurite in a container (testcontainers), when a container runtime
 * is there: `npm run test:containers`. Without one the suite is skipped; runtime.ts prints why.
 * Not part of `vitest run` / CI: the default config includes only *.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { ContainerClient } from '@azure/storage-blob';
import { GenericContainer, Wait } from 'testcontainers';
import { describe, inject } from 'vitest';
import { AzureBlobStore } from '../../src/stores/azure-blob.js';
import { AZURITE_ACCOUNT, AZURITE_ACCOUNT_KEY } from '../helpers/azurite.js';
import { storeConformance } from '../stores/conformance.js';
import { detectContainerRuntime, type ContainerRuntime } from './runtime.js';

/** Pinned to the version of the `azurite` devDependency the in-process tests use. */
export const AZURITE_IMAGE = 'mcr.microsoft.com/azure-storage/azurite:3.35.0';
const BLOB_PORT = 10000;

// Provided by runtime.ts as globalSetup; detected here only if the file runs under another config.
const runtime = (inject('containerRuntime') as ContainerRuntime | undefined) ?? (await detectContainerRuntime());

describe.skipIf(!runtime.available)('Azurite in a container', () => {
  storeConformance(`AzureBlobStore (${AZURITE_IMAGE})`, async () => {
    const container = await new GenericContainer(AZURITE_IMAGE)
      .withExposedPorts(BLOB_PORT)
      .withCommand([
        'azurite-blob',
        '--blobHost',
        '0.0.0.0',
        '--blobPort',
        String(BLOB_PORT),
        '--skipApiVersionCheck',
        // Path-style URLs whatever host name testcontainers reaches the container by (a dotted one
        // like host.docker.internal would otherwise be read as <account>.<rest>).
        '--disableProductStyleUrl',
        '--inMemoryPersistence',
        '--disableTelemetry',
      ])
      // azurite-blob 3.35 prints "Azurite Blob service successfully listens on …"; the combined
      // `azurite` entry says "is successfully listening at …".
      .withWaitStrategy(Wait.forLogMessage(/Azurite Blob service (?:is )?successfully listen/))
      .withStartupTimeout(120_000)
      .start();
    try {
      const accountUrl = `http://${container.getHost()}:${container.getMappedPort(BLOB_PORT)}/${AZURITE_ACCOUNT}`;
      const connectionString = `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_ACCOUNT_KEY};BlobEndpoint=${accountUrl};`;
      const name = `jv-conformance-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
      await new ContainerClient(connectionString, name).create();
      // Under a prefix, as in stores/azure.test.ts.
      const store = new AzureBlobStore({ connectionString, container: name, prefix: '/archive/conformance/' });
      return {
        store,
        cleanup: async () => {
          await container.stop();
        },
      };
    } catch (error) {
      await container.stop();
      throw error;
    }
  });
});
