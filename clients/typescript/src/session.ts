import type { SidecarClient } from './client.js';
import { JobFailedError, isAbortError } from './errors.js';
import { ClientStore } from './store.js';
import type { HistoryItem } from './types.js';

export type ChatMessage = {
  id: number;
  role: 'user' | 'assistant';
  content: string;
  /** `streaming` while tokens arrive; `stopped` after stop(); `error` when the job failed */
  status: 'done' | 'streaming' | 'stopped' | 'error';
  jobId?: string;
};

export type ChatState = { messages: readonly ChatMessage[]; isStreaming: boolean; error: Error | null };

export type ChatSessionOptions = {
  model?: string;
  system?: string;
  maxTokens?: number;
  temperature?: number;
  /** `chat` (default) or `drought_assistant` (a drought-aware system prompt) */
  type?: 'chat' | 'drought_assistant';
};

/**
 * A conversation: each `send()` submits a `chat` job carrying the conversation so far as
 * `history` and streams its answer into the last message; `stop()` aborts the stream and
 * cancels the job server-side. Framework-free; the React and Vue bindings wrap it.
 */
export class ChatSession extends ClientStore<ChatState> {
  private controller: AbortController | undefined;
  private jobId: string | undefined;
  private nextId = 1;

  constructor(
    client: SidecarClient,
    private options: ChatSessionOptions = {},
  ) {
    super(client, { messages: [], isStreaming: false, error: null });
  }

  /** Changes the model, system prompt, … for the next `send()`; the conversation stays. */
  configure(options: ChatSessionOptions): void {
    this.options = options;
  }

  /** The finished turns, as the API's `history`. */
  history(): HistoryItem[] {
    return this.getState()
      .messages.filter((m) => (m.status === 'done' || m.status === 'stopped') && m.content !== '')
      .map(({ role, content }) => ({ role, content }));
  }

  async send(text: string): Promise<void> {
    const message = text.trim();
    if (!message) return;
    if (this.controller) this.stop();
    const history = this.history();
    const controller = new AbortController();
    this.controller = controller;
    const replyId = this.nextId + 1;
    const user: ChatMessage = { id: this.nextId, role: 'user', content: message, status: 'done' };
    const reply: ChatMessage = { id: replyId, role: 'assistant', content: '', status: 'streaming' };
    this.nextId += 2;
    this.set({ messages: [...this.getState().messages, user, reply], isStreaming: true, error: null });
    const { model, system, maxTokens, temperature, type = 'chat' } = this.options;
    try {
      const job = await this.client.submitJob({
        type,
        input: { message, ...(history.length ? { history } : {}), ...(system ? { system } : {}) },
        ...(model ? { model } : {}),
        ...(maxTokens ? { max_tokens: maxTokens } : {}),
        ...(temperature !== undefined ? { temperature } : {}),
        priority: 'interactive',
      });
      this.update(replyId, { jobId: job.id });
      if (controller.signal.aborted) {
        await this.client.cancelJob(job.id).catch(() => undefined);
        throw controller.signal.reason;
      }
      this.jobId = job.id;
      for await (const event of this.client.streamJob(job.id, { signal: controller.signal })) {
        if (event.type === 'token') this.update(replyId, (m) => ({ content: m.content + event.data.text }));
        else if (event.type === 'reset') this.update(replyId, { content: '' });
        else if (event.type === 'done' && event.data.status === 'succeeded') {
          this.update(replyId, (m) => ({ content: event.data.result?.text ?? m.content, status: 'done' }));
        } else if (event.type === 'done') {
          this.update(replyId, { status: event.data.status === 'cancelled' ? 'stopped' : 'error' });
          if (event.data.status === 'failed') this.set({ error: new JobFailedError(event.data) });
        }
      }
    } catch (error) {
      if (isAbortError(error)) this.update(replyId, { status: 'stopped' });
      else {
        this.update(replyId, { status: 'error' });
        this.set({ error: error instanceof Error ? error : new Error(String(error)) });
      }
    } finally {
      if (this.controller === controller) {
        this.controller = undefined;
        this.jobId = undefined;
        this.set({ isStreaming: false });
      }
    }
  }

  /** Aborts the stream and cancels its job server-side. */
  stop(): void {
    const jobId = this.jobId;
    this.controller?.abort();
    this.controller = undefined;
    this.jobId = undefined;
    if (jobId) void this.client.cancelJob(jobId).catch(() => undefined);
    if (this.getState().isStreaming) this.set({ isStreaming: false });
  }

  /** Stops any stream and forgets the conversation. */
  clear(): void {
    this.stop();
    this.set({ messages: [], error: null });
  }

  private update(id: number, patch: Partial<ChatMessage> | ((m: ChatMessage) => Partial<ChatMessage>)): void {
    const messages = this.getState().messages.map((m) =>
      m.id === id ? { ...m, ...(typeof patch === 'function' ? patch(m) : patch) } : m,
    );
    this.set({ messages });
  }
}
