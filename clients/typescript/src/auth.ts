/** Browser tokens: what a `getToken()` callback gives, cached and renewed before it expires. */

/** A token and, optionally, when it expires (else the JWT's own `exp` is read). */
export type TokenInfo = {
  token: string;
  /** A `Date`, an ISO 8601 string (as `POST /api/tokens` answers) or epoch milliseconds
   * (epoch seconds are recognised too). */
  expiresAt?: string | Date | number;
};

/**
 * Gives the client a token for the end user: typically a call to the app's own backend, which
 * holds the service key and answers with `POST /api/tokens`'s token (`mintToken()` in Node).
 * Called when there is no token yet, when the cached one is about to expire, and once after a
 * 401; concurrent requests share one call.
 */
export type GetToken = () => Promise<string | TokenInfo> | string | TokenInfo;

/** Renew a token when less than this share of its lifetime is left… */
const REFRESH_SHARE = 0.1;
/** …or less than this (whichever is more), but never in its first half. */
const REFRESH_MARGIN_MS = 30_000;
/** A token that already looks expired when it arrives (a client clock running fast) is still
 * used for this long before asking again; a 401 asks at once. */
const MIN_REUSE_MS = 5_000;

type Cached = {
  token: string;
  /** epoch ms; undefined: unknown (kept until a 401) */
  expiresAt: number | undefined;
  /** when to ask for the next one (epoch ms) */
  refreshAt: number;
};

/** `expiresAt` as epoch ms (undefined when it is not a date). */
export function toEpochMs(value: string | Date | number): number | undefined {
  const ms =
    value instanceof Date ? value.getTime() : typeof value === 'number' ? (value < 1e11 ? value * 1000 : value) : Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

/** The `exp` claim of a JWT, as epoch ms. The payload is only decoded, not verified: the API
 * verifies the signature; the client needs no secret to know when to renew. */
export function jwtExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/');
    const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)))) as { exp?: unknown };
    return typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** The tokens of one client: cached, renewed before they expire, one `getToken()` call at a time. */
export class TokenCache {
  private current: Cached | undefined;
  private pending: Promise<Cached> | undefined;

  constructor(
    private readonly getToken: GetToken,
    private readonly now: () => number = Date.now,
  ) {}

  /** A token to send: the cached one while it is fresh, else a new one. If asking for a new one
   * fails while the cached one has not expired yet, the cached one still serves. */
  async token(): Promise<string> {
    const current = this.current;
    if (current && this.now() < current.refreshAt) return current.token;
    try {
      return (await this.refresh()).token;
    } catch (error) {
      if (current && this.current === current && current.expiresAt !== undefined && this.now() < current.expiresAt) {
        return current.token;
      }
      throw error;
    }
  }

  /** A new token after the API refused `rejected` (401): the one another request already got,
   * if any, else a fresh `getToken()` call (shared with any other request asking now). */
  async renew(rejected: string): Promise<string> {
    if (!this.pending && this.current && this.current.token !== rejected) return this.current.token;
    return (await this.refresh()).token;
  }

  /** Forgets the cached token: the next request asks `getToken()` again. */
  clear(): void {
    this.current = undefined;
  }

  private refresh(): Promise<Cached> {
    if (!this.pending) {
      const pending = this.fetch().finally(() => {
        if (this.pending === pending) this.pending = undefined;
      });
      this.pending = pending;
    }
    return this.pending;
  }

  private async fetch(): Promise<Cached> {
    const result = await this.getToken();
    const { token, expiresAt } = typeof result === 'string' ? { token: result, expiresAt: undefined } : (result ?? {});
    if (typeof token !== 'string' || token === '') throw new TypeError('getToken() gave no token');
    const expiry = expiresAt !== undefined && expiresAt !== null ? toEpochMs(expiresAt) : jwtExpiry(token);
    const now = this.now();
    let refreshAt = Number.POSITIVE_INFINITY;
    if (expiry !== undefined) {
      const lifetime = expiry - now;
      const margin = Math.min(Math.max(REFRESH_MARGIN_MS, lifetime * REFRESH_SHARE), lifetime / 2);
      refreshAt = lifetime > 0 ? expiry - margin : now + MIN_REUSE_MS;
    }
    const cached = { token, expiresAt: expiry, refreshAt };
    this.current = cached;
    return cached;
  }
}
