/**
 * AzureBlobStore against Azurite, started in-process by the test (integration/helpers/azurite.ts): the
 * shared conformance suite, then what only Azure has: blocks of a large upload, check() of the container,
 * rejected credentials, an outage through the fault proxy, and no secret in any error.
 */
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import {
  AccountSASPermissions,
  AccountSASResourceTypes,
  AccountSASServices,
  ContainerClient,
  ContainerSASPermissions,
  StorageSharedKeyCredential,
  generateAccountSASQueryParameters,
} from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeError, StoreError } from '../../src/errors.js';
import { AzureBlobStore } from '../../src/stores/azure-blob.js';
import { startAzurite, type Azurite } from '../helpers/azurite.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { storeConformance } from './conformance.js';

/** A container name of its own for each use: lowercase letters, digits and hyphens. */
function uniqueContainer(label: string): string {
  return `jv-${label}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

async function createContainer(azurite: Azurite, name: string): Promise<ContainerClient> {
  const client = new ContainerClient(azurite.connectionString, name);
  await client.create();
  return client;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/**
 * Every string reachable from a value through own properties, enumerable or not (as the most thorough
 * error serializers walk them, e.g. a test runner's): a secret anywhere in an error's tree shows here.
 */
function everyString(value: unknown, seen = new Set<unknown>()): string {
  if (typeof value === 'string') return value;
  if (value === null || (typeof value !== 'object' && typeof value !== 'function') || seen.has(value)) return '';
  seen.add(value);
  const out: string[] = [];
  for (const name of Object.getOwnPropertyNames(value)) {
    const descriptor = Object.getOwnPropertyDescriptor(value, name);
    if (descriptor && 'value' in descriptor) out.push(everyString(descriptor.value, seen));
  }
  return out.join('\n');
}

storeConformance('AzureBlobStore (Azurite)', async () => {
  const azurite = await startAzurite();
  const container = uniqueContainer('conformance');
  await createContainer(azurite, container);
  // Under a prefix, so every key goes through the prefix mapping and list() strips it again.
  const store = new AzureBlobStore({ connectionString: azurite.connectionString, container, prefix: '/archive/conformance/' });
  return { store, cleanup: () => azurite.close() };
});

describe('AzureBlobStore on Azurite', () => {
  let azurite: Azurite;
  let container: string;
  let containerClient: ContainerClient;
  const MiB = 1024 * 1024;

  beforeAll(async () => {
    azurite = await startAzurite();
    container = uniqueContainer('azure');
    containerClient = await createContainer(azurite, container);
  });
  afterAll(async () => {
    await azurite?.close();
  });

  const storeWith = (extra: Partial<ConstructorParameters<typeof AzureBlobStore>[0]> = {}) =>
    new AzureBlobStore({ connectionString: azurite.connectionString, container, ...extra });

  it('describes itself by account, container and prefix, never by key or connection string', () => {
    const store = storeWith({ prefix: 'a/b' });
    expect(store.description).toBe(`azure://devstoreaccount1/${container}/a/b`);
    expect(storeWith().description).toBe(`azure://devstoreaccount1/${container}`);
    expect(new AzureBlobStore({ accountUrl: azurite.accountUrl, container, sasToken: '?sv=x&sig=abc' }).description).toBe(
      `azure://devstoreaccount1/${container}`,
    );
  });

  it('uploads 40 MiB as five 8 MiB blocks, committed, and reads it back byte-identical', { timeout: 120_000 }, async () => {
    const store = storeWith({ prefix: 'big', blockSizeBytes: 8 * MiB, concurrency: 4 });
    const body = randomBytes(40 * MiB);
    await store.put('block.jv', body);
    const blocks = await containerClient.getBlockBlobClient('big/block.jv').getBlockList('committed');
    expect(blocks.committedBlocks?.map((b) => b.size)).toEqual([8 * MiB, 8 * MiB, 8 * MiB, 8 * MiB, 8 * MiB]);
    expect((await store.get('block.jv')).equals(body)).toBe(true);
    // At or below one block: a single Put Blob, no block list.
    await store.put('small.jv', randomBytes(MiB));
    expect((await containerClient.getBlockBlobClient('big/small.jv').getBlockList('committed')).committedBlocks ?? []).toEqual([]);
  });

  it('stores content type, access tier and metadata under valid Azure names', async () => {
    const store = storeWith({ prefix: 'meta', accessTier: 'Cool' });
    await store.put('block.jv', Buffer.from('x'), {
      contentType: 'application/octet-stream',
      metadata: { 'jv-first-seq': '1', 'jv-last-seq': '5000', 'jv-sha256': 'ab'.repeat(32) },
    });
    const properties = await containerClient.getBlockBlobClient('meta/block.jv').getProperties();
    expect(properties.contentType).toBe('application/octet-stream');
    expect(properties.accessTier).toBe('Cool');
    expect(properties.metadata).toEqual({ jv_first_seq: '1', jv_last_seq: '5000', jv_sha256: 'ab'.repeat(32) });
  });

  it('rejects a put aborted mid-upload with the signal reason and commits nothing', { timeout: 60_000 }, async () => {
    const store = storeWith({ prefix: 'abort', blockSizeBytes: MiB, concurrency: 1 });
    const controller = new AbortController();
    const reason = new Error('capture stopping');
    const put = store.put('block.jv', randomBytes(32 * MiB), { signal: controller.signal });
    setTimeout(() => controller.abort(reason), 20);
    expect(await rejection(put)).toBe(reason);
    expect(await store.exists('block.jv')).toBe(false);
  });

  it('check() passes for an existing container', async () => {
    await expect(storeWith().check()).resolves.toBeUndefined();
  });

  it('check() on a missing container fails permanently, naming the container', async () => {
    const missing = uniqueContainer('missing');
    const store = new AzureBlobStore({ connectionString: azurite.connectionString, container: missing, prefix: 'p' });
    const error = await rejection(store.check());
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ code: 'JV_STORE_FAILED', transient: false });
    expect((error as Error).message).toBe(`container ${missing} does not exist (azure://devstoreaccount1/${missing}/p)`);
    // A put into it fails the same way, at once.
    expect(await rejection(store.put('x.jv', Buffer.from('x')))).toMatchObject({ code: 'JV_STORE_FAILED', transient: false });
  });

  it('a wrong account key is a permanent access-denied failure, for check() and for put()', async () => {
    const wrongKey = randomBytes(64).toString('base64');
    const connectionString = azurite.connectionString.replace(azurite.accountKey, wrongKey);
    expect(connectionString).toContain(wrongKey);
    const store = new AzureBlobStore({ connectionString, container });
    for (const attempt of [() => store.check(), () => store.put('x.jv', Buffer.from('x')), () => store.get('x.jv')]) {
      const error = await rejection(attempt());
      expect(error).toMatchObject({ code: 'JV_STORE_FAILED', transient: false });
      expect((error as Error).message).toMatch(new RegExp(`^access denied to container ${container}: check credentials`));
      expect(describeError(error)).not.toContain(wrongKey);
      // One line for the CLI: the service's RequestId and Time lines stay out.
      expect(describeError(error)).not.toContain('\n');
    }
  });

  it('check() accepts a container SAS that may list but not read container properties, and a write-only one', async () => {
    const expiresOn = new Date(Date.now() + 3600_000);
    for (const permissions of ['racwdl', 'cw']) {
      const url = new URL(await containerClient.generateSasUrl({ permissions: ContainerSASPermissions.parse(permissions), expiresOn }));
      const store = new AzureBlobStore({ accountUrl: azurite.accountUrl, container, sasToken: url.search });
      await expect(store.check(), permissions).resolves.toBeUndefined();
    }
  });

  describe('behind a fault-injecting proxy, with an account SAS', () => {
    let proxy: FaultProxy;
    let sasToken: string;
    let signature: string;

    beforeAll(async () => {
      proxy = await startFaultProxy(new URL(azurite.accountUrl).origin);
      sasToken = generateAccountSASQueryParameters(
        {
          expiresOn: new Date(Date.now() + 3600_000),
          permissions: AccountSASPermissions.parse('rwdlac'),
          resourceTypes: AccountSASResourceTypes.parse('sco').toString(),
          services: AccountSASServices.parse('b').toString(),
        },
        new StorageSharedKeyCredential(azurite.account, azurite.accountKey),
      ).toString();
      signature = new URLSearchParams(sasToken).get('sig') ?? '';
      expect(signature.length).toBeGreaterThan(20);
    });
    afterAll(async () => {
      await proxy?.close();
    });

    const proxiedStore = (maxSdkRetries?: number) =>
      new AzureBlobStore({
        accountUrl: `${proxy.url}/${azurite.account}`,
        sasToken,
        container,
        prefix: 'outage',
        ...(maxSdkRetries === undefined ? {} : { maxSdkRetries }),
      });

    /** Nothing secret in the message, the one-line report, or a full inspection of the error and its causes. */
    function expectNoSecrets(error: unknown): void {
      const texts = [(error as Error).message, describeError(error), inspect(error, { depth: 6 }), everyString(error)];
      for (const text of texts) {
        expect(text).not.toContain(signature);
        expect(text).not.toContain(decodeURIComponent(signature));
        expect(text).not.toContain(azurite.accountKey);
        expect(text).not.toMatch(/sig=(?!\*\*\*|REDACTED)/);
      }
    }

    it.each(['503', 'drop'] as const)(
      'put during a %s outage rejects with a transient JV_STORE_UNAVAILABLE after one SDK retry, then works again',
      { timeout: 30_000 },
      async (mode) => {
        const store = proxiedStore();
        const body = randomBytes(64 * 1024);
        await store.put(`${mode}/warm.jv`, body);
        const before = proxy.counts[mode];
        proxy.mode = mode;
        let error: unknown;
        try {
          error = await rejection(store.put(`${mode}/block.jv`, body));
        } finally {
          proxy.mode = 'pass';
        }
        expect(error).toBeInstanceOf(StoreError);
        expect(error).toMatchObject({ code: 'JV_STORE_UNAVAILABLE', transient: true });
        expect((error as Error).message).toContain(`${store.description}: cannot put "${mode}/block.jv"`);
        // maxSdkRetries 1 (the default): the first try and one retry, no more.
        expect(proxy.counts[mode] - before).toBe(2);
        expectNoSecrets(error);

        await store.put(`${mode}/block.jv`, body);
        expect((await store.get(`${mode}/block.jv`)).equals(body)).toBe(true);
      },
    );

    it('maxSdkRetries 0 makes a single try', async () => {
      const store = proxiedStore(0);
      const before = proxy.counts['503'];
      proxy.mode = '503';
      try {
        expect(await rejection(store.get('never.jv'))).toMatchObject({ code: 'JV_STORE_UNAVAILABLE', transient: true });
      } finally {
        proxy.mode = 'pass';
      }
      expect(proxy.counts['503'] - before).toBe(1);
    });

    it('no SAS signature or account key in errors: outage, tampered signature, missing container, missing key', async () => {
      const errors: unknown[] = [];
      proxy.mode = '503';
      try {
        errors.push(await rejection(proxiedStore().put('secret/a.jv', Buffer.from('x'))));
        errors.push(await rejection(proxiedStore().check()));
      } finally {
        proxy.mode = 'pass';
      }
      const tampered = sasToken.replace(/sig=[^&]+/, `sig=${encodeURIComponent(randomBytes(32).toString('base64'))}`);
      const badSig = new URLSearchParams(tampered).get('sig') ?? '';
      const tamperedStore = new AzureBlobStore({ accountUrl: azurite.accountUrl, sasToken: tampered, container });
      for (const attempt of [() => tamperedStore.check(), () => tamperedStore.put('a.jv', Buffer.from('x'))]) {
        const error = await rejection(attempt());
        expect(error).toMatchObject({ code: 'JV_STORE_FAILED', transient: false });
        expect((error as Error).message).toContain('access denied');
        for (const text of [(error as Error).message, describeError(error), inspect(error, { depth: 6 }), everyString(error)]) {
          expect(text).not.toContain(badSig);
          expect(text).not.toContain(decodeURIComponent(badSig));
        }
        errors.push(error);
      }
      const missing = uniqueContainer('gone');
      errors.push(await rejection(new AzureBlobStore({ accountUrl: azurite.accountUrl, sasToken, container: missing }).check()));
      errors.push(await rejection(new AzureBlobStore({ accountUrl: azurite.accountUrl, sasToken, container }).get('no/such.jv')));
      expect(errors.map((e) => (e as StoreError).code)).toEqual([
        'JV_STORE_UNAVAILABLE',
        'JV_STORE_UNAVAILABLE',
        'JV_STORE_FAILED',
        'JV_STORE_FAILED',
        'JV_STORE_FAILED',
        'JV_STORE_NOT_FOUND',
      ]);
      for (const error of errors) expectNoSecrets(error);
    });
  });
});
