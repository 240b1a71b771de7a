/**
 * S3Store against s3rver, started in-process by the test (integration/helpers/s3-emulator.ts): the shared
 * conformance suite, then what only S3 has: multipart uploads, check() of the bucket, rejected
 * credentials, an outage through the fault proxy, and no secret in any error.
 *
 * Every S3 request of the stores here is recorded by a spy on S3Client.prototype.send, so the tests can
 * see which commands a put really sent (PutObject, or CreateMultipartUpload + UploadPart + Complete…).
 */
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { describeError, StoreError } from '../../src/errors.js';
import { S3Store, type S3StoreOptions } from '../../src/stores/s3.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { S3RVER_CREDENTIALS, S3RVER_REGION, startS3Emulator, type S3Emulator } from '../helpers/s3-emulator.js';
import { storeConformance } from './conformance.js';

const MiB = 1024 * 1024;

interface SentCommand {
  command: string;
  bucket: string | undefined;
  key: string | undefined;
  /** A ListObjectsV2 for a page after the first. */
  continued: boolean;
  ok: boolean;
  /** performance.now() when sent, and how long the answer took. */
  at: number;
  ms: number;
}
const sent: SentCommand[] = [];
const originalSend = S3Client.prototype.send;
vi.spyOn(S3Client.prototype, 'send').mockImplementation(async function (this: S3Client, ...args: unknown[]) {
  const command = args[0] as { constructor: { name: string }; input: { Bucket?: string; Key?: string; ContinuationToken?: string } };
  const started = performance.now();
  let ok = false;
  try {
    const answer: unknown = await (originalSend as (...a: unknown[]) => Promise<unknown>).apply(this, args);
    ok = true;
    return answer;
  } finally {
    const { Bucket: bucket, Key: key, ContinuationToken: token } = command.input;
    sent.push({ command: command.constructor.name, bucket, key, continued: token !== undefined, ok, at: started, ms: performance.now() - started });
  }
} as typeof S3Client.prototype.send);

/** A bucket name of its own for each use: 3–63 lowercase letters, digits and hyphens. */
function uniqueBucket(label: string): string {
  return `jv-${label}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

function emulatorOptions(emulator: S3Emulator, bucket: string, extra: Partial<S3StoreOptions> = {}): S3StoreOptions {
  return {
    bucket,
    endpoint: emulator.endpoint,
    region: S3RVER_REGION,
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    checksums: 'when_required',
    ...extra,
  };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

function commandsFor(bucket: string, keyEnd: string): string[] {
  return sent.filter((s) => s.bucket === bucket && s.key?.endsWith(keyEnd)).map((s) => s.command);
}

let conformanceBucket = '';
storeConformance('S3Store (s3rver)', async () => {
  const emulator = await startS3Emulator();
  conformanceBucket = uniqueBucket('conformance');
  await emulator.createBucket(conformanceBucket);
  // Under a prefix, so every key goes through the prefix mapping and list() strips it again.
  const store = new S3Store(emulatorOptions(emulator, conformanceBucket, { prefix: '/archive/conformance/' }));
  return { store, cleanup: () => emulator.close() };
});

describe('S3Store conformance run, as S3 saw it', () => {
  it('sent the 40 MiB block as a multipart upload of five 8 MiB parts, and the smaller ones with PutObject', () => {
    expect(conformanceBucket).not.toBe('');
    const big = commandsFor(conformanceBucket, '/40MiB.bin');
    expect(big.filter((c) => c === 'CreateMultipartUploadCommand')).toHaveLength(1);
    expect(big.filter((c) => c === 'UploadPartCommand')).toHaveLength(5);
    expect(big.filter((c) => c === 'CompleteMultipartUploadCommand')).toHaveLength(1);
    expect(big).not.toContain('PutObjectCommand');
    for (const small of ['/0B.bin', '/1B.bin', '/5MiB.bin']) {
      expect(commandsFor(conformanceBucket, small), small).toEqual(['PutObjectCommand', 'GetObjectCommand']);
    }
  });

  it('paged through the 1,100-key listing with a continuation token', () => {
    const lists = sent.filter((s) => s.bucket === conformanceBucket && s.command === 'ListObjectsV2Command');
    // Only the 1,100-key listing needs a second page.
    expect(lists.filter((s) => s.continued && s.ok)).toHaveLength(1);
  });

  it('timed the 40 MiB multipart put', () => {
    const parts = sent.filter((s) => s.bucket === conformanceBucket && s.key?.endsWith('/40MiB.bin'));
    const put = parts.filter((s) => s.command !== 'GetObjectCommand');
    const slowestPart = Math.max(...put.filter((s) => s.command === 'UploadPartCommand').map((s) => s.ms));
    const complete = put.find((s) => s.command === 'CompleteMultipartUploadCommand');
    const get = parts.find((s) => s.command === 'GetObjectCommand');
    const putMs = Math.max(...put.map((s) => s.at + s.ms)) - Math.min(...put.map((s) => s.at));
    console.info(
      `s3rver 40 MiB (conformance, 8 MiB parts, queueSize 4): put ${putMs.toFixed(0)} ms ` +
        `(slowest UploadPart ${slowestPart.toFixed(0)} ms, CompleteMultipartUpload ${complete?.ms.toFixed(0)} ms), ` +
        `GetObject until headers ${get?.ms.toFixed(0)} ms`,
    );
    expect(put.every((s) => s.ok)).toBe(true);
  });
});

describe('S3Store on s3rver', () => {
  let emulator: S3Emulator;
  let bucket: string;

  beforeAll(async () => {
    emulator = await startS3Emulator();
    bucket = uniqueBucket('s3');
    await emulator.createBucket(bucket);
  });
  afterAll(async () => {
    await emulator?.close();
  });

  const storeWith = (extra: Partial<S3StoreOptions> = {}) => new S3Store(emulatorOptions(emulator, bucket, extra));

  it('describes itself by bucket, prefix and endpoint, never by credentials', () => {
    const port = new URL(emulator.endpoint).port;
    expect(storeWith({ prefix: 'a/b/' }).description).toBe(`s3://${bucket}/a/b (endpoint http://127.0.0.1:${port})`);
    expect(storeWith().description).toBe(`s3://${bucket}/ (endpoint http://127.0.0.1:${port})`);
    const aws = new S3Store({ bucket, prefix: 'p' });
    expect(aws.description).toBe(`s3://${bucket}/p`);
    return aws.close();
  });

  it('uploads 40 MiB in 5 MiB parts with 2 in flight, and reads it back byte-identical', { timeout: 120_000 }, async () => {
    const store = storeWith({ prefix: 'big', partSizeBytes: 5 * MiB, queueSize: 2 });
    const body = randomBytes(40 * MiB);
    const started = performance.now();
    await store.put('block.jv', body, { metadata: { 'jv-sha256': 'ab'.repeat(32) } });
    const putMs = performance.now() - started;
    expect(commandsFor(bucket, 'big/block.jv').filter((c) => c === 'UploadPartCommand')).toHaveLength(8);
    const got = await store.get('block.jv');
    expect(got.equals(body)).toBe(true);
    console.info(`s3rver 40 MiB multipart put: ${putMs.toFixed(0)} ms (5 MiB parts, queueSize 2)`);
    await store.close();
  });

  it('stores content type and metadata under S3-valid names', async () => {
    const store = storeWith({ prefix: 'meta', storageClass: 'STANDARD_IA' });
    await store.put('block.jv', Buffer.from('x'), {
      contentType: 'application/octet-stream',
      metadata: { 'jv-first-seq': '1', 'jv-last-seq': '5000', 'jv-sha256': 'ab'.repeat(32), 'Odd Name_x': 'ü' },
    });
    const raw = new S3Client({
      endpoint: emulator.endpoint,
      region: S3RVER_REGION,
      forcePathStyle: true,
      credentials: S3RVER_CREDENTIALS,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    try {
      const head = await raw.send(new HeadObjectCommand({ Bucket: bucket, Key: 'meta/block.jv' }));
      expect(head.ContentType).toBe('application/octet-stream');
      expect(head.StorageClass).toBe('STANDARD_IA');
      expect(head.Metadata).toEqual({
        'jv-first-seq': '1',
        'jv-last-seq': '5000',
        'jv-sha256': 'ab'.repeat(32),
        'odd-name-x': '%C3%BC',
      });
    } finally {
      raw.destroy();
    }
  });

  it('rejects a multipart put aborted mid-upload with the signal reason and stores nothing', { timeout: 60_000 }, async () => {
    const store = storeWith({ prefix: 'abort', partSizeBytes: 5 * MiB, queueSize: 1 });
    const controller = new AbortController();
    const reason = new Error('capture stopping');
    const partsBefore = commandsFor(bucket, 'abort/block.jv').length;
    const put = store.put('block.jv', randomBytes(40 * MiB), { signal: controller.signal });
    // Abort once the first part is through: the upload is then really under way.
    await vi.waitFor(() => expect(commandsFor(bucket, 'abort/block.jv').slice(partsBefore)).toContain('UploadPartCommand'), {
      timeout: 30_000,
      interval: 5,
    });
    controller.abort(reason);
    expect(await rejection(put)).toBe(reason);
    expect(await store.exists('block.jv')).toBe(false);
    // leavePartsOnError false: AbortMultipartUpload is sent once the part in flight is done (s3rver answers
    // it with 405 MethodNotAllowed: it does not implement it, and keeps the parts until close()).
    await vi.waitFor(() => expect(commandsFor(bucket, 'abort/block.jv')).toContain('AbortMultipartUploadCommand'), { timeout: 30_000 });
    expect(commandsFor(bucket, 'abort/block.jv')).not.toContain('CompleteMultipartUploadCommand');
  });

  it('check() passes for an existing bucket', async () => {
    await expect(storeWith().check()).resolves.toBeUndefined();
  });

  it('check() on a missing bucket fails permanently, naming the bucket', async () => {
    const missing = uniqueBucket('missing');
    const store = new S3Store(emulatorOptions(emulator, missing, { prefix: 'p' }));
    const error = await rejection(store.check());
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ code: 'JV_STORE_FAILED', transient: false });
    expect((error as Error).message).toBe(`bucket ${missing} does not exist (${store.description})`);
    // A put or get there fails the same way, at once.
    for (const attempt of [() => store.put('x.jv', Buffer.from('x')), () => store.get('x.jv')]) {
      const failure = await rejection(attempt());
      expect(failure).toMatchObject({ code: 'JV_STORE_FAILED', transient: false });
      expect((failure as Error).message).toContain(`bucket ${missing} does not exist`);
    }
  });

  it('an unknown access key id is a permanent access-denied failure, for check(), put() and get()', async () => {
    const credentials = { accessKeyId: 'AKIAJVWRONGKEY000001', secretAccessKey: randomBytes(30).toString('base64') };
    const store = storeWith({ credentials });
    const attempts = [() => store.check(), () => store.put('x.jv', Buffer.from('x')), () => store.get('x.jv')];
    const errors: unknown[] = [];
    for (const attempt of attempts) errors.push(await rejection(attempt()));
    for (const error of errors) {
      expect(error).toMatchObject({ code: 'JV_STORE_FAILED', transient: false });
      expect((error as Error).message).toContain(`access denied to bucket ${bucket}: check credentials`);
      // s3rver's error body names the access key id (AWSAccessKeyId), and the SDK error carries the
      // request with its Authorization header: neither may reach the StoreError.
      for (const text of [(error as Error).message, describeError(error), inspect(error, { depth: 8, showHidden: true })]) {
        expect(text).not.toContain(credentials.accessKeyId);
        expect(text).not.toContain(credentials.secretAccessKey);
      }
    }
    // HEAD answers have no body: check() sees a bare 403; put() reads S3's code.
    expect((errors[0] as Error).message).toBe(`access denied to bucket ${bucket}: check credentials (${store.description})`);
    expect((errors[1] as Error).message).toBe(
      `${store.description}: cannot put "x.jv": access denied to bucket ${bucket}: check credentials, the access key id is not known (InvalidAccessKeyId, HTTP 403)`,
    );
    expect((errors[1] as Error).cause).toMatchObject({ name: 'InvalidAccessKeyId', $metadata: { httpStatusCode: 403 } });
  });

  it('s3rver does not verify SigV4 signatures: a wrong secret for a known key id is accepted', async () => {
    // So SignatureDoesNotMatch cannot be produced here; test/s3-store.test.ts covers its mapping.
    const store = storeWith({ credentials: { accessKeyId: S3RVER_CREDENTIALS.accessKeyId, secretAccessKey: 'not-the-secret' } });
    await expect(store.check()).resolves.toBeUndefined();
  });

  describe('behind a fault-injecting proxy', () => {
    let proxy: FaultProxy;
    const credentials = { accessKeyId: S3RVER_CREDENTIALS.accessKeyId, secretAccessKey: `jv-secret-${randomBytes(12).toString('hex')}` };

    beforeAll(async () => {
      proxy = await startFaultProxy(emulator.endpoint);
    });
    afterAll(async () => {
      await proxy?.close();
    });

    const proxiedStore = (extra: Partial<S3StoreOptions> = {}) =>
      new S3Store(emulatorOptions(emulator, bucket, { endpoint: proxy.url, prefix: 'outage', credentials, ...extra }));

    /** Nothing secret in the message, the one-line report, or a full inspection of the error and its causes. */
    function expectNoSecrets(error: unknown): void {
      for (const text of [(error as Error).message, describeError(error), inspect(error, { depth: 8, showHidden: true })]) {
        expect(text).not.toContain(credentials.secretAccessKey);
        expect(text).not.toContain(credentials.accessKeyId);
        expect(text).not.toMatch(/X-Amz-(Signature|Credential)=(?!…)/);
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
        // maxSdkAttempts 2 (the default): the first try and one retry, no more.
        expect(proxy.counts[mode] - before).toBe(2);
        expectNoSecrets(error);

        await store.put(`${mode}/block.jv`, body);
        expect((await store.get(`${mode}/block.jv`)).equals(body)).toBe(true);
        await store.close();
      },
    );

    it('a multipart put through an outage is transient too, and the next attempt stores it whole', { timeout: 60_000 }, async () => {
      const store = proxiedStore({ partSizeBytes: 5 * MiB, queueSize: 2 });
      const body = randomBytes(12 * MiB);
      const outage = proxy.failFor('503', 1_000);
      const error = await rejection(store.put('multipart/block.jv', body));
      expect(error).toMatchObject({ code: 'JV_STORE_UNAVAILABLE', transient: true });
      expectNoSecrets(error);
      await outage;
      await store.put('multipart/block.jv', body);
      expect((await store.get('multipart/block.jv')).equals(body)).toBe(true);
      await store.close();
    });

    it('check(), get(), list(), exists() and delete() map an outage to transient errors', async () => {
      const store = proxiedStore();
      proxy.mode = 'drop';
      const errors: unknown[] = [];
      try {
        errors.push(await rejection(store.check()));
        errors.push(await rejection(store.get('x.jv')));
        errors.push(
          await rejection(
            (async () => {
              for await (const _ of store.list('')) break;
            })(),
          ),
        );
        errors.push(await rejection(store.exists('x.jv')));
        errors.push(await rejection(store.delete('x.jv')));
      } finally {
        proxy.mode = 'pass';
      }
      for (const error of errors) {
        expect(error).toMatchObject({ code: 'JV_STORE_UNAVAILABLE', transient: true });
        expectNoSecrets(error);
      }
      expect((errors[0] as Error).message).toContain(`cannot reach bucket ${bucket}`);
      await store.close();
    });

    it('maxSdkAttempts 1 makes a single try', async () => {
      const store = proxiedStore({ maxSdkAttempts: 1 });
      const before = proxy.counts['503'];
      proxy.mode = '503';
      try {
        expect(await rejection(store.get('never.jv'))).toMatchObject({ code: 'JV_STORE_UNAVAILABLE', transient: true });
      } finally {
        proxy.mode = 'pass';
      }
      expect(proxy.counts['503'] - before).toBe(1);
      await store.close();
    });
  });
});
