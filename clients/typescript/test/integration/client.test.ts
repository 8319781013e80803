import { describe, expect, inject, it } from 'vitest';
import {
  NotFoundError,
  SidecarClient,
  SidecarError,
  ValidationError,
  type FetchLike,
  type JobEvent,
} from '../../src/index';

const stack = inject('stack');
const client = new SidecarClient({ baseUrl: stack.url });

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** A fetch whose first event stream is cut after `bytes` bytes, as a dropped connection. */
function droppingFetch(bytes: number): { fetch: FetchLike; lastEventIds: (string | null)[] } {
  const lastEventIds: (string | null)[] = [];
  let streams = 0;
  const fetch: FetchLike = async (input, init) => {
    const response = await globalThis.fetch(input, init);
    if (!input.endsWith('/events')) return response;
    lastEventIds.push(new Headers(init?.headers).get('Last-Event-ID'));
    if (streams++ > 0 || !response.body) return response;
    const reader = response.body.getReader();
    let sent = 0;
    const cut = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) return controller.close();
        const room = bytes - sent;
        sent += value.length;
        if (value.length < room) return controller.enqueue(value);
        controller.enqueue(value.slice(0, room));
        await reader.cancel();
        controller.error(new TypeError('terminated'));
      },
    });
    return new Response(cut, { status: response.status, headers: response.headers });
  };
  return { fetch, lastEventIds };
}

describe('against the real stack', () => {
  it('chat answers and chatStream streams the same kind of answer', async () => {
    const answer = await client.chat({ message: 'What is drought?', cache: false });
    expect(answer.response.length).toBeGreaterThan(0);
    expect(answer.job_id).toMatch(/\w+/);
    const chunks = await collect(client.chatStream({ message: 'Explain drought management', cache: false }));
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.every((c) => typeof c === 'string')).toBe(true);
  });

  it('streams a job to done, and resumes from a Last-Event-ID with exactly the rest', async () => {
    const accepted = await client.submitJob({ type: 'chat', input: { message: 'How do I protect pasture?' }, cache: false });
    expect(accepted.status).toBe('queued');
    const events = await collect(client.streamJob(accepted.id));
    expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i + 1));
    expect(events[0]?.type).toBe('status');
    const done = events.at(-1) as Extract<JobEvent, { type: 'done' }>;
    expect(done.type).toBe('done');
    const text = events.flatMap((e) => (e.type === 'token' ? [e.data.text] : [])).join('');
    expect(done.data.result?.text).toBe(text);
    expect(await client.getJob(accepted.id)).toEqual(done.data);
    const rest = await collect(client.streamJob(accepted.id, { lastEventId: 3 }));
    expect(rest).toEqual(events.slice(3));
  });

  it('reconnects with Last-Event-ID after a dropped connection and yields every event once', async () => {
    const { fetch, lastEventIds } = droppingFetch(150);
    const dropping = new SidecarClient({ baseUrl: stack.url, fetch, reconnect: { initialDelayMs: 10 } });
    const accepted = await dropping.submitJob({ type: 'chat', input: { message: 'Long answer please' }, cache: false });
    const events = await collect(dropping.streamJob(accepted.id));
    expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i + 1));
    expect(events.at(-1)?.type).toBe('done');
    expect(lastEventIds[0]).toBeNull();
    expect(Number(lastEventIds[1])).toBeGreaterThan(0);
  });

  it('analyzeDrought streams the summary and returns a validated analysis', async () => {
    const tokens: string[] = [];
    const result = await client.analyzeDrought(
      { region: 'Canterbury Plains', indicators: { rainfall_mm_30d: 12.5, spi_3m: -1.7, reservoir_pct: 41 }, audience: 'council' },
      { onToken: (text) => tokens.push(text) },
    );
    expect(tokens.length).toBeGreaterThan(0);
    expect(tokens.join('')).toBe(result.summary);
    expect(['none', 'low', 'moderate', 'high', 'severe', 'extreme']).toContain(result.analysis.risk_level);
    expect(result.analysis.confidence).toBeGreaterThanOrEqual(0);
    expect(result.analysis.confidence).toBeLessThanOrEqual(1);
    expect(result.analysis.recommendations.length).toBeGreaterThan(0);
    expect(result.job.usage.input_tokens + result.job.usage.cache_creation_input_tokens + result.job.usage.cache_read_input_tokens).toBeGreaterThan(0);
  });

  it('maps the API errors: 422 with field, 404, 401 without the key', async () => {
    const invalid = await client
      .submitJob({ type: 'drought_analysis', input: { region: 'X', indicators: { soil_moisture_pct: 140 } } })
      .catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(ValidationError);
    expect((invalid as ValidationError).field).toBe('indicators.soil_moisture_pct');
    await expect(client.getJob('no-such-job')).rejects.toBeInstanceOf(NotFoundError);
    const anonymous = new SidecarClient({ baseUrl: stack.keyed_url });
    await expect(anonymous.getJob('x')).rejects.toMatchObject({ status: 401, type: 'unauthorized' });
    expect(await anonymous.getJob('x').catch((e: unknown) => e)).toBeInstanceOf(SidecarError);
  });

  it('streams with an API key through headers', async () => {
    const keyed = new SidecarClient({ baseUrl: stack.keyed_url, apiKey: stack.api_key });
    const chunks = await collect(keyed.chatStream({ message: 'Keyed hello', cache: false }));
    expect(chunks.join('').length).toBeGreaterThan(0);
    const accepted = await keyed.submitJob({ type: 'chat', input: { message: 'Keyed job' }, cache: false });
    expect((await keyed.waitForJob(accepted.id)).status).toBe('succeeded');
  });

  it('an aborted stream stops, and cancelJob cancels the job', async () => {
    const accepted = await client.submitJob({ type: 'chat', input: { message: 'A long story' }, max_tokens: 4000, cache: false });
    const controller = new AbortController();
    const seen: JobEvent[] = [];
    const run = (async () => {
      for await (const event of client.streamJob(accepted.id, { signal: controller.signal })) {
        seen.push(event);
        if (event.type === 'token') controller.abort();
      }
    })();
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect(seen.at(-1)?.type).toBe('token');
    const cancelled = await client.cancelJob(accepted.id);
    expect(['cancelled', 'succeeded']).toContain(cancelled.status);
  });

  it('runs a batch and reports it', async () => {
    const regions = ['Hawke’s Bay', 'Otago'];
    const batch = await client.createBatch({
      name: 'ts-integration',
      jobs: regions.map((region) => ({ type: 'drought_analysis' as const, input: { region, indicators: { spi_3m: -1.2 } } })),
    });
    expect(batch.total).toBe(2);
    let current = batch;
    for (let i = 0; i < 100 && current.status === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 200));
      current = await client.getBatch(batch.id);
    }
    expect(current.status).toBe('completed');
    expect(current.counts.succeeded).toBe(2);
    const rows = await client.batchReport(batch.id);
    expect(rows.map((r) => r.region).sort()).toEqual([...regions].sort());
    // the API escapes Markdown punctuation in names (`ts\-integration`)
    expect(await client.batchReport(batch.id, 'md')).toMatch(/^# Drought report: ts\\?-integration$/m);
    expect((await client.batchReport(batch.id, 'csv')).split('\n')[0]).toContain('region');
  });
});
