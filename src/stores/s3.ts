/**
 * A store in an S3 bucket (AWS, or anything speaking S3: MinIO, Ceph, R2, emulators), under a key prefix.
 *
 * put() sends small bodies with one PutObject and larger ones (> partSizeBytes) as a multipart upload
 * with at most `queueSize` parts in flight; it resolves only once S3 confirmed the object (PutObject or
 * CompleteMultipartUpload answered). list() pages through ListObjectsV2 and yields in S3's order, which
 * is UTF-8 byte order: the order the Store interface promises.
 *
 * Retries: the SDK makes at most `maxSdkAttempts` attempts (default 2). Backing off through an outage is
 * the block machine's job, where attempts and delays are visible as `block.retry` events; every error
 * leaves here as a StoreError that says whether retrying can help (`transient`).
 *
 * Secrets: credentials go to the SDK only. Descriptions and error messages name the bucket, prefix,
 * endpoint (origin and path only), operation and key; never a credential, header or query string.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type ListObjectsV2CommandOutput,
  type PutObjectCommandInput,
  type S3ClientConfig,
  type StorageClass,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { assertSafeKey, normalizePrefix } from '../archive/keys.js';
import { JetvaultError, StoreError, UsageError } from '../errors.js';
import type { PutOptions, Store, StoredObject } from './store.js';

export interface S3StoreOptions {
  bucket: string;
  /** Key prefix inside the bucket; '' by default. Leading and trailing '/' are dropped; unsafe ones refused. */
  prefix?: string;
  /** Default: the SDK's chain (AWS_REGION, the shared config profile), else 'us-east-1'. */
  region?: string;
  /** Custom endpoint (MinIO, Ceph, R2, emulators). */
  endpoint?: string;
  forcePathStyle?: boolean;
  /** Default: the SDK's default credential chain (env, shared config/profile, web identity, instance metadata). */
  credentials?: S3ClientConfig['credentials'];
  /** e.g. STANDARD_IA. */
  storageClass?: string;
  serverSideEncryption?: 'AES256' | 'aws:kms';
  sseKmsKeyId?: string;
  /** SDK flexible checksums; default 'when_supported'. Emulators that store aws-chunked framing need 'when_required'. */
  checksums?: 'when_supported' | 'when_required';
  /** Multipart above this size; default 8 MiB, at least 5 MiB (S3's minimum part size). */
  partSizeBytes?: number;
  /** Parts in flight per multipart upload; default 4. */
  queueSize?: number;
  /** Attempts per SDK call; default 2. Retries with backoff belong to the block machine. */
  maxSdkAttempts?: number;
  /** An injected client (tests). The store then neither configures nor destroys it. */
  client?: S3Client;
}

const MIB = 1024 * 1024;
export const S3_MIN_PART_SIZE = 5 * MIB;
const S3_MAX_PART_SIZE = 5 * 1024 * MIB;
const DEFAULT_PART_SIZE = 8 * MIB;
const DEFAULT_QUEUE_SIZE = 4;
const DEFAULT_MAX_SDK_ATTEMPTS = 2;
const LIST_PAGE_SIZE = 1000;
export const FALLBACK_REGION = 'us-east-1';
// Without these a half-open connection hangs a put forever; a timeout is a transient error instead.
const CONNECTION_TIMEOUT_MS = 10_000;
const SOCKET_IDLE_TIMEOUT_MS = 60_000;

export type S3Operation = 'put' | 'get' | 'list' | 'exists' | 'delete' | 'check';

/** More S3 error codes retrying will not fix (besides those given their own message below). */
const PERMANENT_CODES = new Set([
  'InvalidStorageClass',
  'KMS.DisabledException',
  'KMS.NotFoundException',
  'KeyTooLongError',
  'EntityTooLarge',
]);
/** Codes that mean "these credentials may not do this": one message, pointing at the credentials. */
const ACCESS_CODES = new Set([
  'AccessDenied',
  'AllAccessDisabled',
  'AccountProblem',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'ExpiredToken',
  'TokenRefreshRequired',
  'InvalidSecurity',
  'Forbidden',
]);
/** S3 error codes (and SDK error names) that say "try again later". */
const TRANSIENT_CODES = new Set([
  'SlowDown',
  'ServiceUnavailable',
  'InternalError',
  'RequestTimeout',
  'RequestTimeoutException',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'BandwidthLimitExceeded',
  'PriorRequestNotComplete',
  'OperationAborted',
  'TimeoutError',
]);
/** Node network errno codes: the connection, not the request, failed. DNS failures count (they pass). */
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
]);

const GENERIC_NAMES = new Set(['', 'Error', 'Unknown', 'UnknownError', 'S3ServiceException']);

interface ErrorFacts {
  /** S3's error code (`NoSuchBucket`), the SDK error name, or '' when neither says anything. */
  code: string;
  /** Node errno code of a network error. */
  errno: string | undefined;
  status: number | undefined;
  message: string;
}

function factsOf(error: unknown): ErrorFacts {
  const e = (typeof error === 'object' && error !== null ? error : {}) as {
    name?: unknown;
    Code?: unknown;
    code?: unknown;
    message?: unknown;
    $metadata?: { httpStatusCode?: unknown };
  };
  const status = typeof e.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined;
  const rawCode = typeof e.code === 'string' ? e.code : undefined;
  // Errno codes are upper case (ECONNRESET, ERR_SOCKET_…); S3 codes like EntityTooLarge are not.
  const errno = rawCode !== undefined && (NETWORK_CODES.has(rawCode) || /^E[A-Z0-9_]+$/.test(rawCode)) ? rawCode : undefined;
  const name = typeof e.name === 'string' ? e.name : '';
  // Without an error body (HEAD answers) the SDK names the error after the status ('NotFound') or
  // 'Unknown'; generic names say nothing, the status does.
  const code =
    typeof e.Code === 'string'
      ? e.Code
      : rawCode !== undefined && errno === undefined
        ? rawCode
        : GENERIC_NAMES.has(name)
          ? ''
          : name;
  const message = typeof e.message === 'string' ? e.message : typeof error === 'string' ? error : '';
  return { code, errno, status, message };
}

/**
 * Removes what could carry a secret from a message we did not write: query strings of URLs (presigned
 * signatures, SAS tokens), signing parameters, Authorization values.
 */
export function scrubMessage(message: string): string {
  return message
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^\s?#"'<>]*)[?#][^\s"'<>]*/gi, '$1?…')
    .replace(/\b(X-Amz-[A-Za-z-]+|AWSAccessKeyId|Signature|Credential|sig|se|sp|sv|st)=[^&\s"'<>]*/g, '$1=…')
    .replace(/\b(AWS4-HMAC-SHA256|Bearer|Basic)\s+\S+/g, '$1 …');
}

/** A message we did not write, made safe and short enough for one line. */
function foreignDetail(message: string): string {
  const scrubbed = scrubMessage(message).replace(/\s+/g, ' ').trim();
  return scrubbed.length > 300 ? `${scrubbed.slice(0, 299)}…` : scrubbed;
}

/** Fields of SDK and Node errors that carry no secret; a cause keeps only these. */
const SAFE_ERROR_FIELDS = new Set([
  'name',
  'message',
  'stack',
  'cause',
  'Code',
  'code',
  'errno',
  'syscall',
  'address',
  'port',
  '$fault',
  '$retryable',
  '$metadata',
  'BucketName',
  'Bucket',
  'Key',
  'Region',
  'Endpoint',
  'RequestId',
  'HostId',
]);

/**
 * A copy of an SDK or Node error that is safe to keep as `cause`, and so to log or serialise: same
 * prototype (so `instanceof NoSuchKey` still holds), name, code, status and stack, message scrubbed; but
 * without the hidden `$response` the SDK attaches (it reaches the request and its Authorization and
 * x-amz-security-token headers) and with every other field of an S3 error body (AWSAccessKeyId,
 * StringToSign, CanonicalRequest…) left out. The original cannot be cleaned in place: `$response` is
 * read-only and non-configurable.
 */
export function safeCause(error: unknown, depth = 0): unknown {
  if (typeof error !== 'object' || error === null) return error;
  const source = error as Record<string, unknown>;
  const copy = Object.create(Object.getPrototypeOf(error) as object | null) as Record<string, unknown>;
  for (const name of Object.getOwnPropertyNames(error)) {
    if (!SAFE_ERROR_FIELDS.has(name)) continue;
    let value = source[name];
    if (name === 'cause') {
      if (depth >= 3) continue;
      value = safeCause(value, depth + 1);
    } else if (typeof value === 'string') {
      value = scrubMessage(value);
    } else if (name === '$metadata' && typeof value === 'object' && value !== null) {
      value = { ...value };
    }
    // Non-enumerable where the original's was (message, stack), so the copy prints like it.
    const enumerable = Object.getOwnPropertyDescriptor(error, name)?.enumerable ?? true;
    Object.defineProperty(copy, name, { value, enumerable, writable: true, configurable: true });
  }
  return copy;
}

function isNotFound(facts: ErrorFacts): boolean {
  return facts.code === 'NoSuchKey' || facts.code === 'NotFound' || (facts.status === 404 && facts.code !== 'NoSuchBucket');
}

/**
 * The one place S3 errors become StoreErrors: transient (JV_STORE_UNAVAILABLE: 5xx, 429, throttling,
 * timeouts, connection failures) or permanent (JV_STORE_FAILED: no such bucket, access denied, bad
 * credentials, any other 4xx); a missing object of get/exists/delete is JV_STORE_NOT_FOUND. The message names the
 * operation, the store and the key, never a credential, URL query or header; the SDK error stays `cause`.
 * JetvaultErrors pass through.
 */
export function s3StoreError(
  description: string,
  bucket: string,
  operation: S3Operation,
  key: string | undefined,
  error: unknown,
): JetvaultError {
  if (error instanceof JetvaultError) return error;
  const facts = factsOf(error);
  const cause = safeCause(error);
  const { code, errno, status } = facts;
  const what = key === undefined ? `cannot ${operation}` : `cannot ${operation} ${JSON.stringify(key)}`;
  const tag = [code || errno, status === undefined ? undefined : `HTTP ${status}`].filter(Boolean).join(', ');
  const permanent = (reason: string) =>
    new StoreError(
      'JV_STORE_FAILED',
      operation === 'check' ? `${reason} (${description})` : `${description}: ${what}: ${reason}${tag ? ` (${tag})` : ''}`,
      { cause, transient: false },
    );

  if (code === 'NoSuchBucket' || (operation === 'check' && (status === 404 || code === 'NotFound'))) {
    return permanent(`bucket ${bucket} does not exist`);
  }
  if ((operation === 'get' || operation === 'exists' || operation === 'delete') && isNotFound(facts)) {
    return new StoreError('JV_STORE_NOT_FOUND', `${description}: object ${JSON.stringify(key ?? '')} not found`, {
      cause,
      transient: false,
    });
  }
  if (ACCESS_CODES.has(code) || (status === 403 && code === '')) {
    const hint =
      code === 'InvalidAccessKeyId'
        ? ', the access key id is not known'
        : code === 'SignatureDoesNotMatch'
          ? ', the signature does not match (wrong secret access key?)'
          : code === 'ExpiredToken' || code === 'TokenRefreshRequired'
            ? ', the session token has expired'
            : '';
    return permanent(`access denied to bucket ${bucket}: check credentials${hint}`);
  }
  if (code === 'RequestTimeTooSkewed') {
    return permanent(`this machine's clock differs from S3's by more than 15 minutes: correct the system time`);
  }
  if (code === 'CredentialsProviderError') {
    return permanent(`no usable AWS credentials (environment, shared config/profile, web identity, instance metadata)`);
  }
  if (code === 'InvalidBucketName') return permanent(`invalid bucket name ${JSON.stringify(bucket)}`);
  if (code === 'PermanentRedirect' || code === 'AuthorizationHeaderMalformed' || (status !== undefined && status >= 300 && status < 400)) {
    return permanent(`bucket ${bucket} is in another region or behind another endpoint: set the region`);
  }
  if (PERMANENT_CODES.has(code)) return permanent(foreignDetail(facts.message) || code);

  const transient =
    TRANSIENT_CODES.has(code) ||
    /throttl/i.test(code) ||
    (errno !== undefined && NETWORK_CODES.has(errno)) ||
    /socket hang up/i.test(facts.message) ||
    (status !== undefined && (status >= 500 || status === 429 || status === 408));
  if (transient) {
    const reason =
      status !== undefined && status >= 500
        ? 'S3 is unavailable'
        : status === 429 || /throttl|slowdown/i.test(code)
          ? 'S3 is throttling requests'
          : errno !== undefined || /socket hang up/i.test(facts.message)
            ? 'connection failed'
            : 'S3 did not answer in time';
    const detail = foreignDetail(facts.message);
    const head = operation === 'check' ? `cannot reach bucket ${bucket}` : what;
    return new StoreError(
      'JV_STORE_UNAVAILABLE',
      `${description}: ${head}: ${reason}${tag ? ` (${tag})` : ''}${detail && detail !== code ? `: ${detail}` : ''}`,
      { cause, transient: true },
    );
  }
  // Any other 4xx is a request S3 refuses as it stands; so are errors thrown before sending (bad input).
  if ((status !== undefined && status >= 400 && status < 500) || error instanceof TypeError || error instanceof RangeError) {
    return permanent(foreignDetail(facts.message) || code || 'request refused');
  }
  // Unknown and without an HTTP status: most likely the network; retrying is the safe side.
  const detail = foreignDetail(facts.message) || code || 'unknown error';
  return new StoreError('JV_STORE_UNAVAILABLE', `${description}: ${what}: ${detail}`, { cause, transient: true });
}

/** `prefix/key` (or `key` without a prefix), refusing unsafe keys. */
export function s3ObjectKey(prefix: string, key: string): string {
  assertSafeKey(key);
  return prefix === '' ? key : `${prefix}/${key}`;
}

/**
 * S3 user metadata travels as `x-amz-meta-<name>` headers and is stored lower-cased: names become
 * lower-case letters, digits and '-' (no '_', which proxies drop); values become printable ASCII, with
 * other characters percent-encoded as UTF-8. Entries whose name is left empty are dropped.
 */
export function s3Metadata(metadata: Record<string, string> | undefined): Record<string, string> | undefined {
  if (metadata === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(metadata)) {
    const safeName = name
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '');
    if (safeName === '') continue;
    out[safeName] = String(value).replace(/[^\x20-\x7e]/gu, (ch) =>
      [...Buffer.from(ch, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
    );
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The endpoint as it may be logged: scheme, host, port and path; no user-info, query or fragment. */
export function describeEndpoint(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    // Without the value or the parser's error (it repeats the input): it may hold user:password@.
    throw new UsageError('the S3 endpoint is not a valid URL (expected e.g. http://127.0.0.1:9000)');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    // Not echoed: in `user:secret@host` the "scheme" is a user name.
    throw new UsageError('the S3 endpoint must be an http:// or https:// URL (e.g. http://127.0.0.1:9000)');
  }
  const path = url.pathname === '/' ? '' : url.pathname;
  return `${url.protocol}//${url.host}${path}`;
}

function positiveInteger(name: string, value: number | undefined, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`S3 option ${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

/** The SDK's region chain (AWS_REGION, the shared config profile), falling back to us-east-1. */
function regionWithFallback(): () => Promise<string> {
  // A client made without a region carries the SDK's own chain as its region provider; borrowing it
  // avoids depending on the SDK's internal config packages. It never sends a request.
  const probe = new S3Client({});
  const chain = probe.config.region;
  probe.destroy();
  return async () => {
    try {
      return await chain();
    } catch {
      return FALLBACK_REGION;
    }
  };
}

export class S3Store implements Store {
  readonly description: string;
  readonly bucket: string;
  /** Normalised prefix without leading or trailing '/'; '' for the bucket root. */
  readonly prefix: string;
  private readonly client: S3Client;
  private readonly ownsClient: boolean;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly objectParams: Pick<PutObjectCommandInput, 'StorageClass' | 'ServerSideEncryption' | 'SSEKMSKeyId'>;
  private closed = false;

  constructor(options: S3StoreOptions) {
    const bucket = options.bucket;
    if (typeof bucket !== 'string' || bucket === '' || /[/\\\s?#]/.test(bucket) || /[\u0000-\u001f\u007f]/.test(bucket)) {
      throw new UsageError(`S3 bucket name ${JSON.stringify(bucket)} is empty or contains '/', '\\', '?', '#' or whitespace`);
    }
    this.bucket = bucket;
    this.prefix = normalizePrefix(options.prefix ?? '');
    const endpoint = options.endpoint === undefined || options.endpoint === '' ? undefined : options.endpoint;
    const shownEndpoint = endpoint === undefined ? undefined : describeEndpoint(endpoint);
    this.description = `s3://${bucket}/${this.prefix}${shownEndpoint ? ` (endpoint ${shownEndpoint})` : ''}`;

    this.partSize = positiveInteger('partSizeBytes', options.partSizeBytes, DEFAULT_PART_SIZE, S3_MIN_PART_SIZE, S3_MAX_PART_SIZE);
    this.queueSize = positiveInteger('queueSize', options.queueSize, DEFAULT_QUEUE_SIZE, 1, 64);
    const maxAttempts = positiveInteger('maxSdkAttempts', options.maxSdkAttempts, DEFAULT_MAX_SDK_ATTEMPTS, 1, 10);

    const checksums = options.checksums ?? 'when_supported';
    if (checksums !== 'when_supported' && checksums !== 'when_required') {
      throw new UsageError(`S3 option checksums must be when_supported or when_required, got ${JSON.stringify(checksums)}`);
    }
    const sse = options.serverSideEncryption;
    if (sse !== undefined && sse !== 'AES256' && sse !== 'aws:kms') {
      throw new UsageError(`S3 server-side encryption must be AES256 or aws:kms, got ${JSON.stringify(sse)}`);
    }
    if (options.sseKmsKeyId !== undefined && options.sseKmsKeyId !== '' && sse !== 'aws:kms') {
      throw new UsageError('an SSE-KMS key id needs server-side encryption aws:kms');
    }
    if (options.storageClass !== undefined && !/^[A-Z0-9_]+$/.test(options.storageClass)) {
      throw new UsageError(`S3 storage class ${JSON.stringify(options.storageClass)} is not a storage class name (e.g. STANDARD_IA)`);
    }
    this.objectParams = {
      ...(options.storageClass ? { StorageClass: options.storageClass as StorageClass } : {}),
      ...(sse ? { ServerSideEncryption: sse } : {}),
      ...(options.sseKmsKeyId ? { SSEKMSKeyId: options.sseKmsKeyId } : {}),
    };

    if (options.client) {
      this.client = options.client;
      this.ownsClient = false;
    } else {
      const mode = checksums === 'when_required' ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED';
      this.client = new S3Client({
        region: options.region || regionWithFallback(),
        ...(endpoint ? { endpoint } : {}),
        ...(options.forcePathStyle !== undefined ? { forcePathStyle: options.forcePathStyle } : {}),
        ...(options.credentials ? { credentials: options.credentials } : {}),
        requestChecksumCalculation: mode,
        responseChecksumValidation: mode,
        maxAttempts,
        requestHandler: { connectionTimeout: CONNECTION_TIMEOUT_MS, requestTimeout: SOCKET_IDLE_TIMEOUT_MS },
      });
      this.ownsClient = true;
    }
  }

  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    const objectKey = s3ObjectKey(this.prefix, key);
    const signal = options?.signal;
    if (signal?.aborted) throw signal.reason;
    const metadata = s3Metadata(options?.metadata);
    const params: PutObjectCommandInput = {
      Bucket: this.bucket,
      Key: objectKey,
      Body: body,
      ...(options?.contentType ? { ContentType: options.contentType } : {}),
      ...(metadata ? { Metadata: metadata } : {}),
      ...this.objectParams,
    };
    try {
      if (body.byteLength <= this.partSize) {
        await this.client.send(new PutObjectCommand({ ...params, ContentLength: body.byteLength }), signal ? { abortSignal: signal } : {});
      } else {
        await this.putMultipart(params, signal);
      }
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw s3StoreError(this.description, this.bucket, 'put', key, error);
    }
  }

  async get(key: string, options?: { signal?: AbortSignal }): Promise<Buffer> {
    const objectKey = s3ObjectKey(this.prefix, key);
    const signal = options?.signal;
    if (signal?.aborted) throw signal.reason;
    try {
      const answer = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: objectKey }),
        signal ? { abortSignal: signal } : {},
      );
      if (!answer.Body) return Buffer.alloc(0);
      const bytes = await answer.Body.transformToByteArray();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw s3StoreError(this.description, this.bucket, 'get', key, error);
    }
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    const base = this.prefix === '' ? '' : `${this.prefix}/`;
    let token: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: base + prefix,
            MaxKeys: LIST_PAGE_SIZE,
            ...(token ? { ContinuationToken: token } : {}),
          }),
        );
      } catch (error) {
        throw s3StoreError(this.description, this.bucket, 'list', prefix, error);
      }
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined || !object.Key.startsWith(base)) continue;
        const key = object.Key.slice(base.length);
        // Keys no store operation accepts (console "folder" markers ending in '/', '..' segments) are
        // not objects of this store: get() would refuse them.
        if (!isSafeKey(key)) continue;
        yield { key, size: object.Size ?? 0 };
      }
      if (page.IsTruncated && !page.NextContinuationToken) {
        throw new StoreError('JV_STORE_FAILED', `${this.description}: cannot list ${JSON.stringify(prefix)}: a truncated page came without a continuation token`, {
          transient: false,
        });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async exists(key: string): Promise<boolean> {
    const objectKey = s3ObjectKey(this.prefix, key);
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      return true;
    } catch (error) {
      // HEAD answers have no body: a missing bucket also looks like 404 here; check() tells them apart.
      const mapped = s3StoreError(this.description, this.bucket, 'exists', key, error);
      if (mapped.code === 'JV_STORE_NOT_FOUND') return false;
      throw mapped;
    }
  }

  async delete(key: string): Promise<void> {
    const objectKey = s3ObjectKey(this.prefix, key);
    try {
      // S3 answers 204 whether or not the object existed.
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: objectKey }));
    } catch (error) {
      const mapped = s3StoreError(this.description, this.bucket, 'delete', key, error);
      if (mapped.code === 'JV_STORE_NOT_FOUND') return;
      throw mapped;
    }
  }

  /** HeadBucket: the bucket exists and these credentials may use it. */
  async check(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (error) {
      throw s3StoreError(this.description, this.bucket, 'check', undefined, error);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsClient) this.client.destroy();
  }

  private async putMultipart(params: PutObjectCommandInput, signal: AbortSignal | undefined): Promise<void> {
    const upload = new Upload({
      client: this.client,
      params,
      queueSize: this.queueSize,
      partSize: this.partSize,
      leavePartsOnError: false,
    });
    // Upload.abort() stops queuing parts and aborts the multipart upload; done() then rejects.
    const onAbort = () => void upload.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await upload.done();
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }
}

function isSafeKey(key: string): boolean {
  try {
    assertSafeKey(key);
    return true;
  } catch {
    return false;
  }
}
