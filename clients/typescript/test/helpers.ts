/** A scriptable fetch for unit tests: responses in order, every call recorded. */
import { vi } from 'vitest';
import type { Job } from '../src/types';

export type Call = { url: string; method: string; headers: Record<string, string>; body: unknown; signal: AbortSignal | undefined };
export type Handler = (call: Call) => Response | Promise<Response>;

export function mockFetch(...handlers: Handler[]) {
  const calls: Call[] = [];
  const fetch = vi.fn((input: string, init: RequestInit = {}) => {
    const headers = Object.fromEntries(new Headers(init.headers).entries());
    const body: unknown = typeof init.body === 'string' ? JSON.parse(init.body) : undefined;
    const call: Call = { url: input, method: init.method ?? 'GET', headers, body, signal: init.signal ?? undefined };
    calls.push(call);
    const handler = handlers[calls.length - 1];
    if (!handler) return Promise.reject(new Error(`unexpected request ${call.method} ${input}`));
    return Promise.resolve(handler(call));
  });
  return { fetch, calls };
}

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
}

export function frame(id: number | undefined, event: string, data: unknown): string {
  return `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** A text/event-stream response whose body is pushed by the test; `hang` keeps it open. */
export function controlledSse(signal?: AbortSignal, headers: Record<string, string> = {}) {
  const encoder = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
  });
  signal?.addEventListener('abort', () => {
    try {
      controller.error(signal.reason);
    } catch {
      // already closed
    }
  });
  return {
    response: new Response(body, { headers: { 'Content-Type': 'text/event-stream', ...headers } }),
    push: (text: string | Uint8Array) => controller.enqueue(typeof text === 'string' ? encoder.encode(text) : text),
    close: () => controller.close(),
    drop: () => controller.error(new TypeError('terminated')),
  };
}

/** A scripted stream: the chunks, read one by one, then `end` — close, a dropped connection
 * (after the chunks were read, as on a real network) or hang until the signal aborts. */
export function sse(chunks: (string | Uint8Array)[], end: 'close' | 'drop' | 'hang' = 'close', signal?: AbortSignal, headers: Record<string, string> = {}): Response {
  const encoder = new TextEncoder();
  const queue = [...chunks];
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = queue.shift();
      if (next !== undefined) return controller.enqueue(typeof next === 'string' ? encoder.encode(next) : next);
      if (end === 'close') return controller.close();
      if (end === 'drop') return controller.error(new TypeError('terminated'));
      return new Promise<void>((resolve) => {
        const fail = () => {
          controller.error(signal?.reason);
          resolve();
        };
        if (signal?.aborted) fail();
        else signal?.addEventListener('abort', fail);
      });
    },
  });
  return new Response(body, { headers: { 'Content-Type': 'text/event-stream', ...headers } });
}

export function job(overrides: Partial<Job> = {}): Job {
  const id = overrides.id ?? 'job1';
  return {
    id,
    type: 'chat',
    status: 'succeeded',
    model: 'claude-sonnet-5-5',
    priority: 'interactive',
    result: { text: 'Hello there' },
    usage: { input_tokens: 3, output_tokens: 2, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    cost_usd: 0.0001,
    error: null,
    attempts: 1,
    created_at: '2025-01-01T00:00:00Z',
    started_at: '2025-01-01T00:00:00Z',
    first_token_at: '2025-01-01T00:00:01Z',
    finished_at: '2025-01-01T00:00:02Z',
    batch_id: null,
    links: { self: `/api/jobs/${id}`, events: `/api/jobs/${id}/events` },
    ...overrides,
  };
}

export const accepted = (id = 'job1', type = 'chat') =>
  json({ id, type, status: 'queued', links: { self: `/api/jobs/${id}`, events: `/api/jobs/${id}/events` }, cached: false }, 202);

export const ANALYSIS = {
  risk_level: 'severe',
  confidence: 0.72,
  summary: 'Dry soils and low reservoirs.',
  key_factors: ['SPI -1.7', 'Soil moisture 18%'],
  recommendations: [{ action: 'Destock early', audience: 'farmer', urgency: 'this_week' }],
} as const;
