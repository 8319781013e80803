import { createContext, createElement, useContext, type ReactNode } from 'react';
import type { SidecarClient } from '../client.js';

const ClientContext = createContext<SidecarClient | null>(null);

/** Makes `client` the default of every hook and component below it. */
export function SidecarProvider({ client, children }: { client: SidecarClient; children?: ReactNode }) {
  return createElement(ClientContext.Provider, { value: client }, children);
}

/** The given client, else the nearest `SidecarProvider`'s. */
export function useSidecarClient(client?: SidecarClient): SidecarClient {
  const provided = useContext(ClientContext);
  const resolved = client ?? provided;
  if (!resolved) throw new Error('pass a SidecarClient as `client` or wrap the tree in <SidecarProvider>');
  return resolved;
}
