import { defineConfig } from 'vitest/config';
import { aliases } from './aliases';

// Unit and component tests: a mocked fetch, React in jsdom, Vue with @vue/test-utils.
export default defineConfig({
  resolve: { alias: aliases },
  test: {
    include: ['test/**/*.test.{ts,tsx}'],
    exclude: ['test/integration/**'],
    environment: 'node',
    testTimeout: 10_000,
  },
});
