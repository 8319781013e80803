// @vitest-environment jsdom
import { act, cleanup, render, screen } from '@testing-library/react';
import { afterEach, expect, it, vi } from 'vitest';
import { SUBJECT, TokenPanel, getToken } from '../demo/token';
import { json, mockFetch } from './helpers';

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

it("the demo's getToken mints for its subject and the panel shows the subject and expiry", async () => {
  const expires = new Date(Date.now() + 900_000).toISOString();
  const minted = (token: string) => json({ token, expires_at: expires, tenant: 'local', subject: SUBJECT }, 201);
  const { fetch, calls } = mockFetch(
    () => minted('eyJhbGciOiJIUzI1NiJ9.first.sig'),
    () => minted('eyJhbGciOiJIUzI1NiJ9.second.sig'),
    () => json({ error: { type: 'unauthorized', message: 'a service key is required' } }, 401),
  );
  vi.stubGlobal('fetch', fetch);
  render(<TokenPanel />);
  expect(screen.getByTestId('token-panel').textContent).toContain('the first request below fetches a token');

  expect(await act(() => getToken())).toMatchObject({ subject: SUBJECT, expiresAt: expires });
  expect(calls[0]).toMatchObject({ url: '/api/tokens', method: 'POST', body: { subject: SUBJECT, ttl_seconds: 900 } });
  expect(calls[0]?.headers.authorization).toBeUndefined(); // auth off: no key in the page
  expect(screen.getByTestId('token-subject').textContent).toBe(SUBJECT);
  expect(screen.getByTestId('token-expiry').querySelector('time')?.getAttribute('datetime')).toBe(expires);
  expect(screen.getByTestId('token-expiry').textContent).toMatch(/in 1[45] min/);

  await act(() => getToken());
  expect(screen.getByTestId('token-panel').textContent).toContain('renewed 1×');

  await act(() => getToken().catch(() => undefined));
  expect(screen.getByRole('alert').textContent).toContain('a service key is required');
});
