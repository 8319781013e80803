/**
 * Compile-time check (run by `npm run typecheck`) that the hand-written types in src/types.ts
 * match the API's OpenAPI schema (src/generated/api.ts, generated from openapi.json, which
 * `scripts/openapi.py --check` keeps equal to the Python models). A field added, removed,
 * renamed or retyped on either side fails here.
 */
import type { components, paths } from '../src/generated/api';
import type * as T from '../src/types';

type S = components['schemas'];
type JsonBody<Op> = Op extends { requestBody: { content: { 'application/json': infer B } } } ? B : never;

type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
type Extends<A, B> = [A] extends [B] ? true : false;
type Expect<Check extends true> = Check;

/** Same field names, and every hand-written value is valid for the schema. */
type Matches<Mine, Schema> = Equal<keyof Mine, keyof Schema> extends true ? Extends<Mine, Schema> : false;
/** Same field names and the same types both ways (up to optional defaults). */
type Same<Mine, Schema> = Matches<Mine, Schema> extends true ? Extends<Required<Schema>, Mine> : false;

type JobBody = JsonBody<paths['/api/jobs']['post']>;
type ChatBody = JsonBody<paths['/api/chat']['post']>;
type ChatStreamBody = JsonBody<paths['/api/chat/stream']['post']>;
type BatchBody = JsonBody<paths['/api/batches']['post']>;
type TokenBody = JsonBody<paths['/api/tokens']['post']>;
/** An object type without its index signature (the named indicators only). */
type Known<O> = { [K in keyof O as string extends K ? never : number extends K ? never : K]: O[K] };

export type Checks = [
  // requests
  Expect<Matches<T.JobRequest, JobBody>>,
  Expect<Matches<T.ChatRequest, ChatBody>>,
  Expect<Equal<ChatBody, ChatStreamBody>>,
  Expect<Matches<T.BatchRequest, BatchBody>>,
  Expect<Matches<T.ChatInput, S['ChatInput']>>,
  Expect<Matches<T.ChatInput, S['AssistantInput']>>,
  Expect<Matches<T.DroughtInput, S['DroughtInput']>>,
  Expect<Matches<T.ForecastInput, S['ForecastInput']>>,
  Expect<Matches<Known<T.DroughtIndicators>, Known<S['Indicators']>>>,
  Expect<Same<T.HistoryItem, S['HistoryItem']>>,
  Expect<Equal<T.Priority, NonNullable<JobBody['priority']>>>,
  Expect<Equal<T.Audience, NonNullable<S['DroughtInput']['audience']>>>,
  Expect<Matches<T.TokenRequest, TokenBody>>,
  // responses
  Expect<Matches<T.Job, S['JobView']>>,
  Expect<Equal<T.JobStatus, S['JobView']['status']>>,
  Expect<Equal<T.Priority, S['JobView']['priority']>>,
  Expect<Matches<T.JobAccepted, S['JobAccepted']>>,
  Expect<Equal<T.JobStatus, S['JobAccepted']['status']>>,
  Expect<Same<T.Usage, S['Usage']>>,
  Expect<Same<T.ErrorInfo, S['ErrorInfo']>>,
  Expect<Same<T.JobLinks, S['JobLinks']>>,
  Expect<Same<T.ChatResponse, S['ChatResponse']>>,
  Expect<Same<T.TokenResponse, S['TokenMinted']>>,
  // the drought analysis a job's result carries
  Expect<Matches<T.DroughtAnalysis, S['DroughtAnalysis']>>,
  Expect<Equal<T.RiskLevel, S['DroughtAnalysis']['risk_level']>>,
  Expect<Same<T.Recommendation, S['Recommendation']>>,
  Expect<Equal<T.Urgency, S['Recommendation']['urgency']>>,
];
