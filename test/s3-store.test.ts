/**
 * S3Store without a network: the error mapping table, key and prefix handling, metadata names, option
 * parsing and client configuration. Requests go to a fake client that records the commands it is sent;
 * the same store against a real S3 emulator is in integration/stores/s3.test.ts.
 */
import { inspect } from 'node:util';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  NoSuchBucket,
  NoSuchKey,
  NotFound,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { describeError, StoreError } from '../src/errors.js';
import {
  describeEndpoint,
  FALLBACK_REGION,
  S3Store,
  s3Metadata,
  s3ObjectKey,
  s3StoreError,
  safeCause,
  scrubMessage,
  type S3StoreOptions,
} from '../src/stores/s3.js';
import type { StoredObject } from '../src/stores/store.js';

const DESCRIPTION = 's3://archive/jv (endpoint http://127.0.0.1:9000)';

/** An error shaped as the SDK throws it for an S3 error response. */
function serviceError(code: string, status: number, message = `${code} message`): S3ServiceException {
  const error = new S3ServiceException({
    name: code,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status, attempts: 2 },
    message,
  });
  return Object.assign(error, { Code: code });
}

/** As the SDK throws it for a HEAD answer, which has no body: a name, a status, no Code. */
function bodilessError(name: string, status: number): Error {
  return Object.assign(new Error('UnknownError'), { name, $metadata: { httpStatusCode: status } });
}

function networkError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

function map(error: unknown, operation: Parameters<typeof s3StoreError>[2] = 'put', key: string | undefined = 'a/b.jv') {
  return s3StoreError(DESCRIPTION, 'archive', operation, key, error) as StoreError;
}

describe('s3StoreError: the one mapping from S3 and network errors to StoreErrors', () => {
  it.each([
    ['HTTP 500 InternalError', serviceError('InternalError', 500)],
    ['HTTP 503 ServiceUnavailable', serviceError('ServiceUnavailable', 503)],
    ['HTTP 503 SlowDown', serviceError('SlowDown', 503)],
    ['HTTP 502 without a code', bodilessError('Unknown', 502)],
    ['HTTP 429', bodilessError('Unknown', 429)],
    ['RequestTimeout (HTTP 400)', serviceError('RequestTimeout', 400)],
    ['ThrottlingException', serviceError('ThrottlingException', 400)],
    ['Throttling of another name', serviceError('RequestThrottledByPolicy', 400)],
    ['ECONNRESET', networkError('ECONNRESET', 'read ECONNRESET')],
    ['ECONNREFUSED', networkError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:9000')],
    ['ETIMEDOUT', networkError('ETIMEDOUT', 'connect ETIMEDOUT 10.0.0.1:443')],
    ['EPIPE', networkError('EPIPE', 'write EPIPE')],
    ['socket hang up', new Error('socket hang up')],
    ['TimeoutError', Object.assign(new Error('Connection timed out after 10000 ms'), { name: 'TimeoutError' })],
    ['an unknown error without a status', new Error('something odd')],
  ])('%s is transient: JV_STORE_UNAVAILABLE', (_label, error) => {
    const mapped = map(error);
    expect(mapped).toBeInstanceOf(StoreError);
    expect(mapped).toMatchObject({ code: 'JV_STORE_UNAVAILABLE', transient: true });
    expect(mapped.message).toMatch(/^s3:\/\/archive\/jv \(endpoint http:\/\/127\.0\.0\.1:9000\): cannot put "a\/b\.jv": /);
  });

  it.each([
    ['NoSuchBucket', serviceError('NoSuchBucket', 404), 'bucket archive does not exist'],
    ['AccessDenied', serviceError('AccessDenied', 403), 'access denied to bucket archive: check credentials'],
    ['InvalidAccessKeyId', serviceError('InvalidAccessKeyId', 403), 'check credentials, the access key id is not known'],
    ['SignatureDoesNotMatch', serviceError('SignatureDoesNotMatch', 403), 'check credentials, the signature does not match'],
    ['a bare HTTP 403', bodilessError('Unknown', 403), 'access denied to bucket archive: check credentials'],
    ['InvalidBucketName', serviceError('InvalidBucketName', 400), 'invalid bucket name "archive"'],
    ['ExpiredToken', serviceError('ExpiredToken', 400), 'check credentials, the session token has expired'],
    ['RequestTimeTooSkewed (HTTP 403)', serviceError('RequestTimeTooSkewed', 403), 'correct the system time'],
    ['HTTP 403 of another code', serviceError('InvalidObjectState', 403, 'The operation is not valid for the object'), 'not valid for the object'],
    ['HTTP 400 of another code', serviceError('InvalidArgument', 400, 'Bad argument'), 'Bad argument'],
    ['HTTP 409', serviceError('BucketAlreadyOwnedByYou', 409), 'BucketAlreadyOwnedByYou message'],
    ['HTTP 301 (bucket in another region)', bodilessError('Unknown', 301), 'set the region'],
    ['no credentials found', Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }), 'no usable AWS credentials'],
    ['a TypeError before sending', new TypeError('Invalid character in header content'), 'Invalid character in header content'],
  ])('%s is permanent: JV_STORE_FAILED', (_label, error, text) => {
    const mapped = map(error);
    expect(mapped).toMatchObject({ code: 'JV_STORE_FAILED', transient: false });
    expect(mapped.message).toContain(`${DESCRIPTION}: cannot put "a/b.jv": `);
    expect(mapped.message).toContain(text);
  });

  it('names S3 code and HTTP status in the message and keeps the SDK error as cause', () => {
    const mapped = map(serviceError('NoSuchBucket', 404));
    expect(mapped.message).toBe(`${DESCRIPTION}: cannot put "a/b.jv": bucket archive does not exist (NoSuchBucket, HTTP 404)`);
    expect(mapped.cause).toBeInstanceOf(S3ServiceException);
    expect(mapped.cause).toMatchObject({ name: 'NoSuchBucket', Code: 'NoSuchBucket', $metadata: { httpStatusCode: 404 } });
  });

  it('a missing object is JV_STORE_NOT_FOUND for get, exists and delete; a missing bucket is not', () => {
    for (const operation of ['get', 'exists', 'delete'] as const) {
      const missing = [
        new NoSuchKey({ message: 'The specified key does not exist.', $metadata: { httpStatusCode: 404 } }),
        new NotFound({ message: 'UnknownError', $metadata: { httpStatusCode: 404 } }),
        bodilessError('Unknown', 404),
      ];
      for (const error of missing) {
        const mapped = map(error, operation);
        expect(mapped, `${operation} ${error.name}`).toMatchObject({ code: 'JV_STORE_NOT_FOUND', transient: false });
        expect(mapped.message).toBe(`${DESCRIPTION}: object "a/b.jv" not found`);
      }
      const noBucket = new NoSuchBucket({ message: 'The specified bucket does not exist', $metadata: { httpStatusCode: 404 } });
      expect(map(noBucket, operation)).toMatchObject({ code: 'JV_STORE_FAILED', transient: false });
    }
    // A 404 on put is no "not found": S3 answers that only for a missing bucket.
    expect(map(bodilessError('NotFound', 404), 'put').code).not.toBe('JV_STORE_NOT_FOUND');
  });

  it('check(): a 404 means the bucket does not exist, a 403 that the credentials are refused', () => {
    expect(map(bodilessError('NotFound', 404), 'check', undefined)).toMatchObject({
      code: 'JV_STORE_FAILED',
      transient: false,
      message: `bucket archive does not exist (${DESCRIPTION})`,
    });
    expect(map(serviceError('NoSuchBucket', 404), 'check', undefined).message).toBe(`bucket archive does not exist (${DESCRIPTION})`);
    expect(map(bodilessError('Unknown', 403), 'check', undefined)).toMatchObject({
      code: 'JV_STORE_FAILED',
      transient: false,
      message: `access denied to bucket archive: check credentials (${DESCRIPTION})`,
    });
    const offline = map(networkError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:9000'), 'check', undefined);
    expect(offline).toMatchObject({ code: 'JV_STORE_UNAVAILABLE', transient: true });
    expect(offline.message).toBe(
      `${DESCRIPTION}: cannot reach bucket archive: connection failed (ECONNREFUSED): connect ECONNREFUSED 127.0.0.1:9000`,
    );
  });

  it('passes JetvaultErrors through unchanged', () => {
    const original = new StoreError('JV_UNSAFE_KEY', 'refused');
    expect(map(original)).toBe(original);
  });

  it('puts no secret in the message or the kept cause: no query string, signature, header or credential', () => {
    const accessKeyId = 'AKIAIOSFODNN7EXAMPLE';
    const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
    const token = 'FQoGZXIvYXdzEXAMPLESESSIONTOKEN';
    const presigned =
      `https://archive.s3.amazonaws.com/a/b.jv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${accessKeyId}%2F20260101` +
      `&X-Amz-Security-Token=${token}&X-Amz-Signature=0123abcd`;
    const errors = [
      networkError('ECONNRESET', `request to ${presigned} failed, reason: socket hang up`),
      Object.assign(serviceError('SignatureDoesNotMatch', 403, 'The request signature we calculated does not match'), {
        AWSAccessKeyId: accessKeyId,
        StringToSign: `AWS4-HMAC-SHA256\n20260101T000000Z\n${secret}`,
        CanonicalRequest: `GET\n/a/b.jv\n\nx-amz-security-token:${token}`,
        SignatureProvided: '0123abcd',
      }),
      Object.assign(serviceError('InternalError', 500, `Authorization: AWS4-HMAC-SHA256 Credential=${accessKeyId}/x, Signature=0123abcd`), {}),
    ];
    // What the SDK hides on every error: the raw response, which reaches the request and its headers.
    Object.defineProperty(errors[1], '$response', {
      value: { req: { _headers: { authorization: `AWS4-HMAC-SHA256 Credential=${accessKeyId}/x`, 'x-amz-security-token': token } } },
      enumerable: false,
      writable: false,
      configurable: false,
    });
    for (const error of errors) {
      const mapped = map(error, 'get');
      const texts = [mapped.message, describeError(mapped), inspect(mapped, { depth: 8, showHidden: true })];
      for (const text of texts) {
        for (const secretValue of [accessKeyId, secret, token, '0123abcd']) expect(text).not.toContain(secretValue);
      }
    }
  });

  it('safeCause keeps class, name, code, status and stack, and drops the rest', () => {
    const error = Object.assign(serviceError('AccessDenied', 403), { AWSAccessKeyId: 'AKIAEXAMPLE' });
    Object.defineProperty(error, '$response', { value: { headers: {} }, enumerable: false, configurable: false });
    const copy = safeCause(error) as S3ServiceException & Record<string, unknown>;
    expect(copy).toBeInstanceOf(S3ServiceException);
    expect(copy).not.toBe(error);
    expect(copy.name).toBe('AccessDenied');
    expect(copy['Code']).toBe('AccessDenied');
    expect(copy.$metadata.httpStatusCode).toBe(403);
    expect(copy.stack).toBe(error.stack);
    expect(copy.message).toBe(error.message);
    expect('AWSAccessKeyId' in copy).toBe(false);
    expect('$response' in copy).toBe(false);
    expect(safeCause('plain')).toBe('plain');
  });

  it('scrubMessage removes URL queries and signing parameters', () => {
    expect(scrubMessage('GET https://b.s3.amazonaws.com/k?X-Amz-Signature=abc&x=1 failed')).toBe('GET https://b.s3.amazonaws.com/k?… failed');
    expect(scrubMessage('X-Amz-Credential=AKIA/2026 and Signature=xyz')).toBe('X-Amz-Credential=… and Signature=…');
    expect(scrubMessage('Authorization: AWS4-HMAC-SHA256 Credential=AKIA/x')).toBe('Authorization: AWS4-HMAC-SHA256 …');
  });
});

describe('keys, prefixes and metadata', () => {
  it('joins the store prefix and a key with one slash, and refuses unsafe keys', () => {
    expect(s3ObjectKey('', 'ORDERS/a.jv')).toBe('ORDERS/a.jv');
    expect(s3ObjectKey('archive/prod', 'ORDERS/a.jv')).toBe('archive/prod/ORDERS/a.jv');
    for (const key of ['', '/abs.jv', 'a/../b.jv', 'a//b.jv', 'a\\b.jv', 'a\u0000b.jv', 'dir/']) {
      expect(() => s3ObjectKey('p', key), JSON.stringify(key)).toThrow(expect.objectContaining({ code: 'JV_UNSAFE_KEY' }));
    }
  });

  it('normalises the prefix (no leading or trailing slash) and refuses an unsafe one', () => {
    expect(new S3Store({ bucket: 'b', prefix: '/archive/prod/', client: fakeClient().client }).prefix).toBe('archive/prod');
    expect(new S3Store({ bucket: 'b', prefix: '///', client: fakeClient().client }).prefix).toBe('');
    expect(new S3Store({ bucket: 'b', client: fakeClient().client }).prefix).toBe('');
    for (const prefix of ['a/../b', 'a//b', 'a\\b', '..']) {
      expect(() => new S3Store({ bucket: 'b', prefix, client: fakeClient().client }), prefix).toThrow(
        expect.objectContaining({ code: 'JV_UNSAFE_KEY' }),
      );
    }
  });

  it('turns metadata names into S3-valid lower-case names and values into printable ASCII', () => {
    expect(
      s3Metadata({ 'jv-first-seq': '1', 'jv-sha256': 'ab'.repeat(32), JV_Last_Seq: '9', 'odd name!': 'ü€', '***': 'dropped' }),
    ).toEqual({ 'jv-first-seq': '1', 'jv-sha256': 'ab'.repeat(32), 'jv-last-seq': '9', 'odd-name': '%C3%BC%E2%82%AC' });
    expect(s3Metadata(undefined)).toBeUndefined();
    expect(s3Metadata({ '': 'x' })).toBeUndefined();
  });
});

describe('options', () => {
  it('describes the store by bucket, prefix and endpoint origin and path; never user-info or query', () => {
    const client = fakeClient().client;
    expect(new S3Store({ bucket: 'b', prefix: 'p/q', client }).description).toBe('s3://b/p/q');
    expect(new S3Store({ bucket: 'b', client }).description).toBe('s3://b/');
    expect(new S3Store({ bucket: 'b', prefix: 'p', endpoint: 'http://127.0.0.1:9000', client }).description).toBe(
      's3://b/p (endpoint http://127.0.0.1:9000)',
    );
    const leaky = new S3Store({ bucket: 'b', endpoint: 'https://user:hunter2@minio.example:9000/s3/?X-Amz-Signature=abc#frag', client });
    expect(leaky.description).toBe('s3://b/ (endpoint https://minio.example:9000/s3/)');
    expect(describeEndpoint('https://s3.eu-central-1.amazonaws.com')).toBe('https://s3.eu-central-1.amazonaws.com');
  });

  it.each<[string, Partial<S3StoreOptions>, RegExp]>([
    ['empty bucket', { bucket: '' }, /bucket name/],
    ['bucket with a slash', { bucket: 'a/b' }, /bucket name/],
    ['part size below 5 MiB', { partSizeBytes: 5 * 1024 * 1024 - 1 }, /partSizeBytes/],
    ['fractional part size', { partSizeBytes: 6 * 1024 * 1024 + 0.5 }, /partSizeBytes/],
    ['queue size 0', { queueSize: 0 }, /queueSize/],
    ['maxSdkAttempts 0', { maxSdkAttempts: 0 }, /maxSdkAttempts/],
    ['unknown checksums mode', { checksums: 'always' as never }, /checksums/],
    ['unknown SSE', { serverSideEncryption: 'aws:kms:dsse' as never }, /server-side encryption/],
    ['KMS key without aws:kms', { sseKmsKeyId: 'alias/jv', serverSideEncryption: 'AES256' }, /aws:kms/],
    ['lower-case storage class', { storageClass: 'standard ia' }, /storage class/],
    ['endpoint that is no URL', { endpoint: 'http://user:secret@[::1' }, /not a valid URL/],
    ['endpoint without a scheme', { endpoint: 'user:secret@minio:9000' }, /must be an http:\/\/ or https:\/\/ URL/],
    ['endpoint of another scheme', { endpoint: 'ftp://host' }, /must be an http:\/\/ or https:\/\/ URL/],
  ])('refuses %s with a usage error', (_label, extra, message) => {
    const attempt = () => new S3Store({ bucket: 'archive', client: fakeClient().client, ...extra });
    expect(attempt).toThrow(expect.objectContaining({ code: 'JV_USAGE' }));
    expect(attempt).toThrow(message);
    // A value that may hold a credential is not repeated.
    if (extra.endpoint) expect(attempt).not.toThrow(/secret|user/);
  });

  describe('client configuration', () => {
    const saved = { ...process.env };
    afterEach(() => {
      process.env = { ...saved };
    });
    const clientOf = (store: S3Store) => (store as unknown as { client: S3Client }).client;

    it('passes checksums, attempts, endpoint and path style to the SDK client it creates', async () => {
      const store = new S3Store({
        bucket: 'b',
        region: 'eu-central-1',
        endpoint: 'http://127.0.0.1:9000',
        forcePathStyle: true,
        credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'secret' },
        checksums: 'when_required',
      });
      const config = clientOf(store).config;
      expect(await config.region()).toBe('eu-central-1');
      expect(await config.requestChecksumCalculation()).toBe('WHEN_REQUIRED');
      expect(await config.responseChecksumValidation()).toBe('WHEN_REQUIRED');
      expect(await config.maxAttempts()).toBe(2);
      expect(config.forcePathStyle).toBe(true);
      const endpoint = await config.endpoint?.();
      expect(endpoint).toMatchObject({ hostname: '127.0.0.1', port: 9000, protocol: 'http:' });
      await store.close();

      const defaults = new S3Store({ bucket: 'b', region: 'us-west-2', maxSdkAttempts: 5 });
      expect(await clientOf(defaults).config.requestChecksumCalculation()).toBe('WHEN_SUPPORTED');
      expect(await clientOf(defaults).config.responseChecksumValidation()).toBe('WHEN_SUPPORTED');
      expect(await clientOf(defaults).config.maxAttempts()).toBe(5);
      await defaults.close();
    });

    it('takes the region from the SDK chain (AWS_REGION), else us-east-1', async () => {
      // No shared config file with a region can interfere.
      process.env['AWS_CONFIG_FILE'] = '/nonexistent/jv-aws-config';
      process.env['AWS_SHARED_CREDENTIALS_FILE'] = '/nonexistent/jv-aws-credentials';
      delete process.env['AWS_PROFILE'];
      delete process.env['AWS_REGION'];
      delete process.env['AWS_DEFAULT_REGION'];
      const fallback = new S3Store({ bucket: 'b' });
      expect(await clientOf(fallback).config.region()).toBe(FALLBACK_REGION);
      await fallback.close();

      process.env['AWS_REGION'] = 'ap-southeast-2';
      const fromEnv = new S3Store({ bucket: 'b' });
      expect(await clientOf(fromEnv).config.region()).toBe('ap-southeast-2');
      await fromEnv.close();
    });

    it('close() destroys a client it created, never an injected one', async () => {
      const injected = fakeClient();
      const store = new S3Store({ bucket: 'b', client: injected.client });
      await store.close();
      expect(injected.destroy).not.toHaveBeenCalled();

      const own = new S3Store({ bucket: 'b', region: 'us-east-1' });
      const destroy = vi.spyOn(clientOf(own), 'destroy');
      await own.close();
      await own.close();
      expect(destroy).toHaveBeenCalledTimes(1);
    });
  });
});

/** A stand-in S3Client: answers each command with `answer`, records what it was sent. */
function fakeClient(answer: (command: object) => unknown = () => ({})) {
  const commands: { name: string; input: Record<string, unknown> }[] = [];
  const send = vi.fn(async (command: { input: Record<string, unknown> }) => {
    commands.push({ name: command.constructor.name, input: command.input });
    const result = answer(command);
    if (result instanceof Error) throw result;
    return result;
  });
  const destroy = vi.fn();
  return { client: { send, destroy, config: {} } as unknown as S3Client, commands, destroy };
}

async function collect(iterable: AsyncIterable<StoredObject>): Promise<StoredObject[]> {
  const out: StoredObject[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

describe('requests the store sends (fake client)', () => {
  it('put: one PutObject under the prefix, with content type, S3 metadata, storage class and SSE-KMS', async () => {
    const fake = fakeClient();
    const store = new S3Store({
      bucket: 'archive',
      prefix: 'jv',
      storageClass: 'STANDARD_IA',
      serverSideEncryption: 'aws:kms',
      sseKmsKeyId: 'alias/jetvault',
      client: fake.client,
    });
    const body = Buffer.from('block');
    await store.put('ORDERS/a.jv', body, { contentType: 'application/octet-stream', metadata: { 'jv-sha256': 'ab', JV_First: '1' } });
    expect(fake.commands).toHaveLength(1);
    expect(fake.commands[0]!.name).toBe(PutObjectCommand.name);
    expect(fake.commands[0]!.input).toEqual({
      Bucket: 'archive',
      Key: 'jv/ORDERS/a.jv',
      Body: body,
      ContentLength: 5,
      ContentType: 'application/octet-stream',
      Metadata: { 'jv-sha256': 'ab', 'jv-first': '1' },
      StorageClass: 'STANDARD_IA',
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: 'alias/jetvault',
    });
  });

  it('put: an already aborted signal rejects with its reason and sends nothing; an abort mid-request too', async () => {
    const fake = fakeClient();
    const store = new S3Store({ bucket: 'archive', client: fake.client });
    const controller = new AbortController();
    const reason = new Error('stopping');
    controller.abort(reason);
    await expect(store.put('a.jv', Buffer.from('x'), { signal: controller.signal })).rejects.toBe(reason);
    expect(fake.commands).toHaveLength(0);

    const late = new AbortController();
    const lateReason = new Error('stopping later');
    const aborting = fakeClient(() => {
      late.abort(lateReason);
      return Object.assign(new Error('Request aborted'), { name: 'AbortError' });
    });
    await expect(
      new S3Store({ bucket: 'archive', client: aborting.client }).put('a.jv', Buffer.from('x'), { signal: late.signal }),
    ).rejects.toBe(lateReason);
  });

  it('get: the body as a Buffer; NoSuchKey becomes JV_STORE_NOT_FOUND naming store and key', async () => {
    const bytes = new Uint8Array([1, 2, 3]);
    const fake = fakeClient((command) =>
      command instanceof GetObjectCommand && command.input.Key === 'jv/here.jv'
        ? { Body: { transformToByteArray: async () => bytes } }
        : new NoSuchKey({ message: 'The specified key does not exist.', $metadata: { httpStatusCode: 404 } }),
    );
    const store = new S3Store({ bucket: 'archive', prefix: 'jv', client: fake.client });
    const got = await store.get('here.jv');
    expect(Buffer.isBuffer(got)).toBe(true);
    expect([...got]).toEqual([1, 2, 3]);
    await expect(store.get('gone.jv')).rejects.toMatchObject({
      code: 'JV_STORE_NOT_FOUND',
      message: 's3://archive/jv: object "gone.jv" not found',
    });
  });

  it('list: pages with the continuation token, strips the store prefix, skips keys no operation accepts', async () => {
    const pages = [
      { Contents: [{ Key: 'jv/a/1.jv', Size: 1 }, { Key: 'jv/a/2.jv', Size: 2 }], IsTruncated: true, NextContinuationToken: 't1' },
      { Contents: [{ Key: 'jv/a/dir/', Size: 0 }, { Key: 'jv/a/3.jv', Size: 3 }], IsTruncated: true, NextContinuationToken: 't2' },
      { Contents: [{ Key: 'jv/a/4.jv', Size: 4 }], IsTruncated: false },
    ];
    let page = 0;
    const fake = fakeClient(() => pages[page++]);
    const store = new S3Store({ bucket: 'archive', prefix: 'jv', client: fake.client });
    expect(await collect(store.list('a/'))).toEqual([
      { key: 'a/1.jv', size: 1 },
      { key: 'a/2.jv', size: 2 },
      { key: 'a/3.jv', size: 3 },
      { key: 'a/4.jv', size: 4 },
    ]);
    expect(fake.commands.map((c) => c.name)).toEqual([ListObjectsV2Command.name, ListObjectsV2Command.name, ListObjectsV2Command.name]);
    expect(fake.commands.map((c) => c.input)).toEqual([
      { Bucket: 'archive', Prefix: 'jv/a/', MaxKeys: 1000 },
      { Bucket: 'archive', Prefix: 'jv/a/', MaxKeys: 1000, ContinuationToken: 't1' },
      { Bucket: 'archive', Prefix: 'jv/a/', MaxKeys: 1000, ContinuationToken: 't2' },
    ]);
  });

  it('list: without a store prefix the list prefix goes as it is; a truncated page without a token fails', async () => {
    const fake = fakeClient(() => ({ Contents: [{ Key: 'x.jv', Size: 1 }], IsTruncated: true }));
    const store = new S3Store({ bucket: 'archive', client: fake.client });
    await expect(collect(store.list('x'))).rejects.toMatchObject({ code: 'JV_STORE_FAILED', transient: false });
    expect(fake.commands[0]!.input).toEqual({ Bucket: 'archive', Prefix: 'x', MaxKeys: 1000 });
  });

  it('exists: HeadObject; 404 is false, 403 an access-denied error', async () => {
    let answer: unknown = {};
    const fake = fakeClient(() => answer);
    const store = new S3Store({ bucket: 'archive', prefix: 'jv', client: fake.client });
    expect(await store.exists('a.jv')).toBe(true);
    expect(fake.commands[0]).toEqual({ name: HeadObjectCommand.name, input: { Bucket: 'archive', Key: 'jv/a.jv' } });
    answer = new NotFound({ message: 'UnknownError', $metadata: { httpStatusCode: 404 } });
    expect(await store.exists('a.jv')).toBe(false);
    answer = bodilessError('Unknown', 403);
    await expect(store.exists('a.jv')).rejects.toMatchObject({ code: 'JV_STORE_FAILED', transient: false });
  });

  it('delete: DeleteObject under the prefix; a missing object is fine, a missing bucket is not', async () => {
    let answer: unknown = {};
    const fake = fakeClient(() => answer);
    const store = new S3Store({ bucket: 'archive', prefix: 'jv', client: fake.client });
    await store.delete('a.jv');
    expect(fake.commands[0]).toEqual({ name: DeleteObjectCommand.name, input: { Bucket: 'archive', Key: 'jv/a.jv' } });
    answer = new NoSuchKey({ message: 'gone', $metadata: { httpStatusCode: 404 } });
    await store.delete('a.jv');
    answer = new NoSuchBucket({ message: 'The specified bucket does not exist', $metadata: { httpStatusCode: 404 } });
    await expect(store.delete('a.jv')).rejects.toMatchObject({ code: 'JV_STORE_FAILED' });
  });

  it('check: HeadBucket of the bucket', async () => {
    const fake = fakeClient();
    await new S3Store({ bucket: 'archive', prefix: 'jv', client: fake.client }).check();
    expect(fake.commands).toEqual([{ name: HeadBucketCommand.name, input: { Bucket: 'archive' } }]);
  });
});
