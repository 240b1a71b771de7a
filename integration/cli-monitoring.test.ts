/**
 * `jetvault capture --metrics-port --inspect-port` as a daemon: the probes, the metrics and the live
 * machine view answer while it runs, and a taken port is one clear error.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { createServer, type Server } from 'node:net';
import { beforeAll, expect, it } from 'vitest';
import { jetvault, startJetvault } from './helpers/cli.js';
import { uniqueName } from './helpers/nats-server.js';
import { useNatsEnv } from './helpers/nats-env.js';
import { mixedMessages, publishAll } from './helpers/streams.js';

const env = useNatsEnv('cli-monitor');
let dir: string;

beforeAll(() => {
  dir = env.tempDir();
});

/** A port that was free a moment ago (the OS picks it). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Polls `url` until `accept(status, body)` (bounded). */
async function until(url: string, accept: (status: number, body: string) => boolean): Promise<string> {
  const deadline = Date.now() + 15_000;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      const body = await res.text();
      last = `${res.status} ${body.slice(0, 200)}`;
      if (accept(res.status, body)) return body;
    } catch (error) {
      last = String(error);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} never answered as expected; last: ${last}`);
}

it('serves readiness, metrics and the machine view while capturing, then drains on SIGTERM', async () => {
  const stream = uniqueName('MON');
  const subject = stream.toLowerCase();
  await (await jetstreamManager(env.nc)).streams.add({ name: stream, subjects: [`${subject}.>`] });
  const [metricsPort, inspectPort] = [await freePort(), await freePort()];
  const daemon = startJetvault(['capture', '--server', env.server.url, '--stream', stream, '--store', dir, '--idle', '300ms',
    '--metrics-port', String(metricsPort), '--inspect-port', String(inspectPort)]);
  try {
    await until(`http://127.0.0.1:${metricsPort}/readyz`, (status) => status === 200);
    expect((await (await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).text()).trim()).toBe('ok');
    await publishAll(env.nc, stream, mixedMessages(250, [`${subject}.x`]));
    const metrics = await until(`http://127.0.0.1:${metricsPort}/metrics`, (_s, body) => /jetvault_messages_acked_total\{[^}]*\} 250\b/.test(body));
    expect(metrics).toMatch(new RegExp(`jetvault_up\\{stream="${stream}",consumer="jetvault-${stream}",store="file://[^"]+"\\} 1`));
    const state = JSON.parse(await until(`http://127.0.0.1:${inspectPort}/state`, (_s, body) => body.includes('"acked"'))) as {
      actors: Array<{ kind: string; state: string }>;
      finishedBlocks: Array<{ state: string; messages: number }>;
    };
    expect(state.actors.find((a) => a.kind === 'subscription')?.state).toBe('active.consuming');
    expect(state.finishedBlocks.reduce((n, b) => n + (b.state === 'acked' ? b.messages : 0), 0)).toBe(250);
    expect(await (await fetch(`http://127.0.0.1:${inspectPort}/`)).text()).toContain('jetvault inspector');
  } finally {
    daemon.child.kill('SIGTERM');
  }
  const run = await daemon.done;
  expect(run.code, run.stderr).toBe(0);
  expect(run.stdout).toMatch(/captured 250 messages/);
});

it('says in one line when a port is taken, and exits 1 without capturing', async () => {
  const taken: Server = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as { port: number }).port;
  try {
    const stream = uniqueName('BUSY');
    await (await jetstreamManager(env.nc)).streams.add({ name: stream, subjects: [`${stream.toLowerCase()}.>`] });
    const run = await jetvault(['capture', '--server', env.server.url, '--stream', stream, '--store', dir, '--once', '--metrics-port', String(port)]);
    expect(run.code).toBe(1);
    const lines = run.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines.length, run.stderr).toBeLessThanOrEqual(3);
    expect(run.stderr).toMatch(/cannot listen on 127\.0\.0\.1.*EADDRINUSE.*JV_LISTEN_FAILED/);
    expect((await jetvault(['capture', '--server', env.server.url, '--stream', stream, '--store', dir, '--metrics-port', '70000'])).code).toBe(2);
  } finally {
    taken.close();
  }
});
