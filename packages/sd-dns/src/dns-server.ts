import dns from 'node:dns';
import { isIPv4, isIPv6 } from 'node:net';

/** A DNS server to ask: an IP address and a port. */
export interface DnsServer {
  /** The IP address, without brackets (`127.0.0.1`, `::1`). */
  readonly host: string;
  /** The port, 1–65535 (53 unless given). */
  readonly port: number;
  /** 4 or 6. */
  readonly family: 4 | 6;
  /** `host:port`, `[v6]:port` for IPv6: how messages and errors name it. */
  readonly text: string;
}

/** The port DNS servers listen on. */
export const DNS_PORT = 53;

const DIGITS = /^[0-9]{1,5}$/;

/**
 * Parses a DNS server address in the forms `dns.getServers()` reports and `dns.setServers()` takes: `1.2.3.4`,
 * `1.2.3.4:5353`, `::1`, `[::1]`, `[::1]:5353` (an IPv6 address with a port needs the brackets). The port
 * defaults to 53. Host names are refused: a DNS server is named by its address (resolving it would need DNS).
 * @returns the server, or a string saying what is wrong (for the caller's TypeError).
 */
export function parseDnsServer(text: string): DnsServer | string {
  let host: string;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1) return 'an opening "[" without its "]"';
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return `unexpected ${JSON.stringify(rest)} after "]"`;
      portText = rest.slice(1);
    }
    if (!isIPv6(host)) return `${JSON.stringify(host)} is not an IPv6 address`;
  } else if (isIPv6(text)) {
    host = text;
  } else {
    const colon = text.lastIndexOf(':');
    host = colon === -1 ? text : text.slice(0, colon);
    portText = colon === -1 ? undefined : text.slice(colon + 1);
    if (!isIPv4(host)) {
      return host.includes(':')
        ? 'an IPv6 address with a port needs brackets, e.g. "[::1]:5353"'
        : `${JSON.stringify(host)} is not an IP address (a DNS server is named by its address)`;
    }
  }
  let port = DNS_PORT;
  if (portText !== undefined) {
    if (!DIGITS.test(portText)) return `port ${JSON.stringify(portText)} is not a number`;
    port = Number(portText);
    if (port < 1 || port > 65535) return `port ${port} is not from 1 to 65535`;
  }
  const family = isIPv6(host) ? 6 : 4;
  return { host, port, family, text: family === 6 ? `[${host}]:${port}` : `${host}:${port}` };
}

/**
 * The system's resolvers as Node reports them (`dns.getServers()`: read from `/etc/resolv.conf` when Node
 * started, or what `dns.setServers()` set since), parsed; entries that cannot be parsed are left out.
 */
export function systemDnsServers(): DnsServer[] {
  const servers: DnsServer[] = [];
  // Through the module object: dns.setServers() replaces the exported getServers, which a named import misses.
  for (const text of dns.getServers()) {
    const server = parseDnsServer(text);
    if (typeof server !== 'string') servers.push(server);
  }
  return servers;
}
