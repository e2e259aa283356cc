import { isIP } from 'node:net';

const LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/**
 * Checks a domain name to look up and returns it absolute (with one trailing dot), case kept: `api.example` and
 * `api.example.` are both `api.example.`. A name is always taken as fully qualified: no search domains of
 * `/etc/resolv.conf` are tried.
 * @param fail throws the caller's TypeError, given what is wrong.
 */
export function absoluteDnsName(name: string, fail: (why: string) => never): string {
  const bare = name.endsWith('.') ? name.slice(0, -1) : name;
  if (bare === '') fail('it is empty (the root cannot be looked up)');
  if (isIP(bare) !== 0) fail(`${JSON.stringify(name)} is an IP address, not a name to look up`);
  if (bare.length > 253) fail(`${JSON.stringify(name)} is longer than 253 characters`);
  for (const label of bare.split('.')) {
    if (!LABEL.test(label)) {
      fail(
        `${JSON.stringify(name)} has a bad label ${JSON.stringify(label)} (labels are 1-63 of A-Z, a-z, 0-9, "-", "_", not starting or ending with "-")`,
      );
    }
  }
  return `${bare}.`;
}

/** Whether two names are the same name (DNS compares ASCII case-insensitively; a trailing dot is ignored). */
export function sameDnsName(a: string, b: string): boolean {
  return canonicalDnsName(a) === canonicalDnsName(b);
}

/** `name` in lower case without a trailing dot (the form dns-packet decodes names in, lower-cased). */
export function canonicalDnsName(name: string): string {
  const bare = name.endsWith('.') ? name.slice(0, -1) : name;
  return bare.toLowerCase();
}
