/**
 * After a crash between store and ack, the server redelivers messages that are already in the archive, and
 * a new run would group them into blocks with other boundaries, other keys: a second copy. So when a
 * capture binds to a consumer with unacknowledged messages, it first reads which sequences above the ack
 * floor the archive already holds; redeliveries of those are acked, not stored again.
 *
 * Only blocks whose last sequence is above the floor are read (the range is in the key itself), so the cost
 * is one listing of the stream's prefix plus the blocks of at most max_ack_pending messages.
 */
import { readBlock } from '../../restore/block-reader.js';
import { isManifestKey, keySegment, blockKeyOfManifest } from '../archive/keys.js';
import { parseManifest } from '../archive/manifest.js';
import type { Store } from '../stores/store.js';

export interface RecoveredSeqs {
  seqs: number[];
  blocks: number;
  /** Blocks above the floor that could not be read back (custom formats): their messages may be stored twice. */
  unreadable: number;
}

const RANGE_IN_KEY = /-(\d{12,})-(\d{12,})\.[^/]*$/;

export async function storedSeqsAbove(store: Store, stream: string, floorSeq: number, signal?: AbortSignal): Promise<RecoveredSeqs> {
  const manifestKeys: string[] = [];
  for await (const object of store.list(`${keySegment(stream)}/`)) {
    signal?.throwIfAborted();
    if (!isManifestKey(object.key)) continue;
    const range = RANGE_IN_KEY.exec(blockKeyOfManifest(object.key));
    if (range && Number(range[2]) > floorSeq) manifestKeys.push(object.key);
  }
  const seqs: number[] = [];
  let blocks = 0;
  let unreadable = 0;
  for (const manifestKey of manifestKeys) {
    const manifest = parseManifest(await store.get(manifestKey, signal ? { signal } : undefined), manifestKey);
    if (manifest.stream !== stream) continue;
    if (!manifest.restorable) {
      unreadable++;
      continue;
    }
    const envelopes = await readBlock(store, { key: blockKeyOfManifest(manifestKey), manifestKey, manifest }, signal ? { signal } : {});
    for (const envelope of envelopes) if (envelope.seq > floorSeq) seqs.push(envelope.seq);
    blocks++;
  }
  return { seqs, blocks, unreadable };
}
