/** Vue 3 bindings: `@ckcias/sidecar-client/vue` (Vue is a peer dependency). */
export { useSidecarAPI } from './useSidecarAPI.js';
export type { SidecarAPI } from './useSidecarAPI.js';
