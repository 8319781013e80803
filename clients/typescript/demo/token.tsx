// The demo's browser token: how a page gets one, and a panel that shows it.
import { SidecarClient, Store, type MintedToken } from '@ckcias/sidecar-client';
import { useEffect, useState, useSyncExternalStore } from 'react';

export const SUBJECT = 'demo-user';

type TokenState = { token: MintedToken | null; renewals: number; error: string | null };

class TokenLog extends Store<TokenState> {
  constructor() {
    super({ token: null, renewals: 0, error: null });
  }

  got(token: MintedToken): void {
    const { token: previous, renewals } = this.getState();
    this.set({ token, renewals: previous ? renewals + 1 : renewals, error: null });
  }

  failed(error: unknown): void {
    this.set({ error: error instanceof Error ? error.message : String(error) });
  }
}

export const tokenLog = new TokenLog();

// The API itself answers POST /api/tokens here because `sidecar up` runs it with
// SIDECAR_AUTH=off. In production the browser never calls it: getToken asks the app's own
// backend, which checks who is signed in and mints the token with the service key it holds
// (`mintToken()` in Node); the key never reaches the page.
const minter = new SidecarClient({ baseUrl: '' });

/** The client's getToken: called for the first request, again shortly before the token
 * expires, and once after a 401. */
export async function getToken(): Promise<MintedToken> {
  try {
    const token = await minter.mintToken({ subject: SUBJECT, ttlSeconds: 900 });
    tokenLog.got(token);
    return token;
  } catch (error) {
    tokenLog.failed(error);
    throw error;
  }
}

function useNow(everyMs: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}

export function TokenPanel() {
  const { token, renewals, error } = useSyncExternalStore(tokenLog.subscribe, tokenLog.getState, tokenLog.getState);
  const now = useNow(1000);
  const expires = token ? Date.parse(token.expiresAt) : NaN;
  const left = Math.max(0, Math.round((expires - now) / 1000));
  return (
    <section className="token-panel" aria-label="Browser token" data-testid="token-panel">
      <h2>Browser token</h2>
      {token ? (
        <dl>
          <dt>Subject</dt>
          <dd data-testid="token-subject">{token.subject}</dd>
          <dt>Tenant</dt>
          <dd>{token.tenant}</dd>
          <dt>Expires</dt>
          <dd data-testid="token-expiry">
            <time dateTime={token.expiresAt}>{new Date(expires).toLocaleTimeString()}</time> (in {Math.floor(left / 60)} min {left % 60} s)
          </dd>
          <dt>Token</dt>
          <dd>
            <code>{token.token.slice(0, 24)}…</code>
            {renewals > 0 && ` (renewed ${renewals}×)`}
          </dd>
        </dl>
      ) : (
        <p>
          Signed in as <strong>{SUBJECT}</strong>; the first request below fetches a token.
        </p>
      )}
      {error && <p role="alert">Could not get a token: {error}</p>}
      <p className="note">
        Every request and stream on this page carries a short-lived token for <code>{SUBJECT}</code>, whose jobs no other
        user can see. The client calls <code>getToken()</code> for its first request and again shortly before the token
        expires. Here the page asks the API for it (<code>POST /api/tokens</code> needs no key while auth is off, as under{' '}
        <code>sidecar up</code>); in production <code>getToken()</code> calls your own backend, which holds the service key
        and mints a token for the signed-in user.
      </p>
    </section>
  );
}
