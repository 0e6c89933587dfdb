import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'services/*/src/**/*.test.ts',
      'test/**/*.test.ts',
      'bench/**/*.test.ts',
    ],
    exclude: ['**/node_modules/**', '**/dist/**'],
    globalSetup: ['test/setup/global-redis.ts'],
    // STYLE.md 10: a file that leaves a connection, worker, child process or timer open fails.
    setupFiles: ['test/setup/leak-check.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    // Tests never retry: a flaky test is a race to fix (STYLE.md 10).
    retry: 0,
  },
});
