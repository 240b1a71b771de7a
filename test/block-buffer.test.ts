/** BlockBuffer.seal(): the manifest's checksum is the SHA-256 of the stored body, small or large. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BlockBuffer } from '../src/capture/block-buffer.js';
import { none } from '../src/compression/none.js';
import { raw } from '../src/formats/index.js';

function sealOf(messages: number, bytesEach: number) {
  const buffer = new BlockBuffer({ stream: 'S', splitKey: 's.x', consumer: 'c', format: raw, compression: none, streamConfig: {}, now: () => 1_764_079_200_000 });
  for (let seq = 1; seq <= messages; seq++) {
    const data = new Uint8Array(bytesEach).fill(seq & 0xff);
    buffer.append({ subject: 's.x', headers: null, data, stream: 'S', seq, timeNs: BigInt(seq), deliveryCount: 1 }, { seq, timeNs: BigInt(seq) });
  }
  return buffer.seal('max-messages');
}

describe('BlockBuffer.seal', () => {
  it.each([
    ['a small block (hashed in place)', 10, 100],
    ['a 6 MB block (hashed on the thread pool)', 1_500, 4_096],
  ])('%s: sha256 is that of the body', async (_name, messages, bytesEach) => {
    const sealed = await sealOf(messages, bytesEach);
    expect(sealed.manifest.messages).toBe(messages);
    expect(sealed.manifest.sha256).toBe(createHash('sha256').update(sealed.body).digest('hex'));
    expect(sealed.manifest.sha256).toMatch(/^[0-9a-f]{64}$/);
  });
});
