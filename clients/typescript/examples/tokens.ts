// The README's browser-token example (test/integration/examples.test.ts runs both halves against
// the real stack): your backend mints a short-lived token per signed-in user with the service
// key; the browser's client gets it through getToken and never sees the key.
import { SidecarClient, type MintedToken } from '@ckcias/sidecar-client';

// Backend (Node), e.g. the handler of `POST /session/sidecar-token` once it knows the user.
// `service` is `new SidecarClient({ baseUrl, apiKey: <the secret of tenant:secret> })`.
export function mintFor(service: SidecarClient, userId: string): Promise<MintedToken> {
  return service.mintToken({ subject: userId, ttlSeconds: 900, budgetUsdPerDay: 0.5 });
}

// Browser: the client calls getToken for its first request, again shortly before the token
// expires (and once after a 401), and sends it with every request and stream.
export async function fetchSidecarToken(): Promise<MintedToken> {
  const response = await fetch('/session/sidecar-token', { method: 'POST', credentials: 'include' });
  if (!response.ok) throw new Error(`no Sidecar token: HTTP ${response.status}`);
  return (await response.json()) as MintedToken;
}

export function browserClient(baseUrl: string, getToken = fetchSidecarToken): SidecarClient {
  return new SidecarClient({ baseUrl, getToken });
}
