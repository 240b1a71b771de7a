import { describe, expect, it } from 'vitest';
import { createStore } from '../src/stores/uri.js';

const noEnv = {} as NodeJS.ProcessEnv;

describe('createStore for object stores', () => {
  it('resolves s3:// with bucket, prefix and endpoint into a store described without secrets', () => {
    const store = createStore('s3://my-bucket/backups/orders?endpoint=http://127.0.0.1:9000&forcePathStyle=true&region=eu-west-1');
    expect(store.description).toBe('s3://my-bucket/backups/orders (endpoint http://127.0.0.1:9000)');
  });

  it('lets flags override what the URI says', () => {
    const store = createStore('s3://b/p', { s3: { endpoint: 'http://localhost:4566' } });
    expect(store.description).toBe('s3://b/p (endpoint http://localhost:4566)');
  });

  it.each([
    ['s3://key:secret@bucket/p', /carries credentials/],
    ['s3://bucket/p?endpoint=ftp://x', /must be http or https/],
    ['s3://bucket/p?endpoint=not a url', /is not a URL/],
    ['s3://bucket/p?sse=des', /sse=des is not AES256 or aws:kms/],
    ['s3://bucket/p?forcePathStyle=maybe', /forcePathStyle=maybe is not true or false/],
    ['s3://bucket/p?colour=blue', /unknown store URI parameter "colour"/],
    ['s3:///prefix-only', /names no bucket/],
    ['s3:bucket', /must look like s3:\/\/bucket\/prefix/],
    ['azure://c/p?tier=Lukewarm', /tier=Lukewarm is not Hot, Cool, Cold or Archive/],
  ])('refuses %j with a usage error', (uri, message) => {
    expect(() => createStore(uri, { env: noEnv })).toThrow(expect.objectContaining({ code: 'JV_USAGE', message: expect.stringMatching(message) }));
  });

  it('never echoes a secret from a refused URI', () => {
    try {
      createStore('s3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/p');
      expect.unreachable();
    } catch (error) {
      expect(String((error as Error).message)).not.toMatch(/AKIAEXAMPLE|wJalrXUtnFEMI/);
    }
  });

  it('needs Azure credentials from the environment, or an account', () => {
    expect(() => createStore('azure://backups/orders', { env: noEnv })).toThrow(
      expect.objectContaining({ code: 'JV_USAGE', message: expect.stringContaining('AZURE_STORAGE_CONNECTION_STRING') }),
    );
    const key = 'c2VjcmV0LWtleS12YWx1ZS10aGF0LW11c3Qtbm90LWxlYWs=';
    const env = { AZURE_STORAGE_CONNECTION_STRING: `DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=${key};EndpointSuffix=core.windows.net` };
    const fromConnection = createStore('azure://backups/orders', { env });
    expect(fromConnection.description).toBe('azure://acme/backups/orders');
    expect(fromConnection.description).not.toContain(key);
    expect(createStore('az://backups?account=acme', { env: noEnv }).description).toBe('azure://acme/backups/');
    expect(createStore('az://c/p?endpoint=http://127.0.0.1:10000/devstoreaccount1', { env: { AZURE_STORAGE_ACCOUNT: 'devstoreaccount1' } }).description).toBe(
      'azure://devstoreaccount1/c/p',
    );
  });
});
