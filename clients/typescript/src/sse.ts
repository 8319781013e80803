/** A small Server-Sent Events parser (the WHATWG event-stream format) for `fetch` bodies. */

export type SseMessage = {
  /** `message` when the frame named none */
  event: string;
  data: string;
  /** the last `id:` seen on the stream so far (ids persist across frames, as in EventSource) */
  id: string | undefined;
  /** a `retry:` value in ms sent with this frame */
  retry: number | undefined;
};

/**
 * Incremental parser: feed it bytes as they arrive, in chunks split anywhere — inside a
 * multi-byte UTF-8 character, between the `\r` and `\n` of a line end — and take the complete
 * messages each call returns. Lines may end in `\r\n`, `\n` or `\r`; `:` lines are comments.
 */
export class SseParser {
  private readonly decoder = new TextDecoder('utf-8');
  private buffer = '';
  private pendingCR = false;
  private data: string[] = [];
  private event = '';
  private lastId: string | undefined;
  private retry: number | undefined;

  /** Messages completed by this chunk. */
  push(chunk: Uint8Array): SseMessage[] {
    return this.feed(this.decoder.decode(chunk, { stream: true }));
  }

  /** Call at end of stream: flushes the decoder; an unterminated last message is dropped. */
  end(): SseMessage[] {
    const messages = this.feed(this.decoder.decode());
    this.buffer = '';
    this.data = [];
    return messages;
  }

  private feed(text: string): SseMessage[] {
    if (text === '') return [];
    if (this.pendingCR && text.startsWith('\n')) text = text.slice(1);
    this.pendingCR = text.endsWith('\r');
    this.buffer += text;
    const lines = this.buffer.split(/\r\n|\r|\n/);
    this.buffer = lines.pop() ?? '';
    const messages: SseMessage[] = [];
    for (const line of lines) {
      const message = this.line(line);
      if (message) messages.push(message);
    }
    return messages;
  }

  private line(line: string): SseMessage | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.lastId = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
    return undefined;
  }

  private dispatch(): SseMessage | undefined {
    const retry = this.retry;
    this.retry = undefined;
    if (this.data.length === 0) {
      this.event = '';
      return undefined;
    }
    const message = { event: this.event || 'message', data: this.data.join('\n'), id: this.lastId, retry };
    this.data = [];
    this.event = '';
    return message;
  }
}

/** The messages of an event-stream body, as they arrive; cancels the body when left early. */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage, void, undefined> {
  const reader = body.getReader();
  const parser = new SseParser();
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        finished = true;
        yield* parser.end();
        return;
      }
      yield* parser.push(value);
    }
  } finally {
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
