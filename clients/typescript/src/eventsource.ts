/** A native `EventSource` as the messages of one connection, for the `eventsource` transport. */
import { SidecarError } from './errors.js';
import type { SseMessage } from './sse.js';

/** What the client uses of an `EventSource` (the browser's, or any implementation of it). */
export type EventSourceLike = {
  close(): void;
  addEventListener(type: string, listener: (event: Event) => void): void;
};

export type EventSourceConstructor = new (url: string) => EventSourceLike;

const ENDED = Symbol('ended');

/**
 * The messages named `events` of one `EventSource` connection to `url`, until it fails or
 * closes. The source is closed at the first error rather than left to reconnect by itself: its
 * URL carries a token that may have expired by then, so the caller reconnects with a fresh one.
 * A connection that fails before it opens throws (EventSource says nothing of the status, so a
 * refused one is a `network_error` like any other); one that closes after opening just ends.
 */
export async function* readEventSource(
  EventSourceImpl: EventSourceConstructor,
  url: string,
  events: readonly string[],
  signal: AbortSignal,
): AsyncGenerator<SseMessage, void, undefined> {
  const queue: (SseMessage | Error | typeof ENDED)[] = [];
  let wake: (() => void) | undefined;
  const push = (item: SseMessage | Error | typeof ENDED): void => {
    queue.push(item);
    wake?.();
  };
  const source = new EventSourceImpl(url);
  let opened = false;
  for (const name of events) {
    source.addEventListener(name, (event) => {
      const { data, lastEventId } = event as MessageEvent<string>;
      push({ event: name, data, id: lastEventId || undefined, retry: undefined });
    });
  }
  source.addEventListener('open', () => {
    opened = true;
  });
  source.addEventListener('error', (event) => {
    const { data } = event as MessageEvent<unknown>;
    if (typeof data === 'string') {
      // an `event: error` the API sent (the job's record is gone): the stream's reader ends it
      push({ event: 'error', data, id: undefined, retry: undefined });
      return;
    }
    push(opened ? ENDED : new SidecarError(0, 'network_error', `event stream failed: cannot connect to ${url.replace(/([?&]access_token=)[^&]*/, '$1…')}`));
  });
  const onAbort = (): void => push(signal.reason instanceof Error ? signal.reason : new DOMException('The stream was aborted', 'AbortError'));
  if (signal.aborted) onAbort();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      const item = queue.shift()!;
      if (item === ENDED) return;
      if (item instanceof Error) throw item;
      yield item;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    source.close();
  }
}
