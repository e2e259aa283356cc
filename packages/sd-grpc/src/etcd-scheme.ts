import type { Logger, TargetInstancerOptions, TargetInstancerSource } from '@sdkit/sd-core';
import type { InstancerSchemeOptions, SchemeRegistration } from './resolver.js';
import { registerSourceScheme } from './source-scheme.js';

/** Options of {@link registerEtcdScheme}. */
export interface EtcdSchemeOptions extends Omit<InstancerSchemeOptions, 'logger'> {
  /**
   * How values are read: a `Codec` of @sdkit/sd-etcd (`codecs.…`). Default `codecs.auto`: etcd-naming JSON
   * (`{"Op":0,"Addr":"host:port","Metadata":…}`, as etcd's Go resolver and `EtcdRegistrar` with
   * `codecs.etcdNaming` write it), go-kit instance strings
   * (`host:port`, `http://host:port`, as `EtcdRegistrar` writes by default) and sdkit JSON alike — so a registrar
   * and a channel on default options find each other. A value the codec cannot read is skipped with a `warn` log
   * naming the key.
   */
  readonly codec?: object;
  /** The URI scheme to claim. Default `etcd`. */
  readonly scheme?: string;
  /** For the resolver and the instancers. Default: the client's logger. */
  readonly logger?: Logger;
}

/**
 * Makes `new Client('etcd:///my-service', credentials)` follow etcd: registers (via
 * {@link registerInstancerScheme}) a resolver for `scheme` whose channels watch the keys under `my-service/` with
 * an `EtcdInstancer` on `client` (through the client's own target mapping, `client[instancerForTarget]`: this
 * package does not import @sdkit/sd-etcd) — etcd's own gRPC naming layout, as
 * `etcdctl put my-service/1.2.3.4:50051 '{"Addr":"1.2.3.4:50051"}'` writes it. With the default codec
 * (`codecs.auto`) entries written by an `EtcdRegistrar` with default options (go-kit instance strings) or with
 * `codecs.etcdNaming` are both read. Channels of the same service share one etcd watch. Resolution semantics
 * (empty set, errors, bad addresses) are those of `registerInstancerScheme`; the other options are passed to it.
 * The prefix of a target is `etcdPrefixForTarget`'s (@sdkit/sd-etcd); a target it refuses fails the channel's
 * calls with `UNAVAILABLE` and its message, logged at `error`. The default `:authority` is
 * `defaultAuthorityForTarget`'s (`etcd:///my-service/` → `my-service`).
 *
 * The registration uses `client` until it is disposed; close the client only after the channels that use it.
 * @throws TypeError for a client that is not an `EtcdClient` or invalid options.
 */
export function registerEtcdScheme(
  client: TargetInstancerSource<TargetInstancerOptions & { readonly codec?: object }> & {
    readonly logger?: Logger;
  },
  options: EtcdSchemeOptions = {},
): SchemeRegistration {
  return registerSourceScheme(
    'registerEtcdScheme',
    'etcd',
    'an EtcdClient from `await createEtcdClient(…)`',
    client,
    options,
    ['codec'],
  );
}
