import { computed, getCurrentScope, onScopeDispose, shallowRef, type ComputedRef, type ShallowRef } from 'vue';
import { AnalysisSession } from '../analysis.js';
import { SidecarClient, type DroughtResult, type SidecarClientOptions } from '../client.js';
import { ChatSession, type ChatMessage, type ChatSessionOptions } from '../session.js';
import type { Store } from '../store.js';
import type { DroughtAnalysis, DroughtInput, Job, JobEvent, JobOptions, JobStatus } from '../types.js';
import { JobWatch } from '../watch.js';

export type SidecarAPI = {
  /** chat: the conversation; each `send()` streams an answer through a `chat` job */
  messages: ComputedRef<readonly ChatMessage[]>;
  isStreaming: ComputedRef<boolean>;
  error: ComputedRef<Error | null>;
  send: (text: string) => Promise<void>;
  /** Aborts the answer's stream and cancels its job server-side. */
  stop: () => void;
  clear: () => void;
  /** Model, system prompt, … for the next `send()`. */
  configureChat: (options: ChatSessionOptions) => void;

  /** drought analysis: `summary` streams, then `analysis` arrives */
  summary: ComputedRef<string>;
  analysis: ComputedRef<DroughtAnalysis | null>;
  isAnalyzing: ComputedRef<boolean>;
  analysisError: ComputedRef<Error | null>;
  analyzeDrought: (input: DroughtInput, options?: JobOptions) => Promise<DroughtResult | undefined>;
  /** Aborts the analysis' stream and cancels its job. */
  stopAnalysis: () => void;

  /** any job: follow its events */
  job: ComputedRef<Job | null>;
  jobEvents: ComputedRef<readonly JobEvent[]>;
  jobText: ComputedRef<string>;
  jobStatus: ComputedRef<JobStatus | null>;
  jobError: ComputedRef<Error | null>;
  followJob: (jobId: string | null) => Promise<void>;
  unfollowJob: () => void;

  client: SidecarClient;
};

/** A store's state as a shallow ref, kept current until the effect scope ends. */
function bind<S extends object>(store: Store<S>, cleanups: (() => void)[]): ShallowRef<S> {
  const state = shallowRef(store.getState()) as ShallowRef<S>;
  cleanups.push(
    store.subscribe((next) => {
      state.value = next;
    }),
  );
  return state;
}

/**
 * Sidecar as Vue refs: chat, drought analysis and job streams. Call it in `setup()` (or any
 * effect scope): streams are stopped and their jobs cancelled when the scope is disposed.
 * `source` is a client, or the options to build one — e.g. `{ baseUrl, getToken }`, the
 * token then being cached and renewed for every request of this component.
 */
export function useSidecarAPI(source: SidecarClient | SidecarClientOptions, chatOptions: ChatSessionOptions = {}): SidecarAPI {
  const client = SidecarClient.from(source);
  const chat = new ChatSession(client, chatOptions);
  const drought = new AnalysisSession(client);
  const watch = new JobWatch(client);
  const cleanups: (() => void)[] = [];
  const chatState = bind(chat, cleanups);
  const droughtState = bind(drought, cleanups);
  const watchState = bind(watch, cleanups);
  if (getCurrentScope()) {
    onScopeDispose(() => {
      chat.stop();
      drought.stop();
      watch.stop();
      for (const cleanup of cleanups) cleanup();
    });
  }
  return {
    messages: computed(() => chatState.value.messages),
    isStreaming: computed(() => chatState.value.isStreaming),
    error: computed(() => chatState.value.error),
    send: (text) => chat.send(text),
    stop: () => chat.stop(),
    clear: () => chat.clear(),
    configureChat: (options) => chat.configure(options),

    summary: computed(() => droughtState.value.summary),
    analysis: computed(() => droughtState.value.analysis),
    isAnalyzing: computed(() => droughtState.value.isRunning),
    analysisError: computed(() => droughtState.value.error),
    analyzeDrought: (input, options) => drought.run(input, options),
    stopAnalysis: () => drought.stop(),

    job: computed(() => watchState.value.job),
    jobEvents: computed(() => watchState.value.events),
    jobText: computed(() => watchState.value.text),
    jobStatus: computed(() => watchState.value.status),
    jobError: computed(() => watchState.value.error),
    followJob: (jobId) => watch.watch(jobId),
    unfollowJob: () => watch.stop(),

    client,
  };
}
