import {
  type Instancer,
  instancerForTarget,
  type TargetInstancerOptions,
  type TargetInstancerSource,
  type TargetUri,
} from '@sdkit/sd-core';
import { describeValue } from './describe-value.js';
import { DnsAddressInstancer, type DnsAddressInstancerOptions } from './dns-address-instancer.js';
import { DnsSrvInstancer } from './dns-srv-instancer.js';
import { parseDnsTarget } from './parse-dns-target.js';

/**
 * Options of a DNS target's instancer: those of the instancers that a target does not give. `servers` is used
 * when the target names no DNS server (an empty authority); `family` applies to `dns:` targets only.
 */
export interface DnsTargetOptions
  extends TargetInstancerOptions,
    Omit<DnsAddressInstancerOptions, 'name' | 'port' | 'logger'> {}

/**
 * A new instancer for a DNS target (see {@link parseDnsTarget} for the forms): a `DnsSrvInstancer` for
 * `dns+srv://[server]/_service._proto.name.`, a `DnsAddressInstancer` for `dns://[server]/name[:port]`. The
 * target's DNS server, when it names one, wins over `options.servers`. The caller stops the instancer.
 * @throws TypeError naming the target when it is malformed, or for bad options.
 */
export function dnsInstancerForTarget(
  target: string | TargetUri,
  options: DnsTargetOptions = {},
): DnsSrvInstancer | DnsAddressInstancer {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`dnsInstancerForTarget: options must be an object, got ${describeValue(options)}`);
  }
  for (const key of ['name', 'port']) {
    if (Object.hasOwn(options, key)) {
      throw new TypeError(
        `dnsInstancerForTarget: ${key} comes from the target (e.g. "dns:///api.example:8080"), not from the options`,
      );
    }
  }
  const parsed = parseDnsTarget(target);
  const servers = parsed.servers ?? options.servers;
  const common = { ...options, ...(servers === undefined ? {} : { servers }) };
  if (parsed.kind === 'srv') {
    const { family: _family, ...srvOptions } = common;
    return new DnsSrvInstancer({ ...srvOptions, name: parsed.name });
  }
  return new DnsAddressInstancer({ ...common, name: parsed.name, port: parsed.port });
}

/**
 * The DNS backend's target mapping, for packages that only register schemes (the `sdkit` CLI, the gRPC
 * resolver): `dnsTargetSource[instancerForTarget]({ scheme, authority, path }, options?)` handles the schemes
 * `dns+srv` and `dns` as {@link dnsInstancerForTarget} does. DNS needs no client, so this one object serves
 * every target.
 */
export const dnsTargetSource: TargetInstancerSource<DnsTargetOptions> = Object.freeze({
  [instancerForTarget](target: TargetUri, options?: DnsTargetOptions): Instancer {
    return dnsInstancerForTarget(target, options);
  },
});
