// Fails when the committed demo-dist/ is not what `npm run demo:build` makes from the current
// sources (rebuilds into a temporary folder and compares every file).
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const committed = join(root, 'demo-dist');
const fresh = mkdtempSync(join(tmpdir(), 'sidecar-demo-'));

function files(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}

try {
  await build({ configFile: join(root, 'demo/vite.config.ts'), logLevel: 'warn', build: { outDir: fresh, emptyOutDir: true } });
  const want = files(fresh);
  const have = files(committed);
  const stale = [
    ...want.filter((f) => !have.includes(f)).map((f) => `missing ${f}`),
    ...have.filter((f) => !want.includes(f)).map((f) => `extra ${f}`),
    ...want.filter((f) => have.includes(f) && !readFileSync(join(fresh, f)).equals(readFileSync(join(committed, f)))).map((f) => `differs ${f}`),
  ];
  if (stale.length) {
    console.error(`demo-dist/ is stale (run npm run demo:build):\n  ${stale.join('\n  ')}`);
    process.exitCode = 1;
  } else {
    console.log(`demo-dist/ is current (${want.length} files)`);
  }
} finally {
  rmSync(fresh, { recursive: true, force: true });
}
