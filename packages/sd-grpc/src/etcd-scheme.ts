import type { Logger } from '@sdkit/sd-core';
import { type Codec, codecs, type EtcdClient, EtcdInstancer } from '@sdkit/sd-etcd';
import {
  type GrpcTarget,
  type InstancerSchemeOptions,
  registerInstancerScheme,
  type SchemeRegistration,
} from './resolver.js';

/** Options of {@link registerEtcdScheme}. */
export interface EtcdSchemeOptions extends Omit<InstancerSchemeOptions, 'logger'> {
  /** How values are read. Default `codecs.etcdNaming` (`{"Op":0,"Addr":"host:port","Metadata":…}`). */
  readonly codec?: Codec;
  /** The URI scheme to claim. Default `etcd`. */
  readonly scheme?: string;
  /** For the resolver and the instancers. Default: the client's logger. */
  readonly logger?: Logger;
}

/**
 * The etcd key prefix a target follows, in etcd's gRPC-naming layout: the target's path plus `/`.
 * `etcd:///my-service` → `my-service/`; `etcd:////services/foo` → `/services/foo/` (a path that already ends in
 * `/` is kept as is). The path is percent-decoded, as grpc-go reads it: `etcd:///my%20service` → `my service/`.
 * The client decides which etcd is asked, so a target with an authority (`etcd://host/my-service`) is refused,
 * as is an empty path.
 * @throws TypeError naming the target when it has an authority, no path, or a malformed `%` escape.
 */
export function etcdPrefixForTarget(target: GrpcTarget): string {
  const text = `${target.scheme ?? ''}:${target.authority !== undefined ? `//${target.authority}/` : ''}${target.path}`;
  if (target.authority) {
    throw new TypeError(
      `etcd target ${JSON.stringify(text)} has an authority; write ${target.scheme ?? 'etcd'}:///<service> (the etcd client decides which cluster is asked)`,
    );
  }
  let path: string;
  try {
    // grpc-go (and etcd's Go resolver) read the target's path percent-decoded: etcd:///my%20svc is "my svc".
    path = decodeURIComponent(target.path);
  } catch {
    throw new TypeError(`etcd target ${JSON.stringify(text)} has a malformed percent-encoding in its path`);
  }
  if (path === '' || /^\/*$/.test(path)) {
    throw new TypeError(`etcd target ${JSON.stringify(text)} names no service; write etcd:///<service>`);
  }
  return path.endsWith('/') ? path : `${path}/`;
}

/**
 * Makes `new Client('etcd:///my-service', credentials)` follow etcd: registers (via
 * {@link registerInstancerScheme}) a resolver for `scheme` whose channels watch the keys under `my-service/` with
 * an {@link EtcdInstancer} on `client` — etcd's own gRPC naming layout, as `etcdctl put my-service/1.2.3.4:50051
 * '{"Addr":"1.2.3.4:50051"}'` and `EtcdRegistrar` with `codecs.etcdNaming` write it. Channels of the same service
 * share one etcd watch. Resolution semantics (empty set, errors, bad addresses) are those of
 * {@link registerInstancerScheme}; the other options are passed to it.
 *
 * The registration uses `client` until it is disposed; close the client only after the channels that use it.
 * @throws TypeError for a client that is not an `EtcdClient` or invalid options.
 */
export function registerEtcdScheme(client: EtcdClient, options: EtcdSchemeOptions = {}): SchemeRegistration {
  if (client === null || typeof client !== 'object' || typeof client.etcd !== 'object') {
    throw new TypeError('registerEtcdScheme: client must be an EtcdClient from createEtcdClient()');
  }
  if (options === null || typeof options !== 'object') {
    throw new TypeError('registerEtcdScheme: options must be an object');
  }
  const { codec = codecs.etcdNaming, scheme = 'etcd', logger = client.logger, ...rest } = options;
  return registerInstancerScheme(
    scheme,
    (target) => new EtcdInstancer(client, { prefix: etcdPrefixForTarget(target), codec, logger }),
    { ...rest, logger },
  );
}
