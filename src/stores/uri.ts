/**
 * Store URI → Store. The one place that knows which schemes exist.
 *
 *   file:///abs/dir          a local directory; must be absolute (file://localhost/abs/dir also works)
 *   /abs/dir, rel/dir, ./x   a plain path; relative ones resolve against process.cwd()
 *   s3://bucket/prefix       S3 or an S3-compatible service; query: endpoint, region, forcePathStyle,
 *                            storageClass, sse (AES256 | aws:kms), sseKmsKeyId, checksums (when_required)
 *   azure://container/prefix Azure Blob (also az://); query: account, endpoint, tier; credentials from
 *                            AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT + AZURE_STORAGE_SAS_TOKEN,
 *                            or DefaultAzureCredential
 *
 * Credentials never go into a URI (they would end up in shell history and process lists): a URI with
 * `user:password@` is refused.
 *
 * `file://relative/dir` is refused rather than guessed: in a URI the part after `//` is a host name, and
 * reading it as a directory would silently write somewhere other than the user meant. A relative directory
 * is given as a plain path. A relative path containing a colon is written `./name:with:colon`.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../errors.js';
import type { AzureBlobStoreOptions } from './azure-blob.js';
import { FileStore } from './fs.js';
import { lazyStore } from './lazy.js';
import type { S3StoreOptions } from './s3.js';
import type { Store } from './store.js';

/** Settings that do not fit in a URI, or that the CLI's flags override (`--s3-endpoint`…). */
export interface CreateStoreOptions {
  s3?: Partial<S3StoreOptions>;
  azure?: Partial<AzureBlobStoreOptions>;
  /** Where credentials come from; default process.env. */
  env?: NodeJS.ProcessEnv;
}

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;
const SUPPORTED = '(supported: file://, s3://, azure://, az://, or a plain path)';

export function createStore(uri: string, options: CreateStoreOptions = {}): Store {
  if (uri === '') throw new UsageError(`the store location is empty ${SUPPORTED}`);
  const scheme = schemeOf(uri);
  if (scheme === undefined) return new FileStore(path.resolve(process.cwd(), uri));
  if (scheme === 'file:') return new FileStore(fileUriToPath(uri));
  if (scheme === 's3:') return s3Store(uri, options);
  if (scheme === 'azure:' || scheme === 'az:') return azureStore(uri, options);
  throw new UsageError(`unknown store scheme "${scheme}" ${SUPPORTED}`);
}

interface ObjectUri {
  /** Bucket or container. */
  root: string;
  prefix: string;
  query: URLSearchParams;
}

/** `scheme://root/prefix?query`, parsed by hand: bucket names are not host names (case, underscores). */
function parseObjectUri(uri: string, scheme: string, rootName: string): ObjectUri {
  const rest = uri.slice(scheme.length);
  if (!rest.startsWith('//')) throw new UsageError(`store URI ${describeStoreUri(uri)} must look like ${scheme}//${rootName}/prefix`);
  const queryAt = rest.indexOf('?');
  const location = queryAt >= 0 ? rest.slice(2, queryAt) : rest.slice(2);
  const query = new URLSearchParams(queryAt >= 0 ? rest.slice(queryAt + 1) : '');
  if (location.includes('@')) {
    throw new UsageError(`store URI ${describeStoreUri(uri)} carries credentials; give them through the environment instead`);
  }
  const slash = location.indexOf('/');
  const root = slash >= 0 ? location.slice(0, slash) : location;
  const prefix = slash >= 0 ? location.slice(slash + 1).replace(/\/+$/, '') : '';
  if (root === '') throw new UsageError(`store URI ${describeStoreUri(uri)} names no ${rootName}`);
  return { root, prefix, query };
}

function booleanParam(query: URLSearchParams, name: string): boolean | undefined {
  const value = query.get(name);
  if (value === null) return undefined;
  if (['true', '1', 'yes', ''].includes(value.toLowerCase())) return true;
  if (['false', '0', 'no'].includes(value.toLowerCase())) return false;
  throw new UsageError(`store URI parameter ${name}=${value} is not true or false`);
}

function knownParams(uri: string, query: URLSearchParams, known: string[]): void {
  for (const name of query.keys()) {
    if (!known.includes(name)) throw new UsageError(`unknown store URI parameter "${name}" in ${describeStoreUri(uri)} (known: ${known.join(', ')})`);
  }
}

function s3Store(uri: string, options: CreateStoreOptions): Store {
  const { root, prefix, query } = parseObjectUri(uri, 's3:', 'bucket');
  knownParams(uri, query, ['endpoint', 'region', 'forcePathStyle', 'storageClass', 'sse', 'sseKmsKeyId', 'checksums']);
  const sse = query.get('sse') ?? undefined;
  if (sse !== undefined && sse !== 'AES256' && sse !== 'aws:kms') throw new UsageError(`store URI parameter sse=${sse} is not AES256 or aws:kms`);
  const checksums = query.get('checksums')?.toLowerCase();
  if (checksums !== undefined && checksums !== 'when_supported' && checksums !== 'when_required') {
    throw new UsageError(`store URI parameter checksums=${checksums} is not when_supported or when_required`);
  }
  const settings: S3StoreOptions = {
    bucket: root,
    prefix,
    ...(query.get('endpoint') ? { endpoint: query.get('endpoint')! } : {}),
    ...(query.get('region') ? { region: query.get('region')! } : {}),
    ...(booleanParam(query, 'forcePathStyle') !== undefined ? { forcePathStyle: booleanParam(query, 'forcePathStyle')! } : {}),
    ...(query.get('storageClass') ? { storageClass: query.get('storageClass')! } : {}),
    ...(sse ? { serverSideEncryption: sse } : {}),
    ...(query.get('sseKmsKeyId') ? { sseKmsKeyId: query.get('sseKmsKeyId')! } : {}),
    ...(checksums ? { checksums } : {}),
    ...options.s3,
  };
  if (settings.endpoint !== undefined) checkEndpoint(settings.endpoint, uri);
  const where = settings.endpoint ? ` (endpoint ${new URL(settings.endpoint).origin})` : '';
  return lazyStore(`s3://${settings.bucket}/${settings.prefix ?? ''}${where}`, async () => {
    const { S3Store } = await import('./s3.js');
    return new S3Store(settings);
  });
}

function azureStore(uri: string, options: CreateStoreOptions): Store {
  const env = options.env ?? process.env;
  const scheme = schemeOf(uri)!;
  const { root, prefix, query } = parseObjectUri(uri, scheme, 'container');
  knownParams(uri, query, ['account', 'endpoint', 'tier']);
  const tier = query.get('tier') ?? undefined;
  if (tier !== undefined && !['Hot', 'Cool', 'Cold', 'Archive'].includes(tier)) {
    throw new UsageError(`store URI parameter tier=${tier} is not Hot, Cool, Cold or Archive`);
  }
  const account = query.get('account') ?? env.AZURE_STORAGE_ACCOUNT;
  const endpoint = query.get('endpoint') ?? undefined;
  if (endpoint !== undefined) checkEndpoint(endpoint, uri);
  const connectionString = env.AZURE_STORAGE_CONNECTION_STRING;
  const sasToken = env.AZURE_STORAGE_SAS_TOKEN;
  let credentials: Partial<AzureBlobStoreOptions>;
  if (connectionString && !endpoint && !query.get('account')) credentials = { connectionString };
  else if (endpoint || account) {
    const accountUrl = endpoint ?? `https://${account}.blob.core.windows.net`;
    credentials = sasToken ? { accountUrl, sasToken } : { accountUrl };
  } else {
    throw new UsageError(
      `azure store ${describeStoreUri(uri)} needs credentials: set AZURE_STORAGE_CONNECTION_STRING, or name an account ` +
        '(?account=NAME or AZURE_STORAGE_ACCOUNT) with AZURE_STORAGE_SAS_TOKEN or an Azure identity',
    );
  }
  const settings: AzureBlobStoreOptions = {
    container: root,
    prefix,
    ...credentials,
    ...(tier ? { accessTier: tier as NonNullable<AzureBlobStoreOptions['accessTier']> } : {}),
    ...options.azure,
  };
  const accountName = account ?? /AccountName=([^;]+)/i.exec(connectionString ?? '')?.[1] ?? 'account';
  return lazyStore(`azure://${accountName}/${settings.container}/${settings.prefix ?? ''}`, async () => {
    const { AzureBlobStore } = await import('./azure-blob.js');
    return new AzureBlobStore(settings);
  });
}

function checkEndpoint(endpoint: string, uri: string): void {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new UsageError(`store endpoint ${JSON.stringify(endpoint)} in ${describeStoreUri(uri)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`store endpoint ${url.origin} must be http or https`);
  if (url.username || url.password) throw new UsageError('a store endpoint must not carry credentials; use the environment');
}

/** The lower-cased scheme with its colon, or undefined for a plain path (incl. `C:\dir` on Windows). */
function schemeOf(uri: string): string | undefined {
  const match = SCHEME.exec(uri);
  if (!match) return undefined;
  if (process.platform === 'win32' && /^[A-Za-z]:[\\/]/.test(uri)) return undefined;
  return `${match[1]!.toLowerCase()}:`;
}

function fileUriToPath(uri: string): string {
  const afterScheme = uri.slice('file:'.length);
  // `file:rel` would parse as `/rel`: refuse anything that does not start with a slash.
  if (!afterScheme.startsWith('/')) throw notAbsolute(uri);
  let url: URL;
  try {
    url = new URL(uri);
  } catch (error) {
    throw new UsageError(`invalid file URI ${JSON.stringify(uri)}`, { cause: error });
  }
  if (url.host !== '' && url.host !== 'localhost') throw notAbsolute(uri);
  // A `?` or `#` in a directory name must be percent-encoded; silently dropping it would pick another dir.
  if (/[?#]/.test(afterScheme)) {
    throw new UsageError(`file URI ${JSON.stringify(uri)} has a query or fragment; percent-encode "?" as %3F and "#" as %23`);
  }
  try {
    return fileURLToPath(url);
  } catch (error) {
    throw new UsageError(`invalid file URI ${JSON.stringify(uri)}`, { cause: error });
  }
}

function notAbsolute(uri: string): UsageError {
  return new UsageError(
    `file URI ${JSON.stringify(uri)} must name an absolute directory (file:///abs/dir); give a relative directory as a plain path`,
  );
}

/** Query parameter names whose values are secrets: SAS signatures, tokens, keys, passwords. */
const SECRET_PARAM = /sig|sas|token|secret|key|password|passwd|pwd|signature|credential|auth/i;

/**
 * The URI with credentials replaced by `***`, for logs and error messages: the user-info part
 * (`user:pass@`) of non-file URIs and the values of query parameters named like a secret. Plain paths
 * and file URIs carry no credentials and come back unchanged.
 */
export function describeStoreUri(uri: string): string {
  const scheme = schemeOf(uri);
  if (scheme === undefined || scheme === 'file:') return uri;
  const hashAt = uri.indexOf('#');
  const fragment = hashAt >= 0 ? uri.slice(hashAt) : '';
  const beforeFragment = hashAt >= 0 ? uri.slice(0, hashAt) : uri;
  const queryAt = beforeFragment.indexOf('?');
  let head = queryAt >= 0 ? beforeFragment.slice(0, queryAt) : beforeFragment;
  const query = queryAt >= 0 ? beforeFragment.slice(queryAt + 1) : undefined;

  const rest = head.slice(scheme.length);
  // Up to the LAST '@': secrets (AWS secret keys) often contain unencoded '/' and sometimes '@'. An '@' in
  // the path over-masks (`s3://***@v1`), which is the safe way to be wrong in a log line.
  if (rest.startsWith('//')) {
    const at = rest.lastIndexOf('@');
    if (at >= 0) head = `${head.slice(0, scheme.length)}//***${rest.slice(at)}`;
  }
  if (query === undefined) return head + fragment;
  const maskedQuery = query.replace(/([^&;=]*)=([^&;]*)/g, (whole, name: string) => {
    let decoded = name;
    try {
      decoded = decodeURIComponent(name);
    } catch {
      // A malformed escape: judge the raw name.
    }
    return SECRET_PARAM.test(decoded) ? `${name}=***` : whole;
  });
  return `${head}?${maskedQuery}${fragment}`;
}
