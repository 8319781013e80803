import { defineConfig } from 'vitest/config';
import { aliases } from './aliases';

// Against the real stack: globalSetup starts scripts/stack.py (Redis, the Claude simulator, a
// worker and the API) and stops it afterwards.
export default defineConfig({
  resolve: { alias: aliases },
  test: {
    include: ['test/integration/**/*.test.{ts,tsx}'],
    globalSetup: ['test/integration/global-setup.ts'],
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
