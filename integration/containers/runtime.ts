/**
 * Is there a container runtime (Docker, or anything testcontainers can talk to) for the containers suite?
 *
 * `detectContainerRuntime` asks testcontainers itself (`getContainerRuntimeClient`: tc.host in
 * ~/.testcontainers.properties, DOCKER_HOST from the environment or that file, the Docker socket, the
 * rootless socket, the Windows pipe), so the answer is what `GenericContainer.start()` would find.
 * testcontainers sets no timeout of its own there: a DOCKER_HOST that accepts connections but never
 * answers would hang it, so the detection gives up after `timeoutMs` and reports that as "no runtime".
 *
 * This module is also the containers config's globalSetup (vitest.containers.config.ts): it detects once
 * for the whole run, in the main process, prints exactly one line saying what was found (or why everything
 * is skipped), and hands the result to the test files as `inject('containerRuntime')`.
 */
import { getContainerRuntimeClient } from 'testcontainers';
import type { TestProject } from 'vitest/node';

export interface ContainerRuntime {
  available: boolean;
  /** One line: which runtime was found, or why none was. Never empty. */
  reason: string;
  /** How long the detection took, and the bound it ran under. */
  elapsedMs: number;
  timeoutMs: number;
}

declare module 'vitest' {
  export interface ProvidedContext {
    containerRuntime: ContainerRuntime;
  }
}

export const DETECTION_TIMEOUT_MS = 5_000;

/** An error as one short line: testcontainers and dockerode messages can span several. */
function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const line = text.replace(/\s+/g, ' ').trim();
  return line === '' ? 'unknown error' : line.slice(0, 300);
}

export async function detectContainerRuntime(options: { timeoutMs?: number } = {}): Promise<ContainerRuntime> {
  const timeoutMs = options.timeoutMs ?? DETECTION_TIMEOUT_MS;
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
    // The timer alone never keeps the process alive; an unanswered probe is abandoned, not awaited.
    timer.unref();
  });
  try {
    const outcome = await Promise.race([getContainerRuntimeClient(), timedOut]);
    if (outcome === 'timeout') {
      return { available: false, reason: `no answer from a container runtime within ${timeoutMs} ms`, elapsedMs: elapsed(), timeoutMs };
    }
    const { serverVersion, operatingSystem, host } = outcome.info.containerRuntime;
    return {
      available: true,
      reason: `container runtime ${serverVersion} (${operatingSystem}), containers reachable at ${host}`,
      elapsedMs: elapsed(),
      timeoutMs,
    };
  } catch (error) {
    return { available: false, reason: oneLine(error), elapsedMs: elapsed(), timeoutMs };
  } finally {
    clearTimeout(timer);
  }
}

/** vitest globalSetup: detect once, say so in one line, provide the result to every test file. */
export async function setup(project: TestProject): Promise<void> {
  const runtime = await detectContainerRuntime();
  console.log(
    runtime.available
      ? `testcontainers: ${runtime.reason} — running MinIO and Azurite conformance`
      : `testcontainers: no container runtime (Docker) found — skipping MinIO and Azurite conformance (${runtime.reason})`,
  );
  project.provide('containerRuntime', runtime);
}
