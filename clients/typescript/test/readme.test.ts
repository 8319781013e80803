import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

it.each([
  ['examples/node.ts', 'ts'],
  ['examples/tokens.ts', 'ts'],
  ['examples/react.tsx', 'tsx'],
  ['examples/vue.ts', 'ts'],
])('README.md shows %s verbatim (npm run readme)', (file, lang) => {
  expect(read('README.md')).toContain(`\`\`\`${lang}\n${read(file)}\`\`\`\n`);
});
