/**
 * AzureBlobStore without a network: the error mapping table, metadata names, descriptions without
 * secrets, and the prefix mapping against a stand-in ContainerClient. The real service behaviour is
 * covered against Azurite in integration/stores/azure.test.ts.
 */
import { RestError, type ContainerClient } from '@azure/storage-blob';
import { describe, expect, it } from 'vitest';
import { describeError, JetvaultError, StoreError } from '../src/errors.js';
import { azureStoreError, AzureBlobStore, sanitizeMetadataName } from '../src/stores/azure-blob.js';
import type { StoredObject } from '../src/stores/store.js';

const SIG = 'c2VjcmV0LXNpZ25hdHVyZS1vZi10aGUtc2FzLXRva2Vu';
const ACCOUNT_KEY = 'QUNDT1VOVEtFWS1zZWNyZXQtc2VjcmV0LXNlY3JldC1zZWNyZXQ=';
const STORE = { description: 'azure://acct/archive/jv', container: 'archive' };

/** A RestError as the SDK throws it: Azure's code in `code` and `details.errorCode`, the signed request attached. */
function restError(statusCode: number | undefined, code: string | undefined, message = 'The service says no.\nRequestId:1\nTime:now'): RestError {
  const error = new RestError(message, {
    ...(code === undefined ? {} : { code }),
    ...(statusCode === undefined ? {} : { statusCode }),
    request: {
      url: `https://acct.blob.core.windows.net/archive/jv/b.jv?sv=2025-01-05&sig=${encodeURIComponent(SIG)}`,
      headers: { authorization: 'Bearer eyJ0eXAiOiJKV1Qi.secret-token' },
    } as never,
  });
  if (code !== undefined && statusCode !== undefined) error.details = { errorCode: code };
  return error;
}

function errnoError(code: string, message = `connect ${code} 127.0.0.1:10000`): Error {
  return Object.assign(new Error(message), { code });
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('azureStoreError', () => {
  it.each([
    ['503 ServerBusy', 'JV_STORE_UNAVAILABLE', true, restError(503, 'ServerBusy')],
    ['503 from a proxy, no Azure code', 'JV_STORE_UNAVAILABLE', true, restError(503, undefined)],
    ['500 InternalError', 'JV_STORE_UNAVAILABLE', true, restError(500, 'InternalError')],
    ['500 OperationTimedOut', 'JV_STORE_UNAVAILABLE', true, restError(500, 'OperationTimedOut')],
    ['502 bad gateway', 'JV_STORE_UNAVAILABLE', true, restError(502, undefined)],
    ['408 request timeout', 'JV_STORE_UNAVAILABLE', true, restError(408, undefined)],
    ['429 throttled', 'JV_STORE_UNAVAILABLE', true, restError(429, undefined)],
    ['REQUEST_SEND_ERROR socket hang up', 'JV_STORE_UNAVAILABLE', true, restError(undefined, 'REQUEST_SEND_ERROR', 'socket hang up')],
    ['REQUEST_SEND_ERROR ECONNRESET', 'JV_STORE_UNAVAILABLE', true, restError(undefined, 'REQUEST_SEND_ERROR', 'read ECONNRESET')],
    ['ECONNRESET', 'JV_STORE_UNAVAILABLE', true, errnoError('ECONNRESET')],
    ['ECONNREFUSED', 'JV_STORE_UNAVAILABLE', true, errnoError('ECONNREFUSED')],
    ['ETIMEDOUT', 'JV_STORE_UNAVAILABLE', true, errnoError('ETIMEDOUT')],
    ['EPIPE', 'JV_STORE_UNAVAILABLE', true, errnoError('EPIPE')],
    ['errno on the cause', 'JV_STORE_UNAVAILABLE', true, Object.assign(new Error('fetch failed'), { cause: errnoError('ECONNRESET') })],
    ['socket hang up, no code', 'JV_STORE_UNAVAILABLE', true, new Error('socket hang up')],
    ['an AbortError not from our signal', 'JV_STORE_UNAVAILABLE', true, new DOMException('The operation was aborted.', 'AbortError')],
    ['404 BlobNotFound', 'JV_STORE_NOT_FOUND', false, restError(404, 'BlobNotFound')],
    ['404 ContainerNotFound', 'JV_STORE_FAILED', false, restError(404, 'ContainerNotFound')],
    ['403 AuthenticationFailed', 'JV_STORE_FAILED', false, restError(403, 'AuthenticationFailed')],
    ['403 AuthorizationFailure', 'JV_STORE_FAILED', false, restError(403, 'AuthorizationFailure')],
    ['403 AuthorizationPermissionMismatch', 'JV_STORE_FAILED', false, restError(403, 'AuthorizationPermissionMismatch')],
    ['401 no code', 'JV_STORE_FAILED', false, restError(401, undefined)],
    ['400 InvalidResourceName', 'JV_STORE_FAILED', false, restError(400, 'InvalidResourceName')],
    ['409 BlobArchived', 'JV_STORE_FAILED', false, restError(409, 'BlobArchived')],
    ['413 RequestBodyTooLarge', 'JV_STORE_FAILED', false, restError(413, 'RequestBodyTooLarge')],
    ['no credential source', 'JV_STORE_FAILED', false, Object.assign(new Error('DefaultAzureCredential failed'), { name: 'CredentialUnavailableError' })],
    ['a TypeError', 'JV_STORE_FAILED', false, new TypeError('Invalid character in header content')],
    ['anything else', 'JV_STORE_UNAVAILABLE', true, new Error('something odd')],
  ])('%s → %s (transient %s)', (_label, code, transient, error) => {
    const mapped = azureStoreError(STORE, 'put', 'ORDERS/b.jv', error);
    expect(mapped).toBeInstanceOf(StoreError);
    expect(mapped).toMatchObject({ code, transient });
    expect(mapped.cause).toBeDefined();
  });

  it('names the store, the key and the cause in one line', () => {
    expect(azureStoreError(STORE, 'put', 'ORDERS/b.jv', restError(503, 'ServerBusy', 'The server is busy.\nRequestId:x\nTime:y')).message).toBe(
      'azure://acct/archive/jv: cannot put "ORDERS/b.jv": 503 ServerBusy: The server is busy.',
    );
    expect(azureStoreError(STORE, 'get', 'ORDERS/b.jv', restError(404, 'BlobNotFound')).message).toBe(
      'azure://acct/archive/jv: object "ORDERS/b.jv" not found',
    );
    expect(azureStoreError(STORE, 'check container', undefined, restError(404, 'ContainerNotFound')).message).toBe(
      'container archive does not exist (azure://acct/archive/jv)',
    );
    expect(azureStoreError(STORE, 'check container', undefined, restError(403, 'AuthenticationFailed', 'Server failed to authenticate the request.')).message).toBe(
      'access denied to container archive: check credentials (azure://acct/archive/jv; 403 AuthenticationFailed: Server failed to authenticate the request.)',
    );
    expect(azureStoreError(STORE, 'list', 'ORDERS/', errnoError('ECONNREFUSED')).message).toBe(
      'azure://acct/archive/jv: cannot list "ORDERS/": ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:10000',
    );
  });

  it('passes jetvault errors through unchanged', () => {
    const original = new JetvaultError('JV_UNSAFE_KEY', 'refused');
    expect(azureStoreError(STORE, 'put', 'x', original)).toBe(original);
  });

  it('never copies a SAS signature, an account key or a token into the message, or into the kept cause', () => {
    const leaky = [
      restError(403, 'AuthenticationFailed', `Signature did not match: https://acct.blob.core.windows.net/archive?sv=1&sig=${SIG}&se=2030`),
      restError(500, undefined, `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${ACCOUNT_KEY};EndpointSuffix=core.windows.net`),
      new Error(`request to https://acct.blob.core.windows.net/c/b?sig=${SIG} failed, reason: socket hang up`),
      restError(undefined, 'REQUEST_SEND_ERROR', `Authorization: Bearer secret-token-value sig=${SIG}`),
    ];
    for (const error of leaky) {
      const mapped = azureStoreError(STORE, 'put', 'b.jv', error);
      const cause = mapped.cause as Error & Record<string, unknown>;
      for (const text of [mapped.message, describeError(mapped), cause.stack ?? '', JSON.stringify(cause)]) {
        expect(text).not.toContain(SIG);
        expect(text).not.toContain(encodeURIComponent(SIG));
        expect(text).not.toContain(ACCOUNT_KEY);
        expect(text).not.toContain('secret-token');
      }
      // The signed request and response of a RestError are not kept at all.
      expect(Object.getOwnPropertyNames(cause)).not.toContain('request');
      expect(Object.getOwnPropertyNames(cause)).not.toContain('response');
    }
  });

  it('keeps the diagnostic facts of a RestError in the cause', () => {
    const error = restError(503, 'ServerBusy');
    error.details = { errorCode: 'ServerBusy', 'x-ms-request-id': 'req-1' };
    expect(azureStoreError(STORE, 'put', 'b.jv', error).cause).toMatchObject({
      name: 'RestError',
      message: expect.stringContaining('The service says no.'),
      code: 'ServerBusy',
      statusCode: 503,
      errorCode: 'ServerBusy',
      requestId: 'req-1',
    });
  });

  it('keeps a non-RestError cause as it is', () => {
    const error = errnoError('ECONNRESET');
    expect(azureStoreError(STORE, 'put', 'b.jv', error).cause).toBe(error);
  });
});

describe('sanitizeMetadataName', () => {
  it.each([
    ['jv-first-seq', 'jv_first_seq'],
    ['jv_sha256', 'jv_sha256'],
    ['jv.size', 'jv_size'],
    ['1st', '_1st'],
    ['a b/c', 'a_b_c'],
    ['', '_'],
    ['Größe', 'Gr__e'],
  ])('%j → %j', (name, expected) => {
    expect(sanitizeMetadataName(name)).toBe(expected);
    expect(sanitizeMetadataName(name)).toMatch(/^[A-Za-z_][A-Za-z0-9_]*$/);
  });
});

describe('AzureBlobStore options and description', () => {
  it('describes a connection-string store by account, container and normalised prefix, without the key', () => {
    const store = new AzureBlobStore({
      connectionString: `DefaultEndpointsProtocol=https;AccountName=myacct;AccountKey=${ACCOUNT_KEY};EndpointSuffix=core.windows.net`,
      container: 'archive',
      prefix: '/jv/orders/',
    });
    expect(store.description).toBe('azure://myacct/archive/jv/orders');
    expect(store.prefix).toBe('jv/orders');
  });

  it('describes a SAS store without the token, and a SAS connection string by its endpoint', () => {
    const sas = `sv=2025-01-05&ss=b&srt=sco&sp=rwl&se=2030-01-01&sig=${encodeURIComponent(SIG)}`;
    const viaUrl = new AzureBlobStore({ accountUrl: 'https://myacct.blob.core.windows.net/', sasToken: `?${sas}`, container: 'archive' });
    expect(viaUrl.description).toBe('azure://myacct/archive');
    const viaConnectionString = new AzureBlobStore({
      connectionString: `BlobEndpoint=https://other.blob.core.windows.net/;SharedAccessSignature=${sas}`,
      container: 'archive',
    });
    expect(viaConnectionString.description).toBe('azure://other/archive');
    for (const store of [viaUrl, viaConnectionString]) expect(store.description).not.toContain('sig');
  });

  it('names Azurite-style path accounts and builds DefaultAzureCredential lazily', () => {
    expect(new AzureBlobStore({ accountUrl: 'http://127.0.0.1:10000/devstoreaccount1', container: 'c-1' }).description).toBe(
      'azure://devstoreaccount1/c-1',
    );
    expect(new AzureBlobStore({ accountUrl: 'https://myacct.blob.core.windows.net', container: 'archive', prefix: 'p' }).description).toBe(
      'azure://myacct/archive/p',
    );
  });

  it('refuses unusable options with a usage error that holds no secret', () => {
    const usage = (options: ConstructorParameters<typeof AzureBlobStore>[0]) => {
      try {
        new AzureBlobStore(options);
      } catch (error) {
        return error as JetvaultError;
      }
      throw new Error('expected a throw');
    };
    expect(usage({ container: 'archive' })).toMatchObject({ code: 'JV_USAGE' });
    for (const container of ['Archive', 'ab', 'a--b', '-ab', 'a_b', 'x'.repeat(64)]) {
      expect(usage({ container, connectionString: 'UseDevelopmentStorage=true' }), container).toMatchObject({ code: 'JV_USAGE' });
    }
    const withQuery = usage({ accountUrl: `https://acct.blob.core.windows.net/?sig=${SIG}`, container: 'archive' });
    expect(withQuery).toMatchObject({ code: 'JV_USAGE' });
    expect(withQuery.message).not.toContain(SIG);
    const badConnection = usage({ connectionString: `AccountName=acct;AccountKey=${ACCOUNT_KEY}`, container: 'archive' });
    expect(badConnection).toMatchObject({ code: 'JV_USAGE' });
    expect(badConnection.message).not.toContain(ACCOUNT_KEY);
    expect(usage({ connectionString: 'UseDevelopmentStorage=true', container: 'archive', prefix: 'a/../b' })).toMatchObject({ code: 'JV_UNSAFE_KEY' });
    expect(usage({ connectionString: 'UseDevelopmentStorage=true', container: 'archive', blockSizeBytes: 0 })).toMatchObject({ code: 'JV_USAGE' });
    expect(usage({ connectionString: 'UseDevelopmentStorage=true', container: 'archive', maxSdkRetries: -1 })).toMatchObject({ code: 'JV_USAGE' });
  });
});

/** A stand-in ContainerClient recording what the store asks of it. */
function fakeContainer(listPages: string[][] = []) {
  const calls = {
    blobNames: [] as string[],
    uploads: [] as { name: string; size: number; options: Record<string, unknown> }[],
    listOptions: [] as unknown[],
    pageSettings: [] as unknown[],
  };
  let propertiesError: unknown;
  let listError: unknown;
  const client = {
    accountName: 'acct',
    url: 'https://acct.blob.core.windows.net/archive',
    getBlockBlobClient(name: string) {
      calls.blobNames.push(name);
      return {
        uploadData: async (body: Uint8Array, options: Record<string, unknown>) => {
          calls.uploads.push({ name, size: body.byteLength, options });
        },
        exists: async () => true,
        deleteIfExists: async () => ({ succeeded: true }),
      };
    },
    listBlobsFlat(options: unknown) {
      calls.listOptions.push(options);
      return {
        byPage(settings: unknown) {
          calls.pageSettings.push(settings);
          return (async function* () {
            if (listError) throw listError;
            for (const page of listPages) {
              yield { segment: { blobItems: page.map((name) => ({ name, properties: { contentLength: name.length } })) } };
            }
          })();
        },
      };
    },
    async getProperties() {
      if (propertiesError) throw propertiesError;
      return {};
    },
  };
  return {
    client: client as unknown as ContainerClient,
    calls,
    failProperties: (error: unknown) => (propertiesError = error),
    failList: (error: unknown) => (listError = error),
  };
}

async function collect(iterable: AsyncIterable<StoredObject>): Promise<StoredObject[]> {
  const out: StoredObject[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

describe('AzureBlobStore against a stand-in client', () => {
  it('puts keys under the prefix with block size, concurrency, content type, tier and sanitised metadata', async () => {
    const fake = fakeContainer();
    const store = new AzureBlobStore({ container: 'archive', prefix: 'jv', containerClient: fake.client, accessTier: 'Cool', concurrency: 2 });
    await store.put('ORDERS/b.jv', new Uint8Array(3), {
      contentType: 'application/octet-stream',
      metadata: { 'jv-first-seq': '1', 'jv-note': 'naïve' },
    });
    expect(fake.calls.uploads).toEqual([
      {
        name: 'jv/ORDERS/b.jv',
        size: 3,
        options: {
          blockSize: 8 * 1024 * 1024,
          maxSingleShotSize: 8 * 1024 * 1024,
          concurrency: 2,
          blobHTTPHeaders: { blobContentType: 'application/octet-stream' },
          metadata: { jv_first_seq: '1', jv_note: 'na%C3%AFve' },
          tier: 'Cool',
        },
      },
    ]);
  });

  it('uses keys as blob names without a prefix', async () => {
    const fake = fakeContainer();
    const store = new AzureBlobStore({ container: 'archive', containerClient: fake.client });
    await store.put('a/b.jv', new Uint8Array(1));
    await store.exists('a/c.jv');
    await store.delete('a/d.jv');
    expect(fake.calls.blobNames).toEqual(['a/b.jv', 'a/c.jv', 'a/d.jv']);
  });

  it('rejects an already-aborted put with its reason without calling the service', async () => {
    const fake = fakeContainer();
    const store = new AzureBlobStore({ container: 'archive', containerClient: fake.client });
    const controller = new AbortController();
    const reason = new Error('stopping');
    controller.abort(reason);
    expect(await rejection(store.put('a.jv', new Uint8Array(1), { signal: controller.signal }))).toBe(reason);
    expect(fake.calls.uploads).toEqual([]);
  });

  it('refuses unsafe keys before any request', async () => {
    const fake = fakeContainer();
    const store = new AzureBlobStore({ container: 'archive', prefix: 'jv', containerClient: fake.client });
    for (const key of ['../x.jv', '/x.jv', 'a//b', '']) {
      expect(await rejection(store.put(key, new Uint8Array(1)))).toMatchObject({ code: 'JV_UNSAFE_KEY' });
      expect(await rejection(store.exists(key))).toMatchObject({ code: 'JV_UNSAFE_KEY' });
    }
    expect(fake.calls.blobNames).toEqual([]);
  });

  it('lists under the prefix in pages of 1,000, across pages, with keys relative to the prefix', async () => {
    const fake = fakeContainer([['jv/a/1.jv', 'jv/a/2.jv'], ['jv/a/3.jv']]);
    const store = new AzureBlobStore({ container: 'archive', prefix: 'jv', containerClient: fake.client });
    expect(await collect(store.list('a/'))).toEqual([
      { key: 'a/1.jv', size: 9 },
      { key: 'a/2.jv', size: 9 },
      { key: 'a/3.jv', size: 9 },
    ]);
    expect(fake.calls.listOptions).toEqual([{ prefix: 'jv/a/' }]);
    expect(fake.calls.pageSettings).toEqual([{ maxPageSize: 1000 }]);
    // The store's own prefix is listed with its separator, so `jv2/...` never shows up under `jv`.
    await collect(store.list(''));
    expect(fake.calls.listOptions[1]).toEqual({ prefix: 'jv/' });
    const root = fakeContainer([['x.jv']]);
    expect(await collect(new AzureBlobStore({ container: 'archive', containerClient: root.client }).list(''))).toEqual([{ key: 'x.jv', size: 4 }]);
    expect(root.calls.listOptions).toEqual([{}]);
  });

  it('maps list failures to store errors', async () => {
    const fake = fakeContainer();
    fake.failList(restError(503, 'ServerBusy'));
    const store = new AzureBlobStore({ container: 'archive', containerClient: fake.client });
    expect(await rejection(collect(store.list('a/')))).toMatchObject({ code: 'JV_STORE_UNAVAILABLE', transient: true });
  });

  it('check(): falls back to listing when container properties are not permitted, and fails on rejected credentials', async () => {
    const limited = fakeContainer();
    limited.failProperties(restError(403, 'AuthorizationPermissionMismatch'));
    await expect(new AzureBlobStore({ container: 'archive', containerClient: limited.client }).check()).resolves.toBeUndefined();
    expect(limited.calls.pageSettings).toEqual([{ maxPageSize: 1 }]);

    const missing = fakeContainer();
    missing.failProperties(restError(403, 'AuthorizationPermissionMismatch'));
    missing.failList(restError(404, 'ContainerNotFound'));
    expect(await rejection(new AzureBlobStore({ container: 'archive', containerClient: missing.client }).check())).toMatchObject({
      code: 'JV_STORE_FAILED',
      message: 'container archive does not exist (azure://acct/archive)',
    });

    const rejected = fakeContainer();
    rejected.failProperties(restError(403, 'AuthenticationFailed'));
    expect(await rejection(new AzureBlobStore({ container: 'archive', containerClient: rejected.client }).check())).toMatchObject({
      code: 'JV_STORE_FAILED',
      transient: false,
      message: expect.stringMatching(/^access denied to container archive: check credentials/),
    });
    expect(rejected.calls.pageSettings).toEqual([]);

    const down = fakeContainer();
    down.failProperties(restError(undefined, 'REQUEST_SEND_ERROR', 'connect ECONNREFUSED 127.0.0.1:10000'));
    expect(await rejection(new AzureBlobStore({ container: 'archive', containerClient: down.client }).check())).toMatchObject({
      code: 'JV_STORE_UNAVAILABLE',
      transient: true,
    });
  });
});
