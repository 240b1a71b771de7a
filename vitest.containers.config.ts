/**
 * `npm run test:containers`: the store conformance suite against MinIO and Azurite in containers, via
 * testcontainers, when a container runtime (Docker) is available. Without one, runtime.ts (globalSetup)
 * prints one line and the container suites are skipped. CI does not run this config; the default
 * vitest.config.ts includes only *.test.ts, so these *.containers.ts files stay out of `vitest run`.
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['integration/containers/**/*.containers.ts'],
    globalSetup: ['integration/containers/runtime.ts'],
    testTimeout: 120_000,
    // The conformance suite starts its container in beforeAll: the first run also pulls the image.
    hookTimeout: 600_000,
    maxWorkers: 2,
  },
});
