import type { SidecarClient } from './client.js';

/** A minimal observable state holder, the shape React's `useSyncExternalStore` and a Vue
 * `shallowRef` both consume: `getState()` returns a new object after every change. */
export class Store<S extends object> {
  private state: S;
  private readonly listeners = new Set<(state: S) => void>();

  constructor(initial: S) {
    this.state = initial;
  }

  readonly getState = (): S => this.state;

  readonly subscribe = (listener: (state: S) => void): (() => void) => {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  };

  protected set(patch: Partial<S>): void {
    this.state = { ...this.state, ...patch };
    for (const listener of this.listeners) listener(this.state);
  }
}

/** A store that talks to Sidecar through a client that can be swapped (e.g. by a hook whose
 * caller builds a new client on every render). */
export class ClientStore<S extends object> extends Store<S> {
  constructor(
    protected client: SidecarClient,
    initial: S,
  ) {
    super(initial);
  }

  setClient(client: SidecarClient): void {
    this.client = client;
  }
}
