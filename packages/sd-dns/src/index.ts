/**
 * @sdkit/sd-dns — DNS discovery for sdkit: the targets of an SRV name (`DnsSrvInstancer`) or the A/AAAA
 * addresses of a name (`DnsAddressInstancer`), refreshed on the records' TTL (with a floor and a ceiling), failures
 * as data with the last known set kept, and `dns+srv://` / `dns://` targets (`dnsTargetSource`).
 * @packageDocumentation
 */
export type { BackoffOptions } from '@sdkit/sd-core';
export {
  type AddressMetadata,
  type DnsAddressFamily,
  DnsAddressInstancer,
  type DnsAddressInstancerOptions,
} from './dns-address-instancer.js';
export { DnsError, type DnsErrorDetails, type DnsErrorKind } from './dns-error.js';
export { DNS_DEFAULTS, type DnsInstancerOptions } from './dns-instancer-options.js';
export type { DnsServer } from './dns-server.js';
export { DnsSrvInstancer, type DnsSrvInstancerOptions, type SrvMetadata } from './dns-srv-instancer.js';
export { type DnsTargetOptions, dnsInstancerForTarget, dnsTargetSource } from './dns-target-source.js';
export type { DnsExchange, DnsTransport } from './dns-transport.js';
export { nodeDnsTransport } from './node-dns-transport.js';
export { DEFAULT_DNS_TARGET_PORT, type DnsTarget, parseDnsTarget } from './parse-dns-target.js';
