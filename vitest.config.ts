import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'integration/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    // Integration files each start their own nats-server; two cores, so keep parallelism modest.
    maxWorkers: 2,
  },
});
