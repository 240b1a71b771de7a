import { it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { startNatsServer } from '../integration/helpers/nats-server.js';
import { BlockBuffer } from '../src/capture/block-buffer.js';
import { storeBlock } from '../src/capture/store-block.js';
import { resolveFormat } from '../src/formats/index.js';
import { resolveCompression } from '../src/compression/index.js';
import { FileStore } from '../src/stores/fs.js';
import { restore } from '../restore/restore.js';
it('bench', async () => {
  const s = await startNatsServer();
  const nc = await connect({ servers: s.url });
  const jsm = await jetstreamManager(nc);
  const js = jsm.jetstream();
  const payload = Buffer.alloc(100, 0x61);
  const N = 20000;
  for (let round = 0; round < 2; round++) {
    const name = `B${round}`;
    await jsm.streams.add({ name, subjects: [`b${round}.>`] });
    let t = performance.now();
    const q: Promise<unknown>[] = [];
    for (let i = 0; i < N; i++) {
      if (q.length >= 256) await q.shift();
      q.push(js.publish(`b${round}.s${i % 4}`, payload));
    }
    await Promise.all(q);
    const bare = N / ((performance.now() - t) / 1000);
    const stream = `R${round}`;
    const store = new FileStore(mkdtempSync(join(tmpdir(), 'jv-bench-')));
    const bufs = new Map<string, BlockBuffer>();
    for (let i = 0; i < N; i++) {
      const subject = `r${round}.s${i % 4}`;
      let b = bufs.get(subject);
      if (!b) { b = new BlockBuffer({ stream, splitKey: subject, consumer: 'c', format: resolveFormat('raw'), compression: resolveCompression('gzip'), streamConfig: { name: stream, subjects: [`r${round}.>`] }, now: Date.now }); bufs.set(subject, b); }
      b.append({ subject, headers: null, data: payload, stream, seq: i + 1, timeNs: BigInt(Date.now()) * 1000000n, deliveryCount: 1 }, { seq: i + 1, timeNs: BigInt(Date.now()) * 1000000n });
    }
    for (const b of bufs.values()) await storeBlock(store, await b.seal('drain'));
    t = performance.now();
    await restore({ from: store, connection: nc });
    const r = N / ((performance.now() - t) / 1000);
    t = performance.now();
    await jsm.streams.purge(stream);
    await restore({ from: store, connection: nc, append: true, precheck: false });
    const r2 = N / ((performance.now() - t) / 1000);
    console.log(`bare ${Math.round(bare)} restore ${Math.round(r)} restore-noprecheck ${Math.round(r2)} ratio ${(r / bare).toFixed(2)}`);
  }
  await nc.close(); await s.dispose();
}, 120000);
