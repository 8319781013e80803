/**
 * The wire shapes of Sidecar's HTTP API, written by hand for readable names and narrower types
 * (a job's `result`, the drought analysis). test/schema.test-d.ts checks them against the types
 * generated from the API's OpenAPI schema (src/generated/api.ts), so they cannot drift silently.
 */

/** The job types the API knows (a unit test checks them against openapi.json's `x-job-types`). */
export const JOB_TYPES = ['chat', 'drought_analysis', 'drought_assistant', 'forecast_explanation'] as const;
export type JobType = (typeof JOB_TYPES)[number];
export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type Priority = 'interactive' | 'batch';
export type Audience = 'farmer' | 'council' | 'analyst';
export type RiskLevel = 'none' | 'low' | 'moderate' | 'high' | 'severe' | 'extreme';
export type Urgency = 'immediate' | 'this_week' | 'this_month' | 'seasonal';

export type HistoryItem = { role: 'user' | 'assistant'; content: string };

/** Input of `chat` and `drought_assistant` jobs. */
export type ChatInput = { message: string; history?: HistoryItem[]; system?: string };

/** Drought indicators with their units; other numeric indicators may be added. */
export type DroughtIndicators = {
  /** mm over the last 30 days, 0..3000 */
  rainfall_mm_30d?: number;
  /** % of normal rainfall, -100..1000 */
  rainfall_anomaly_pct?: number;
  /** % of field capacity, 0..100 */
  soil_moisture_pct?: number;
  /** 3-month Standardised Precipitation Index, -5..5 */
  spi_3m?: number;
  /** vegetation index, -1..1 */
  ndvi?: number;
  /** % full, 0..150 */
  reservoir_pct?: number;
  /** degrees C above normal, -20..20 */
  temperature_anomaly_c?: number;
  /** mm forecast over the next 14 days, 0..2000 */
  forecast_rain_mm_14d?: number;
  [indicator: string]: number | undefined;
};

export type DroughtInput = {
  region: string;
  indicators: DroughtIndicators;
  question?: string;
  audience?: Audience;
};

export type ForecastInput = {
  forecast: Record<string, number | string>;
  region?: string;
  audience?: Audience;
};

/** Options every job body may carry besides its type and input. */
export type JobOptions = {
  model?: string;
  max_tokens?: number;
  temperature?: number;
  priority?: Priority;
  idempotency_key?: string;
  cache?: boolean;
  batch_id?: string;
};

/** The body of `POST /api/jobs`. */
export type JobRequest = JobOptions &
  (
    | { type: 'chat' | 'drought_assistant'; input: ChatInput }
    | { type: 'drought_analysis'; input: DroughtInput }
    | { type: 'forecast_explanation'; input: ForecastInput }
  );

export type Usage = {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
};

export type JobLinks = { self: string; events: string };
export type ErrorInfo = { type: string; message: string };

export type Recommendation = { action: string; audience: Audience; urgency: Urgency };

export type DroughtAnalysis = {
  risk_level: RiskLevel;
  /** 0..1 */
  confidence: number;
  summary: string;
  key_factors: string[];
  recommendations: Recommendation[];
};

/** `result` of a succeeded job: `text` always; `analysis` for drought_analysis jobs. */
export type JobResult = { text: string; analysis?: DroughtAnalysis; [key: string]: unknown };

/** A job as `GET /api/jobs/{id}` shows it; also the data of the stream's `done` event. */
export type Job = {
  id: string;
  type: string;
  status: JobStatus;
  model: string;
  priority: Priority;
  result: JobResult | null;
  usage: Usage;
  cost_usd: number;
  error: ErrorInfo | null;
  attempts: number;
  created_at: string;
  started_at: string | null;
  first_token_at: string | null;
  finished_at: string | null;
  batch_id: string | null;
  links: JobLinks;
};

/** The answer of `POST /api/jobs`: 202 when created, 200 for an idempotent or cached repeat. */
export type JobAccepted = {
  id: string;
  type: string;
  status: JobStatus;
  links: JobLinks;
  cached: boolean;
};

/** The body of `POST /api/chat` and `POST /api/chat/stream`. */
export type ChatRequest = {
  message: string;
  model?: string;
  max_tokens?: number;
  temperature?: number;
  system?: string;
  history?: HistoryItem[];
  cache?: boolean;
};

export type ChatResponse = {
  response: string;
  model: string;
  usage: Record<string, number>;
  cost_usd: number;
  cached: boolean;
  job_id: string;
};

/** One event of a job's stream; `id` is its position in the job's event log (1, 2, …). */
export type JobEvent =
  | { type: 'status'; id: number; data: { status: JobStatus; [key: string]: unknown } }
  | { type: 'token'; id: number; data: { text: string } }
  | { type: 'reset'; id: number; data: { attempt: number } }
  | { type: 'done'; id: number; data: Job };

export type JobEventType = JobEvent['type'];

export type BatchMode = 'queue' | 'anthropic_batch';
export type BatchStatus = 'running' | 'completed' | 'cancelled';

/** The body of `POST /api/batches`: up to 10 000 job bodies. */
export type BatchRequest = { name?: string; jobs: JobRequest[]; mode?: BatchMode };

export type Batch = {
  id: string;
  name: string | null;
  status: BatchStatus;
  mode: BatchMode;
  total: number;
  counts: Record<JobStatus, number>;
  cost_usd: number;
  usage: Record<string, number>;
  /** seconds left at the pace so far; null until a job has finished, 0 once finished */
  eta_seconds: number | null;
  created_at: string;
  finished_at: string | null;
  upstream_batch_id: string | null;
  links: { self: string; events: string; report: string };
};

export type ReportFormat = 'json' | 'md' | 'csv';

/** One row of a batch's drought report (`format=json`): an analysis, or a failure. */
export type ReportRow =
  | ({ region: string } & (
      | DroughtAnalysis
      | { risk_level: null; confidence: null; summary: string; key_factors: []; recommendations: [] }
    ))
  | { region: string; error: string; status: JobStatus };

/** The body of `POST /api/tokens` (service key only). */
export type TokenRequest = {
  subject: string;
  /** default 900, at most 3600 */
  ttl_seconds?: number;
  budget_usd_per_day?: number;
};

/** The answer of `POST /api/tokens` (201): a signed token (a JWT) for one subject. */
export type TokenResponse = {
  token: string;
  /** ISO 8601 UTC */
  expires_at: string;
  tenant: string;
  subject: string;
};

/** Per UTC window: `day` and `month` (a token's own budget has a `day` only). */
export type UsageWindows<T> = { day?: T; month?: T };

/** `GET /api/usage`: the caller's spending — the tenant's for a service key, the subject's for a
 * token. `spent_usd` is settled jobs' `cost_usd`, `reserved_usd` unfinished jobs at their worst
 * case; a `null` budget (and remaining) is no limit. */
export type UsageReport = {
  tenant: string;
  subject: string | null;
  spent_usd: UsageWindows<number>;
  reserved_usd: UsageWindows<number>;
  budget_usd: UsageWindows<number | null>;
  remaining_usd: UsageWindows<number | null>;
};
