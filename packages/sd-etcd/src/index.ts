/**
 * @sdkit/sd-etcd — etcd v3 discovery for sdkit: an incremental, self-healing prefix watch (EtcdInstancer), a
 * lease-based Registrar that survives lost leases (EtcdRegistrar), the wire formats people already use (codecs),
 * and a client factory that fixes what `etcd3` leaves out (dial timeout, clear auth errors). Two transports:
 * gRPC over `etcd3` (the default) and etcd's HTTP/JSON gateway over `fetch` (`transport: 'http'`; the portable
 * entry `@sdkit/sd-etcd/http` has only that one, for Deno, Bun and workerd).
 * @packageDocumentation
 */

export type { BackoffOptions } from '@sdkit/sd-core';
export {
  createEtcdClient,
  DEFAULT_KEEPALIVE,
  DEFAULT_MAX_REQUEST_BYTES,
  type EtcdClient,
  type EtcdClientBaseOptions,
  EtcdClientError,
  type EtcdClientErrorReason,
  type EtcdClientOptions,
  type EtcdGrpcClient,
  type EtcdHttpTransportOptions,
  type EtcdTargetOptions,
  type PemSource,
} from './client.js';
export { type Codec, codecs, MAX_ADDRESS_LENGTH } from './codecs.js';
export type { EtcdHttpClientOptions } from './http-client.js';
export { EtcdHttpError } from './http-transport.js';
export { EtcdInstancer, type EtcdInstancerOptions, EtcdWatchError } from './instancer.js';
export { MAX_CALLS_IN_FLIGHT } from './lease-backend.js';
export { EtcdLeasePool, type EtcdLeasePoolOptions } from './lease-pool.js';
export {
  EtcdAccessDeniedError,
  type EtcdAccessOperation,
  EtcdRegistrar,
  type EtcdRegistrarOptions,
  PUT_REQUEST_OVERHEAD_BYTES,
  type RegistrarInstance,
} from './registrar.js';
export {
  type DeregisterOnSignalsOptions,
  deregisterOnSignals,
  type SignalHandlersDisposer,
  type SignalProcess,
} from './shutdown.js';
export { etcdPrefixForTarget } from './target.js';
export type { EtcdErrorKind } from './transport.js';
