import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SidecarClient, SidecarError, jwtExpiry, type GetToken, type JobEvent } from '../src/index';
import { frame, job, json, mockFetch, sse } from './helpers';

const BASE = 'http://sidecar.test';
const T0 = Date.parse('2030-01-01T00:00:00Z');

/** An unsigned JWT with these claims (the client only reads them). */
function jwt(claims: Record<string, unknown>): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}.c2lnbmF0dXJl`;
}

/** A getToken handing out `name-1`, `name-2`, … each valid `ttl` seconds from now (JWT `exp`). */
function tokens(ttl = 900, name = 'user') {
  let n = 0;
  const getToken = vi.fn(() => Promise.resolve(jwt({ sub: `${name}-${++n}`, exp: Math.floor(Date.now() / 1000) + ttl })));
  const subjectOf = (authorization: string | undefined) =>
    JSON.parse(Buffer.from(authorization!.replace('Bearer ', '').split('.')[1]!, 'base64url').toString()) as { sub: string };
  return { getToken, sub: (authorization: string | undefined) => subjectOf(authorization).sub };
}

const client = (fetch: ReturnType<typeof mockFetch>['fetch'], getToken: GetToken, extra = {}) =>
  new SidecarClient({ baseUrl: BASE, fetch, getToken, reconnect: { initialDelayMs: 1, maxRetries: 3 }, ...extra });

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(T0);
});
afterEach(() => vi.useRealTimers());

describe('getToken', () => {
  it('sends the token as Bearer, asks once and reuses it', async () => {
    const { getToken, sub } = tokens();
    const { fetch, calls } = mockFetch(() => json(job()), () => json(job()), () => json(job()));
    const c = client(fetch, getToken);
    await c.getJob('job1');
    await c.getJob('job1');
    await c.submitJob({ type: 'chat', input: { message: 'hi' } });
    expect(getToken).toHaveBeenCalledTimes(1);
    expect(calls.map((call) => sub(call.headers.authorization))).toEqual(['user-1', 'user-1', 'user-1']);
  });

  it('takes the place of apiKey', async () => {
    const { fetch, calls } = mockFetch(() => json(job()));
    await new SidecarClient({ baseUrl: BASE, fetch, apiKey: 'service-secret', getToken: () => 'tok' }).getJob('job1');
    expect(calls[0]?.headers.authorization).toBe('Bearer tok');
  });

  it('renews before the JWT expires: not before 10% (or 30 s) of its life is left', async () => {
    const { getToken, sub } = tokens(900);
    const { fetch, calls } = mockFetch(...Array.from({ length: 4 }, () => () => json(job())));
    const c = client(fetch, getToken);
    await c.getJob('job1');
    vi.setSystemTime(T0 + 805_000); // 95 s left
    await c.getJob('job1');
    vi.setSystemTime(T0 + 815_000); // 85 s left: renew
    await c.getJob('job1');
    await c.getJob('job1');
    expect(getToken).toHaveBeenCalledTimes(2);
    expect(calls.map((call) => sub(call.headers.authorization))).toEqual(['user-1', 'user-1', 'user-2', 'user-2']);
  });

  it('prefers expiresAt (ISO string, Date or epoch ms/s) to the JWT, and keeps a token without either', async () => {
    for (const expiresAt of ['2030-01-01T00:01:00Z', new Date(T0 + 60_000), T0 + 60_000, (T0 + 60_000) / 1000]) {
      vi.setSystemTime(T0);
      let n = 0;
      const getToken = vi.fn(() => ({ token: `${++n}`, expiresAt }));
      const { fetch, calls } = mockFetch(...Array.from({ length: 3 }, () => () => json(job())));
      const c = client(fetch, getToken);
      await c.getJob('a');
      vi.setSystemTime(T0 + 29_000); // 31 s left of 60
      await c.getJob('a');
      vi.setSystemTime(T0 + 31_000);
      await c.getJob('a');
      expect(calls.map((call) => call.headers.authorization)).toEqual(['Bearer 1', 'Bearer 1', 'Bearer 2']);
    }
    const opaque = vi.fn(() => Promise.resolve('opaque'));
    const { fetch, calls } = mockFetch(() => json(job()), () => json(job()));
    const c = client(fetch, opaque);
    await c.getJob('a');
    vi.setSystemTime(T0 + 10 * 3_600_000);
    await c.getJob('a');
    expect(opaque).toHaveBeenCalledTimes(1);
    expect(calls[1]?.headers.authorization).toBe('Bearer opaque');
  });

  it('reads exp from a JWT payload (base64url, no verification)', () => {
    expect(jwtExpiry(jwt({ exp: 1_900_000_000, sub: 'ā' }))).toBe(1_900_000_000_000);
    expect(jwtExpiry('not-a-jwt')).toBeUndefined();
    expect(jwtExpiry('a.!!!.c')).toBeUndefined();
    expect(jwtExpiry(jwt({ sub: 'x' }))).toBeUndefined();
  });

  it('concurrent requests share one getToken call', async () => {
    let release!: (token: string) => void;
    const getToken = vi.fn(() => new Promise<string>((resolve) => (release = resolve)));
    const { fetch, calls } = mockFetch(...Array.from({ length: 5 }, () => () => json(job())));
    const c = client(fetch, getToken);
    const requests = Promise.all(Array.from({ length: 5 }, () => c.getJob('job1')));
    await vi.waitFor(() => expect(getToken).toHaveBeenCalled());
    expect(calls).toHaveLength(0);
    release('shared');
    await requests;
    expect(getToken).toHaveBeenCalledTimes(1);
    expect(calls.map((call) => call.headers.authorization)).toEqual(Array(5).fill('Bearer shared'));
  });

  it('a 401 renews the token and retries the request once, body and all', async () => {
    const { getToken, sub } = tokens();
    const unauthorized = () => json({ error: { type: 'unauthorized', message: 'token expired' } }, 401);
    const { fetch, calls } = mockFetch(unauthorized, () => json({ id: 'j1' }, 202));
    const accepted = await client(fetch, getToken).submitJob({ type: 'chat', input: { message: 'hi' } });
    expect(accepted.id).toBe('j1');
    expect(getToken).toHaveBeenCalledTimes(2);
    expect(calls.map((call) => sub(call.headers.authorization))).toEqual(['user-1', 'user-2']);
    expect(calls[1]).toMatchObject({ method: 'POST', body: { type: 'chat', input: { message: 'hi' } } });
  });

  it('a second 401 is thrown, not retried again', async () => {
    const { getToken } = tokens();
    const unauthorized = () => json({ error: { type: 'unauthorized', message: 'revoked' } }, 401);
    const { fetch, calls } = mockFetch(unauthorized, unauthorized, unauthorized);
    const error = await client(fetch, getToken).getJob('job1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SidecarError);
    expect(error).toMatchObject({ status: 401, type: 'unauthorized', message: 'revoked' });
    expect(calls).toHaveLength(2);
    expect(getToken).toHaveBeenCalledTimes(2);
  });

  it('401s of concurrent requests share one renewal', async () => {
    const { getToken, sub } = tokens();
    let gate!: () => void;
    const opened = new Promise<void>((resolve) => (gate = resolve));
    let seen = 0;
    const { fetch, calls } = mockFetch(
      ...Array.from({ length: 3 }, () => async () => {
        if (++seen === 3) gate();
        await opened;
        return json({ error: { type: 'unauthorized', message: 'expired' } }, 401);
      }),
      ...Array.from({ length: 3 }, () => () => json(job())),
    );
    const c = client(fetch, getToken);
    await Promise.all([c.getJob('a'), c.getJob('b'), c.getJob('c')]);
    expect(getToken).toHaveBeenCalledTimes(2);
    expect(calls.map((call) => sub(call.headers.authorization))).toEqual(['user-1', 'user-1', 'user-1', 'user-2', 'user-2', 'user-2']);
  });

  it('a failing getToken rejects the request without sending it; a still-valid token outlives a failed renewal', async () => {
    const failing = vi.fn(() => Promise.reject(new Error('backend down')));
    const none = mockFetch();
    await expect(client(none.fetch, failing).getJob('a')).rejects.toThrow('backend down');
    expect(none.calls).toHaveLength(0);

    let fail = false;
    const flaky = vi.fn(() => (fail ? Promise.reject(new Error('backend down')) : Promise.resolve(jwt({ exp: Math.floor(T0 / 1000) + 900 }))));
    const { fetch, calls } = mockFetch(() => json(job()), () => json(job()));
    const c = client(fetch, flaky);
    await c.getJob('a');
    fail = true;
    vi.setSystemTime(T0 + 850_000); // due for renewal, not expired
    await c.getJob('a');
    expect(flaky).toHaveBeenCalledTimes(2);
    expect(calls[1]?.headers.authorization).toBe(calls[0]?.headers.authorization);
    vi.setSystemTime(T0 + 901_000); // expired: no fallback
    await expect(c.getJob('a')).rejects.toThrow('backend down');
  });

  it('an abort while waiting for getToken rejects with AbortError', async () => {
    const { fetch, calls } = mockFetch();
    const c = client(fetch, () => new Promise<string>(() => undefined));
    const controller = new AbortController();
    const pending = c.getJob('a', { signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    expect(calls).toHaveLength(0);
  });

  it('clearToken() makes the next request ask again', async () => {
    const { getToken } = tokens();
    const { fetch } = mockFetch(() => json(job()), () => json(job()));
    const c = client(fetch, getToken);
    await c.getJob('a');
    c.clearToken();
    await c.getJob('a');
    expect(getToken).toHaveBeenCalledTimes(2);
  });
});

describe('event streams with tokens', () => {
  const frames = [
    frame(1, 'status', { status: 'running' }),
    frame(2, 'token', { text: 'Dry ' }),
    frame(3, 'token', { text: 'spell' }),
    frame(4, 'done', job()),
  ];

  it('each reconnection (with Last-Event-ID) carries a fresh token', async () => {
    const { getToken, sub } = tokens(900);
    const { fetch, calls } = mockFetch(
      (c) => {
        vi.setSystemTime(T0 + 880_000); // the stream outlives its token's refresh point
        return sse(frames.slice(0, 2), 'drop', c.signal);
      },
      (c) => sse(frames.slice(2), 'close', c.signal),
    );
    const events = await collect(client(fetch, getToken).streamJob('job1'));
    expect(events.map((e) => e.id)).toEqual([1, 2, 3, 4]);
    expect(calls.map((call) => sub(call.headers.authorization))).toEqual(['user-1', 'user-2']);
    expect(calls[1]?.headers['last-event-id']).toBe('2');
  });

  it('a reconnection refused with 401 renews the token and resumes where it stopped', async () => {
    let n = 0;
    const getToken = vi.fn(() => `opaque-${++n}`);
    const { fetch, calls } = mockFetch(
      (c) => sse(frames.slice(0, 2), 'drop', c.signal),
      () => json({ error: { type: 'unauthorized', message: 'token expired' } }, 401),
      (c) => sse(frames.slice(2), 'close', c.signal),
    );
    const events = await collect(client(fetch, getToken).streamJob('job1'));
    expect(events.map((e) => e.id)).toEqual([1, 2, 3, 4]);
    expect(calls.map((call) => [call.headers.authorization, call.headers['last-event-id']])).toEqual([
      ['Bearer opaque-1', undefined],
      ['Bearer opaque-1', '2'],
      ['Bearer opaque-2', '2'],
    ]);
  });
});

/** A stand-in for the browser's EventSource: records its URL, events are emitted by the test. */
class FakeEventSource {
  static instances: FakeEventSource[] = [];
  readonly listeners = new Map<string, ((event: Event) => void)[]>();
  closed = false;

  constructor(readonly url: string) {
    FakeEventSource.instances.push(this);
  }

  addEventListener(type: string, listener: (event: Event) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  close(): void {
    this.closed = true;
  }

  emit(type: string, data?: unknown, id?: number): void {
    const event =
      data === undefined ? new Event(type) : new MessageEvent(type, { data: JSON.stringify(data), lastEventId: id === undefined ? '' : String(id) });
    for (const listener of this.listeners.get(type) ?? []) listener(event);
  }
}

describe("transport: 'eventsource'", () => {
  beforeEach(() => {
    FakeEventSource.instances = [];
  });

  it('puts a fresh token in ?access_token= on every connection, and resumes with last_event_id', async () => {
    const { getToken, sub } = tokens(900);
    const { fetch, calls } = mockFetch();
    const c = client(fetch, getToken, { transport: 'eventsource', EventSource: FakeEventSource });
    const seen: JobEvent[] = [];
    const run = (async () => {
      for await (const event of c.streamJob('job 1')) seen.push(event);
    })();
    await vi.waitFor(() => expect(FakeEventSource.instances).toHaveLength(1));
    const first = FakeEventSource.instances[0]!;
    const url = new URL(first.url);
    expect(url.origin + url.pathname).toBe(`${BASE}/api/jobs/job%201/events`);
    expect(sub(`Bearer ${url.searchParams.get('access_token')}`)).toBe('user-1');
    expect(url.searchParams.has('last_event_id')).toBe(false);
    first.emit('open');
    first.emit('status', { status: 'running' }, 1);
    first.emit('token', { text: 'Dry ' }, 2);
    await vi.waitFor(() => expect(seen).toHaveLength(2));
    vi.setSystemTime(T0 + 880_000);
    first.emit('error'); // the connection dropped: closed, then reopened with a fresh token
    await vi.waitFor(() => expect(FakeEventSource.instances).toHaveLength(2));
    expect(first.closed).toBe(true);
    const second = FakeEventSource.instances[1]!;
    const url2 = new URL(second.url);
    expect(url2.searchParams.get('last_event_id')).toBe('2');
    expect(sub(`Bearer ${url2.searchParams.get('access_token')}`)).toBe('user-2');
    second.emit('open');
    second.emit('token', { text: 'Dry ' }, 2); // a repeat: skipped
    second.emit('token', { text: 'spell' }, 3);
    second.emit('done', job(), 4);
    await run;
    expect(seen.map((e) => [e.type, e.id])).toEqual([['status', 1], ['token', 2], ['token', 3], ['done', 4]]);
    expect(second.closed).toBe(true);
    expect(calls).toHaveLength(0); // no fetch: the EventSource did it all
    expect(getToken).toHaveBeenCalledTimes(2);
  });

  it('retries a connection that never opens, and stops on abort', async () => {
    const c = new SidecarClient({ baseUrl: BASE, getToken: () => 'sekrit-value', transport: 'eventsource', EventSource: FakeEventSource, reconnect: { initialDelayMs: 1, maxRetries: 1 } });
    const failed = collect(c.streamJob('job1')).catch((e: unknown) => e);
    await vi.waitFor(() => expect(FakeEventSource.instances).toHaveLength(1));
    FakeEventSource.instances[0]!.emit('error');
    await vi.waitFor(() => expect(FakeEventSource.instances).toHaveLength(2));
    FakeEventSource.instances[1]!.emit('error');
    const error = await failed;
    expect(error).toMatchObject({ status: 0, type: 'network_error' });
    expect((error as Error).message).toContain('/api/jobs/job1/events?access_token=…');
    expect((error as Error).message).not.toContain('sekrit');

    const controller = new AbortController();
    const aborted = collect(c.streamJob('job1', { signal: controller.signal })).catch((e: unknown) => e);
    await vi.waitFor(() => expect(FakeEventSource.instances).toHaveLength(3));
    controller.abort();
    expect(await aborted).toMatchObject({ name: 'AbortError' });
    expect(FakeEventSource.instances[2]!.closed).toBe(true);
  });

  it('without auth the URL has no token; an apiKey alone is refused (it would land in a URL)', async () => {
    const c = new SidecarClient({ baseUrl: BASE, transport: 'eventsource', EventSource: FakeEventSource });
    const run = collect(c.streamJob('job1'));
    await vi.waitFor(() => expect(FakeEventSource.instances).toHaveLength(1));
    expect(FakeEventSource.instances[0]!.url).toBe(`${BASE}/api/jobs/job1/events`);
    FakeEventSource.instances[0]!.emit('open');
    FakeEventSource.instances[0]!.emit('done', job(), 1);
    expect(await run).toHaveLength(1);
    expect(() => new SidecarClient({ apiKey: 'service-secret', transport: 'eventsource' })).toThrow(TypeError);
  });
});

describe('mintToken', () => {
  it('POSTs /api/tokens with the service key and answers in a form getToken can return', async () => {
    const expires = '2030-01-01T00:15:00Z';
    const minted = { token: jwt({ sub: 'alice', exp: Date.parse(expires) / 1000 }), expires_at: expires, tenant: 'council', subject: 'alice' };
    const { fetch, calls } = mockFetch(() => json(minted, 201), () => json(job()));
    const service = new SidecarClient({ baseUrl: BASE, fetch, apiKey: 'service-secret' });
    const token = await service.mintToken({ subject: 'alice', ttlSeconds: 900, budgetUsdPerDay: 0.5 });
    expect(calls[0]).toMatchObject({
      method: 'POST',
      url: `${BASE}/api/tokens`,
      headers: { authorization: 'Bearer service-secret', 'content-type': 'application/json' },
      body: { subject: 'alice', ttl_seconds: 900, budget_usd_per_day: 0.5 },
    });
    expect(token).toEqual({ token: minted.token, expiresAt: expires, tenant: 'council', subject: 'alice' });
    await new SidecarClient({ baseUrl: BASE, fetch, getToken: () => Promise.resolve(token) }).getJob('job1');
    expect(calls[1]?.headers.authorization).toBe(`Bearer ${minted.token}`);
  });

  it('sends only the fields given; a token minting gets the 403', async () => {
    const { fetch, calls } = mockFetch(() => json({ error: { type: 'forbidden', message: 'a token cannot mint tokens' } }, 403));
    const error = await new SidecarClient({ fetch, getToken: () => 'tok' }).mintToken({ subject: 'bob' }).catch((e: unknown) => e);
    expect(calls[0]?.body).toEqual({ subject: 'bob' });
    expect(error).toMatchObject({ status: 403, type: 'forbidden' });
  });

  it('getUsage() reads GET /api/usage with the token', async () => {
    const report = { tenant: 'council', subject: 'alice', spent_usd: { day: 0.01 }, reserved_usd: { day: 0 }, budget_usd: { day: 0.5 }, remaining_usd: { day: 0.49 } };
    const { fetch, calls } = mockFetch(() => json(report));
    expect(await new SidecarClient({ fetch, getToken: () => 'tok' }).getUsage()).toEqual(report);
    expect(calls[0]).toMatchObject({ url: '/api/usage', method: 'GET', headers: { authorization: 'Bearer tok' } });
  });
});
