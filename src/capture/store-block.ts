/**
 * Writes a sealed block durably: the block first, then its manifest. A manifest present in the store
 * therefore means its block was stored completely; readers ignore blocks without one.
 */
import { serializeManifest } from '../archive/manifest.js';
import type { Store } from '../stores/store.js';
import type { SealedBlock } from './block-buffer.js';

export async function storeBlock(store: Store, block: SealedBlock, signal?: AbortSignal): Promise<void> {
  const { manifest } = block;
  const metadata = {
    'jv-first-seq': String(manifest.firstSeq),
    'jv-last-seq': String(manifest.lastSeq),
    'jv-messages': String(manifest.messages),
    'jv-sha256': manifest.sha256,
  };
  await store.put(block.key, block.body, { contentType: 'application/octet-stream', metadata, ...(signal ? { signal } : {}) });
  await store.put(block.manifestKey, serializeManifest(manifest), {
    contentType: 'application/json',
    ...(signal ? { signal } : {}),
  });
}
