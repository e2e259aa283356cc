import type { Logger } from '@sdkit/sd-core';
import { type Codec, codecs, type EtcdClient, EtcdInstancer } from '@sdkit/sd-etcd';
import { describeValue } from './describe-value.js';
import {
  type GrpcTarget,
  type InstancerSchemeOptions,
  registerInstancerScheme,
  type SchemeRegistration,
} from './resolver.js';

/** Options of {@link registerEtcdScheme}. */
export interface EtcdSchemeOptions extends Omit<InstancerSchemeOptions, 'logger'> {
  /**
   * How values are read. Default `codecs.auto`: etcd-naming JSON (`{"Op":0,"Addr":"host:port","Metadata":…}`, as
   * etcd's Go resolver and `EtcdRegistrar` with `codecs.etcdNaming` write it), go-kit instance strings
   * (`host:port`, `http://host:port`, as `EtcdRegistrar` writes by default) and sdkit JSON alike — so a registrar
   * and a channel on default options find each other. A value the codec cannot read is skipped with a `warn` log
   * naming the key.
   */
  readonly codec?: Codec;
  /** The URI scheme to claim. Default `etcd`. */
  readonly scheme?: string;
  /** For the resolver and the instancers. Default: the client's logger. */
  readonly logger?: Logger;
}

/**
 * The etcd key prefix a target follows, in etcd's gRPC-naming layout: the target's path plus `/`.
 * `etcd:///my-service` → `my-service/`; `etcd:////services/foo` → `/services/foo/` (a path that already ends in
 * `/` is kept as is: `etcd:///my-service/` → `my-service/`). The path is percent-decoded, as grpc-go reads it:
 * `etcd:///my%20service` → `my service/`.
 *
 * Refused, with a `TypeError` whose message names the target and says what to write instead:
 * - a target with an authority (`etcd://host/my-service`): the etcd client decides which cluster is asked;
 * - a service in the authority's place (`etcd://my-service`, two slashes; grpc-js hands that over as the path
 *   `//my-service`, no authority): write `etcd:///my-service`;
 * - an empty path (`etcd:///`), or a malformed `%` escape.
 * @throws TypeError as above.
 */
export function etcdPrefixForTarget(target: GrpcTarget): string {
  const scheme = target.scheme ?? 'etcd';
  const text = `${target.scheme ?? ''}:${target.authority !== undefined ? `//${target.authority}/` : ''}${target.path}`;
  if (target.authority) {
    throw new TypeError(
      `etcd target ${JSON.stringify(text)} has an authority; write ${scheme}:///<service> (the etcd client decides which cluster is asked)`,
    );
  }
  // grpc-js splits off an authority only when a "/" follows it: "etcd://my-service" arrives as the path
  // "//my-service", which would otherwise be followed as the prefix "//my-service/".
  if (target.authority === undefined && target.path.startsWith('//')) {
    const service = target.path.replace(/^\/+|\/+$/g, '');
    if (service !== '') {
      throw new TypeError(
        `etcd target ${JSON.stringify(text)} puts the service where the authority goes (two slashes); write ${scheme}:///${service} (three slashes)`,
      );
    }
  }
  let path: string;
  try {
    // grpc-go (and etcd's Go resolver) read the target's path percent-decoded: etcd:///my%20svc is "my svc".
    path = decodeURIComponent(target.path);
  } catch {
    throw new TypeError(`etcd target ${JSON.stringify(text)} has a malformed percent-encoding in its path`);
  }
  if (path === '' || /^\/*$/.test(path)) {
    throw new TypeError(`etcd target ${JSON.stringify(text)} names no service; write ${scheme}:///<service>`);
  }
  return path.endsWith('/') ? path : `${path}/`;
}

/**
 * Makes `new Client('etcd:///my-service', credentials)` follow etcd: registers (via
 * {@link registerInstancerScheme}) a resolver for `scheme` whose channels watch the keys under `my-service/` with
 * an {@link EtcdInstancer} on `client` — etcd's own gRPC naming layout, as `etcdctl put my-service/1.2.3.4:50051
 * '{"Addr":"1.2.3.4:50051"}'` writes it. With the default codec (`codecs.auto`) entries written by an
 * `EtcdRegistrar` with default options (go-kit instance strings) or with `codecs.etcdNaming` are both read.
 * Channels of the same service share one etcd watch. Resolution semantics (empty set, errors, bad addresses) are
 * those of {@link registerInstancerScheme}; the other options are passed to it. The prefix of a target is
 * {@link etcdPrefixForTarget}'s; a target it refuses fails the channel's calls with `UNAVAILABLE` and its message,
 * logged at `error`. The default `:authority` is `defaultAuthorityForTarget`'s (`etcd:///my-service/` →
 * `my-service`).
 *
 * The registration uses `client` until it is disposed; close the client only after the channels that use it.
 * @throws TypeError for a client that is not an `EtcdClient` or invalid options.
 */
export function registerEtcdScheme(client: EtcdClient, options: EtcdSchemeOptions = {}): SchemeRegistration {
  if (client === null || typeof client !== 'object' || typeof client.etcd !== 'object') {
    throw new TypeError(
      `registerEtcdScheme: client must be an EtcdClient from \`await createEtcdClient(…)\`, got ${
        typeof (client as { then?: unknown } | null)?.then === 'function'
          ? 'a Promise (did you forget `await`?)'
          : describeValue(client)
      }`,
    );
  }
  if (options === null || typeof options !== 'object') {
    throw new TypeError('registerEtcdScheme: options must be an object');
  }
  const { codec = codecs.auto, scheme = 'etcd', logger = client.logger, ...rest } = options;
  return registerInstancerScheme(
    scheme,
    (target) => new EtcdInstancer(client, { prefix: etcdPrefixForTarget(target), codec, logger }),
    { ...rest, logger },
  );
}
