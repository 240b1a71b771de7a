/**
 * The bench's test data: a workload is a message size, a number of subjects (one split key each, since
 * capture splits by subject by default) and a message count. Message i goes to subject i mod keys, so
 * every key gets the same share, interleaved as a busy stream would interleave them.
 */
import { jetstreamManager, StorageType, type StreamConfig } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { prng } from '../src/cli/prng.js';

export type PayloadBytes = 100 | 4096;

export interface Workload {
  payloadBytes: PayloadBytes;
  /** Distinct subjects, hence split keys (open blocks) of a capture with the default split. */
  keys: number;
  messages: number;
}

/** `100B-1key`, `4KiB-64keys`: the short name sections and case names use. */
export function workloadLabel(w: Pick<Workload, 'payloadBytes' | 'keys'>): string {
  const size = w.payloadBytes % 1024 === 0 ? `${w.payloadBytes / 1024}KiB` : `${w.payloadBytes}B`;
  return `${size}-${w.keys}key${w.keys === 1 ? '' : 's'}`;
}

/** The source stream and the bare-publish stream share this config, as a restore target copies it. */
export function streamConfig(name: string): Partial<StreamConfig> & { name: string } {
  return { name, subjects: ['bench.>'], storage: StorageType.File };
}

/** `bench.data` for one key (the subject of earlier results), else `bench.data.0000` … */
export function subjects(keys: number): string[] {
  if (keys === 1) return ['bench.data'];
  return Array.from({ length: keys }, (_, k) => `bench.data.${String(k).padStart(4, '0')}`);
}

const HEAD = '{"seq":0000000000,"sensor":"s-00","value":00.000,"unit":"C"';
const SEQ_AT = 7;
const SENSOR_AT = 30;
const VALUE_AT = 42;
/** Large payloads come in this many variants (a prime), so neighbouring messages differ. */
const LARGE_VARIANTS = 61;
const LARGE_FROM = 256;

/**
 * A payload of exactly `size` bytes ending in a newline. Small ones are the header padded with spaces
 * (byte for byte the 100-byte payload of earlier results); large ones carry an array of random
 * readings, so they compress like telemetry rather than like padding.
 */
function template(size: number, seed: number): Uint8Array {
  let body = HEAD;
  if (size >= LARGE_FROM) {
    const random = prng(seed);
    const readings: string[] = [];
    // Each reading is `dd.ddd,`; leave room for `,"samples":[`, `]}` and the newline.
    let length = body.length + ',"samples":[]}'.length + 1;
    while (length + 7 <= size) {
      readings.push((random() * 100).toFixed(3).padStart(6, '0'));
      length += 7;
    }
    body += `,"samples":[${readings.join(',')}]`;
  }
  body += '}';
  if (body.length > size - 1) throw new Error(`a ${size}-byte payload cannot hold ${body.length + 1} bytes`);
  return new TextEncoder().encode(body.padEnd(size - 1, ' ') + '\n');
}

function writeDigits(target: Uint8Array, at: number, value: number, width: number): void {
  for (let p = at + width - 1; p >= at; p--) {
    target[p] = 48 + (value % 10);
    value = Math.floor(value / 10);
  }
}

/**
 * Message i of a size: telemetry-like JSON, neither random (nothing would compress) nor constant
 * (everything would), so the compression cases mean something. Cheap to make (a copy and a few digits),
 * so the bare publish loop measures publishing, not payload building.
 */
export function payloadMaker(size: number): (i: number) => Uint8Array {
  const templates = size >= LARGE_FROM ? Array.from({ length: LARGE_VARIANTS }, (_, v) => template(size, v + 1)) : [template(size, 0)];
  return (i) => {
    const data = templates[i % templates.length]!.slice();
    writeDigits(data, SEQ_AT, i, 10);
    writeDigits(data, SENSOR_AT, i % 97, 2);
    const value = (i * 7919) % 100_000;
    writeDigits(data, VALUE_AT, Math.floor(value / 1000), 2);
    writeDigits(data, VALUE_AT + 3, value % 1000, 3);
    return data;
  };
}

/** The messages of a workload in order: what fill and the bare publish loop send. */
export function* messagesOf(w: Workload): Generator<{ subject: string; data: Uint8Array }> {
  const names = subjects(w.keys);
  const payload = payloadMaker(w.payloadBytes);
  for (let i = 0; i < w.messages; i++) yield { subject: names[i % names.length]!, data: payload(i) };
}

/** Generous: a case slower than 1,000 msgs/s (plus a minute) is broken, not slow. */
export function timeoutFor(messages: number): number {
  return 60_000 + messages;
}

/** Core publishes flushed about every 100 KB, so the server keeps up, then waits until the stream holds them all. */
export async function fillStream(nc: NatsConnection, stream: string, w: Workload): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add(streamConfig(stream));
  const flushEvery = Math.max(1, Math.round(100_000 / w.payloadBytes));
  let i = 0;
  for (const m of messagesOf(w)) {
    nc.publish(m.subject, m.data);
    if (++i % flushEvery === 0) await nc.flush();
  }
  await nc.flush();
  const deadline = Date.now() + 30_000 + w.messages / 10;
  for (;;) {
    const have = (await jsm.streams.info(stream)).state.messages;
    if (have === w.messages) return;
    if (Date.now() > deadline) throw new Error(`stream ${stream} holds ${have} messages, expected ${w.messages} (core publishes dropped?)`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
