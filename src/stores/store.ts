/**
 * The one storage interface every store implements (file system, S3, Azure Blob). Keys are relative to
 * the store's root (a directory, a bucket prefix, a container prefix) and are checked with
 * `assertSafeKey` (src/archive/keys.ts) by every store before use.
 */

export interface StoredObject {
  key: string;
  size: number;
}

export interface PutOptions {
  contentType?: string;
  /** Small string metadata (sequence range, checksum); stores that cannot keep it ignore it. */
  metadata?: Record<string, string>;
  signal?: AbortSignal;
}

export interface Store {
  /** A description safe to log: scheme and location, never a credential. */
  readonly description: string;
  /** Writes the whole object durably; resolves only when the store confirmed it. Overwrites. */
  put(key: string, body: Uint8Array, options?: PutOptions): Promise<void>;
  /** Reads the whole object; rejects with a StoreError code JV_STORE_NOT_FOUND when it does not exist. */
  get(key: string, options?: { signal?: AbortSignal }): Promise<Buffer>;
  /** Every object whose key starts with `prefix` ('' for all), in ascending key order. */
  list(prefix: string): AsyncIterable<StoredObject>;
  exists(key: string): Promise<boolean>;
  /** Removes an object; succeeds when it does not exist. */
  delete(key: string): Promise<void>;
  /**
   * Checks that the store can be used at all (bucket or container exists, credentials are accepted), so
   * capture and restore fail fast with one clear error instead of on their first block.
   */
  check?(): Promise<void>;
  close?(): Promise<void>;
}
