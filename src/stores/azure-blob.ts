/**
 * A store in an Azure Blob Storage container, under an optional prefix: one block blob per object.
 *
 * Credentials, in order: a connection string; an account URL with a SAS token; an account URL with a
 * TokenCredential (default: DefaultAzureCredential, loaded only when used). The SDK retries a request at
 * most `maxSdkRetries` times (default 1): longer backoff belongs to jetvault's block machine, where every
 * retry is visible as a `block.retry` event. Every failure is turned into a StoreError by azureStoreError,
 * the one place that decides transient or permanent and makes sure no secret reaches a message.
 *
 * Azure lists blobs in lexicographic order of their names, which is byte order for the ASCII keys jetvault
 * writes (keySegment percent-encodes everything else).
 */
import type { TokenCredential } from '@azure/identity';
import {
  AnonymousCredential,
  ContainerClient,
  type BlockBlobParallelUploadOptions,
  type StoragePipelineOptions,
} from '@azure/storage-blob';
import { assertSafeKey, normalizePrefix } from '../archive/keys.js';
import { JetvaultError, StoreError, UsageError } from '../errors.js';
import type { PutOptions, Store, StoredObject } from './store.js';

export interface AzureBlobStoreOptions {
  container: string;
  /** Normalised: no leading or trailing '/'; unsafe prefixes are refused (assertSafeKey). */
  prefix?: string;
  /** Takes precedence over accountUrl. */
  connectionString?: string;
  /** `https://<account>.blob.core.windows.net`, or `http://127.0.0.1:PORT/devstoreaccount1` for Azurite. */
  accountUrl?: string;
  /** With accountUrl; with or without the leading '?'. */
  sasToken?: string;
  /** With accountUrl; default: new DefaultAzureCredential(). */
  credential?: TokenCredential;
  accessTier?: 'Hot' | 'Cool' | 'Cold' | 'Archive';
  /** Default 8 MiB: bodies above it are uploaded as several blocks, then committed. */
  blockSizeBytes?: number;
  /** Blocks in flight per put; default 4. */
  concurrency?: number;
  /** Default 1: retries with backoff belong to jetvault's block machine, visible as block.retry. */
  maxSdkRetries?: number;
  /** An already configured client (tests); credentials and retry options are then the caller's. */
  containerClient?: ContainerClient;
}

const DEFAULT_BLOCK_SIZE = 8 * 1024 * 1024;
const DEFAULT_CONCURRENCY = 4;
const DEFAULT_SDK_RETRIES = 1;
const LIST_PAGE_SIZE = 1000;
/** 3–63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit; or `$root`/`$web`. */
const CONTAINER_NAME = /^(?:\$root|\$web|(?=.{3,63}$)[a-z0-9]+(?:-[a-z0-9]+)*)$/;

/** Status codes and Azure error codes that retrying can fix. */
const TRANSIENT_STATUS = new Set([408, 429]);
const TRANSIENT_AZURE_CODES = new Set(['ServerBusy', 'OperationTimedOut', 'InternalError', 'ServiceUnavailable']);
/** Connection-level failures: errno codes of Node and undici, and the pipeline's own code for a failed send. */
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
  'REQUEST_SEND_ERROR',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);
const NETWORK_MESSAGE = /socket hang up|ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE|network|timed? ?out/i;
/** Credentials were rejected or lack a permission: fixing them, not waiting, helps. */
const ACCESS_CODES = new Set([
  'AuthenticationFailed',
  'AuthorizationFailure',
  'AuthorizationPermissionMismatch',
  'AuthorizationResourceTypeMismatch',
  'AuthorizationServiceMismatch',
  'AuthorizationProtocolMismatch',
  'AuthorizationSourceIPMismatch',
  'InvalidAuthenticationInfo',
  'NoAuthenticationInformation',
  'InsufficientAccountPermissions',
  'AccountIsDisabled',
]);
/** The credential was accepted, but may not read container properties (a container SAS, an `srt=o` SAS). */
const PROBE_NOT_PERMITTED = new Set(['AuthorizationPermissionMismatch', 'AuthorizationResourceTypeMismatch']);

/** What azureStoreError needs to know about the store an error came from. */
export interface AzureStoreContext {
  description: string;
  container: string;
}

interface ErrorFacts {
  status: number | undefined;
  azureCode: string | undefined;
  nodeCode: string | undefined;
  name: string;
  message: string;
}

function factsOf(error: unknown): ErrorFacts {
  const e = (error ?? {}) as {
    statusCode?: unknown;
    code?: unknown;
    name?: unknown;
    message?: unknown;
    details?: { errorCode?: unknown };
    cause?: { code?: unknown };
  };
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const detailCode = typeof e.details?.errorCode === 'string' ? e.details.errorCode : undefined;
  const code = typeof e.code === 'string' ? e.code : undefined;
  // RestError.code holds Azure's error code for a response, or REQUEST_SEND_ERROR / PARSE_ERROR; errno codes
  // may sit on the error itself or on its cause.
  const isErrno = (c: string | undefined) => c !== undefined && (/^E[A-Z_]+$/.test(c) || c.startsWith('UND_ERR_') || c === 'REQUEST_SEND_ERROR');
  const causeCode = typeof e.cause?.code === 'string' ? e.cause.code : undefined;
  return {
    status,
    azureCode: detailCode ?? (code !== undefined && !isErrno(code) && code !== 'PARSE_ERROR' ? code : undefined),
    nodeCode: isErrno(code) ? code : isErrno(causeCode) ? causeCode : undefined,
    name: typeof e.name === 'string' ? e.name : '',
    message: typeof e.message === 'string' ? e.message : String(error),
  };
}

/**
 * Removes anything secret-looking from text taken from an error: SAS signatures, account keys, whole
 * connection strings' secret parts, bearer tokens, and the query of any URL (where a SAS travels).
 */
function scrub(text: string): string {
  return text
    .replace(/(https?:\/\/[^\s?'"]*)\?[^\s'"]*/gi, '$1?***')
    .replace(/\b(sig|signature|AccountKey|SharedAccessSignature|SharedAccessKey|se|skoid|sktid|skt|ske|sks|skv|token)=[^\s&;'"]*/gi, '$1=***')
    .replace(/\b(Bearer|SharedKey|SharedKeyLite)\s+[^\s'"]+/gi, '$1 ***');
}

/**
 * The error to keep as `cause`. A RestError carries, non-enumerable, the request and response: the URL
 * with its SAS and the Authorization header (a bearer token is a reusable credential). Serializers that
 * walk every own property (test runners, some loggers) would print them, and describeError() prints every
 * cause's message. So an error that holds a request or response, or whose message or stack holds
 * something secret-looking, is replaced by a copy with what diagnoses it: name, status, Azure code,
 * request id, the scrubbed first line of the message, the scrubbed stack, and its own cause made safe
 * the same way.
 */
function safeCause(error: unknown, depth = 0): unknown {
  if (!(error instanceof Error) || depth > 4) return error;
  const e = error as Error & { code?: unknown; statusCode?: unknown; details?: Record<string, unknown> };
  const inner = e.cause === undefined ? undefined : safeCause(e.cause, depth + 1);
  const clean =
    !('request' in e) && !('response' in e) && scrub(e.message) === e.message && (e.stack === undefined || scrub(e.stack) === e.stack);
  if (clean && inner === e.cause) return error;
  // The first line only: the service appends RequestId and Time lines (the request id is kept below).
  const copy = new Error(shortMessage(e.message), inner === undefined ? undefined : { cause: inner });
  copy.name = e.name;
  copy.stack = e.stack === undefined ? undefined : scrub(e.stack);
  const requestId = e.details?.['x-ms-request-id'];
  Object.assign(copy, {
    ...(e.code === undefined ? {} : { code: e.code }),
    ...(e.statusCode === undefined ? {} : { statusCode: e.statusCode }),
    ...(typeof e.details?.errorCode === 'string' ? { errorCode: e.details.errorCode } : {}),
    ...(typeof requestId === 'string' ? { requestId } : {}),
  });
  return copy;
}

/** The first line of the service's message (the rest is RequestId and Time), scrubbed and bounded. */
function shortMessage(message: string): string {
  const first = message.split('\n', 1)[0]?.trim() ?? '';
  const scrubbed = scrub(first);
  return scrubbed.length > 200 ? `${scrubbed.slice(0, 197)}...` : scrubbed;
}

/**
 * Turns anything the Azure SDK (or @azure/identity, or the network) throws into a StoreError naming the
 * store and the key. JetvaultErrors pass through. Transient: 5xx, 408, 429, ServerBusy, OperationTimedOut,
 * InternalError, connection errors, and an AbortError that reaches here (callers rethrow their own
 * signal's reason first, so this one is the SDK's). Permanent: missing container, rejected credentials,
 * invalid names, any other 4xx. Messages carry the status, the Azure error code and the first line of
 * the service's message, scrubbed; never a URL query, header, SAS or key. The cause is the original
 * error, unless it holds a request, a response or secret-looking text: then a scrubbed copy (safeCause).
 */
export function azureStoreError(store: AzureStoreContext, action: string, key: string | undefined, error: unknown): JetvaultError {
  if (error instanceof JetvaultError) return error;
  const facts = factsOf(error);
  const { status, azureCode, nodeCode, name } = facts;
  const where = store.description;
  const what = key === undefined ? `cannot ${action}` : `cannot ${action} ${JSON.stringify(key)}`;
  const reason = [status, azureCode ?? nodeCode].filter((p) => p !== undefined).join(' ');
  const detail = shortMessage(facts.message);
  const because = reason && detail ? `${reason}: ${detail}` : reason || detail || name || 'unknown error';
  const cause = safeCause(error);
  const permanent = (message: string) => new StoreError('JV_STORE_FAILED', message, { cause, transient: false });

  if (azureCode === 'BlobNotFound' || (status === 404 && azureCode === undefined && key !== undefined)) {
    return new StoreError('JV_STORE_NOT_FOUND', `${where}: object ${JSON.stringify(key ?? '')} not found`, {
      cause,
      transient: false,
    });
  }
  if (azureCode === 'ContainerNotFound' || (status === 404 && key === undefined)) {
    return permanent(`container ${store.container} does not exist (${where})`);
  }
  if (status === 401 || status === 403 || (azureCode !== undefined && ACCESS_CODES.has(azureCode))) {
    return permanent(`access denied to container ${store.container}: check credentials (${where}; ${because})`);
  }
  // @azure/identity: no credential source configured at all (no env, no managed identity, no CLI login).
  if (name === 'CredentialUnavailableError') {
    return permanent(`no Azure credential available for ${where}: ${detail || name}`);
  }

  const transient =
    (status !== undefined && (status >= 500 || TRANSIENT_STATUS.has(status))) ||
    (azureCode !== undefined && TRANSIENT_AZURE_CODES.has(azureCode)) ||
    (nodeCode !== undefined && NETWORK_CODES.has(nodeCode)) ||
    name === 'AbortError' ||
    name === 'TimeoutError' ||
    (status === undefined && NETWORK_MESSAGE.test(facts.message));
  if (transient) return new StoreError('JV_STORE_UNAVAILABLE', `${where}: ${what}: ${because}`, { cause, transient: true });
  // Any other answer from the service (400 InvalidResourceName, 409 BlobArchived, 413 ...) will not change.
  if (status !== undefined) return permanent(`${where}: ${what}: ${because}`);
  // A programming or configuration error on our side: retrying repeats it.
  if (error instanceof TypeError || error instanceof RangeError || name === 'AuthenticationRequiredError') {
    return permanent(`${where}: ${what}: ${because}`);
  }
  // Anything else without an answer from the service (a parse error behind a proxy, an unknown failure
  // while sending): assumed transient, as isTransient() assumes for unknown errors.
  return new StoreError('JV_STORE_UNAVAILABLE', `${where}: ${what}: ${because}`, { cause, transient: true });
}

/**
 * Azure metadata names must be valid C# identifiers: letters, digits and '_', not starting with a digit.
 * `jv-first-seq` becomes `jv_first_seq`.
 */
export function sanitizeMetadataName(name: string): string {
  const replaced = name.replace(/[^A-Za-z0-9_]/g, '_');
  if (replaced === '') return '_';
  return /^[0-9]/.test(replaced) ? `_${replaced}` : replaced;
}

/** Metadata travels in HTTP headers: only printable ASCII survives, anything else is percent-encoded. */
function sanitizeMetadataValue(value: string): string {
  return value.replace(/[^\x20-\x7e]+/gu, (run) => encodeURIComponent(run.replace(/[\ud800-\udfff]/gu, '\ufffd')));
}

function sanitizeMetadata(metadata: Record<string, string> | undefined): Record<string, string> | undefined {
  if (metadata === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(metadata)) out[sanitizeMetadataName(name)] = sanitizeMetadataValue(value);
  return out;
}

/** The account name of a connection string, or undefined (a SAS connection string has none). */
function accountFromConnectionString(connectionString: string): string | undefined {
  for (const part of connectionString.split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim().toLowerCase() === 'accountname') return part.slice(at + 1).trim() || undefined;
  }
  return undefined;
}

/** DefaultAzureCredential, loaded on the first token request: @azure/identity is slow to import. */
function lazyDefaultCredential(): TokenCredential {
  let credential: Promise<TokenCredential> | undefined;
  return {
    async getToken(scopes, options) {
      credential ??= import('@azure/identity').then(({ DefaultAzureCredential }) => new DefaultAzureCredential());
      return (await credential).getToken(scopes, options);
    },
  };
}

export class AzureBlobStore implements Store {
  readonly description: string;
  readonly container: string;
  /** Normalised prefix without slashes; '' for the container root. */
  readonly prefix: string;
  private readonly client: ContainerClient;
  private readonly blockSize: number;
  private readonly concurrency: number;
  private readonly accessTier: AzureBlobStoreOptions['accessTier'];
  private readonly sdkRetries: number;

  constructor(options: AzureBlobStoreOptions) {
    const { container } = options;
    if (!CONTAINER_NAME.test(container)) {
      throw new UsageError(
        `invalid Azure container name ${JSON.stringify(container)}: 3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit`,
      );
    }
    this.container = container;
    this.prefix = normalizePrefix(options.prefix ?? '');
    this.blockSize = positiveInteger(options.blockSizeBytes, DEFAULT_BLOCK_SIZE, 'blockSizeBytes');
    this.concurrency = positiveInteger(options.concurrency, DEFAULT_CONCURRENCY, 'concurrency');
    this.accessTier = options.accessTier;
    const sdkRetries = options.maxSdkRetries ?? DEFAULT_SDK_RETRIES;
    if (!Number.isInteger(sdkRetries) || sdkRetries < 0) throw new UsageError(`maxSdkRetries must be a whole number >= 0, not ${sdkRetries}`);
    this.sdkRetries = sdkRetries;
    const pipeline: StoragePipelineOptions = { retryOptions: { maxTries: sdkRetries + 1 } };

    let account: string | undefined;
    if (options.containerClient) {
      this.client = options.containerClient;
    } else if (options.connectionString !== undefined) {
      try {
        this.client = new ContainerClient(options.connectionString, container, pipeline);
      } catch (error) {
        // The SDK's parse errors name the faulty field, never its value; scrubbed all the same.
        throw new UsageError(`invalid Azure connection string: ${shortMessage(error instanceof Error ? error.message : String(error))}`);
      }
      account = accountFromConnectionString(options.connectionString);
    } else if (options.accountUrl !== undefined) {
      const base = parseAccountUrl(options.accountUrl);
      const containerUrl = `${base}/${encodeURIComponent(container)}`;
      if (options.sasToken !== undefined && options.sasToken !== '') {
        const sas = options.sasToken.replace(/^\?/, '');
        this.client = new ContainerClient(`${containerUrl}?${sas}`, new AnonymousCredential(), pipeline);
      } else {
        this.client = new ContainerClient(containerUrl, options.credential ?? lazyDefaultCredential(), pipeline);
      }
    } else {
      throw new UsageError('an Azure store needs a connection string or an account URL (with a SAS token or a credential)');
    }

    account ||= this.client.accountName || hostOf(this.client.url);
    this.description = `azure://${account}/${container}${this.prefix ? `/${this.prefix}` : ''}`;
  }

  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    const name = this.blobName(key);
    const signal = options?.signal;
    if (signal?.aborted) throw signal.reason;
    const metadata = sanitizeMetadata(options?.metadata);
    const upload: BlockBlobParallelUploadOptions = {
      blockSize: this.blockSize,
      // Above one block, stage blocks in parallel and commit them; at or below it, one request.
      maxSingleShotSize: this.blockSize,
      concurrency: this.concurrency,
      ...(options?.contentType ? { blobHTTPHeaders: { blobContentType: options.contentType } } : {}),
      ...(metadata ? { metadata } : {}),
      ...(this.accessTier ? { tier: this.accessTier } : {}),
      ...(signal ? { abortSignal: signal } : {}),
    };
    try {
      // uploadData resolves after the single Put Blob or the Put Block List that commits the blocks.
      await this.client.getBlockBlobClient(name).uploadData(body, upload);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw azureStoreError(this, 'put', key, error);
    }
  }

  async get(key: string, options?: { signal?: AbortSignal }): Promise<Buffer> {
    const name = this.blobName(key);
    const signal = options?.signal;
    if (signal?.aborted) throw signal.reason;
    try {
      // maxRetryRequests: how often a body cut off mid-stream is resumed from where it stopped.
      const response = await this.client
        .getBlockBlobClient(name)
        .download(0, undefined, { maxRetryRequests: this.sdkRetries, ...(signal ? { abortSignal: signal } : {}) });
      const stream = response.readableStreamBody;
      if (!stream) throw new Error('download returned no body');
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
      const body = Buffer.concat(chunks);
      if (response.contentLength !== undefined && body.length !== response.contentLength) {
        throw new StoreError(
          'JV_STORE_UNAVAILABLE',
          `${this.description}: cannot get ${JSON.stringify(key)}: received ${body.length} of ${response.contentLength} bytes`,
          { transient: true },
        );
      }
      return body;
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw azureStoreError(this, 'get', key, error);
    }
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    const full = this.prefix ? `${this.prefix}/${prefix}` : prefix;
    const strip = this.prefix ? this.prefix.length + 1 : 0;
    try {
      // byPage follows the continuation marker from page to page.
      for await (const page of this.client.listBlobsFlat(full === '' ? {} : { prefix: full }).byPage({ maxPageSize: LIST_PAGE_SIZE })) {
        for (const blob of page.segment.blobItems) yield { key: blob.name.slice(strip), size: blob.properties.contentLength ?? 0 };
      }
    } catch (error) {
      throw azureStoreError(this, 'list', prefix, error);
    }
  }

  async exists(key: string): Promise<boolean> {
    const name = this.blobName(key);
    try {
      return await this.client.getBlockBlobClient(name).exists();
    } catch (error) {
      throw azureStoreError(this, 'check', key, error);
    }
  }

  async delete(key: string): Promise<void> {
    const name = this.blobName(key);
    try {
      // Snapshots would make the delete fail with 409; they belong to the object and go with it.
      await this.client.getBlockBlobClient(name).deleteIfExists({ deleteSnapshots: 'include' });
    } catch (error) {
      throw azureStoreError(this, 'delete', key, error);
    }
  }

  /**
   * The container exists and the credentials are accepted. A credential that may not read container
   * properties (a container-scoped SAS, or an account SAS for objects only) is probed by listing one blob
   * instead; one that may only write (a `cw` SAS) passes: it authenticated, and its first put will tell.
   */
  async check(): Promise<void> {
    try {
      await this.client.getProperties();
      return;
    } catch (error) {
      if (!PROBE_NOT_PERMITTED.has(factsOf(error).azureCode ?? '')) throw azureStoreError(this, 'check container', undefined, error);
    }
    try {
      await this.client.listBlobsFlat().byPage({ maxPageSize: 1 }).next();
    } catch (error) {
      if (!PROBE_NOT_PERMITTED.has(factsOf(error).azureCode ?? '')) throw azureStoreError(this, 'check container', undefined, error);
    }
  }

  /** Store key → blob name under the prefix, refusing unsafe keys. */
  private blobName(key: string): string {
    assertSafeKey(key);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }
}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw new UsageError(`${name} must be a whole number >= 1, not ${value}`);
  return value;
}

/** The account URL without query, fragment or trailing slash; a SAS pasted into it is refused, not logged. */
function parseAccountUrl(accountUrl: string): string {
  let url: URL;
  try {
    url = new URL(accountUrl);
  } catch {
    throw new UsageError('invalid Azure account URL (expected https://<account>.blob.core.windows.net)');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UsageError(`invalid Azure account URL protocol ${url.protocol}`);
  if (url.search !== '' || url.username !== '' || url.password !== '') {
    throw new UsageError('the Azure account URL must not carry a query or credentials; pass the SAS token separately');
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'unknown-account';
  }
}
