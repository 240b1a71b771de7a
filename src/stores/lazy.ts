/**
 * A store whose driver module is loaded on first use: the S3 and Azure SDKs take a while to import, and
 * a CLI run against a local directory should not pay for them.
 */
import type { PutOptions, Store, StoredObject } from './store.js';

export function lazyStore(description: string, load: () => Promise<Store>): Store {
  let loading: Promise<Store> | undefined;
  const store = () => (loading ??= load());
  return {
    description,
    put: async (key: string, body: Uint8Array, options?: PutOptions) => (await store()).put(key, body, options),
    get: async (key: string, options?: { signal?: AbortSignal }) => (await store()).get(key, options),
    exists: async (key: string) => (await store()).exists(key),
    delete: async (key: string) => (await store()).delete(key),
    async *list(prefix: string): AsyncIterable<StoredObject> {
      yield* (await store()).list(prefix);
    },
    check: async () => {
      const real = await store();
      await real.check?.();
    },
    close: async () => {
      // Nothing to close when the driver was never loaded.
      if (loading) await (await loading).close?.();
    },
  };
}
