/**
 * The built CLI end to end (`node dist/src/cli/main.js`, as users run it): exit codes, one-line errors
 * without stack frames, --help everywhere, `machines`, and a capture → verify → restore round trip on
 * real nats-servers. `npm test` builds first; this file does not build.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, jetvault, type CliRun } from './helpers/cli.js';
import { startNatsServer, uniqueName, type NatsServer } from './helpers/nats-server.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const built = existsSync(CLI);
type Run = CliRun;

/** The contract for every failure: the exit code, at most 3 stderr lines, no stack frames, the problem named. */
function expectCleanError(run: Run, code: number, names: RegExp): void {
  const lines = run.stderr.split('\n').filter((l) => l.trim() !== '');
  expect({ code: run.code, stderr: run.stderr }).toMatchObject({ code });
  expect(lines.length, run.stderr).toBeGreaterThan(0);
  expect(lines.length, run.stderr).toBeLessThanOrEqual(3);
  expect(run.stderr).not.toMatch(/^\s+at /m);
  expect(run.stderr).toMatch(names);
}

it('has a built CLI to test (npm test builds it; run `npm run build` first when running this file alone)', () => {
  expect(existsSync(CLI), `${CLI} is missing`).toBe(true);
});

describe.skipIf(!built)('jetvault CLI', () => {
  let a: NatsServer;
  let b: NatsServer;
  let deadUrl: string;
  let workDir: string;

  beforeAll(async () => {
    // A port nothing listens on: one a server just used and gave back.
    const dead = await startNatsServer();
    deadUrl = dead.url;
    await dead.dispose();
    [a, b] = await Promise.all([startNatsServer(), startNatsServer()]);
    workDir = mkdtempSync(path.join(tmpdir(), 'jv-cli-'));
  });

  afterAll(async () => {
    await Promise.all([a?.dispose(), b?.dispose()]);
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  describe('--help', () => {
    it.each(['', 'capture', 'restore', 'verify', 'ls', 'cat', 'machines', 'demo'])('jetvault %s --help exits 0 with usage on stdout', async (command) => {
      const run = await jetvault(command ? [command, '--help'] : ['--help']);
      expect(run.code).toBe(0);
      expect(run.stdout).toContain(`Usage: jetvault${command ? ` ${command}` : ''}`);
      expect(run.stderr).toBe('');
    });

    it('lists every capture option of the contract', async () => {
      const run = await jetvault(['capture', '--help']);
      for (const flag of ['--server', '--stream', '--consumer', '--store', '--format', '--compression', '--max-age', '--max-messages', '--max-bytes', '--max-buffer', '--idle', '--split-by', '--once', '--ack-wait', '--max-ack-pending', '--pull-batch', '--recreate-consumer', '--drain-timeout', '--log-level']) {
        expect(run.stdout).toContain(flag);
      }
    });
  });

  describe('usage errors exit 2 with one line', () => {
    const capture = (...extra: string[]) => ['capture', '--server', 'nats://127.0.0.1:4222', '--stream', 'S', '--store', path.join(tmpdir(), 'jv-unused'), ...extra];

    it('no command', async () => {
      expectCleanError(await jetvault([]), 2, /missing command/);
    });

    it('unknown command', async () => {
      expectCleanError(await jetvault(['frobnicate']), 2, /unknown command 'frobnicate'/);
    });

    it('unknown store scheme', async () => {
      expectCleanError(await jetvault(['capture', '--server', 'nats://127.0.0.1:4222', '--stream', 'S', '--store', 'gopher://x/y']), 2, /unknown store scheme "gopher:".*JV_USAGE/);
      expectCleanError(await jetvault(['restore', '--from', 'gopher://x/y', '--server', 'nats://127.0.0.1:4222']), 2, /unknown store scheme/);
      expectCleanError(await jetvault(['restore', '--from', '/tmp', '--server', 'nats://127.0.0.1:4222', '--reconnect-timeout', '5']), 2, /--reconnect-timeout needs a unit/);
      expectCleanError(await jetvault(['verify', '--from', 'gopher://x/y', '--server', 'nats://127.0.0.1:4222', '--stream', 'S']), 2, /unknown store scheme/);
    });

    it('unknown format and compression', async () => {
      expectCleanError(await jetvault(capture('--format', 'xml')), 2, /--format.*'xml'.*raw, ndjson, csv/);
      expectCleanError(await jetvault(capture('--compression', 'lz4')), 2, /--compression.*'lz4'/);
    });

    it('--max-messages 0 and other bad values', async () => {
      expectCleanError(await jetvault(capture('--max-messages', '0')), 2, /--max-messages must be a positive integer, got "0"/);
      expectCleanError(await jetvault(capture('--max-bytes', '64M')), 2, /--max-bytes/);
      expectCleanError(await jetvault(capture('--max-buffer', '0')), 2, /--max-buffer/);
      expectCleanError(await jetvault(capture('--max-buffer', 'lots')), 2, /--max-buffer/);
      expectCleanError(await jetvault(capture('--pull-batch', '0')), 2, /--pull-batch must be a positive integer, got "0"/);
      expectCleanError(await jetvault(capture('--buffer-to-disk', '')), 2, /--buffer-to-disk needs a directory/);
      expectCleanError(await jetvault(capture('--buffer-to-disk', CLI)), 2, /spill directory .*--buffer-to-disk.* cannot be used: EEXIST/);
      expectCleanError(await jetvault(capture('--idle', '30')), 2, /--idle needs a unit/);
      expectCleanError(await jetvault(capture('--split-by', 'colour')), 2, /split-by "colour" is not valid/);
      expectCleanError(await jetvault(capture('--log-level', 'loud')), 2, /--log-level.*'loud'/);
    });

    it('bad ports, store URIs and S3 flags: one line, exit 2, before anything connects', async () => {
      expectCleanError(await jetvault(capture('--metrics-port', '70000')), 2, /--metrics-port must be a port number from 0 to 65535/);
      expectCleanError(await jetvault(capture('--inspect-port', 'http')), 2, /--inspect-port must be a port number/);
      const store = (uri: string, ...extra: string[]) => ['capture', '--server', 'nats://127.0.0.1:4222', '--stream', 'S', '--store', uri, ...extra];
      const noAzure = { AZURE_STORAGE_CONNECTION_STRING: '', AZURE_STORAGE_ACCOUNT: '' };
      expectCleanError(await jetvault(store('s3://key:secret-value@bucket/p')), 2, /carries credentials/);
      expect((await jetvault(store('s3://key:secret-value@bucket/p'))).stderr).not.toContain('secret-value');
      expectCleanError(await jetvault(store('s3://bucket/p?colour=blue')), 2, /unknown store URI parameter "colour"/);
      expectCleanError(await jetvault(store('s3://bucket/p', '--s3-endpoint', 'ftp://example')), 2, /must be http or https/);
      expectCleanError(await jetvault(store('azure://container/p'), { env: noAzure }), 2, /needs credentials.*AZURE_STORAGE_CONNECTION_STRING/);
      expectCleanError(await jetvault(['restore', '--from', 'az://c/p?tier=Lukewarm', '--server', 'nats://127.0.0.1:4222'], { env: noAzure }), 2, /tier=Lukewarm/);
      expectCleanError(await jetvault(['machines', '--format', 'svg']), 2, /--format.*'svg'.*mermaid, dot, json/);
    });

    it('unknown option', async () => {
      const run = await jetvault(capture('--fromat', 'raw'));
      expectCleanError(run, 2, /unknown option '--fromat'/);
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
    });

    it('missing required option', async () => {
      expectCleanError(await jetvault(['capture', '--server', 'nats://127.0.0.1:4222', '--store', '/tmp/x']), 2, /required option '--stream <name>' not specified/);
      expectCleanError(await jetvault(['verify', '--from', '/tmp/x', '--server', 'nats://127.0.0.1:4222']), 2, /'--stream <name>'/);
    });
  });

  describe('runtime errors exit 1 with one line', () => {
    it('unreachable server', async () => {
      const run = await jetvault(['capture', '--server', deadUrl, '--stream', 'ORDERS', '--store', path.join(workDir, 'unreachable'), '--once']);
      expectCleanError(run, 1, new RegExp(`${deadUrl.replace(/[.:/]/g, '\\$&')}|connect`, 'i'));
    });

    it('missing stream', async () => {
      const stream = uniqueName('MISSING');
      const run = await jetvault(['capture', '--server', a.url, '--stream', stream, '--store', path.join(workDir, 'missing'), '--once']);
      expectCleanError(run, 1, new RegExp(stream));
    });

    it('nats-server missing for the demo', async () => {
      const run = await jetvault(['demo', '--dir', path.join(workDir, 'no-server-demo')], { env: { NATS_SERVER_BIN: '/nonexistent/nats-server' } });
      expectCleanError(run, 1, /JV_NATS_SERVER_MISSING/);
    });
  });

  describe('machines', () => {
    it('draws every machine as a Mermaid state diagram', async () => {
      const run = await jetvault(['machines', '--format', 'mermaid']);
      expect(run.code).toBe(0);
      for (const name of ['capture-supervisor', 'connection', 'subscription', 'block', 'restore']) expect(run.stdout).toContain(`%% ${name}\nstateDiagram-v2`);
      expect(run.stdout.match(/^stateDiagram-v2$/gm)).toHaveLength(5);
      for (const state of ['storing', 'retrying', 'acked', 'connecting', 'publishing']) expect(run.stdout).toMatch(new RegExp(`\\b${state}\\b`));
    });

    it('describes every machine as JSON keyed by name', async () => {
      const run = await jetvault(['machines', '--format', 'json']);
      expect(run.code).toBe(0);
      const json = JSON.parse(run.stdout) as Record<string, { states?: Record<string, unknown> }>;
      expect(Object.keys(json)).toEqual(['capture-supervisor', 'connection', 'subscription', 'block', 'restore']);
      expect(Object.keys(json.block?.states ?? {})).toContain('acked');
    });
  });

  describe('capture → verify → restore', () => {
    let nc: NatsConnection;
    const stream = uniqueName('ORDERS');
    const count = 60;

    beforeAll(async () => {
      nc = await connect({ servers: a.url });
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
      const js = jetstream(nc);
      for (let i = 0; i < count; i++) {
        const h = headers();
        h.append('Tag', 'x');
        h.append('Tag', `y${i}`);
        await js.publish(`${stream}.${['eu', 'us', 'apac'][i % 3]}`, JSON.stringify({ i }), i % 2 ? { headers: h } : undefined);
      }
    });

    afterAll(async () => {
      await nc?.close();
    });

    it('runs the whole round trip with the documented exit codes and summaries', async () => {
      const dir = path.join(workDir, 'archive');
      const capture = await jetvault(['capture', '--server', a.url, '--stream', stream, '--store', `file://${dir}`, '--compression', 'gzip', '--max-messages', '25', '--once']);
      expect(capture.code, capture.stderr).toBe(0);
      expect(capture.stdout).toMatch(new RegExp(`^captured ${count} messages in \\d+ blocks? \\(\\d+ bytes\\) from ${stream} via consumer jetvault-${stream} in [\\d.]+ s\\n$`));

      const verified = await jetvault(['verify', '--from', dir, '--server', a.url, '--stream', stream]);
      expect(verified.code, verified.stderr).toBe(0);
      expect(verified.stdout).toMatch(new RegExp(`^verified: ${count} messages identical`));

      const restored = await jetvault(['restore', '--from', dir, '--server', b.url]);
      expect(restored.code, restored.stderr).toBe(0);
      expect(restored.stdout).toMatch(new RegExp(`^restored ${count} messages from \\d+ blocks? into ${stream} \\(created\\) in [\\d.]+ s`));

      // A second restore into the same, now non-empty, stream is refused without --append.
      const again = await jetvault(['restore', '--from', dir, '--server', b.url, '--no-create']);
      expectCleanError(again, 1, /JV_TARGET_NOT_EMPTY/);

      // One message gone from the source: verify exits 3 and names it.
      const jsm = await jetstreamManager(nc);
      await jsm.streams.deleteMessage(stream, 7);
      const mismatch = await jetvault(['verify', '--from', dir, '--server', a.url, '--stream', stream]);
      expect(mismatch.code, mismatch.stderr).toBe(3);
      expect(mismatch.stdout).toMatch(/^verification FAILED: /);
      expect(mismatch.stdout).toMatch(/missing-in-stream seq 7 block \S+/);
      expect(mismatch.stdout.trim().split('\n').length).toBeLessThanOrEqual(12);
    });
  });

  describe('demo', () => {
    it('runs a verified round trip on two local servers', async () => {
      const dir = path.join(workDir, 'demo');
      const run = await jetvault(['demo', '--dir', dir, '--messages', '300'], { timeoutMs: 60_000 });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain('round trip verified: 300/300 identical');
      expect(existsSync(path.join(dir, 'archive'))).toBe(true);

      // Runs again over its own previous dir, but never over someone else's.
      expect((await jetvault(['demo', '--dir', dir, '--messages', '30'], { timeoutMs: 60_000 })).code).toBe(0);
      expectCleanError(await jetvault(['demo', '--dir', root]), 2, /not made by jetvault demo/);
    });
  });
});
