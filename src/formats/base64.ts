/**
 * The `data` field of the text formats (ndjson, csv): standard padded base64, as Go's encoding/json
 * writes []byte, so files read like jetcapture's.
 */

const NOT_BASE64 = '"data" is not standard padded base64';

/** The bytes as standard padded base64, without copying them into a Buffer first. */
export function encodeBase64(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64');
}

/**
 * The bytes of a `data` field; throws unless the text is standard padded base64. Buffer.from() skips junk
 * characters silently, so a decoded length short of what the text length promises means the text was not
 * base64. (A regex over a multi-megabyte payload would overflow the regex backtracking stack.)
 */
export function decodeBase64Data(text: string): Uint8Array {
  if (text.length % 4 !== 0) throw new Error(NOT_BASE64);
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const bytes = Buffer.from(text, 'base64');
  if (bytes.byteLength !== (text.length / 4) * 3 - padding) throw new Error(NOT_BASE64);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
