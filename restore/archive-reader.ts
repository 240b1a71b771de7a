/**
 * Reads what an archive holds: every manifest in a store, grouped by the stream it was captured from.
 * Only manifests count: a block is written before its manifest (src/capture/store-block.ts), so a block
 * without one is an incomplete write and is ignored.
 */
import { blockKeyOfManifest, isDeadLetterKey, isManifestKey } from '../src/archive/keys.js';
import { parseManifest, type BlockManifest } from '../src/archive/manifest.js';
import { JetvaultError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { Store } from '../src/stores/store.js';

/** One complete block of the archive: where it is and what its manifest says. */
export interface ArchivedBlock {
  /** The block's object key (the manifest key without its suffix, which is where the block really is). */
  key: string;
  manifestKey: string;
  manifest: BlockManifest;
}

/** Every block of one archived stream, sorted by firstSeq (then lastSeq, then key). */
export interface ArchivedStream {
  stream: string;
  blocks: ArchivedBlock[];
  /** Sum of the manifests' message counts (duplicates across overlapping blocks included). */
  messages: number;
  firstSeq: number;
  lastSeq: number;
  /** The most recently created manifest: its streamConfig is the newest known configuration. */
  newest: BlockManifest;
}

export interface ArchiveIndex {
  /** The store's description, for messages. */
  description: string;
  streams: Map<string, ArchivedStream>;
  /** Objects that are neither manifests nor blocks with a manifest (incomplete writes, stray files). */
  unmanifestedObjects: number;
}

export interface ReadArchiveOptions {
  logger: Logger;
  signal?: AbortSignal;
  /** Manifests fetched at once; stores with high latency (S3) benefit from a few in parallel. */
  concurrency?: number;
}

/** Lists the store and reads every manifest. Throws JV_ARCHIVE_EMPTY when there is none. */
export async function readArchiveIndex(store: Store, options: ReadArchiveOptions): Promise<ArchiveIndex> {
  // A missing bucket or rejected credentials: one clear error rather than an "empty archive".
  await store.check?.();
  const manifestKeys: string[] = [];
  const otherKeys = new Set<string>();
  for await (const object of store.list('')) {
    options.signal?.throwIfAborted();
    // Dead letters (undecodable messages) are kept for people, not for restore or verify.
    if (isDeadLetterKey(object.key)) continue;
    if (isManifestKey(object.key)) manifestKeys.push(object.key);
    else otherKeys.add(object.key);
  }

  const blocks: ArchivedBlock[] = new Array(manifestKeys.length);
  const newestByStream = new Map<string, BlockManifest>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < manifestKeys.length) {
      const index = next++;
      const manifestKey = manifestKeys[index] as string;
      options.signal?.throwIfAborted();
      const text = await store.get(manifestKey, options.signal ? { signal: options.signal } : undefined);
      const manifest = parseManifest(text, manifestKey);
      const key = blockKeyOfManifest(manifestKey);
      if (manifest.key !== key) {
        // An archive copied under another prefix: the object's location wins over the recorded key.
        options.logger.debug({ manifestKey, recordedKey: manifest.key }, 'manifest records another block key; using its location');
      }
      blocks[index] = { key, manifestKey, manifest };
      // Only the newest configuration per stream is used; dropping the others keeps large archives small in memory.
      const newest = newestByStream.get(manifest.stream);
      if (!newest) newestByStream.set(manifest.stream, manifest);
      else if (isNewer(manifest, newest)) {
        newest.streamConfig = {};
        newestByStream.set(manifest.stream, manifest);
      } else manifest.streamConfig = {};
    }
  };
  const workers = Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 8, manifestKeys.length)) }, worker);
  await Promise.all(workers);

  for (const block of blocks) otherKeys.delete(block.key);
  if (otherKeys.size > 0) {
    options.logger.warn(
      { count: otherKeys.size, store: store.description },
      `ignoring ${otherKeys.size} object(s) without a manifest (incomplete block writes)`,
    );
  }

  const byStream = new Map<string, ArchivedBlock[]>();
  for (const block of blocks) {
    const list = byStream.get(block.manifest.stream) ?? [];
    list.push(block);
    byStream.set(block.manifest.stream, list);
  }
  const streams = new Map<string, ArchivedStream>();
  for (const [stream, list] of byStream) streams.set(stream, summarize(stream, list));
  return { description: store.description, streams, unmanifestedObjects: otherKeys.size };
}

export function compareBlocks(a: ArchivedBlock, b: ArchivedBlock): number {
  return (
    a.manifest.firstSeq - b.manifest.firstSeq ||
    a.manifest.lastSeq - b.manifest.lastSeq ||
    (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
  );
}

/** Newer: created later, or (same second, clock skew) covering later messages. */
function isNewer(a: BlockManifest, b: BlockManifest): boolean {
  const ta = Date.parse(a.createdAt);
  const tb = Date.parse(b.createdAt);
  if (Number.isFinite(ta) && Number.isFinite(tb) && ta !== tb) return ta > tb;
  return a.lastSeq > b.lastSeq;
}

function summarize(stream: string, blocks: ArchivedBlock[]): ArchivedStream {
  blocks.sort(compareBlocks);
  let messages = 0;
  let firstSeq = Number.POSITIVE_INFINITY;
  let lastSeq = 0;
  let newest = (blocks[0] as ArchivedBlock).manifest;
  for (const { manifest } of blocks) {
    messages += manifest.messages;
    firstSeq = Math.min(firstSeq, manifest.firstSeq);
    lastSeq = Math.max(lastSeq, manifest.lastSeq);
    if (isNewer(manifest, newest)) newest = manifest;
  }
  return { stream, blocks, messages, firstSeq, lastSeq, newest };
}

/**
 * Picks the archived stream to read: the one asked for, else the only one. Every block of it must be
 * restorable (a custom or flattened format cannot be turned back into messages).
 */
export function selectArchivedStream(index: ArchiveIndex, sourceStream?: string): ArchivedStream {
  if (index.streams.size === 0) {
    throw new JetvaultError('JV_ARCHIVE_EMPTY', `no archived blocks (no manifests) found in ${index.description}`);
  }
  const names = [...index.streams.keys()].sort();
  let selected: ArchivedStream | undefined;
  if (sourceStream !== undefined) {
    selected = index.streams.get(sourceStream);
    if (!selected) {
      throw new JetvaultError(
        'JV_ARCHIVE_EMPTY',
        `${index.description} holds no blocks of stream ${JSON.stringify(sourceStream)} (it holds: ${names.join(', ')})`,
      );
    }
  } else if (names.length > 1) {
    throw new JetvaultError(
      'JV_ARCHIVE_AMBIGUOUS',
      `${index.description} holds several streams (${names.join(', ')}); choose one with sourceStream`,
    );
  } else {
    selected = index.streams.get(names[0] as string) as ArchivedStream;
  }
  const notRestorable = selected.blocks.find((b) => !b.manifest.restorable);
  if (notRestorable) {
    throw new JetvaultError(
      'JV_FORMAT_NOT_RESTORABLE',
      `block ${notRestorable.key} was written with format ${JSON.stringify(notRestorable.manifest.format)}, which cannot be read back into messages (manifest ${notRestorable.manifestKey})`,
    );
  }
  return selected;
}

/** readArchiveIndex + selectArchivedStream. */
export async function openArchivedStream(
  store: Store,
  options: ReadArchiveOptions & { sourceStream?: string },
): Promise<ArchivedStream> {
  const index = await readArchiveIndex(store, options);
  return selectArchivedStream(index, options.sourceStream);
}
