import { createContext, createElement, useContext, useMemo, type ReactNode } from 'react';
import { SidecarClient, type SidecarClientOptions } from '../client.js';

/** A client, or the options to build one (e.g. `{ baseUrl, getToken }`). */
export type ClientSource = SidecarClient | SidecarClientOptions;

const ClientContext = createContext<SidecarClient | null>(null);

/**
 * The client built from `source` when it is options (undefined when it is a client or absent),
 * kept for as long as the options stay the same — so is its cached token. `getToken` and
 * `fetch` are compared by identity: define them outside the component or with `useCallback`
 * (a new function builds a new client, which asks for a token of its own); `headers` and
 * `reconnect` are compared by value.
 */
function useBuiltClient(source: ClientSource | undefined): SidecarClient | undefined {
  const options = source instanceof SidecarClient ? undefined : source;
  const built = options !== undefined;
  const { baseUrl, apiKey, getToken, fetch, transport, EventSource } = options ?? {};
  const headers = options?.headers ? JSON.stringify(options.headers) : undefined;
  const reconnect = options?.reconnect ? JSON.stringify(options.reconnect) : undefined;
  return useMemo(
    () =>
      built
        ? new SidecarClient({
            baseUrl,
            apiKey,
            getToken,
            fetch,
            transport,
            EventSource,
            headers: headers === undefined ? undefined : (JSON.parse(headers) as Record<string, string>),
            reconnect: reconnect === undefined ? undefined : (JSON.parse(reconnect) as SidecarClientOptions['reconnect']),
          })
        : undefined,
    [built, baseUrl, apiKey, getToken, fetch, transport, EventSource, headers, reconnect],
  );
}

/** Makes `client` (a client, or options such as `{ baseUrl, getToken }` to build one) the
 * default of every hook and component below it. */
export function SidecarProvider({ client, children }: { client: ClientSource; children?: ReactNode }) {
  const built = useBuiltClient(client);
  const value = client instanceof SidecarClient ? client : built!;
  return createElement(ClientContext.Provider, { value }, children);
}

/** The given client (or one built from the given options), else the nearest `SidecarProvider`'s. */
export function useSidecarClient(client?: ClientSource): SidecarClient {
  const provided = useContext(ClientContext);
  const built = useBuiltClient(client);
  const resolved = client instanceof SidecarClient ? client : (built ?? provided);
  if (!resolved) throw new Error('pass a SidecarClient (or its options) as `client`, or wrap the tree in <SidecarProvider>');
  return resolved;
}
