import { useEffect, useMemo, useState, useSyncExternalStore } from 'react';
import { AnalysisSession, type AnalysisState } from '../analysis.js';
import type { DroughtResult, SidecarClient } from '../client.js';
import { ChatSession, type ChatSessionOptions, type ChatState } from '../session.js';
import type { ClientStore } from '../store.js';
import type { DroughtInput, JobOptions } from '../types.js';
import { JobWatch, type JobWatchState } from '../watch.js';
import { useSidecarClient, type ClientSource } from './context.js';

/** One store per component, kept across renders; its client follows the latest one given. */
function useClientStore<T extends { setClient: ClientStore<object>['setClient'] }>(client: SidecarClient, create: (client: SidecarClient) => T): T {
  const [store] = useState(() => create(client));
  useEffect(() => store.setClient(client), [store, client]);
  return store;
}

/** `client`: a client, or options to build one (`{ baseUrl, getToken }`; see `SidecarProvider`). */
export type UseSidecarChatOptions = ChatSessionOptions & { client?: ClientSource };

export type UseSidecarChat = ChatState & {
  /** Sends a message with the conversation so far as history; resolves when the answer ends. */
  send: (text: string) => Promise<void>;
  /** Aborts the answer's stream and cancels its job server-side. */
  stop: () => void;
  /** Stops and forgets the conversation. */
  clear: () => void;
};

/** A streamed conversation through `chat` jobs (see `ChatSession`). */
export function useSidecarChat(options: UseSidecarChatOptions = {}): UseSidecarChat {
  const { client: given, model, system, maxTokens, temperature, type } = options;
  const client = useSidecarClient(given);
  const session = useClientStore(client, (c) => new ChatSession(c));
  useEffect(() => {
    session.configure({ model, system, maxTokens, temperature, type });
  }, [session, model, system, maxTokens, temperature, type]);
  useEffect(() => () => session.stop(), [session]);
  const state = useSyncExternalStore(session.subscribe, session.getState, session.getState);
  return useMemo(
    () => ({
      ...state,
      send: (text: string) => session.send(text),
      stop: () => session.stop(),
      clear: () => session.clear(),
    }),
    [state, session],
  );
}

/** Follows a job's events (`null`/`undefined`: nothing); switching ids follows the new job. */
export function useJobStream(jobId: string | null | undefined, options: { client?: ClientSource } = {}): JobWatchState {
  const client = useSidecarClient(options.client);
  const watch = useClientStore(client, (c) => new JobWatch(c));
  useEffect(() => {
    void watch.watch(jobId ?? null);
    return () => watch.stop();
  }, [watch, jobId]);
  return useSyncExternalStore(watch.subscribe, watch.getState, watch.getState);
}

export type UseDroughtAnalysis = AnalysisState & {
  /** Resolves with the result, or undefined when it failed (see `error`) or was stopped. */
  run: (input: DroughtInput, options?: JobOptions) => Promise<DroughtResult | undefined>;
  stop: () => void;
};

/** One drought analysis at a time: `summary` streams, then `analysis` arrives. */
export function useDroughtAnalysis(options: { client?: ClientSource } = {}): UseDroughtAnalysis {
  const client = useSidecarClient(options.client);
  const session = useClientStore(client, (c) => new AnalysisSession(c));
  useEffect(() => () => session.stop(), [session]);
  const state = useSyncExternalStore(session.subscribe, session.getState, session.getState);
  return useMemo(
    () => ({ ...state, run: (input: DroughtInput, jobOptions?: JobOptions) => session.run(input, jobOptions), stop: () => session.stop() }),
    [state, session],
  );
}
