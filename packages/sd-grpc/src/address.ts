import { isIP } from 'node:net';

/** A TCP address gRPC can dial: `host` is an IPv4/IPv6 literal (IPv6 without brackets) or a DNS name. */
export interface GrpcAddress {
  readonly host: string;
  readonly port: number;
}

/** The result of {@link parseGrpcAddress}: the address, or why it cannot be dialled. */
export type ParsedGrpcAddress =
  | { readonly ok: true; readonly address: GrpcAddress }
  | { readonly ok: false; readonly reason: string };

/**
 * URL schemes stripped from an instance address before it is read as `host:port`. go-kit's `sd/etcdv3` stores
 * instance strings such as `http://10.0.0.5:8080`; the scheme says nothing to gRPC (TLS is chosen by the channel
 * credentials, not by the address), so these four are accepted and dropped. Any other scheme is refused.
 */
const STRIPPED_SCHEMES = ['http://', 'https://', 'grpc://', 'grpcs://'] as const;

const DNS_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;
const PORT = /^[0-9]{1,5}$/;

/**
 * Reads an instance address as something gRPC can dial. Never throws.
 *
 * Accepted: `host:port`, `[ipv6]:port`, each optionally prefixed by `http://`, `https://`, `grpc://` or `grpcs://`
 * and optionally followed by one `/` (so `http://10.0.0.5:8080/` is fine). `host` is an IPv4 literal, a DNS name
 * (dialled through the OS resolver) or, in brackets, an IPv6 literal. The port is required and in 1–65535.
 *
 * Refused, with a reason: no port, a bare IPv6 literal (`::1:50051` is ambiguous), any other scheme (`unix://…`,
 * `dns:///…`), a path, query or user info, whitespace, an empty string.
 */
export function parseGrpcAddress(address: string): ParsedGrpcAddress {
  if (typeof address !== 'string' || address === '') return fail('the address is empty');
  if (/\s/.test(address)) return fail('the address contains whitespace');
  let rest = address;
  const lower = rest.toLowerCase();
  const scheme = STRIPPED_SCHEMES.find((s) => lower.startsWith(s));
  if (scheme !== undefined) {
    rest = rest.slice(scheme.length);
    if (rest.endsWith('/')) rest = rest.slice(0, -1);
  } else if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(rest)) {
    return fail(`unsupported scheme (only ${STRIPPED_SCHEMES.join(', ')} are stripped)`);
  }
  if (/[/?#@]/.test(rest)) return fail('the address has a path, query, fragment or user info');
  let host: string;
  let port: string;
  if (rest.startsWith('[')) {
    const end = rest.indexOf(']');
    if (end === -1) return fail('unterminated [ in an IPv6 address');
    host = rest.slice(1, end);
    if (isIP(host) !== 6) return fail('the bracketed host is not an IPv6 literal');
    if (rest[end + 1] !== ':') return fail('no port (expected [ipv6]:port)');
    port = rest.slice(end + 2);
  } else {
    const colon = rest.indexOf(':');
    if (colon === -1) return fail('no port (expected host:port)');
    if (rest.indexOf(':', colon + 1) !== -1) {
      return fail('more than one ":" (write IPv6 addresses as [ipv6]:port)');
    }
    host = rest.slice(0, colon);
    port = rest.slice(colon + 1);
    if (host === '') return fail('the host is empty');
    if (isIP(host) !== 4 && !DNS_NAME.test(host))
      return fail('the host is neither an IPv4 literal nor a DNS name');
  }
  if (!PORT.test(port)) return fail('the port is not a number');
  const n = Number(port);
  if (n < 1 || n > 65535) return fail('the port is not in 1-65535');
  return { ok: true, address: Object.freeze({ host, port: n }) };
}

/** `host:port`, with brackets around an IPv6 host: the form grpc-js channels and `net.connect` accept. */
export function formatGrpcAddress(address: GrpcAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

function fail(reason: string): ParsedGrpcAddress {
  return { ok: false, reason };
}
