/** Following a job's event stream: parsing, de-duplication, and reconnection with Last-Event-ID. */
import { NotFoundError, RateLimitError, SidecarError, isAbortError } from './errors.js';
import type { SseMessage } from './sse.js';
import type { JobEvent, JobEventType } from './types.js';

export type StreamOptions = {
  /** Stops the stream: the iteration throws an `AbortError`. */
  signal?: AbortSignal;
  /** Resume after this event id (events 1..lastEventId are not sent again). */
  lastEventId?: number;
};

export type ReconnectOptions = {
  /** Consecutive failed (re)connections before giving up; default 8. */
  maxRetries?: number;
  /** First backoff delay in ms, doubled per failure; default 250. */
  initialDelayMs?: number;
  /** Longest backoff delay in ms; default 5000. */
  maxDelayMs?: number;
};

/** What streamJob needs from the client: one authenticated connection to the event stream at
 * `path`, resuming after `lastEventId` (0: from the start), as its messages; a refusal throws
 * a typed error. Called again for every reconnection, so each gets a fresh token. */
export type OpenStream = (path: string, lastEventId: number, signal: AbortSignal) => Promise<AsyncIterable<SseMessage>>;

const TYPES: ReadonlySet<string> = new Set<JobEventType>(['status', 'token', 'reset', 'done']);

/** Waits `ms`, or throws the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return isAbortError(reason) ? (reason as Error) : new DOMException('The stream was aborted', 'AbortError');
}

/** May a failed connection be tried again? Network failures, 5xx and 429 may; other 4xx not. */
function retryable(error: unknown): boolean {
  if (!(error instanceof SidecarError)) return true;
  return error.status === 0 || error.status === 429 || error.status >= 500;
}

/**
 * The job's events in order, each exactly once, until `done`. A dropped connection, a stream
 * that closes early or an `event: reconnect` from a stopping API is resumed by reconnecting with
 * `Last-Event-ID`; `first`, when given, is an already open stream to read before that.
 */
export async function* followEvents(
  open: OpenStream,
  jobId: string,
  options: StreamOptions & ReconnectOptions = {},
  first?: AsyncIterable<SseMessage>,
): AsyncGenerator<JobEvent, void, undefined> {
  const { signal, maxRetries = 8, initialDelayMs = 250, maxDelayMs = 5000 } = options;
  const local = new AbortController();
  const stop = (): void => local.abort(abortReason(signal));
  if (signal?.aborted) throw abortReason(signal);
  signal?.addEventListener('abort', stop, { once: true });
  let last = options.lastEventId ?? 0;
  let failures = 0;
  let pending = first;
  const path = `/api/jobs/${encodeURIComponent(jobId)}/events`;
  try {
    for (;;) {
      let delay: number | undefined;
      try {
        const messages = pending ?? (await open(path, last, local.signal));
        pending = undefined;
        for await (const message of messages) {
          if (message.event === 'reconnect') {
            delay = reconnectDelay(message.data, message.retry);
            break;
          }
          if (message.event === 'error') throw streamError(message.data);
          const id = Number(message.id);
          if (!Number.isInteger(id) || id <= last) continue; // already yielded
          last = id;
          failures = 0;
          if (!TYPES.has(message.event)) continue;
          const event = { type: message.event, id, data: JSON.parse(message.data) as unknown } as JobEvent;
          yield event;
          if (event.type === 'done') return;
        }
      } catch (error) {
        if (signal?.aborted) throw abortReason(signal);
        if (isAbortError(error) || !retryable(error)) throw error;
        if (++failures > maxRetries) throw asSidecarError(error);
        delay = error instanceof RateLimitError && error.retryAfter !== undefined
          ? error.retryAfter * 1000
          : backoff(failures, initialDelayMs, maxDelayMs);
      }
      if (delay === undefined) {
        // closed before `done`: reconnect, backing off while no event arrives
        if (++failures > maxRetries) throw new SidecarError(0, 'stream_closed', 'event stream closed before done');
        delay = backoff(failures, initialDelayMs, maxDelayMs);
      }
      if (signal?.aborted) throw abortReason(signal);
      await sleep(delay, local.signal);
    }
  } finally {
    signal?.removeEventListener('abort', stop);
    local.abort();
  }
}

/** The API ended the stream with an `error` event (the job's record expired or was deleted):
 * reconnecting could only meet a 404, so the stream ends here with a typed error. */
function streamError(data: string): SidecarError {
  let body: { type?: unknown; message?: unknown } = {};
  try {
    body = JSON.parse(data) as { type?: unknown; message?: unknown };
  } catch {
    // not JSON: keep the defaults below
  }
  const type = typeof body.type === 'string' ? body.type : 'stream_error';
  const message = typeof body.message === 'string' ? body.message : 'the event stream ended with an error';
  return type === 'not_found' ? new NotFoundError(404, type, message, body) : new SidecarError(410, type, message, body);
}

function asSidecarError(error: unknown): SidecarError {
  if (error instanceof SidecarError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new SidecarError(0, 'network_error', `event stream failed: ${message}`, undefined, { cause: error });
}

function backoff(failures: number, initialMs: number, maxMs: number): number {
  return Math.min(maxMs, initialMs * 2 ** Math.max(0, failures - 1));
}

function reconnectDelay(data: string, retry: number | undefined): number {
  try {
    const parsed = JSON.parse(data) as { retry_ms?: unknown };
    if (typeof parsed.retry_ms === 'number' && parsed.retry_ms >= 0) return parsed.retry_ms;
  } catch {
    // fall back to the frame's retry field
  }
  return retry ?? 1000;
}
