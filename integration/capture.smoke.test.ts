import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCapture } from '../machines/create-capture.js';
import { FileStore } from '../src/stores/fs.js';
import { startNatsServer, uniqueName, type NatsServer } from './helpers/nats-server.js';

let server: NatsServer;
let nc: NatsConnection;
const dirs: string[] = [];

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});
afterAll(async () => {
  await nc?.close();
  await server?.dispose();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('capture smoke', () => {
  it('captures with --once and acks everything', async () => {
    const stream = uniqueName('SMOKE');
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
    const js = jetstream(nc);
    for (let i = 0; i < 1000; i++) {
      const h = headers();
      h.append('X-Tag', 'a');
      h.append('X-Tag', 'b');
      await js.publish(`${stream}.${i % 4}`, new TextEncoder().encode(`m${i}`), { headers: h });
    }
    const dir = mkdtempSync(join(tmpdir(), 'jv-smoke-'));
    dirs.push(dir);
    const events: string[] = [];
    const capture = createCapture({ servers: server.url, stream, store: new FileStore(dir), maxMessages: 100, once: true });
    capture.subscribe((e) => events.push(e.type));
    const report = await capture.done;
    expect(report.messages).toBe(1000);
    const info = await jsm.consumers.info(stream, `jetvault-${stream}`);
    expect(info.num_pending).toBe(0);
    expect(info.num_ack_pending).toBe(0);
    expect(events.filter((e) => e === 'block.acked').length).toBe(report.blocks);
  });
});
