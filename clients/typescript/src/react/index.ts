/** React bindings: `@ckcias/sidecar-client/react` (React is a peer dependency). */
export { SidecarProvider, useSidecarClient } from './context.js';
export type { ClientSource } from './context.js';
export { useDroughtAnalysis, useJobStream, useSidecarChat } from './hooks.js';
export type { UseDroughtAnalysis, UseSidecarChat, UseSidecarChatOptions } from './hooks.js';
export { DroughtAnalyzer, INDICATORS } from './DroughtAnalyzer.js';
export type { DroughtAnalyzerProps } from './DroughtAnalyzer.js';
export { RiskCard } from './RiskCard.js';
