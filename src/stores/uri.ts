/**
 * Store URI → Store. The one place that knows which schemes exist.
 *
 *   file:///abs/dir          a local directory; must be absolute (file://localhost/abs/dir also works)
 *   /abs/dir, rel/dir, ./x   a plain path; relative ones resolve against process.cwd()
 *   s3://…, azure://…, az:// planned, refused with a usage error in this version
 *
 * `file://relative/dir` is refused rather than guessed: in a URI the part after `//` is a host name, and
 * reading it as a directory would silently write somewhere other than the user meant. A relative directory
 * is given as a plain path. A relative path containing a colon is written `./name:with:colon`.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../errors.js';
import { FileStore } from './fs.js';
import type { Store } from './store.js';

/** Options for createStore; none yet (S3 and Azure credentials and clients will go here). */
export interface CreateStoreOptions {}

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;
const PLANNED_SCHEMES = new Set(['s3:', 'azure:', 'az:']);
const SUPPORTED = '(supported: file://, or a plain path)';

// `options` is unused until a store needs it; accepted now so callers do not change later.
export function createStore(uri: string, options?: CreateStoreOptions): Store {
  if (uri === '') throw new UsageError(`the store location is empty ${SUPPORTED}`);
  const scheme = schemeOf(uri);
  if (scheme === undefined) return new FileStore(path.resolve(process.cwd(), uri));
  if (scheme === 'file:') return new FileStore(fileUriToPath(uri));
  if (PLANNED_SCHEMES.has(scheme)) {
    throw new UsageError(`store scheme "${scheme}" is planned but not supported in this version ${SUPPORTED}`);
  }
  throw new UsageError(`unknown store scheme "${scheme}" ${SUPPORTED}`);
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
