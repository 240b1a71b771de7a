/**
 * An S3 emulator for the tests: s3rver 3.7.1 in this process, on 127.0.0.1 with a free port, keeping its
 * objects in a temp directory that close() removes. No Docker, no network beyond loopback.
 *
 * What s3rver does and does not do (checked against its source, lib/ of s3rver 3.7.1, on Node 20):
 * - it accepts SigV4 requests from any *known access key id* ('S3RVER') without checking the signature,
 *   so a wrong secret goes unnoticed; an unknown access key id is refused with InvalidAccessKeyId (403);
 * - it stores the request body as sent, aws-chunked framing included: with the SDK's default
 *   `requestChecksumCalculation: 'WHEN_SUPPORTED'` a *stream* body is sent aws-chunked and stored framed
 *   (1,000 bytes became 1,043); Buffer bodies, all jetvault sends, go with a checksum header and arrive
 *   intact. Clients here use 'WHEN_REQUIRED' for both request and response checksums regardless;
 * - multipart upload (Create, UploadPart, Complete) and x-amz-meta-* metadata work; AbortMultipartUpload
 *   is not implemented (405 MethodNotAllowed: parts stay until close()); SSE headers are ignored, storage
 *   classes are checked against S3's list, IfNoneMatch is not enforced;
 * - ListObjectsV2 is wrong in two ways, both mended by `replaceListObjectsV2` below:
 *   1. order: it walks its directory tree, so it lists the keys under `a/` before their siblings `a-z`,
 *      `a.b` (S3 lists in UTF-8 byte order), and pages with a `key <= startAfter` filter over that walk;
 *   2. pagination: its continuation tokens are DES-encrypted, which OpenSSL 3 (Node ≥ 17) no longer
 *      offers, so any listing past 1,000 keys fails with 500 InternalError
 *      ("error:0308010C:digital envelope routines::unsupported").
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

/** The key pair s3rver registers for its dummy account; any other access key id is refused. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
export const S3RVER_REGION = 'us-east-1';

export interface S3Emulator {
  /** Base URL, e.g. http://127.0.0.1:41234; use with forcePathStyle. */
  endpoint: string;
  createBucket(name: string): Promise<void>;
  close(): Promise<void>;
}

/** The part of s3rver's (untyped, CommonJS) API the helper uses. */
interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: {
  port: number;
  address: string;
  silent: boolean;
  directory: string;
}) => S3rverInstance;

const require = createRequire(import.meta.url);

export async function startS3Emulator(): Promise<S3Emulator> {
  const S3rver = require('s3rver') as S3rverConstructor;
  replaceListObjectsV2();
  const directory = await mkdtemp(path.join(tmpdir(), 'jv-s3rver-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory });
  let address: { address: string; port: number };
  try {
    address = await server.run();
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
  const endpoint = `http://127.0.0.1:${address.port}`;
  const admin = new S3Client({
    endpoint,
    region: S3RVER_REGION,
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    endpoint,
    async createBucket(name) {
      await admin.send(new CreateBucketCommand({ Bucket: name }));
    },
    async close() {
      admin.destroy();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** The parts of s3rver's Koa context, store and models the ListObjectsV2 replacement uses. */
interface S3rverObject {
  key: string;
  size: number;
  lastModifiedDate: Date;
  metadata: { etag?: string };
}
interface S3rverContext {
  query: Record<string, string | undefined>;
  params: { bucket: string };
  store: { listObjects(bucket: string, options: { prefix: string }): Promise<{ objects: S3rverObject[] }> };
  body: unknown;
}
interface S3rverBucketController {
  getBucket(ctx: S3rverContext): Promise<void>;
  [REPLACED]?: true;
}
type S3ErrorConstructor = new (code: string, message: string, detail?: Record<string, unknown>) => Error;

const REPLACED = Symbol.for('jetvault.s3rver.listObjectsV2');
const TOKEN_PREFIX = 'jv1:';

/**
 * Replaces s3rver's ListObjectsV2 (GET /bucket?list-type=2 without a delimiter; jetvault never sends
 * one) with S3's documented behaviour: keys in UTF-8 byte order, pages of at most `max-keys` (≤ 1,000),
 * `start-after`, and opaque continuation tokens. Keys, sizes and ETags still come from s3rver's own
 * store, and the response goes through s3rver's own XML rendering, so the SDK parses a real response.
 * Every other request, ListObjects v1 and delimiter listings included, is s3rver's unchanged.
 */
function replaceListObjectsV2(): void {
  const controller = require('s3rver/lib/controllers/bucket') as S3rverBucketController;
  const S3Error = require('s3rver/lib/models/error') as S3ErrorConstructor;
  if (controller[REPLACED]) return;
  const original = controller.getBucket.bind(controller);
  controller.getBucket = async (ctx) => {
    const { query } = ctx;
    if (query['list-type'] !== '2' || query['delimiter']) return original(ctx);
    const bucket = ctx.params.bucket;
    const prefix = query['prefix'] ?? '';
    const maxKeysParam = query['max-keys'];
    if (maxKeysParam !== undefined && !/^\d+$/.test(maxKeysParam)) {
      throw new S3Error('InvalidArgument', 'Provided max-keys not an integer or within integer range', {
        ArgumentName: 'max-keys',
        ArgumentValue: maxKeysParam,
      });
    }
    const maxKeys = maxKeysParam === undefined ? 1000 : Math.min(1000, Number(maxKeysParam));
    const token = query['continuation-token'];
    let startAfter = query['start-after'] ?? '';
    if (token) {
      const decoded = Buffer.from(token, 'base64url').toString('utf8');
      const expected = `${TOKEN_PREFIX}${bucket}\n`;
      if (!decoded.startsWith(expected)) {
        throw new S3Error('InvalidArgument', 'The continuation token provided is incorrect', { ArgumentName: 'continuation-token' });
      }
      startAfter = decoded.slice(expected.length);
    }
    const after = Buffer.from(startAfter, 'utf8');
    const { objects } = await ctx.store.listObjects(bucket, { prefix });
    const sorted = objects
      .map((object) => ({ object, bytes: Buffer.from(object.key, 'utf8') }))
      .filter(({ bytes }) => Buffer.compare(bytes, after) > 0)
      .sort((a, b) => Buffer.compare(a.bytes, b.bytes))
      .map(({ object }) => object);
    const page = sorted.slice(0, maxKeys);
    const isTruncated = sorted.length > page.length;
    const last = page[page.length - 1];
    ctx.body = {
      ListBucketResult: {
        '@': { xmlns: 'http://doc.s3.amazonaws.com/2006-03-01/' },
        Name: bucket,
        Prefix: prefix,
        StartAfter: token ? undefined : query['start-after'],
        ContinuationToken: token || undefined,
        NextContinuationToken:
          isTruncated && last ? Buffer.from(`${TOKEN_PREFIX}${bucket}\n${last.key}`, 'utf8').toString('base64url') : undefined,
        KeyCount: page.length,
        MaxKeys: maxKeysParam ?? 1000,
        IsTruncated: isTruncated,
        Contents: page.map((object) => ({
          Key: object.key,
          LastModified: object.lastModifiedDate.toISOString(),
          ETag: object.metadata.etag,
          Size: object.size,
          StorageClass: 'STANDARD',
        })),
      },
    };
  };
  controller[REPLACED] = true;
}
