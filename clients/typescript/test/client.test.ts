import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import {
  JOB_TYPES,
  JobFailedError,
  NotFoundError,
  RateLimitError,
  SidecarClient,
  SidecarError,
  ValidationError,
  type JobEvent,
} from '../src/index';
import { ANALYSIS, accepted, frame, job, json, mockFetch, sse } from './helpers';

const BASE = 'http://sidecar.test';
const client = (fetch: ReturnType<typeof mockFetch>['fetch'], apiKey?: string) =>
  new SidecarClient({ baseUrl: `${BASE}/`, apiKey, fetch, reconnect: { initialDelayMs: 1, maxRetries: 3 } });

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

describe('errors', () => {
  it('maps 422 to ValidationError with the field', async () => {
    const body = { error: { type: 'invalid_request', message: 'indicators.spi_3m: too low', field: 'indicators.spi_3m' } };
    const { fetch } = mockFetch(() => json(body, 422));
    const error = await client(fetch).submitJob({ type: 'drought_analysis', input: { region: 'X', indicators: { spi_3m: -9 } } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toBeInstanceOf(SidecarError);
    expect(error).toMatchObject({ status: 422, type: 'invalid_request', field: 'indicators.spi_3m', body });
  });

  it('maps 429 to RateLimitError with Retry-After', async () => {
    const { fetch } = mockFetch(() => json({ error: { type: 'rate_limited', message: 'slow down' } }, 429, { 'Retry-After': '7' }));
    const error = await client(fetch).chat({ message: 'hi' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitError);
    expect(error).toMatchObject({ status: 429, type: 'rate_limited', retryAfter: 7, message: 'slow down' });
  });

  it('maps 404 to NotFoundError, other statuses and bad bodies to SidecarError', async () => {
    const { fetch } = mockFetch(
      () => json({ error: { type: 'not_found', message: "no job with id 'x'" } }, 404),
      () => new Response('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }),
      () => Promise.reject(new TypeError('fetch failed')),
    );
    const c = client(fetch);
    await expect(c.getJob('x')).rejects.toMatchObject({ name: 'NotFoundError', status: 404, type: 'not_found' });
    await expect(c.getJob('x')).rejects.toMatchObject({ status: 502, type: 'http_502', body: '<html>bad gateway</html>' });
    const network = await c.getJob('x').catch((e: unknown) => e);
    expect(network).toBeInstanceOf(SidecarError);
    expect(network).toMatchObject({ status: 0, type: 'network_error' });
    expect(new NotFoundError(404, 'not_found', 'x')).toBeInstanceOf(SidecarError);
  });
});

describe('requests', () => {
  it('sends the API key and JSON, joins baseUrl, and returns chat answers', async () => {
    const answer = { response: 'Dry.', model: 'm', usage: {}, cost_usd: 0, cached: false, job_id: 'j' };
    const { fetch, calls } = mockFetch(() => json(answer));
    expect((await client(fetch, 'k1').chat({ message: 'Is it dry?' })).response).toBe('Dry.');
    expect(calls[0]).toMatchObject({ url: `${BASE}/api/chat`, method: 'POST', body: { message: 'Is it dry?' } });
    expect(calls[0]?.headers).toMatchObject({ authorization: 'Bearer k1', 'content-type': 'application/json' });
  });

  it('uses relative URLs with an empty baseUrl', async () => {
    const { fetch, calls } = mockFetch(() => json(job()));
    await new SidecarClient({ fetch }).getJob('a b');
    expect(calls[0]?.url).toBe('/api/jobs/a%20b');
  });

  it('creates batches and reads reports', async () => {
    const { fetch, calls } = mockFetch(
      () => json({ id: 'b1', status: 'running' }, 202),
      () => json([{ region: 'A', ...ANALYSIS }]),
      () => new Response('# Drought report: nightly\n', { headers: { 'Content-Type': 'text/markdown' } }),
    );
    const c = client(fetch);
    await c.createBatch({ name: 'nightly', jobs: [{ type: 'drought_analysis', input: { region: 'A', indicators: { ndvi: 0.2 } } }] });
    expect(calls[0]).toMatchObject({ method: 'POST', url: `${BASE}/api/batches`, body: { name: 'nightly' } });
    expect(await c.batchReport('b1')).toEqual([{ region: 'A', ...ANALYSIS }]);
    expect(await c.batchReport('b1', 'md')).toContain('# Drought report');
    expect(calls[2]?.url).toBe(`${BASE}/api/batches/b1/report?format=md`);
  });

  it('knows the job types the API declares', () => {
    const schema = JSON.parse(readFileSync(new URL('../openapi.json', import.meta.url), 'utf8')) as { 'x-job-types': object };
    expect([...JOB_TYPES].sort()).toEqual(Object.keys(schema['x-job-types']).sort());
  });
});

describe('streamJob', () => {
  const tokens = ['Dry ', 'spell ', 'ahead'];
  const frames = [
    frame(1, 'status', { status: 'queued' }),
    frame(2, 'status', { status: 'running' }),
    ...tokens.map((text, i) => frame(3 + i, 'token', { text })),
    frame(6, 'done', job()),
  ];

  it('reconnects with Last-Event-ID after a dropped connection and yields no event twice', async () => {
    const { fetch, calls } = mockFetch(
      (c) => sse(frames.slice(0, 3).concat('id: 4\nevent: tok'), 'drop', c.signal),
      (c) => sse(frames.slice(2), 'close', c.signal), // the server resends 3: dropped
    );
    const events = await collect(client(fetch, 'k').streamJob('job1'));
    expect(events.map((e) => e.id)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(events.filter((e) => e.type === 'token').map((e) => e.data.text)).toEqual(tokens);
    expect(calls[0]?.headers['last-event-id']).toBeUndefined();
    expect(calls[1]?.headers).toMatchObject({ 'last-event-id': '3', authorization: 'Bearer k', accept: 'text/event-stream' });
    expect(calls[1]?.url).toBe(`${BASE}/api/jobs/job1/events`);
  });

  it('reconnects when the stream closes early or the API says reconnect', async () => {
    const { fetch, calls } = mockFetch(
      (c) => sse(frames.slice(0, 2), 'close', c.signal),
      (c) => sse([frames[2]!, 'retry: 5\nevent: reconnect\ndata: {"retry_ms":5}\n\n', frames[3]!], 'hang', c.signal),
      (c) => sse(frames.slice(3), 'close', c.signal),
    );
    const events = await collect(client(fetch).streamJob('job1', { lastEventId: 0 }));
    expect(events.map((e) => e.id)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(calls.map((c) => c.headers['last-event-id'])).toEqual([undefined, '2', '3']);
    expect(calls[1]?.signal?.aborted).toBe(true); // the left stream was closed
  });

  it('resumes from lastEventId and stops at done', async () => {
    const { fetch, calls } = mockFetch((c) => sse(frames.slice(4), 'hang', c.signal));
    const events = await collect(client(fetch).streamJob('job1', { lastEventId: 4 }));
    expect(events.map((e) => e.type)).toEqual(['token', 'done']);
    expect(calls[0]?.headers['last-event-id']).toBe('4');
  });

  it('stops with an AbortError when the signal aborts', async () => {
    const { fetch, calls } = mockFetch((c) => sse(frames.slice(0, 3), 'hang', c.signal));
    const controller = new AbortController();
    const seen: JobEvent[] = [];
    const run = (async () => {
      for await (const event of client(fetch).streamJob('job1', { signal: controller.signal })) {
        seen.push(event);
        if (event.id === 3) controller.abort();
      }
    })();
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect(seen).toHaveLength(3);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.signal?.aborted).toBe(true);
  });

  it('does not retry a 404', async () => {
    const { fetch, calls } = mockFetch(() => json({ error: { type: 'not_found', message: 'no job' } }, 404));
    await expect(collect(client(fetch).streamJob('nope'))).rejects.toBeInstanceOf(NotFoundError);
    expect(calls).toHaveLength(1);
  });

  it('gives up after maxRetries failed connections', async () => {
    const failing = () => Promise.reject(new TypeError('fetch failed'));
    const { fetch, calls } = mockFetch(failing, failing, failing, failing, failing);
    await expect(collect(client(fetch).streamJob('job1'))).rejects.toMatchObject({ type: 'network_error' });
    expect(calls).toHaveLength(4);
  });

  it('waits Retry-After on a 429 before reconnecting', async () => {
    vi.useFakeTimers();
    try {
      const { fetch, calls } = mockFetch(
        () => json({ error: { type: 'rate_limited', message: 'busy' } }, 429, { 'Retry-After': '2' }),
        (c) => sse(frames, 'close', c.signal),
      );
      const done = collect(client(fetch).streamJob('job1'));
      await vi.advanceTimersByTimeAsync(1900);
      expect(calls).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(200);
      expect((await done).length).toBe(6);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('chatStream and analyzeDrought', () => {
  it('chatStream yields text chunks, resuming the job by its X-Job-Id', async () => {
    const { fetch, calls } = mockFetch(
      (c) => sse([frame(1, 'token', { text: 'Kia ' })], 'drop', c.signal, { 'X-Job-Id': 'j9' }),
      (c) => sse([frame(2, 'token', { text: 'ora' }), frame(3, 'done', job({ id: 'j9' }))], 'close', c.signal),
    );
    const onJob = vi.fn();
    const chunks = await collect(client(fetch).chatStream({ message: 'hello' }, { onJob }));
    expect(chunks).toEqual(['Kia ', 'ora']);
    expect(onJob).toHaveBeenCalledWith('j9');
    expect(calls[0]).toMatchObject({ method: 'POST', url: `${BASE}/api/chat/stream`, body: { message: 'hello' } });
    expect(calls[1]).toMatchObject({ url: `${BASE}/api/jobs/j9/events`, headers: { 'last-event-id': '1' } });
  });

  it('chatStream cannot resume without X-Job-Id (not exposed by CORS): it fails, never asks /api/jobs//events', async () => {
    const { fetch, calls } = mockFetch((c) => sse([frame(1, 'token', { text: 'Kia ' })], 'drop', c.signal));
    const chunks: string[] = [];
    const run = (async () => {
      for await (const chunk of client(fetch).chatStream({ message: 'hello' })) chunks.push(chunk);
    })();
    await expect(run).rejects.toMatchObject({ status: 0, type: 'network_error' });
    expect(chunks).toEqual(['Kia ']);
    expect(calls).toHaveLength(1);
  });

  it('chatStream throws JobFailedError when the job fails', async () => {
    const failed = job({ status: 'failed', result: null, error: { type: 'upstream_error', message: 'overloaded' } });
    const { fetch } = mockFetch((c) => sse([frame(1, 'done', failed)], 'close', c.signal, { 'X-Job-Id': 'job1' }));
    const error = await collect(client(fetch).chatStream({ message: 'x' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobFailedError);
    expect(error).toMatchObject({ type: 'upstream_error', message: 'overloaded' });
  });

  it('analyzeDrought streams the summary, drops it on reset, and resolves with the analysis', async () => {
    const done = job({ type: 'drought_analysis', result: { analysis: { ...ANALYSIS, key_factors: [...ANALYSIS.key_factors], recommendations: [...ANALYSIS.recommendations] }, text: ANALYSIS.summary } });
    const { fetch, calls } = mockFetch(
      () => accepted('job1', 'drought_analysis'),
      (c) =>
        sse(
          [frame(1, 'status', { status: 'running' }), frame(2, 'token', { text: 'Wet' }), frame(3, 'reset', { attempt: 2 }), frame(4, 'token', { text: 'Dry soils' }), frame(5, 'token', { text: ' and low reservoirs.' }), frame(6, 'done', done)],
          'close',
          c.signal,
        ),
    );
    const onToken = vi.fn();
    const onReset = vi.fn();
    const input = { region: 'Canterbury', indicators: { spi_3m: -1.7 }, audience: 'farmer' as const };
    const result = await client(fetch).analyzeDrought(input, { onToken, onReset, model: 'haiku' });
    expect(calls[0]?.body).toEqual({ model: 'haiku', type: 'drought_analysis', input });
    expect(onReset).toHaveBeenCalledWith(2);
    expect(onToken.mock.calls).toEqual([
      ['Wet', 'Wet'],
      ['Dry soils', 'Dry soils'],
      [' and low reservoirs.', 'Dry soils and low reservoirs.'],
    ]);
    expect(result.analysis.risk_level).toBe('severe');
    expect(result.summary).toBe(ANALYSIS.summary);
    expect(result.job.id).toBe('job1');
  });
});
