import type { DroughtOptions, DroughtResult, SidecarClient } from './client.js';
import { isAbortError } from './errors.js';
import { ClientStore } from './store.js';
import type { DroughtAnalysis, DroughtInput, Job, JobOptions } from './types.js';

export type AnalysisState = {
  jobId: string | null;
  /** the summary as it streams (emptied on `reset`) */
  summary: string;
  /** the validated analysis, once the job succeeded */
  analysis: DroughtAnalysis | null;
  job: Job | null;
  isRunning: boolean;
  error: Error | null;
};

const IDLE: AnalysisState = { jobId: null, summary: '', analysis: null, job: null, isRunning: false, error: null };

/** One drought analysis at a time as observable state: the summary streams in, then the
 * analysis arrives; `stop()` aborts the stream and cancels the job. */
export class AnalysisSession extends ClientStore<AnalysisState> {
  private controller: AbortController | undefined;

  constructor(client: SidecarClient) {
    super(client, IDLE);
  }

  /** Resolves with the result, or undefined when it failed (see `error`) or was stopped. */
  async run(input: DroughtInput, options: JobOptions = {}): Promise<DroughtResult | undefined> {
    this.stop();
    const controller = new AbortController();
    this.controller = controller;
    this.set({ ...IDLE, isRunning: true });
    const callbacks: DroughtOptions = {
      ...options,
      signal: controller.signal,
      onJob: (jobId) => this.set({ jobId }),
      onToken: (_text, summary) => this.set({ summary }),
      onReset: () => this.set({ summary: '' }),
    };
    try {
      const result = await this.client.analyzeDrought(input, callbacks);
      this.set({ analysis: result.analysis, summary: result.summary, job: result.job });
      return result;
    } catch (error) {
      if (!isAbortError(error)) this.set({ error: error instanceof Error ? error : new Error(String(error)) });
      return undefined;
    } finally {
      if (this.controller === controller) {
        this.controller = undefined;
        this.set({ isRunning: false });
      }
    }
  }

  /** Aborts the stream and cancels the running job server-side. */
  stop(): void {
    const { jobId, isRunning } = this.getState();
    this.controller?.abort();
    this.controller = undefined;
    if (isRunning) {
      if (jobId) void this.client.cancelJob(jobId).catch(() => undefined);
      this.set({ isRunning: false });
    }
  }
}
