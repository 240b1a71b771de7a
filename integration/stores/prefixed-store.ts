/** Test helper: a view of a store under a key prefix, so one test's archive never meets another's. */
import type { PutOptions, Store, StoredObject } from '../../src/stores/store.js';

export function prefixedStore(store: Store, prefix: string): Store {
  const strip = (key: string) => key.slice(prefix.length);
  return {
    description: `${store.description}/${prefix}`,
    put: (key: string, body: Uint8Array, options?: PutOptions) => store.put(prefix + key, body, options),
    get: (key: string, options?: { signal?: AbortSignal }) => store.get(prefix + key, options),
    exists: (key: string) => store.exists(prefix + key),
    delete: (key: string) => store.delete(prefix + key),
    async *list(listPrefix: string): AsyncIterable<StoredObject> {
      for await (const o of store.list(prefix + listPrefix)) yield { key: strip(o.key), size: o.size };
    },
  };
}
