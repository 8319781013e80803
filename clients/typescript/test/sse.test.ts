import { describe, expect, it } from 'vitest';
import { SseParser, readSse, type SseMessage } from '../src/sse';

const encode = (text: string) => new TextEncoder().encode(text);

function parseInPieces(bytes: Uint8Array, cuts: number[]): SseMessage[] {
  const parser = new SseParser();
  const out: SseMessage[] = [];
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    out.push(...parser.push(bytes.slice(start, cut)));
    start = cut;
  }
  return [...out, ...parser.end()];
}

const STREAM =
  ': keepalive\r\n\r\n' +
  'id: 1\r\nevent: token\r\ndata: {"text":"Māori 🌧️ rain"}\r\n\r\n' +
  'id: 2\nevent: token\ndata: {"text":"ā"}\n\n' +
  'id: 3\revent: done\rdata: {"status":"succeeded"}\r\r';

const EXPECTED = [
  { event: 'token', data: '{"text":"Māori 🌧️ rain"}', id: '1', retry: undefined },
  { event: 'token', data: '{"text":"ā"}', id: '2', retry: undefined },
  { event: 'done', data: '{"status":"succeeded"}', id: '3', retry: undefined },
];

describe('SseParser', () => {
  it('parses a whole stream with CRLF, LF and CR line ends', () => {
    expect(parseInPieces(encode(STREAM), [])).toEqual(EXPECTED);
  });

  it('gives the same messages however the bytes are split (inside UTF-8, between \\r and \\n)', () => {
    const bytes = encode(STREAM);
    for (let cut = 1; cut < bytes.length; cut++) {
      expect(parseInPieces(bytes, [cut])).toEqual(EXPECTED);
    }
    expect(parseInPieces(bytes, Array.from({ length: bytes.length - 1 }, (_, i) => i + 1))).toEqual(EXPECTED);
  });

  it('does not read a \\r\\n split across chunks as two line ends', () => {
    const parser = new SseParser();
    expect(parser.push(encode('data: a\r'))).toEqual([]);
    expect(parser.push(encode('\ndata: b\r'))).toEqual([]);
    expect(parser.push(encode('\n\r'))).toEqual([{ event: 'message', data: 'a\nb', id: undefined, retry: undefined }]);
    expect(parser.push(encode('\n'))).toEqual([]);
  });

  it('splits a 4-byte character across three chunks', () => {
    const bytes = encode('data: 🌾\n\n');
    const parser = new SseParser();
    expect(parser.push(bytes.slice(0, 7))).toEqual([]);
    expect(parser.push(bytes.slice(7, 8))).toEqual([]);
    expect(parser.push(bytes.slice(8))).toEqual([{ event: 'message', data: '🌾', id: undefined, retry: undefined }]);
  });

  it('ignores comments, keeps the last id, reads retry, and drops an unterminated message', () => {
    const parser = new SseParser();
    const messages = parser.push(encode(': hi\nid: 7\nretry: 1500\nevent: reconnect\ndata: {}\n\ndata:x\ndata\n\nevent: token\ndata: cut'));
    expect(messages).toEqual([
      { event: 'reconnect', data: '{}', id: '7', retry: 1500 },
      { event: 'message', data: 'x\n', id: '7', retry: undefined },
    ]);
    expect(parser.end()).toEqual([]);
  });

  it('readSse reads a fetch body and cancels it when left early', async () => {
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(encode('id: 1\nevent: a\ndata: 1\n\nid: 2\nevent: b\ndata: 2\n\n'));
      },
      cancel() {
        cancelled = true;
      },
    });
    for await (const message of readSse(body)) {
      expect(message.event).toBe('a');
      break;
    }
    expect(cancelled).toBe(true);
  });
});
