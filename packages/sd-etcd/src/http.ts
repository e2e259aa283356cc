/**
 * @sdkit/sd-etcd/http — the portable entry of @sdkit/sd-etcd: etcd's HTTP/JSON gateway over `fetch`, for every
 * runtime with `fetch` (Deno, Bun, Cloudflare workerd, Node). The same `EtcdInstancer` and `EtcdRegistrar` as
 * the Node entry, on a client whose only transport is HTTP. Imports nothing Node-only (no `etcd3`, no `node:*`,
 * no `Buffer`).
 * @packageDocumentation
 */
import type { EtcdClient } from './client-core.js';
import { createHttpClient, type EtcdHttpClientOptions } from './http-client.js';

export type { BackoffOptions } from '@sdkit/sd-core';
export {
  DEFAULT_KEEPALIVE,
  DEFAULT_MAX_REQUEST_BYTES,
  type EtcdClient,
  type EtcdClientBaseOptions,
  EtcdClientError,
  type EtcdClientErrorReason,
  type EtcdTargetOptions,
} from './client-core.js';
export { type Codec, codecs, MAX_ADDRESS_LENGTH } from './codecs.js';
export type { EtcdHttpClientOptions } from './http-client.js';
export { EtcdHttpError } from './http-transport.js';
export { EtcdInstancer, type EtcdInstancerOptions, EtcdWatchError } from './instancer.js';
export { EtcdLeasePool, type EtcdLeasePoolOptions } from './lease-pool.js';
export {
  EtcdAccessDeniedError,
  type EtcdAccessOperation,
  EtcdRegistrar,
  type EtcdRegistrarOptions,
  PUT_REQUEST_OVERHEAD_BYTES,
  type RegistrarInstance,
} from './registrar.js';
export { etcdPrefixForTarget } from './target.js';
export type { EtcdErrorKind } from './transport.js';

/**
 * Creates an etcd client over etcd's HTTP/JSON gateway (served by every etcd ≥ 3.4 on its client port, at
 * `/v3/…`) and resolves once etcd has answered a round-trip, like `createEtcdClient` of `@sdkit/sd-etcd`.
 * `https://` endpoints are verified by the runtime's `fetch`; `auth` authenticates at `/v3/auth/authenticate`
 * and renews the token when etcd says it expired. Rejects with a `TypeError` for invalid options and an
 * `EtcdClientError` when etcd is unreachable within `dialTimeoutMs` or refuses the credentials.
 */
export function createEtcdClient(options: EtcdHttpClientOptions): Promise<EtcdClient> {
  return createHttpClient(options);
}
