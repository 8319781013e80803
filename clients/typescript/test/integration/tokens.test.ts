// Browser tokens against the real stack: the keyed API (SIDECAR_AUTH=on, a tenant:secret key)
// mints tokens for a service key; a token-holding client submits, reads and streams its own
// jobs — by header through fetch, and by ?access_token= through an EventSource — and another
// subject's token sees none of them.
import { describe, expect, inject, it, vi } from 'vitest';
import { NotFoundError, SidecarClient, readSse, type JobEvent, type MintedToken } from '../../src/index';

const stack = inject('stack');
const service = new SidecarClient({ baseUrl: stack.keyed_url, apiKey: stack.api_key });

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** A browser-side client whose getToken asks "the app's backend" (here: the service client). */
function browser(subject: string, options: { transport?: 'eventsource' } = {}) {
  const getToken = vi.fn((): Promise<MintedToken> => service.mintToken({ subject, ttlSeconds: 300 }));
  return { getToken, client: new SidecarClient({ baseUrl: stack.keyed_url, getToken, ...options, EventSource: NodeEventSource }) };
}

/** An EventSource for Node 20 (which has none), as limited as the browser's: a plain GET with
 * no headers but Accept, so only the URL can carry credentials. */
const opened: { url: string; status: number }[] = [];
class NodeEventSource {
  private readonly controller = new AbortController();
  private readonly listeners = new Map<string, ((event: Event) => void)[]>();

  constructor(readonly url: string) {
    void this.run();
  }

  addEventListener(type: string, listener: (event: Event) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  close(): void {
    this.controller.abort();
  }

  private emit(type: string, event: Event): void {
    for (const listener of this.listeners.get(type) ?? []) listener(event);
  }

  private async run(): Promise<void> {
    try {
      const response = await fetch(this.url, { headers: { Accept: 'text/event-stream' }, signal: this.controller.signal });
      opened.push({ url: this.url, status: response.status });
      if (!response.ok || !response.body) return this.emit('error', new Event('error'));
      this.emit('open', new Event('open'));
      for await (const m of readSse(response.body)) {
        this.emit(m.event, new MessageEvent(m.event, { data: m.data, lastEventId: m.id ?? '' }));
      }
      this.emit('error', new Event('error'));
    } catch {
      if (!this.controller.signal.aborted) this.emit('error', new Event('error'));
    }
  }
}

describe('browser tokens', () => {
  it('a service key mints a token for a subject', async () => {
    const before = Date.now();
    const minted = await service.mintToken({ subject: 'alice', ttlSeconds: 120, budgetUsdPerDay: 1 });
    expect(minted).toMatchObject({ tenant: stack.tenant, subject: 'alice' });
    expect(minted.token.split('.')).toHaveLength(3); // a JWT
    const expires = Date.parse(minted.expiresAt);
    expect(expires).toBeGreaterThan(before + 100_000);
    expect(expires).toBeLessThan(Date.now() + 125_000);
  });

  it("a token submits and streams its subject's job (header and ?access_token=), and another subject gets 404", async () => {
    const alice = browser('alice');
    const accepted = await alice.client.submitJob({ type: 'chat', input: { message: 'Is my dam safe?' }, cache: false });
    const events = await collect(alice.client.streamJob(accepted.id));
    const done = events.at(-1) as Extract<JobEvent, { type: 'done' }>;
    expect(done).toMatchObject({ type: 'done', data: { id: accepted.id, status: 'succeeded' } });
    expect((await alice.client.getJob(accepted.id)).status).toBe('succeeded');
    expect(alice.getToken).toHaveBeenCalledTimes(1);
    const usage = await alice.client.getUsage();
    expect(usage).toMatchObject({ tenant: stack.tenant, subject: 'alice' });
    expect(usage.spent_usd.day).toBeCloseTo(done.data.cost_usd, 6); // alice's only job

    // The same stream through an EventSource, which cannot send headers: the token rides in the URL.
    const viaEventSource = new SidecarClient({ baseUrl: stack.keyed_url, getToken: alice.getToken, transport: 'eventsource', EventSource: NodeEventSource });
    expect(await collect(viaEventSource.streamJob(accepted.id))).toEqual(events);
    const url = new URL(opened.at(-1)!.url);
    expect(url.pathname).toBe(`/api/jobs/${accepted.id}/events`);
    expect(url.searchParams.get('access_token')?.split('.')).toHaveLength(3);
    expect(opened.at(-1)!.status).toBe(200);

    // The tenant's service key sees it; another subject's token does not, on any route.
    expect((await service.getJob(accepted.id)).id).toBe(accepted.id);
    const bob = browser('bob');
    await expect(bob.client.getJob(accepted.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(collect(bob.client.streamJob(accepted.id))).rejects.toBeInstanceOf(NotFoundError);
    await expect(bob.client.cancelJob(accepted.id)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('a token cannot mint tokens (403), and a forged one is 401', async () => {
    const minted = await service.mintToken({ subject: 'carol' });
    const holder = new SidecarClient({ baseUrl: stack.keyed_url, apiKey: minted.token });
    await expect(holder.mintToken({ subject: 'mallory' })).rejects.toMatchObject({ status: 403 });
    const [header, payload] = minted.token.split('.');
    const forged = new SidecarClient({ baseUrl: stack.keyed_url, apiKey: `${header}.${payload}.AAAA` });
    await expect(forged.getJob('x')).rejects.toMatchObject({ status: 401, type: 'unauthorized' });
  });

  it('a refused token (401) is renewed once and the request retried', async () => {
    const real = await service.mintToken({ subject: 'dave' });
    const [header, payload] = real.token.split('.');
    const answers = [`${header}.${payload}.AAAA`, real.token];
    const getToken = vi.fn(() => answers.shift()!);
    const dave = new SidecarClient({ baseUrl: stack.keyed_url, getToken });
    const accepted = await dave.submitJob({ type: 'chat', input: { message: 'Hello' }, cache: false });
    expect(getToken).toHaveBeenCalledTimes(2);
    expect((await dave.waitForJob(accepted.id)).status).toBe('succeeded');
  });

  it('with auth off (local development) the demo can mint its own token', async () => {
    const minted = await new SidecarClient({ baseUrl: stack.url }).mintToken({ subject: 'demo-user' });
    expect(minted).toMatchObject({ tenant: 'local', subject: 'demo-user' });
    const user = new SidecarClient({ baseUrl: stack.url, getToken: () => minted });
    const accepted = await user.submitJob({ type: 'chat', input: { message: 'Hi' }, cache: false });
    expect((await user.waitForJob(accepted.id)).status).toBe('succeeded');
  });
});
