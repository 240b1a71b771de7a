/** The router with spilling on: only bytes in memory count against maxBuffer; released blocks lose their files. */
import type { JsMsg } from '@nats-io/jetstream';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { SealReason } from '../src/archive/manifest.js';
import type { BlockBuffer } from '../src/capture/block-buffer.js';
import { BlockRouter } from '../src/capture/router.js';
import { SpillDirectory } from '../src/capture/spill.js';
import { none } from '../src/compression/index.js';
import type { BlockFormat } from '../src/formats/format.js';
import { raw } from '../src/formats/index.js';

const roots: string[] = [];
const dirs: SpillDirectory[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => d.close()));
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

function spillDir(): SpillDirectory {
  const root = mkdtempSync(join(tmpdir(), 'jv-spill-router-'));
  roots.push(root);
  const dir = new SpillDirectory({ root });
  dirs.push(dir);
  return dir;
}

const DATA = Buffer.alloc(100_000, 7);

function message(seq: number, subject: string): JsMsg {
  return {
    subject,
    headers: undefined,
    data: DATA,
    reply: `$JS.ACK.ORDERS.jv.1.${seq}.${seq}.1764100000000000000.0`,
    nak: () => undefined,
    ack: () => undefined,
    working: () => undefined,
  } as unknown as JsMsg;
}

function router(spill: SpillDirectory | undefined, maxBuffer: number) {
  const opened: Array<{ id: string; buffer: BlockBuffer<unknown> }> = [];
  const full: Array<{ id: string; reason: SealReason }> = [];
  const r = new BlockRouter({
    stream: 'ORDERS',
    consumer: 'jv',
    format: raw as BlockFormat<unknown>,
    compression: none,
    splitKeyOf: (e) => e.subject,
    decoder: undefined,
    maxMessages: 1_000_000,
    maxBytes: 1 << 30,
    maxBuffer,
    poison: { deadLetter: true, attempts: 3, retryDelayMs: 250 },
    now: () => 1_764_100_000_000,
    onOpen: (id, buffer) => opened.push({ id, buffer }),
    onFull: (id, reason) => full.push({ id, reason }),
    onUndecodable: () => undefined,
    ...(spill ? { spill } : {}),
  });
  r.bound({}, { maxAckPending: 1_000_000, maxDeliver: -1 });
  return { r, opened, full };
}

/** Routes 100 KB messages to one subject, letting the spill writes finish after each (as the event loop would). */
async function routeMany(h: ReturnType<typeof router>, count: number, subject: string, firstSeq = 1): Promise<void> {
  for (let i = 0; i < count; i++) {
    h.r.route(message(firstSeq + i, subject));
    await Promise.all(h.opened.map((o) => o.buffer.flushSpill()));
  }
}

describe('router with spilling', () => {
  it('counts only in-memory bytes against maxBuffer: 3 MB spilled stay under a 700 KB limit', async () => {
    const control = router(undefined, 700_000);
    await routeMany(control, 30, 'orders.a');
    expect(control.full.map((f) => f.reason)).toContain('max-buffer');

    const spill = spillDir();
    const h = router(spill, 700_000);
    await routeMany(h, 30, 'orders.a');
    expect(h.full).toEqual([]);
    const [block] = h.opened;
    expect(h.opened).toHaveLength(1);
    expect(block!.buffer.bytes).toBeGreaterThan(3_000_000);
    expect(block!.buffer.memoryBytes).toBeLessThan(400_000); // the chunk being filled, at most a record over 256 KiB
    expect(h.r.bufferedBytes).toBe(block!.buffer.memoryBytes);

    // Sealing reads the body back: it counts in full while the block is stored, as without spilling.
    const sealed = await block!.buffer.seal('max-bytes');
    expect(sealed.manifest.messages).toBe(30);
    expect(h.r.bufferedBytes).toBe(block!.buffer.bytes);
    h.r.release(block!.buffer);
    expect(h.r.bufferedBytes).toBe(0);
    expect(h.r.held).toBe(0);
    expect(readdirSync(spill.dir)).toEqual([]);
  });

  it('at the limit, seals the open block largest in memory, not the one with most bytes on disk', async () => {
    const spill = spillDir();
    const h = router(spill, 1_050_000);
    // 2.9 MB, of which one 100 KB record is in memory (records pack two to a 256 KiB chunk).
    await routeMany(h, 29, 'orders.big');
    expect(h.opened[0]!.buffer.memoryBytes).toBeLessThan(110_000);
    // Then blocks of 200 KB in memory each, until together they pass the limit.
    let seq = 100;
    for (let k = 0; h.full.length === 0 && k < 10; k++) await routeMany(h, 2, `orders.k${k}`, (seq += 2));
    expect(h.full).toHaveLength(1);
    expect(h.full[0]!.reason).toBe('max-buffer');
    const sealed = h.opened.find((o) => o.id === h.full[0]!.id)!;
    expect(sealed.buffer.splitKey).toMatch(/^orders\.k\d$/);
    expect(sealed.buffer.memoryBytes).toBeGreaterThan(200_000);
  });

  it('releasing an open spilled block (abandoned or failed) deletes its file and returns exactly its memory share', async () => {
    const spill = spillDir();
    const h = router(spill, 1 << 30);
    await routeMany(h, 12, 'orders.a');
    await routeMany(h, 2, 'orders.b', 100);
    const [a, b] = h.opened;
    expect(a!.buffer.spilledBytes).toBeGreaterThan(0);
    expect(readdirSync(spill.dir)).toHaveLength(1);
    expect(h.r.bufferedBytes).toBe(a!.buffer.memoryBytes + b!.buffer.memoryBytes);
    h.r.release(a!.buffer);
    expect(h.r.bufferedBytes).toBe(b!.buffer.memoryBytes);
    await a!.buffer.dispose(); // the deletion release started
    expect(readdirSync(spill.dir)).toEqual([]);
    h.r.release(b!.buffer);
    expect(h.r.bufferedBytes).toBe(0);
  });
});
