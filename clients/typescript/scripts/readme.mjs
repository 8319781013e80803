// Writes README.md from scripts/readme.template.md, inlining the example files
// (`@@examples/x@@`), so the README shows exactly the code the tests run.
// `node scripts/readme.mjs --check` fails when README.md is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
export function render() {
  const template = readFileSync(`${root}scripts/readme.template.md`, 'utf8');
  return template.replace(/@@([\w./-]+)@@\n/g, (_, file) => readFileSync(`${root}${file}`, 'utf8'));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const fresh = render();
  if (process.argv.includes('--check')) {
    if (readFileSync(`${root}README.md`, 'utf8') !== fresh) {
      console.error('README.md is stale: run npm run readme');
      process.exit(1);
    }
    console.log('README.md is current');
  } else {
    writeFileSync(`${root}README.md`, fresh);
  }
}
