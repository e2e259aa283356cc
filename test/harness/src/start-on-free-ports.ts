/**
 * Starting a server on ports from {@link freePort}, which another process may take before the server binds them.
 * @module
 */

/**
 * A start-up failed because the process could not bind its address (its log says `address already in use`): the
 * port was free when picked but taken since. {@link startOnFreePorts} retries with new ports on it.
 */
export class PortInUseError extends Error {}

/** Attempts {@link startOnFreePorts} makes before it gives up on taken ports. */
const MAX_ATTEMPTS = 4;

/**
 * `create()`s a server (on freshly picked free ports) and `start()`s it, resolving with the started server. When
 * `start` rejects the server is closed; on a {@link PortInUseError} it is created again (new ports), up to 4
 * attempts in all, and any other failure (or the last attempt's) rejects with that error.
 */
export async function startOnFreePorts<T extends { close(): Promise<void> }>(
  create: () => Promise<T>,
  start: (server: T) => Promise<void>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const server = await create();
    try {
      await start(server);
      return server;
    } catch (err) {
      await server.close();
      if (!(err instanceof PortInUseError) || attempt >= MAX_ATTEMPTS) throw err;
    }
  }
}
