/**
 * The manifest stored next to every block (`<block key>.manifest.json`). It is written after the block,
 * so a manifest present means its block was stored completely. Part of the archive contract.
 */
import { JetvaultError } from '../errors.js';

/** Bumped only for an incompatible change of keys, manifest or envelope encoding. */
export const ARCHIVE_FORMAT_VERSION = 1;

export type SealReason = 'max-messages' | 'max-bytes' | 'max-age' | 'idle' | 'ack-deadline' | 'ack-pending' | 'max-buffer' | 'drain';

export interface BlockManifest {
  archiveVersion: number;
  jetvaultVersion: string;
  /** The block's object key, relative to the store root. */
  key: string;
  stream: string;
  /** The split key the block holds (unsanitised; the key carries the sanitised form). */
  splitKey: string;
  consumer: string;
  /** Format name (`raw`, `ndjson`, `csv`, or a custom writer's name). */
  format: string;
  /** Compression name (`none`, `gzip`, `snappy`). */
  compression: string;
  /** Whether restore can read this block back into messages (false for custom or flattened CSV writers). */
  restorable: boolean;
  messages: number;
  firstSeq: number;
  lastSeq: number;
  /** RFC 3339 with nanoseconds. */
  firstTime: string;
  lastTime: string;
  /** Size of the stored (compressed) object. */
  storedBytes: number;
  /** Size of the encoded body before compression. */
  encodedBytes: number;
  /** SHA-256 (hex) of the stored bytes. */
  sha256: string;
  sealedBy: SealReason;
  createdAt: string;
  /** The source stream's configuration when the block was captured (subjects, retention, limits…). */
  streamConfig: Record<string, unknown>;
}

const NUMBER_FIELDS = ['archiveVersion', 'messages', 'firstSeq', 'lastSeq', 'storedBytes', 'encodedBytes'] as const;
const STRING_FIELDS = ['key', 'stream', 'format', 'compression', 'sha256', 'firstTime', 'lastTime'] as const;

/** Parses and checks a manifest; the error names the manifest key. */
export function parseManifest(text: string | Uint8Array, manifestKey: string): BlockManifest {
  let value: unknown;
  try {
    value = JSON.parse(typeof text === 'string' ? text : Buffer.from(text).toString('utf8'));
  } catch (cause) {
    throw new JetvaultError('JV_MANIFEST_INVALID', `manifest ${manifestKey} is not valid JSON`, { cause });
  }
  const m = value as Record<string, unknown>;
  const bad = (why: string) => new JetvaultError('JV_MANIFEST_INVALID', `manifest ${manifestKey} ${why}`);
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw bad('is not an object');
  for (const f of NUMBER_FIELDS) if (!Number.isSafeInteger(m[f]) || (m[f] as number) < 0) throw bad(`has no valid "${f}"`);
  for (const f of STRING_FIELDS) if (typeof m[f] !== 'string') throw bad(`has no valid "${f}"`);
  if ((m.archiveVersion as number) > ARCHIVE_FORMAT_VERSION) {
    throw bad(`uses archive format ${String(m.archiveVersion)}, newer than this jetvault reads (${ARCHIVE_FORMAT_VERSION})`);
  }
  if ((m.firstSeq as number) > (m.lastSeq as number)) throw bad('has firstSeq after lastSeq');
  if (!/^[0-9a-f]{64}$/.test(m.sha256 as string)) throw bad('has no valid "sha256"');
  return {
    ...(m as unknown as BlockManifest),
    splitKey: typeof m.splitKey === 'string' ? m.splitKey : '',
    consumer: typeof m.consumer === 'string' ? m.consumer : '',
    restorable: m.restorable !== false,
    streamConfig: typeof m.streamConfig === 'object' && m.streamConfig !== null ? (m.streamConfig as Record<string, unknown>) : {},
  };
}

export function serializeManifest(manifest: BlockManifest): Buffer {
  return Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8');
}
