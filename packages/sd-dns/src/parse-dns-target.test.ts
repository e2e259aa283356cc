/** DNS targets: parsing (strings and grpc-js's parsed form) and the mapping to instancers. */
import { instancerForTarget, isTargetInstancerSource, type TargetUri } from '@sdkit/sd-core';
import { FakeClock } from '@sdkit/sd-core/testing';
import { describe, expect, it } from 'vitest';
import { DnsAddressInstancer } from './dns-address-instancer.js';
import { DnsSrvInstancer } from './dns-srv-instancer.js';
import { dnsInstancerForTarget, dnsTargetSource } from './dns-target-source.js';
import { FakeDnsTransport, settle, srv } from './fixtures/fake-dns-transport.js';
import { parseDnsTarget } from './parse-dns-target.js';

/** How @grpc/grpc-js's parseUri splits a target (its regex), to feed the parsed form. */
function grpcUri(target: string): TargetUri {
  const match = /^(?:([A-Za-z0-9+.-]+):)?(?:\/\/([^/]*)\/)?(.+)$/.exec(target)!;
  return { scheme: match[1], authority: match[2], path: match[3]! };
}

describe('parseDnsTarget', () => {
  it.each([
    ['dns+srv:///_http._tcp.example.', { kind: 'srv', name: '_http._tcp.example.' }],
    ['dns+srv:///_http._tcp.example', { kind: 'srv', name: '_http._tcp.example.' }],
    [
      'dns+srv://127.0.0.1:5353/_http._tcp.example.',
      { kind: 'srv', name: '_http._tcp.example.', servers: ['127.0.0.1:5353'] },
    ],
    ['dns+srv://[::1]:5353/_grpc._tcp.x', { kind: 'srv', name: '_grpc._tcp.x.', servers: ['[::1]:5353'] }],
    ['dns+srv://10.0.0.1/_a._udp.x', { kind: 'srv', name: '_a._udp.x.', servers: ['10.0.0.1:53'] }],
    ['dns+srv:_http._tcp.example.', { kind: 'srv', name: '_http._tcp.example.' }],
    ['dns:///api.example:8080', { kind: 'address', name: 'api.example.', port: 8080 }],
    ['dns:///api.example.:8080', { kind: 'address', name: 'api.example.', port: 8080 }],
    ['dns:///api.example', { kind: 'address', name: 'api.example.', port: 443 }],
    ['dns:api.example:80', { kind: 'address', name: 'api.example.', port: 80 }],
    [
      'dns://[::1]:5353/api.example:8080',
      { kind: 'address', name: 'api.example.', port: 8080, servers: ['[::1]:5353'] },
    ],
    [
      'dns://8.8.8.8/Api.Example:1',
      { kind: 'address', name: 'Api.Example.', port: 1, servers: ['8.8.8.8:53'] },
    ],
  ])('%s', (text, expected) => {
    expect(parseDnsTarget(text)).toEqual(expected);
    expect(parseDnsTarget(grpcUri(text))).toEqual(expected);
  });

  it.each([
    ['etcd:///x', /the scheme must be "dns\+srv" \(SRV records\) or "dns" \(A\/AAAA records\), got "etcd"/],
    ['api.example:80', /the scheme must be/],
    ['no-scheme', /expected "dns\+srv:\/\/\[server\]/],
    [
      'dns+srv:///_http._tcp.example:80',
      /an SRV target takes no port .* write "dns\+srv:\/\/…\/_http\._tcp\.example"/,
    ],
    ['dns+srv:///', /names nothing to look up/],
    [
      'dns://127.0.0.1:53',
      /"127\.0\.0\.1:53" is a DNS server, and names nothing to look up; write "dns:\/\/127\.0\.0\.1:53\/<name>"/,
    ],
    [
      'dns://dns.google/api.example:80',
      /the authority "dns\.google" must be the DNS server to ask, an IP address/,
    ],
    ['dns://user@127.0.0.1/api.example', /user info/],
    ['dns://[::1/api.example', /an opening "\[" without its "\]"/],
    ['dns://[::1]:99999/api.example', /port 99999 is not from 1 to 65535/],
    ['dns:///api.example:0', /port "0" must be a number from 1 to 65535/],
    ['dns:///api.example:http', /port "http" must be a number/],
    ['dns:///api.example:', /port "" must be a number/],
    ['dns:///127.0.0.1:80', /the name "127\.0\.0\.1" is an IP address/],
    ['dns:///[::1]:80', /it names an IP address; a DNS target names a host to look up/],
    ['dns:///api..example', /bad label ""/],
    ['dns:///api.example?x=1', /queries and fragments are not allowed/],
  ])('%s is refused with a TypeError naming it', (text, message) => {
    expect(() => parseDnsTarget(text)).toThrow(TypeError);
    expect(() => parseDnsTarget(text)).toThrow(message);
    expect(() => parseDnsTarget(text)).toThrow(`Invalid DNS target ${JSON.stringify(text)}`);
  });

  it('takes a name in the authority’s place (dns+srv://_http._tcp.example.), as the issue’s CLI grammar writes it', () => {
    expect(parseDnsTarget('dns+srv://_http._tcp.example.')).toEqual({
      kind: 'srv',
      name: '_http._tcp.example.',
    });
    expect(parseDnsTarget('dns://api.example:80')).toEqual({
      kind: 'address',
      name: 'api.example.',
      port: 80,
    });
    // grpc-js hands "dns://api.example:80" over as the path "//api.example:80", without an authority.
    expect(parseDnsTarget({ scheme: 'dns', path: '//api.example:80' })).toEqual({
      kind: 'address',
      name: 'api.example.',
      port: 80,
    });
    expect(() => parseDnsTarget({ scheme: 'dns', path: '//[::1]:53' })).toThrow(
      /is a DNS server, and names nothing/,
    );
  });

  it('refuses what is not a target', () => {
    expect(() => parseDnsTarget(42 as unknown as string)).toThrow(/Invalid DNS target 42: expected a string/);
    expect(() => parseDnsTarget({ scheme: 'dns' } as unknown as TargetUri)).toThrow(TypeError);
  });
});

describe('dnsInstancerForTarget and dnsTargetSource', () => {
  const options = () => ({ clock: new FakeClock(), transport: new FakeDnsTransport(() => 'hang' as const) });

  it('maps dns+srv:// to a DnsSrvInstancer and dns:// to a DnsAddressInstancer, asking the named server', () => {
    const a = dnsInstancerForTarget('dns+srv://127.0.0.1:5353/_http._tcp.example.', options());
    const b = dnsInstancerForTarget('dns://[::1]:5353/api.example:8080', { ...options(), family: 6 });
    try {
      expect(a).toBeInstanceOf(DnsSrvInstancer);
      expect([a.name, a.servers]).toEqual(['_http._tcp.example.', ['127.0.0.1:5353']]);
      expect(b).toBeInstanceOf(DnsAddressInstancer);
      expect(b).toMatchObject({ name: 'api.example.', port: 8080, family: 6, servers: ['[::1]:5353'] });
    } finally {
      a.stop();
      b.stop();
    }
  });

  it("the target's server wins over options.servers, which serve targets without one", () => {
    const named = dnsInstancerForTarget('dns+srv://10.1.1.1/_x._tcp.example', {
      ...options(),
      servers: ['10.2.2.2'],
    });
    const unnamed = dnsInstancerForTarget('dns+srv:///_x._tcp.example', {
      ...options(),
      servers: ['10.2.2.2'],
    });
    try {
      expect(named.servers).toEqual(['10.1.1.1:53']);
      expect(unnamed.servers).toEqual(['10.2.2.2']);
    } finally {
      named.stop();
      unnamed.stop();
    }
  });

  it('dnsTargetSource is a TargetInstancerSource over the parsed form grpc-js hands a resolver', async () => {
    expect(isTargetInstancerSource(dnsTargetSource)).toBe(true);
    const transport = new FakeDnsTransport(() => ({ answers: [srv('_x._tcp.example', 'a.example', 7)] }));
    const instancer = dnsTargetSource[instancerForTarget](
      { scheme: 'dns+srv', authority: '127.0.0.1:5353', path: '_x._tcp.example.' },
      { clock: new FakeClock(), transport },
    );
    try {
      await settle();
      expect(transport.queries[0]).toMatchObject({
        server: '127.0.0.1:5353',
        name: '_x._tcp.example',
        type: 'SRV',
      });
      expect(instancer.current()?.instances.map((i) => i.key)).toEqual(['a.example:7']);
    } finally {
      instancer.stop();
    }
  });

  it('refuses a malformed target, name or port in the options, and bad options', () => {
    expect(() => dnsTargetSource[instancerForTarget]({ scheme: 'dns', authority: '', path: '' })).toThrow(
      /Invalid DNS target "dns:\/\/\/": it names nothing to look up/,
    );
    expect(() => dnsInstancerForTarget('dns:///api.example:80', { port: 81 } as never)).toThrow(
      /port comes from the target/,
    );
    expect(() => dnsInstancerForTarget('dns:///api.example:80', { timeoutMs: 0 })).toThrow(
      /DnsAddressInstancer: timeoutMs must be/,
    );
    expect(() => dnsInstancerForTarget('dns:///api.example:80', 'x' as never)).toThrow(
      /options must be an object/,
    );
  });
});
