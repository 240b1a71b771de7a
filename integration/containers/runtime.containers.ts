/**
 * The runtime detection the containers suite depends on: it always answers, within its bound, and says why.
 * These run with or without Docker.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it, vi } from 'vitest';
import { detectContainerRuntime, type ContainerRuntime } from './runtime.js';

describe('container runtime detection', () => {
  it('answered for this run within its time bound, with a one-line reason', () => {
    const runtime = inject('containerRuntime') as ContainerRuntime | undefined;
    expect(runtime, 'provided by the globalSetup in vitest.containers.config.ts').toBeDefined();
    expect(typeof runtime!.available).toBe('boolean');
    expect(runtime!.reason.trim()).not.toBe('');
    expect(runtime!.reason).not.toContain('\n');
    // The bound, plus slack for a loaded machine between the timer firing and the answer.
    expect(runtime!.elapsedMs).toBeLessThanOrEqual(runtime!.timeoutMs + 1_000);
  });

  describe('against a Docker endpoint that accepts connections and never answers', () => {
    let server: Server | undefined;
    let home: string | undefined;
    const sockets = new Set<Socket>();
    afterAll(async () => {
      vi.unstubAllEnvs();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      if (home) await rm(home, { recursive: true, force: true });
    });

    it('gives up after its timeout and reports no runtime', async () => {
      server = createServer((socket) => {
        sockets.add(socket);
        // Read the request, answer nothing.
        socket.resume();
      });
      await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', () => resolve()));
      const { port } = server.address() as { port: number };
      // testcontainers tries ~/.testcontainers.properties (tc.host) before DOCKER_HOST: an empty home
      // keeps a developer's own settings out, so the black hole is the first endpoint it tries.
      home = await mkdtemp(path.join(tmpdir(), 'jv-tc-home-'));
      vi.stubEnv('HOME', home);
      vi.stubEnv('USERPROFILE', home);
      vi.stubEnv('DOCKER_HOST', `tcp://127.0.0.1:${port}`);

      const timeoutMs = 750;
      const started = performance.now();
      const runtime = await detectContainerRuntime({ timeoutMs });
      const took = performance.now() - started;

      expect(runtime).toMatchObject({ available: false, reason: `no answer from a container runtime within ${timeoutMs} ms`, timeoutMs });
      // testcontainers did connect to it: the timeout, not a quick refusal, ended the detection.
      expect(sockets.size).toBeGreaterThan(0);
      expect(took).toBeGreaterThanOrEqual(timeoutMs - 50);
      expect(took).toBeLessThan(timeoutMs + 1_000);
    });
  });
});
