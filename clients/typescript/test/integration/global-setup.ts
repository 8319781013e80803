/** Starts the real stack (scripts/stack.py: Redis, the Claude simulator, a worker for both
 * queues, an open API and a keyed API) for the integration tests, and stops it afterwards. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

export type StackInfo = { url: string; keyed_url: string; api_key: string; tenant: string; redis_url: string; sim_url: string };

declare module 'vitest' {
  export interface ProvidedContext {
    stack: StackInfo;
  }
}

const script = fileURLToPath(new URL('../../scripts/stack.py', import.meta.url));
let child: ChildProcess | undefined;

export async function setup(project: TestProject): Promise<void> {
  const python = process.env.PYTHON ?? 'python3';
  const proc = spawn(python, [script], { stdio: ['pipe', 'pipe', 'inherit'] });
  child = proc;
  const info = await new Promise<StackInfo>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the stack did not start within 90 s')), 90_000);
    proc.once('error', reject);
    proc.once('exit', (code) => reject(new Error(`${python} ${script} exited with ${code}`)));
    createInterface({ input: proc.stdout }).once('line', (line) => {
      clearTimeout(timer);
      resolve(JSON.parse(line) as StackInfo);
    });
  });
  project.provide('stack', info);
}

export async function teardown(): Promise<void> {
  const proc = child;
  if (!proc || proc.exitCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGTERM');
  proc.stdin?.end();
  const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}
