/**
 * Test data and stream comparison for integration tests: deterministic mixed messages (multi-valued and
 * lower-case headers, empty and non-UTF-8 payloads), fast publishing, reading a whole stream, and a
 * message-by-message comparison of subject, every header value in order, and data bytes.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { prng } from '../../src/cli/prng.js';

export interface TestMessage {
  subject: string;
  headers: Array<[string, string[]]> | null;
  data: Uint8Array;
}

export interface StoredMessage extends TestMessage {
  seq: number;
}

export function mixedMessages(n: number, subjects: string[], seed = 0x5eed): TestMessage[] {
  const rnd = prng(seed);
  const out: TestMessage[] = [];
  for (let i = 0; i < n; i++) {
    const kind = rnd();
    let headers: TestMessage['headers'] = null;
    if (kind < 0.3) headers = [['X-Tag', [`t${i % 7}`, `k=v:${i}`]], ['X-Trace', [`trace-${i}`]]];
    else if (kind < 0.4) headers = [['x-lower-case', [`v ${i} é`]], ['X-Tag', ['c', 'a', 'b']]];
    const shape = rnd();
    let data: Uint8Array;
    if (shape < 0.05) data = new Uint8Array(0);
    else if (shape < 0.35) {
      data = new Uint8Array(1 + Math.floor(rnd() * 300));
      for (let j = 0; j < data.length; j++) data[j] = Math.floor(rnd() * 256);
      data[0] = 0xff; // never valid UTF-8
    } else data = new TextEncoder().encode(JSON.stringify({ i, region: subjects[i % subjects.length], note: 'é漢🙂' }));
    out.push({ subject: subjects[i % subjects.length]!, headers, data });
  }
  return out;
}

/** Core publishes flushed in batches, then waits until the stream holds them all. */
export async function publishAll(nc: NatsConnection, stream: string, messages: TestMessage[]): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const before = (await jsm.streams.info(stream)).state.messages;
  messages.forEach((m, i) => {
    let h;
    if (m.headers) {
      h = natsHeaders();
      for (const [k, vs] of m.headers) for (const v of vs) h.append(k, v);
    }
    nc.publish(m.subject, m.data, h ? { headers: h } : undefined);
    if (i % 1000 === 999) void nc.flush();
  });
  await nc.flush();
  const deadline = Date.now() + 20_000;
  for (;;) {
    const have = (await jsm.streams.info(stream)).state.messages;
    if (have === before + messages.length) return;
    if (Date.now() > deadline) throw new Error(`stream ${stream} holds ${have}, expected ${before + messages.length}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Every message of a stream, in sequence order, read with an ordered consumer. */
export async function readStream(nc: NatsConnection, stream: string): Promise<StoredMessage[]> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(stream);
  if (info.state.messages === 0) return [];
  const consumer = await jetstream(nc).consumers.get(stream);
  const out: StoredMessage[] = [];
  const messages = await consumer.consume({ max_messages: 1000 });
  for await (const m of messages) {
    const headers: Array<[string, string[]]> | null = m.headers ? [...m.headers].map(([k, vs]) => [k, [...vs]]) : null;
    out.push({ seq: m.seq, subject: m.subject, headers, data: new Uint8Array(m.data) });
    if (m.seq >= info.state.last_seq) break;
  }
  messages.stop();
  return out;
}

/** First differences between two message lists, position by position (empty when identical). */
export function differences(a: TestMessage[], b: TestMessage[], max = 5): string[] {
  const problems: string[] = [];
  if (a.length !== b.length) problems.push(`counts differ: ${a.length} vs ${b.length}`);
  for (let i = 0; i < Math.min(a.length, b.length) && problems.length < max; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.subject !== y.subject) problems.push(`#${i}: subject ${x.subject} vs ${y.subject}`);
    else if (JSON.stringify(x.headers ?? []) !== JSON.stringify(y.headers ?? [])) {
      problems.push(`#${i}: headers ${JSON.stringify(x.headers)} vs ${JSON.stringify(y.headers)}`);
    } else if (Buffer.compare(Buffer.from(x.data), Buffer.from(y.data)) !== 0) problems.push(`#${i}: data differs`);
  }
  return problems;
}
