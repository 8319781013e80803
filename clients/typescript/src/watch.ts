import type { SidecarClient } from './client.js';
import { isAbortError } from './errors.js';
import { ClientStore } from './store.js';
import type { Job, JobEvent, JobStatus } from './types.js';

export type JobWatchState = {
  jobId: string | null;
  /** every event received, in order (a `reset` is kept so a UI can show the retry) */
  events: readonly JobEvent[];
  /** the streamed text, emptied on `reset` */
  text: string;
  status: JobStatus | null;
  /** the final job (the `done` event's data) */
  job: Job | null;
  error: Error | null;
  isStreaming: boolean;
};

const IDLE: JobWatchState = {
  jobId: null,
  events: [],
  text: '',
  status: null,
  job: null,
  error: null,
  isStreaming: false,
};

/** Follows one job's event stream into observable state; `watch(otherId)` switches jobs. */
export class JobWatch extends ClientStore<JobWatchState> {
  private controller: AbortController | undefined;

  constructor(client: SidecarClient) {
    super(client, IDLE);
  }

  /** Follow `jobId` (null: stop following). Resolves when its stream ends. */
  async watch(jobId: string | null): Promise<void> {
    this.stop();
    this.set({ ...IDLE, jobId });
    if (!jobId) return;
    const controller = new AbortController();
    this.controller = controller;
    this.set({ isStreaming: true });
    try {
      for await (const event of this.client.streamJob(jobId, { signal: controller.signal })) {
        const { text, events } = this.getState();
        const patch: Partial<JobWatchState> = { events: [...events, event] };
        if (event.type === 'token') patch.text = text + event.data.text;
        else if (event.type === 'reset') patch.text = '';
        else if (event.type === 'status') patch.status = event.data.status;
        else {
          patch.job = event.data;
          patch.status = event.data.status;
        }
        this.set(patch);
      }
    } catch (error) {
      if (!isAbortError(error)) this.set({ error: error instanceof Error ? error : new Error(String(error)) });
    } finally {
      if (this.controller === controller) {
        this.controller = undefined;
        this.set({ isStreaming: false });
      }
    }
  }

  /** Stops following (the job itself goes on; see `SidecarClient.cancelJob`). */
  stop(): void {
    this.controller?.abort();
    this.controller = undefined;
    if (this.getState().isStreaming) this.set({ isStreaming: false });
  }
}
