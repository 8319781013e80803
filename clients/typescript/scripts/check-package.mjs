// After `npm run build`: the package resolves through its `exports` (self-reference by name),
// each entry has type declarations, the core names SidecarClient, and the core never imports a
// framework (React and Vue stay in their subpaths).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const problems = [];

for (const [subpath, entry] of Object.entries(pkg.exports)) {
  if (typeof entry === 'string') continue;
  for (const file of [entry.import, entry.types]) {
    if (!existsSync(join(root, file))) problems.push(`${subpath}: ${file} is missing (run npm run build)`);
  }
}

const core = await import(pkg.name);
if (typeof core.SidecarClient !== 'function') problems.push('the core has no SidecarClient export');

const seen = new Set();
function frameworkImports(file) {
  if (seen.has(file)) return [];
  seen.add(file);
  const source = readFileSync(file, 'utf8');
  const found = [];
  for (const [, spec] of source.matchAll(/(?:import|export)[^'"]*?from\s*['"]([^'"]+)['"]/g)) {
    if (spec.startsWith('.')) found.push(...frameworkImports(resolve(dirname(file), spec)));
    else found.push(spec);
  }
  return found;
}
const external = frameworkImports(join(root, pkg.exports['.'].import));
if (external.length) problems.push(`the core imports ${external.join(', ')}`);

if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`${pkg.name}: exports resolve, types present, core has no runtime dependency`);
