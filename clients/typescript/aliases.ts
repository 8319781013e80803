import { fileURLToPath } from 'node:url';

const src = (path: string): string => fileURLToPath(new URL(`./src/${path}`, import.meta.url));

/** The package's own name resolved to its sources, for the tests, examples and demo
 * (the same mapping as `paths` in tsconfig.json). */
export const aliases = [
  { find: /^@ckcias\/sidecar-client$/, replacement: src('index.ts') },
  { find: /^@ckcias\/sidecar-client\/react$/, replacement: src('react/index.ts') },
  { find: /^@ckcias\/sidecar-client\/vue$/, replacement: src('vue/index.ts') },
];
