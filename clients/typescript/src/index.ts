export { SidecarClient } from './client.js';
export type {
  DroughtOptions,
  DroughtResult,
  FetchLike,
  MintTokenRequest,
  MintedToken,
  RunCallbacks,
  SidecarClientOptions,
} from './client.js';
export { jwtExpiry } from './auth.js';
export type { GetToken, TokenInfo } from './auth.js';
export type { EventSourceConstructor, EventSourceLike } from './eventsource.js';
export {
  JobFailedError,
  NotFoundError,
  RateLimitError,
  SidecarError,
  ValidationError,
  isAbortError,
  parseRetryAfter,
} from './errors.js';
export { SseParser, readSse } from './sse.js';
export type { SseMessage } from './sse.js';
export type { ReconnectOptions, StreamOptions } from './stream.js';
export { ChatSession } from './session.js';
export type { ChatMessage, ChatSessionOptions, ChatState } from './session.js';
export { JobWatch } from './watch.js';
export type { JobWatchState } from './watch.js';
export * from './types.js';
export { AnalysisSession } from './analysis.js';
export type { AnalysisState } from './analysis.js';
export { Store } from './store.js';
