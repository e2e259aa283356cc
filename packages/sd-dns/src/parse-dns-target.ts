import type { TargetUri } from '@sdkit/sd-core';
import { describeValue } from './describe-value.js';
import { absoluteDnsName } from './dns-name.js';
import { type DnsServer, parseDnsServer } from './dns-server.js';

/**
 * A parsed DNS target: what to look up, and whom to ask.
 * - `kind: 'srv'` (scheme `dns+srv`): the SRV records of `name`; each record gives a target and a port.
 * - `kind: 'address'` (scheme `dns`): the A/AAAA records of `name`, dialled on `port`.
 */
export type DnsTarget =
  | {
      readonly kind: 'srv';
      /** Absolute (with its trailing dot). */
      readonly name: string;
      /** The DNS server named by the target's authority, as `host:port`; absent: the system's resolvers. */
      readonly servers?: readonly string[];
    }
  | {
      readonly kind: 'address';
      /** Absolute (with its trailing dot). */
      readonly name: string;
      /** The port of every address; 443 when the target names none, as in gRPC. */
      readonly port: number;
      /** The DNS server named by the target's authority, as `host:port`; absent: the system's resolvers. */
      readonly servers?: readonly string[];
    };

/** The port of a `dns:` target that names none: gRPC's default. */
export const DEFAULT_DNS_TARGET_PORT = 443;

const STRING_TARGET = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s;
const DIGITS = /^[0-9]{1,5}$/;

/**
 * Parses a DNS target in gRPC's form `scheme:[//authority/]path`, where the authority, when not empty, is the DNS
 * server to ask (as in gRPC's `dns://8.8.8.8/example.com:443`), an IP address with an optional port
 * (`127.0.0.1:5353`, `[::1]:5353`); empty or absent, the system's resolvers are asked.
 *
 * ```
 * dns+srv:///_http._tcp.example.              SRV records of _http._tcp.example., system resolvers
 * dns+srv://127.0.0.1:5353/_http._tcp.example.  … asking 127.0.0.1 port 5353
 * dns:///api.example:8080                     A and AAAA records of api.example., port 8080
 * dns://[::1]:5353/api.example:8080           … asking ::1 port 5353
 * dns:api.example                             port 443 (gRPC's default)
 * dns+srv://_http._tcp.example.               the name in the authority's place: system resolvers
 * dns://api.example:8080                      … (a DNS server is an IP address, so this is the name)
 * ```
 *
 * Names are always fully qualified (a trailing dot is optional). An SRV target takes no port (each record has
 * its own); an address target's port is 1–65535.
 *
 * @param target a target string, or the parsed form a gRPC resolver gets ({@link TargetUri}).
 * @throws TypeError naming the target and what is wrong: another scheme, a DNS server that is not an IP address
 *   (with an optional port), a DNS server and nothing after it (`dns://127.0.0.1:53`), a bad name or port,
 *   a port on an SRV target, an IP address instead of a name, queries and fragments.
 */
export function parseDnsTarget(target: string | TargetUri): DnsTarget {
  let scheme: string | undefined;
  let authority: string | undefined;
  let path: string;
  let shown: string;
  if (typeof target === 'string') {
    shown = target;
    const match = STRING_TARGET.exec(target);
    if (match === null) {
      throw new TypeError(
        `Invalid DNS target ${JSON.stringify(target)}: expected "dns+srv://[server]/_service._proto.name." or "dns://[server]/name:port"`,
      );
    }
    scheme = match[1];
    const rest = match[2]!;
    if (rest.startsWith('//')) {
      const slash = rest.indexOf('/', 2);
      authority = slash === -1 ? rest.slice(2) : rest.slice(2, slash);
      path = slash === -1 ? '' : rest.slice(slash + 1);
      if (slash === -1) {
        // `dns+srv://_http._tcp.example.`: no "/" after the authority, so it is the name, asked of the system's
        // resolvers (a DNS server is always an IP address, a name never is, so the two cannot be confused).
        if (isServerText(authority)) return noSlash(shown, scheme!, authority);
        path = authority;
        authority = undefined;
      }
    } else {
      path = rest;
    }
  } else if (
    typeof target === 'object' &&
    target !== null &&
    typeof target.path === 'string' &&
    (target.authority === undefined || typeof target.authority === 'string') &&
    (target.scheme === undefined || typeof target.scheme === 'string')
  ) {
    scheme = target.scheme;
    authority = target.authority;
    path = target.path;
    shown = `${scheme === undefined ? '' : `${scheme}:`}${authority === undefined ? '' : `//${authority}/`}${path}`;
    // grpc-js splits off an authority only when a "/" follows it: "dns://api.example:80" arrives as the path
    // "//api.example:80".
    if (authority === undefined && path.startsWith('//') && !path.slice(2).includes('/')) {
      if (isServerText(path.slice(2))) return noSlash(shown, scheme ?? 'dns', path.slice(2));
      path = path.slice(2);
    }
  } else {
    throw new TypeError(
      `Invalid DNS target ${describeValue(target)}: expected a string or a parsed target { scheme, authority?, path }`,
    );
  }
  const fail = (why: string): never => {
    throw new TypeError(`Invalid DNS target ${JSON.stringify(shown)}: ${why}`);
  };
  const kind = scheme === 'dns+srv' ? 'srv' : scheme === 'dns' ? 'address' : undefined;
  if (kind === undefined) {
    fail(
      `the scheme must be "dns+srv" (SRV records) or "dns" (A/AAAA records), got ${describeValue(scheme)}`,
    );
  }
  if (/[?#]/.test(path)) fail('queries and fragments are not allowed');
  const servers = authority === undefined || authority === '' ? undefined : [server(authority, fail)];
  if (path === '') fail('it names nothing to look up');
  if (kind === 'srv') {
    if (path.includes(':')) {
      fail(
        `an SRV target takes no port (each SRV record has its own): write "dns+srv://…/${path.slice(0, path.lastIndexOf(':'))}"`,
      );
    }
    const name = absoluteDnsName(path, (why) => fail(`the SRV name ${why}`));
    return servers === undefined ? { kind, name } : { kind, name, servers };
  }
  let host = path;
  let port = DEFAULT_DNS_TARGET_PORT;
  const colon = path.lastIndexOf(':');
  if (path.startsWith('[') || path.indexOf(':') !== colon) {
    fail('it names an IP address; a DNS target names a host to look up');
  }
  if (colon !== -1) {
    host = path.slice(0, colon);
    const portText = path.slice(colon + 1);
    if (!DIGITS.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      fail(`port ${JSON.stringify(portText)} must be a number from 1 to 65535`);
    }
    port = Number(portText);
  }
  const name = absoluteDnsName(host, (why) => fail(`the name ${why}`));
  return servers === undefined ? { kind: 'address', name, port } : { kind: 'address', name, port, servers };
}

function server(authority: string, fail: (why: string) => never): string {
  if (authority.includes('@')) fail(`user info ${JSON.stringify(authority)} is not allowed`);
  const parsed = parseDnsServer(authority);
  if (typeof parsed === 'string') {
    fail(
      `the authority ${JSON.stringify(authority)} must be the DNS server to ask, an IP address with an optional port ("127.0.0.1:5353", "[::1]:5353"), or empty for the system's resolvers: ${parsed}`,
    );
  }
  return (parsed as DnsServer).text;
}

/** Whether `text` reads as a DNS server (an IP address with an optional port), not as a name to look up. */
function isServerText(text: string): boolean {
  return typeof parseDnsServer(text) !== 'string';
}

function noSlash(shown: string, scheme: string, rest: string): never {
  throw new TypeError(
    `Invalid DNS target ${JSON.stringify(shown)}: ${JSON.stringify(rest)} is a DNS server, and names nothing to look up; write "${scheme}://${rest}/<name>"`,
  );
}
