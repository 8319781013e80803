import type { Job } from './types.js';

/** Any error the API answered with (`{"error": {"type", "message", "field"?}}`), a network
 * failure (`status` 0, type `network_error`) or a job that ended without succeeding. */
export class SidecarError extends Error {
  override name = 'SidecarError';
  /** HTTP status; 0 for a network failure. */
  readonly status: number;
  /** The API's error type, e.g. `invalid_request`, `not_found`, `rate_limited`. */
  readonly type: string;
  /** The decoded response body (or its text when it was not JSON). */
  readonly body: unknown;

  constructor(status: number, type: string, message: string, body?: unknown, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
    this.type = type;
    this.body = body;
  }
}

/** 400 or 422: the request was refused as invalid; `field` names the offending field
 * (e.g. `indicators.spi_3m`) when the API said which. */
export class ValidationError extends SidecarError {
  override name = 'ValidationError';
  readonly field: string | undefined;

  constructor(status: number, type: string, message: string, field: string | undefined, body?: unknown) {
    super(status, type, message, body);
    this.field = field;
  }
}

/** 429: too many requests; `retryAfter` is the `Retry-After` header in seconds, if sent. */
export class RateLimitError extends SidecarError {
  override name = 'RateLimitError';
  readonly retryAfter: number | undefined;

  constructor(type: string, message: string, retryAfter: number | undefined, body?: unknown) {
    super(429, type, message, body);
    this.retryAfter = retryAfter;
  }
}

/** 404: no such job or batch. */
export class NotFoundError extends SidecarError {
  override name = 'NotFoundError';
}

/** A job that finished `failed` or `cancelled` where its result was awaited. */
export class JobFailedError extends SidecarError {
  override name = 'JobFailedError';
  readonly job: Job;

  constructor(job: Job) {
    const type = job.error?.type ?? job.status;
    super(502, type, job.error?.message ?? `job ${job.id} ${job.status}`, job);
    this.job = job;
  }
}

/** Seconds from a `Retry-After` header (delay-seconds or an HTTP date). */
export function parseRetryAfter(header: string | null, now: number = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, (date - now) / 1000);
}

type ErrorBody = { error?: { type?: unknown; message?: unknown; field?: unknown } };

/** The typed error for a non-2xx response. */
export async function errorFromResponse(response: Response): Promise<SidecarError> {
  const text = await response.text().catch(() => '');
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  const error = (body as ErrorBody | undefined)?.error;
  const type = typeof error?.type === 'string' ? error.type : `http_${response.status}`;
  const message =
    typeof error?.message === 'string' ? error.message : `HTTP ${response.status} ${response.statusText}`.trim();
  const status = response.status;
  if (status === 400 || status === 422) {
    const field = typeof error?.field === 'string' ? error.field : undefined;
    return new ValidationError(status, type, message, field, body);
  }
  if (status === 429) {
    return new RateLimitError(type, message, parseRetryAfter(response.headers.get('Retry-After')), body);
  }
  if (status === 404) return new NotFoundError(status, type, message, body);
  return new SidecarError(status, type, message, body);
}

/** True for the error an aborted fetch, stream or wait throws (any realm's DOMException). */
export function isAbortError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null || !('name' in error)) return false;
  return error.name === 'AbortError' || error.name === 'TimeoutError';
}
