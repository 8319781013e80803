import { TokenCache, type GetToken } from './auth.js';
import { JobFailedError, SidecarError, errorFromResponse, isAbortError } from './errors.js';
import { readEventSource, type EventSourceConstructor } from './eventsource.js';
import { readSse, type SseMessage } from './sse.js';
import { abortReason, followEvents, type ReconnectOptions, type StreamOptions } from './stream.js';
import type {
  Batch,
  BatchRequest,
  ChatRequest,
  ChatResponse,
  DroughtAnalysis,
  DroughtInput,
  Job,
  JobAccepted,
  JobEvent,
  JobOptions,
  JobRequest,
  ReportFormat,
  ReportRow,
  TokenRequest,
  TokenResponse,
  UsageReport,
} from './types.js';

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export type SidecarClientOptions = {
  /** Where the API is: `''` or `'/'` for the page's own origin, or e.g. `http://localhost:8000`. */
  baseUrl?: string;
  /** A service key's secret (the part after `tenant:`), sent as `Authorization: Bearer <apiKey>`.
   * For servers only: a browser gets short-lived tokens through `getToken` instead. */
  apiKey?: string;
  /**
   * Where a browser gets its token (see `POST /api/tokens`): a string, or `{ token, expiresAt? }`
   * (`mintToken()`'s answer is one). The client caches it, asks again shortly before it expires
   * (from `expiresAt`, else the JWT's `exp`) and once after a 401 (then retries the request
   * once); concurrent requests share one call. Sent as `Authorization: Bearer <token>`, or as
   * `?access_token=` by the `eventsource` transport. Takes the place of `apiKey` when both are given.
   */
  getToken?: GetToken;
  /** A fetch implementation (default: the global `fetch`, looked up at call time). */
  fetch?: FetchLike;
  /** Extra headers for every request (not sent by the `eventsource` transport, which cannot). */
  headers?: Record<string, string>;
  /** How streams reconnect after a dropped connection. */
  reconnect?: ReconnectOptions;
  /**
   * How job event streams are read: `fetch` (default; any headers, exact HTTP errors) or
   * `eventsource`, a native `EventSource` whose URL carries the token as `?access_token=` (a fresh
   * one on every reconnection). It cannot send `apiKey`, which never goes in a URL.
   */
  transport?: 'fetch' | 'eventsource';
  /** The `EventSource` of the `eventsource` transport (default: the global one, at call time). */
  EventSource?: EventSourceConstructor;
};

/** `POST /api/tokens`'s request, in the client's spelling. */
export type MintTokenRequest = {
  /** The end user the token speaks for: its jobs are visible to this subject alone. */
  subject: string;
  /** Lifetime in seconds: 900 when omitted, at most 3600. */
  ttlSeconds?: number;
  /** The subject's own daily budget in US dollars (within the tenant's). */
  budgetUsdPerDay?: number;
};

/** A minted token: what a backend hands the browser, and a valid `getToken()` answer as is. */
export type MintedToken = {
  token: string;
  /** ISO 8601 UTC */
  expiresAt: string;
  tenant: string;
  subject: string;
};

/** Callbacks of a streamed run (`chatStream`, `analyzeDrought`). */
export type RunCallbacks = {
  /** The job's id, as soon as it is known (e.g. to cancel it). */
  onJob?: (jobId: string) => void;
  /** An attempt failed mid-stream and another began: drop the partial text shown so far. */
  onReset?: (attempt: number) => void;
};

export type DroughtOptions = JobOptions &
  RunCallbacks & {
    signal?: AbortSignal;
    /** Each streamed piece of the summary, and the whole summary streamed so far. */
    onToken?: (text: string, summarySoFar: string) => void;
  };

export type DroughtResult = { analysis: DroughtAnalysis; summary: string; job: Job };

type RequestOptions = { method?: string; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal };

/** The job event types an `EventSource` listens for (followEvents ignores any other). */
const STREAM_EVENTS = ['status', 'token', 'reset', 'done', 'reconnect'] as const;

/** `promise`, or the signal's AbortError if it aborts first. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** The Sidecar API from a browser or Node: jobs, their event streams, chat, drought analysis
 * and batches. Every method throws a `SidecarError` (or a subclass) on an error answer. */
export class SidecarClient {
  readonly baseUrl: string;
  private readonly apiKey: string | undefined;
  private readonly tokens: TokenCache | undefined;
  private readonly fetcher: FetchLike;
  private readonly headers: Record<string, string>;
  private readonly reconnect: ReconnectOptions;
  private readonly transport: 'fetch' | 'eventsource';
  private readonly eventSource: EventSourceConstructor | undefined;

  constructor(options: SidecarClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? '').replace(/\/+$/, '');
    this.apiKey = options.apiKey;
    this.tokens = options.getToken ? new TokenCache(options.getToken) : undefined;
    this.fetcher = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.headers = options.headers ?? {};
    this.reconnect = options.reconnect ?? {};
    this.transport = options.transport ?? 'fetch';
    this.eventSource = options.EventSource;
    if (this.transport === 'eventsource' && this.apiKey && !this.tokens) {
      throw new TypeError("transport 'eventsource' puts credentials in the URL: give it getToken, not an apiKey");
    }
  }

  /** The client itself, or a new one built from these options (for hooks that take either). */
  static from(source: SidecarClient | SidecarClientOptions = {}): SidecarClient {
    return source instanceof SidecarClient ? source : new SidecarClient(source);
  }

  /**
   * `POST /api/tokens` with this client's service key: a short-lived token for one end user,
   * to hand to that user's browser (whose client's `getToken` fetches it from your backend).
   * The answer is a valid `getToken()` result as it is. A token cannot mint tokens (403).
   */
  async mintToken(request: MintTokenRequest, options: { signal?: AbortSignal } = {}): Promise<MintedToken> {
    const body: TokenRequest = { subject: request.subject };
    if (request.ttlSeconds !== undefined) body.ttl_seconds = request.ttlSeconds;
    if (request.budgetUsdPerDay !== undefined) body.budget_usd_per_day = request.budgetUsdPerDay;
    const minted = await this.json<TokenResponse>('/api/tokens', { method: 'POST', body, signal: options.signal });
    return { token: minted.token, expiresAt: minted.expires_at, tenant: minted.tenant, subject: minted.subject };
  }

  /** `GET /api/usage`: what the caller (the tenant for a service key, the subject for a token)
   * has spent and has left, per UTC day and month. */
  getUsage(options: { signal?: AbortSignal } = {}): Promise<UsageReport> {
    return this.json<UsageReport>('/api/usage', { signal: options.signal });
  }

  /** Forgets the cached `getToken()` token (e.g. at sign-out): the next request asks again. */
  clearToken(): void {
    this.tokens?.clear();
  }

  /** `POST /api/chat`: waits for the answer; its text is `.response`. */
  chat(request: ChatRequest, options: { signal?: AbortSignal } = {}): Promise<ChatResponse> {
    return this.json<ChatResponse>('/api/chat', { method: 'POST', body: request, signal: options.signal });
  }

  /** `POST /api/chat/stream`: the answer's text chunks as they are written. A dropped connection
   * is resumed from where it stopped; a failed job throws `JobFailedError`. */
  async *chatStream(
    request: ChatRequest,
    options: { signal?: AbortSignal } & RunCallbacks = {},
  ): AsyncGenerator<string, void, undefined> {
    const response = await this.send('/api/chat/stream', {
      method: 'POST',
      body: request,
      signal: options.signal,
      headers: { Accept: 'text/event-stream' },
    });
    // Cross-origin, the header is readable only if the API's CORS config exposes it; without
    // the id a dropped stream cannot be resumed, so it fails instead.
    const jobId = response.headers.get('X-Job-Id') ?? '';
    if (jobId) options.onJob?.(jobId);
    const reconnect = jobId ? this.reconnect : { ...this.reconnect, maxRetries: 0 };
    const events = followEvents(this.opener(), jobId, { ...reconnect, signal: options.signal }, this.messages(response));
    for await (const event of events) {
      if (event.type === 'token') yield event.data.text;
      else if (event.type === 'reset') options.onReset?.(event.data.attempt);
      else if (event.type === 'done' && event.data.status !== 'succeeded') throw new JobFailedError(event.data);
    }
  }

  /** `POST /api/jobs`: queues a job; 202 with its id and links (200 for a repeat). */
  submitJob(body: JobRequest, options: { signal?: AbortSignal } = {}): Promise<JobAccepted> {
    return this.json<JobAccepted>('/api/jobs', { method: 'POST', body, signal: options.signal });
  }

  /** `GET /api/jobs/{id}`. */
  getJob(id: string, options: { signal?: AbortSignal } = {}): Promise<Job> {
    return this.json<Job>(`/api/jobs/${encodeURIComponent(id)}`, { signal: options.signal });
  }

  /** `DELETE /api/jobs/{id}`: a queued job never runs; a running one stops. */
  cancelJob(id: string): Promise<Job> {
    return this.json<Job>(`/api/jobs/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }

  /** The job's events (`status`, `token`, `reset`, `done`), each once, in order, until `done`.
   * Reconnects with `Last-Event-ID` by itself; `signal` stops it (the loop throws AbortError). */
  streamJob(id: string, options: StreamOptions = {}): AsyncGenerator<JobEvent, void, undefined> {
    return followEvents(this.opener(), id, { ...this.reconnect, ...options });
  }

  /** Follows a job to its end and returns it (whatever its final status). */
  async waitForJob(id: string, options: StreamOptions = {}): Promise<Job> {
    for await (const event of this.streamJob(id, options)) {
      if (event.type === 'done') return event.data;
    }
    return this.getJob(id);
  }

  /**
   * Submits a `drought_analysis` job and follows it: `onToken` gets the summary as it is
   * written (`onReset` says to drop it and start again), and the promise resolves with the
   * validated analysis, the summary and the final job — or rejects with `JobFailedError`.
   */
  async analyzeDrought(input: DroughtInput, options: DroughtOptions = {}): Promise<DroughtResult> {
    const { signal, onToken, onReset, onJob, ...jobOptions } = options;
    const accepted = await this.submitJob({ ...jobOptions, type: 'drought_analysis', input }, { signal });
    onJob?.(accepted.id);
    let summary = '';
    for await (const event of this.streamJob(accepted.id, { signal })) {
      if (event.type === 'token') {
        summary += event.data.text;
        onToken?.(event.data.text, summary);
      } else if (event.type === 'reset') {
        summary = '';
        onReset?.(event.data.attempt);
      } else if (event.type === 'done') {
        const job = event.data;
        const analysis = job.result?.analysis;
        if (job.status !== 'succeeded' || !analysis) throw new JobFailedError(job);
        return { analysis, summary: analysis.summary, job };
      }
    }
    throw new SidecarError(0, 'stream_closed', 'event stream ended without done');
  }

  /** `POST /api/batches`. */
  createBatch(body: BatchRequest): Promise<Batch> {
    return this.json<Batch>('/api/batches', { method: 'POST', body });
  }

  /** `GET /api/batches/{id}`: progress counts, cost and ETA. */
  getBatch(id: string): Promise<Batch> {
    return this.json<Batch>(`/api/batches/${encodeURIComponent(id)}`);
  }

  /** `DELETE /api/batches/{id}`: cancels every job not yet finished. */
  cancelBatch(id: string): Promise<Batch> {
    return this.json<Batch>(`/api/batches/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }

  /** `GET /api/batches/{id}/report`: rows ranked by risk (`json`), or Markdown / CSV text. */
  batchReport(id: string, format?: 'json'): Promise<ReportRow[]>;
  batchReport(id: string, format: 'md' | 'csv'): Promise<string>;
  async batchReport(id: string, format: ReportFormat = 'json'): Promise<ReportRow[] | string> {
    const path = `/api/batches/${encodeURIComponent(id)}/report?format=${format}`;
    if (format === 'json') return this.json<ReportRow[]>(path);
    return (await this.send(path, {})).text();
  }

  /** Opens event streams for followEvents: each (re)connection authenticated afresh. */
  private opener() {
    return async (path: string, lastEventId: number, signal: AbortSignal): Promise<AsyncIterable<SseMessage>> => {
      if (this.transport === 'eventsource') {
        const EventSourceImpl = this.eventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource;
        if (!EventSourceImpl) throw new TypeError("transport 'eventsource' needs an EventSource (none in this runtime)");
        const url = await this.streamUrl(path, lastEventId, signal);
        return readEventSource(EventSourceImpl, url, STREAM_EVENTS, signal);
      }
      const headers: Record<string, string> = { Accept: 'text/event-stream' };
      if (lastEventId > 0) headers['Last-Event-ID'] = String(lastEventId);
      return this.messages(await this.send(path, { headers, signal }));
    };
  }

  /** The URL of an event stream for a native EventSource, which cannot send headers: the
   * position as `last_event_id` and the token (fresh) as `access_token` in the query. */
  private async streamUrl(path: string, lastEventId: number, signal?: AbortSignal): Promise<string> {
    const params = new URLSearchParams();
    if (lastEventId > 0) params.set('last_event_id', String(lastEventId));
    if (this.tokens) params.set('access_token', await abortable(this.tokens.token(), signal));
    const query = params.toString();
    return this.baseUrl + path + (query ? (path.includes('?') ? '&' : '?') + query : '');
  }

  private messages(response: Response): AsyncIterable<SseMessage> {
    if (!response.body) throw new SidecarError(0, 'network_error', 'event stream has no body');
    return readSse(response.body);
  }

  private async json<T>(path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.send(path, options);
    return (await response.json()) as T;
  }

  /** One request: auth and JSON headers added, a non-2xx answer thrown as a typed error. With
   * `getToken`, a 401 renews the token and tries once more. */
  private async send(path: string, options: RequestOptions): Promise<Response> {
    let credential = this.tokens ? await abortable(this.tokens.token(), options.signal) : this.apiKey;
    let response = await this.request(path, options, credential);
    if (response.status === 401 && this.tokens && credential !== undefined) {
      await response.body?.cancel().catch(() => undefined);
      credential = await abortable(this.tokens.renew(credential), options.signal);
      response = await this.request(path, options, credential);
    }
    if (!response.ok) throw await errorFromResponse(response);
    return response;
  }

  private async request(path: string, options: RequestOptions, credential: string | undefined): Promise<Response> {
    const headers: Record<string, string> = { Accept: 'application/json', ...this.headers, ...options.headers };
    if (credential) headers.Authorization = `Bearer ${credential}`;
    const init: RequestInit = { method: options.method ?? 'GET', headers };
    if (options.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(options.body);
    }
    if (options.signal) init.signal = options.signal;
    try {
      return await this.fetcher(this.baseUrl + path, init);
    } catch (error) {
      if (isAbortError(error)) throw error;
      const message = error instanceof Error ? error.message : String(error);
      throw new SidecarError(0, 'network_error', `cannot reach Sidecar: ${message}`, undefined, { cause: error });
    }
  }
}
