import { JobFailedError, SidecarError, errorFromResponse, isAbortError } from './errors.js';
import { followEvents, type ReconnectOptions, type StreamOptions } from './stream.js';
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
} from './types.js';

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export type SidecarClientOptions = {
  /** Where the API is: `''` or `'/'` for the page's own origin, or e.g. `http://localhost:8000`. */
  baseUrl?: string;
  /** Sent as `Authorization: Bearer <apiKey>` when the API has client keys on. */
  apiKey?: string;
  /** A fetch implementation (default: the global `fetch`, looked up at call time). */
  fetch?: FetchLike;
  /** Extra headers for every request. */
  headers?: Record<string, string>;
  /** How streams reconnect after a dropped connection. */
  reconnect?: ReconnectOptions;
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

/** The Sidecar API from a browser or Node: jobs, their event streams, chat, drought analysis
 * and batches. Every method throws a `SidecarError` (or a subclass) on an error answer. */
export class SidecarClient {
  readonly baseUrl: string;
  private readonly apiKey: string | undefined;
  private readonly fetcher: FetchLike;
  private readonly headers: Record<string, string>;
  private readonly reconnect: ReconnectOptions;

  constructor(options: SidecarClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? '').replace(/\/+$/, '');
    this.apiKey = options.apiKey;
    this.fetcher = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.headers = options.headers ?? {};
    this.reconnect = options.reconnect ?? {};
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
    const events = followEvents(this.opener(), jobId, { ...reconnect, signal: options.signal }, response);
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

  private opener() {
    return (path: string, headers: Record<string, string>, signal: AbortSignal): Promise<Response> =>
      this.send(path, { headers: { Accept: 'text/event-stream', ...headers }, signal });
  }

  private async json<T>(path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.send(path, options);
    return (await response.json()) as T;
  }

  /** One request: auth and JSON headers added, a non-2xx answer thrown as a typed error. */
  private async send(path: string, options: RequestOptions): Promise<Response> {
    const headers: Record<string, string> = { Accept: 'application/json', ...this.headers, ...options.headers };
    if (this.apiKey) headers.Authorization = `Bearer ${this.apiKey}`;
    const init: RequestInit = { method: options.method ?? 'GET', headers };
    if (options.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(options.body);
    }
    if (options.signal) init.signal = options.signal;
    let response: Response;
    try {
      response = await this.fetcher(this.baseUrl + path, init);
    } catch (error) {
      if (isAbortError(error)) throw error;
      const message = error instanceof Error ? error.message : String(error);
      throw new SidecarError(0, 'network_error', `cannot reach Sidecar: ${message}`, undefined, { cause: error });
    }
    if (!response.ok) throw await errorFromResponse(response);
    return response;
  }
}
