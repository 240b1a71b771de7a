/**
 * S3 and Azure Blob through the CLI and the library, on in-process emulators: capture → restore → verify
 * round trips, clear one-line failures for a missing bucket or a rejected key, no secret in any output,
 * and a 10 s store outage during capture that loses and acks nothing early.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCapture } from '../machines/create-capture.js';
import { verify } from '../restore/verify.js';
import type { CaptureEvent } from '../src/capture/events.js';
import { createStore } from '../src/stores/uri.js';
import { AZURITE_ACCOUNT_KEY, startAzurite, type Azurite } from './helpers/azurite.js';
import { jetvault, type CliRun } from './helpers/cli.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { startNatsServer, uniqueName, type NatsServer } from './helpers/nats-server.js';
import { startS3Emulator, S3RVER_CREDENTIALS, type S3Emulator } from './helpers/s3-emulator.js';
import { differences, mixedMessages, publishAll, readStream } from './helpers/streams.js';

let a: NatsServer;
let b: NatsServer;
let ncA: NatsConnection;
let ncB: NatsConnection;
let s3: S3Emulator;
let azurite: Azurite;

beforeAll(async () => {
  [a, b, s3, azurite] = await Promise.all([startNatsServer(), startNatsServer(), startS3Emulator(), startAzurite()]);
  [ncA, ncB] = await Promise.all([connect({ servers: a.url }), connect({ servers: b.url })]);
}, 60_000);
afterAll(async () => {
  await Promise.all([ncA?.close(), ncB?.close()]);
  await Promise.all([a?.dispose(), b?.dispose(), s3?.close(), azurite?.close()]);
}, 60_000);

const s3Env = () => ({ AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey, AWS_REGION: 'us-east-1' });
const azureEnv = () => ({ AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString });
const s3Uri = (bucket: string, prefix: string, endpoint = s3.endpoint) =>
  `s3://${bucket}/${prefix}?endpoint=${endpoint}&forcePathStyle=true&checksums=when_required`;

async function sourceStream(label: string, count: number): Promise<string> {
  const stream = uniqueName(label);
  const subject = stream.toLowerCase();
  await (await jetstreamManager(ncA)).streams.add({ name: stream, subjects: [`${subject}.>`] });
  await publishAll(ncA, stream, mixedMessages(count, [`${subject}.eu`, `${subject}.us`]));
  return stream;
}

function expectOneLineError(run: CliRun, code: number, message: RegExp): void {
  const lines = run.stderr.split('\n').filter((l) => l.trim() !== '');
  expect(run.code, run.stderr).toBe(code);
  expect(lines.length, run.stderr).toBeLessThanOrEqual(3);
  expect(run.stderr).not.toMatch(/^\s+at /m);
  expect(run.stderr).toMatch(message);
}

describe.each([
  { name: 'S3', uri: (p: string) => s3Uri('rt-bucket', p), env: s3Env, prepare: () => s3.createBucket('rt-bucket') },
  { name: 'Azure', uri: (p: string) => `azure://rt-container/${p}`, env: azureEnv, prepare: () => createContainer('rt-container') },
])('$name through the CLI', ({ uri, env, prepare }) => {
  it('captures --once, restores into a second server and verifies identical', async () => {
    await prepare();
    const stream = await sourceStream('OBJ', 4_000);
    const store = uri(`archives/${stream.toLowerCase()}`);
    const cap = await jetvault(['capture', '--server', a.url, '--stream', stream, '--store', store, '--compression', 'snappy', '--max-messages', '1000', '--once'], { env: env() });
    expect(cap.code, cap.stderr).toBe(0);
    expect(cap.stdout).toMatch(/captured 4000 messages/);
    const res = await jetvault(['restore', '--from', store, '--server', b.url], { env: env() });
    expect(res.code, res.stderr).toBe(0);
    expect(differences(await readStream(ncA, stream), await readStream(ncB, stream))).toEqual([]);
    const ver = await jetvault(['verify', '--from', store, '--server', b.url, '--stream', stream], { env: env() });
    expect(ver.code, ver.stdout + ver.stderr).toBe(0);
  });
});

async function createContainer(name: string): Promise<void> {
  const { BlobServiceClient } = await import('@azure/storage-blob');
  await BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(name).createIfNotExists();
}

describe('clear failures', () => {
  it('a missing bucket: one line naming it, exit 1, nothing consumed', async () => {
    const stream = await sourceStream('NOBUCKET', 10);
    const run = await jetvault(['capture', '--server', a.url, '--stream', stream, '--store', s3Uri('no-such-bucket', 'x'), '--once'], { env: s3Env() });
    expectOneLineError(run, 1, /no-such-bucket/);
    const consumers = await (await jetstreamManager(ncA)).consumers.list(stream).next();
    expect(consumers.every((c) => c.delivered.stream_seq === 0)).toBe(true);
  });

  it('a missing container: one line naming it, exit 1', async () => {
    const stream = await sourceStream('NOCONT', 10);
    const run = await jetvault(['capture', '--server', a.url, '--stream', stream, '--store', 'azure://no-such-container/x', '--once'], { env: azureEnv() });
    expectOneLineError(run, 1, /no-such-container/);
  });

  it('a rejected account key: one line, exit 1, and the key appears nowhere', async () => {
    await createContainer('auth-container');
    const stream = await sourceStream('BADKEY', 10);
    const wrongKey = Buffer.from('this-is-not-the-right-account-key-for-azurite').toString('base64');
    const env = { AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString.replace(AZURITE_ACCOUNT_KEY, wrongKey) };
    const run = await jetvault(['capture', '--server', a.url, '--stream', stream, '--store', 'azure://auth-container/x', '--once', '--log-level', 'debug'], { env });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/auth|denied|credential/i);
    expect(run.stdout + run.stderr).not.toContain(wrongKey);
  });
});

describe('secrets', () => {
  it('appear in no log line, error, event or --help output', async () => {
    await createContainer('secret-container');
    const stream = await sourceStream('SECRET', 500);
    const azureStore = 'azure://secret-container/p';
    const runs = [
      await jetvault(['capture', '--server', a.url, '--stream', stream, '--store', azureStore, '--once', '--log-level', 'trace'], { env: azureEnv() }),
      await jetvault(['verify', '--from', azureStore, '--server', a.url, '--stream', stream, '--log-level', 'trace'], { env: azureEnv() }),
      await jetvault(['capture', '--help'], { env: { ...azureEnv(), ...s3Env() } }),
      await jetvault(['restore', '--help'], { env: { ...azureEnv(), ...s3Env() } }),
    ];
    expect(runs[0]!.code, runs[0]!.stderr).toBe(0);
    expect(runs[1]!.code, runs[1]!.stderr).toBe(0);
    const everything = runs.map((r) => r.stdout + r.stderr).join('\n');
    expect(everything).toContain('"level":'); // trace logging really was on
    for (const secret of [AZURITE_ACCOUNT_KEY, azurite.connectionString]) expect(everything).not.toContain(secret);
  });
});

describe('a 10 s store outage during capture', () => {
  let proxy: FaultProxy;
  beforeAll(async () => {
    proxy = await startFaultProxy(s3.endpoint);
    await s3.createBucket('outage-bucket');
  });
  afterAll(async () => proxy?.close());

  it('acks nothing before the store is back, loses nothing, resumes by itself, and logs the retries', { timeout: 60_000 }, async () => {
    const stream = uniqueName('OUTAGE');
    const subject = stream.toLowerCase();
    const jsm = await jetstreamManager(ncA);
    await jsm.streams.add({ name: stream, subjects: [`${subject}.>`] });
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, new Writable({ write: (chunk, _enc, done) => void (lines.push(String(chunk)), done()) }));
    const store = createStore(`s3://outage-bucket/p?endpoint=${proxy.url}&forcePathStyle=true&checksums=when_required`, {
      s3: { credentials: { ...S3RVER_CREDENTIALS }, region: 'us-east-1' },
    });
    const events: CaptureEvent[] = [];
    const capture = createCapture({ servers: a.url, stream, store, idleMs: 300, retryBaseMs: 200, retryMaxMs: 2_000, logger });
    capture.subscribe((e) => events.push(e));
    await new Promise<void>((resolve) => capture.on('consumer.bound', () => resolve()));

    const outage = proxy.failFor('503', 10_000);
    await publishAll(ncA, stream, mixedMessages(600, [`${subject}.a`, `${subject}.b`]));
    // Well into the outage: everything is still unacknowledged.
    await new Promise((r) => setTimeout(r, 5_000));
    const during = await jsm.consumers.info(stream, `jetvault-${stream}`);
    expect({ floor: during.ack_floor.stream_seq, ackPending: during.num_ack_pending }).toEqual({ floor: 0, ackPending: 600 });
    expect(events.some((e) => e.type === 'block.acked')).toBe(false);
    await outage;

    // Back by itself: every message stored and acked, without any restart.
    await new Promise<void>((resolve) => {
      const check = async () => {
        const info = await jsm.consumers.info(stream, `jetvault-${stream}`);
        if (info.ack_floor.stream_seq === 600 && info.num_ack_pending === 0) resolve();
        else setTimeout(check, 100);
      };
      void check();
    });
    const report = await capture.drain();
    expect(report.messages).toBe(600);
    const retries = events.filter((e) => e.type === 'block.retry');
    expect(retries.length).toBeGreaterThanOrEqual(4);
    expect(proxy.counts['503']).toBeGreaterThanOrEqual(retries.length);
    expect(lines.filter((l) => l.includes('"msg":"block.retry"')).length).toBe(retries.length);
    const firstAck = events.findIndex((e) => e.type === 'block.acked');
    const lastRetry = events.map((e) => e.type).lastIndexOf('block.retry');
    expect(firstAck).toBeGreaterThan(lastRetry);
    expect(await verify({ from: store, connection: ncA, stream })).toMatchObject({ ok: true, archivedMessages: 600 });
  });
});
