/**
 * The etcd client over etcd's HTTP/JSON gateway (`/v3/…`, served on etcd's client port), through `fetch`.
 * Portable: imports nothing Node-only.
 * @module
 */

import {
  BASE_CLIENT_OPTIONS,
  clientSettings,
  type EtcdClient,
  type EtcdClientBaseOptions,
  readyOrClosed,
  TransportClient,
} from './client-core.js';
import { describeValue } from './describe-value.js';
import { createHttpTransport, DEFAULT_HTTP_REQUEST_TIMEOUT_MS } from './http-transport.js';

/** Options of the HTTP/JSON client (`createEtcdClient` of `@sdkit/sd-etcd/http`). */
export interface EtcdHttpClientOptions extends EtcdClientBaseOptions {
  /**
   * The `fetch` to use; default the runtime's global `fetch`, looked up at each call. Pass one that applies your
   * TLS settings (a private CA, a client certificate) where the runtime allows it, e.g. Deno's
   * `Deno.createHttpClient` or an undici `Agent` in Node.
   */
  fetch?: typeof fetch;
  /** Deadline of each unary call (read, lease, put, delete) in ms, unless the caller gives one. Default 5000. */
  requestTimeoutMs?: number;
}

/** The option names of the HTTP client. @internal */
export const HTTP_CLIENT_OPTIONS = [...BASE_CLIENT_OPTIONS, 'fetch', 'requestTimeoutMs'] as const;

/** Builds and checks an HTTP client (see `createEtcdClient` of `@sdkit/sd-etcd/http`). @internal */
export async function createHttpClient(
  options: EtcdHttpClientOptions,
  known: readonly string[] = HTTP_CLIENT_OPTIONS,
): Promise<EtcdClient> {
  const settings = clientSettings(options, known);
  if (options.fetch !== undefined && typeof options.fetch !== 'function') {
    throw new TypeError(`createEtcdClient: fetch must be a function, got ${describeValue(options.fetch)}`);
  }
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_HTTP_REQUEST_TIMEOUT_MS;
  if (!Number.isFinite(requestTimeoutMs) || requestTimeoutMs <= 0) {
    throw new TypeError(
      `createEtcdClient: requestTimeoutMs must be a positive number of milliseconds, got ${describeValue(requestTimeoutMs)}`,
    );
  }
  const transport = createHttpTransport({
    endpoints: settings.endpoints,
    ...(settings.auth ? { auth: settings.auth } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
    clock: settings.clock,
    logger: settings.logger,
    keepAlive: settings.keepAlive,
    requestTimeoutMs,
  });
  return readyOrClosed(new TransportClient(transport, settings));
}
