/**
 * What a backend's client tells the things built on it (instancers, registrars, lease pools) when it is closed:
 * one registry, keyed by the client object, so that every backend closes the same way (see "Process lifetime" in
 * docs/architecture.md). Works for any object, test doubles included.
 * @module
 */

const registry = new WeakMap<object, Set<(error: Error) => void>>();

/**
 * Calls `listener` once, synchronously, when {@link notifyClosed} is called for `owner`; at once (with
 * `closedError()`) when `isClosed` is true now. Returns a function that removes the listener (idempotent).
 */
export function onClosed<E extends Error>(
  owner: object,
  isClosed: boolean,
  closedError: () => E,
  listener: (error: E) => void,
): () => void {
  if (isClosed) {
    listener(closedError());
    return () => {};
  }
  let listeners = registry.get(owner);
  if (!listeners) {
    listeners = new Set();
    registry.set(owner, listeners);
  }
  const set = listeners;
  const entry = listener as (error: Error) => void;
  set.add(entry);
  return () => {
    set.delete(entry);
  };
}

/**
 * Calls every listener {@link onClosed} registered for `owner`, once, in registration order, with `error`, then
 * forgets them. A listener that throws does not stop the others: its error goes to `onListenerError`.
 */
export function notifyClosed(owner: object, error: Error, onListenerError: (err: unknown) => void): void {
  const listeners = registry.get(owner);
  registry.delete(owner);
  if (!listeners) return;
  for (const listener of listeners) {
    try {
      listener(error);
    } catch (err) {
      onListenerError(err);
    }
  }
}
