import { expect, inject, it } from 'vitest';
import { tour } from '../../examples/node';
import { browserClient, mintFor } from '../../examples/tokens';
import { SidecarClient } from '../../src/index';

it('the README tour runs against the real stack', async () => {
  const log = await tour(new SidecarClient({ baseUrl: inject('stack').url }));
  expect(log.some((line) => line.startsWith('token: '))).toBe(true);
  expect(log).toContain('invalid indicators.soil_moisture_pct');
  expect(log.some((line) => line.startsWith('succeeded, $'))).toBe(true);
});

it("the README's token example: the backend mints, the browser's client uses the token", async () => {
  const { keyed_url, api_key, tenant } = inject('stack');
  const service = new SidecarClient({ baseUrl: keyed_url, apiKey: api_key });
  const minted: string[] = [];
  const client = browserClient(keyed_url, async () => {
    const token = await mintFor(service, 'erin');
    minted.push(token.subject);
    expect(token.tenant).toBe(tenant);
    return token;
  });
  const job = await client.submitJob({ type: 'chat', input: { message: 'Will it rain?' }, cache: false });
  expect((await client.waitForJob(job.id)).status).toBe('succeeded');
  expect(minted).toEqual(['erin']);
});
