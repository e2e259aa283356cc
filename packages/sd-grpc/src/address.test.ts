import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatGrpcAddress, parseGrpcAddress } from './address.js';

describe('parseGrpcAddress', () => {
  it.each([
    ['127.0.0.1:50051', '127.0.0.1:50051'],
    ['[::1]:50051', '[::1]:50051'],
    ['[2001:db8::5]:1', '[2001:db8::5]:1'],
    ['http://10.0.0.5:8080', '10.0.0.5:8080'],
    ['HTTPS://10.0.0.5:8080/', '10.0.0.5:8080'],
    ['grpc://[::1]:9', '[::1]:9'],
    ['svc.ns.svc.cluster.local:443', 'svc.ns.svc.cluster.local:443'],
    ['localhost:65535', 'localhost:65535'],
  ])('accepts %s as %s', (input, expected) => {
    const parsed = parseGrpcAddress(input);
    expect(parsed.ok && formatGrpcAddress(parsed.address)).toBe(expected);
  });

  it.each([
    ['', /empty/],
    ['127.0.0.1', /no port/],
    ['::1:50051', /more than one/],
    ['[::1]', /no port/],
    ['[127.0.0.1]:5', /not an IPv6/],
    ['[::1:5', /unterminated/],
    ['unix:///tmp/x.sock', /unsupported scheme/],
    ['dns:///svc:50051', /unsupported scheme/],
    ['http://10.0.0.5:8080/path', /path/],
    ['http://user@10.0.0.5:8080', /user info/],
    ['10.0.0.5:0', /1-65535/],
    ['10.0.0.5:65536', /1-65535/],
    ['10.0.0.5:http', /not a number/],
    [':50051', /host is empty/],
    ['bad_host!:1', /neither/],
    [' 10.0.0.5:1', /whitespace/],
  ])('refuses %j (%s)', (input, reason) => {
    const parsed = parseGrpcAddress(input);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(reason);
  });

  it('round-trips every IPv4/IPv6 literal and port, with or without an http:// prefix', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.ipV4(), fc.ipV6()),
        fc.integer({ min: 1, max: 65535 }),
        fc.boolean(),
        (ip, port, prefix) => {
          const text = ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
          const parsed = parseGrpcAddress(prefix ? `http://${text}` : text);
          expect(parsed).toEqual({ ok: true, address: { host: ip, port } });
          if (parsed.ok) expect(formatGrpcAddress(parsed.address)).toBe(text);
        },
      ),
    );
  });

  it('never throws, whatever the input', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const parsed = parseGrpcAddress(s);
        expect(typeof parsed.ok).toBe('boolean');
      }),
    );
  });
});
