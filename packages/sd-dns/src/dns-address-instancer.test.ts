/**
 * Unit tests of DnsAddressInstancer through a fake transport and a FakeClock; and of the default servers (the
 * system's, as `dns.getServers()` reports them).
 */
import dns from 'node:dns';
import { FakeClock } from '@sdkit/sd-core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { DnsAddressInstancer, type DnsAddressInstancerOptions } from './dns-address-instancer.js';
import { DnsSrvInstancer } from './dns-srv-instancer.js';
import {
  address,
  FakeDnsTransport,
  type FakeReply,
  type SeenQuery,
  settle,
  soa,
  srv,
} from './fixtures/fake-dns-transport.js';

const NAME = 'api.example.';
const BARE = 'api.example';
const SERVER = '[::1]:5353';

const stops: (() => void)[] = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

function setup(
  handler: (query: SeenQuery) => FakeReply,
  options: Partial<DnsAddressInstancerOptions> = {},
): { instancer: DnsAddressInstancer; transport: FakeDnsTransport; clock: FakeClock } {
  const clock = new FakeClock();
  const transport = new FakeDnsTransport(handler);
  const instancer = new DnsAddressInstancer({
    name: NAME,
    port: 8080,
    servers: [SERVER],
    clock,
    transport,
    backoff: { jitter: 0 },
    ...options,
  });
  stops.push(() => instancer.stop());
  return { instancer, transport, clock };
}

describe('DnsAddressInstancer', () => {
  it('by default asks for A and AAAA at once: "ip:port" and "[ip]:port" instances with their family', async () => {
    const { instancer, transport } = setup((q) => ({
      answers:
        q.type === 'A'
          ? [address(BARE, '10.0.0.2'), address(BARE, '10.0.0.1')]
          : [address(BARE, '2001:db8::1')],
    }));
    await settle();
    expect(transport.queries.map((q) => [q.type, q.server])).toEqual([
      ['A', SERVER],
      ['AAAA', SERVER],
    ]);
    expect(instancer.current()?.instances).toEqual([
      { key: '10.0.0.1:8080', address: '10.0.0.1:8080', metadata: { family: 4 } },
      { key: '10.0.0.2:8080', address: '10.0.0.2:8080', metadata: { family: 4 } },
      { key: '[2001:db8::1]:8080', address: '[2001:db8::1]:8080', metadata: { family: 6 } },
    ]);
    expect([instancer.name, instancer.port, instancer.family]).toEqual([NAME, 8080, 'any']);
  });

  it.each([
    [4, 'A'],
    [6, 'AAAA'],
  ] as const)('family %s asks for %s records only', async (family, type) => {
    const { instancer, transport } = setup(
      () => ({ answers: [address(BARE, family === 4 ? '127.0.0.1' : '::1')] }),
      { family },
    );
    await settle();
    expect(transport.queries.map((q) => q.type)).toEqual([type]);
    expect(instancer.current()?.instances.map((i) => i.key)).toEqual([
      family === 4 ? '127.0.0.1:8080' : '[::1]:8080',
    ]);
  });

  it('with both families: NODATA for one is fine, and the smaller TTL (or negative TTL) decides the refresh', async () => {
    const { instancer, clock } = setup((q) =>
      q.type === 'A'
        ? { answers: [address(BARE, '10.0.0.1', 120)] }
        : { authorities: [soa('example', 300, 45)] },
    );
    await settle();
    expect(instancer.current()?.instances.map((i) => i.key)).toEqual(['10.0.0.1:8080']);
    expect(clock.nextTimerAt).toBe(45_000);
  });

  it('with both families: a failure of either is the error, and the last known set is kept', async () => {
    let failAaaa = false;
    const { instancer, clock } = setup((q) =>
      q.type === 'AAAA' && failAaaa
        ? { rcode: 2 }
        : { answers: [address(BARE, q.type === 'A' ? '10.0.0.1' : '::1', 5)] },
    );
    await settle();
    failAaaa = true;
    clock.advance(5_000);
    await settle();
    const event = instancer.current();
    expect(event?.instances.map((i) => i.key)).toEqual(['10.0.0.1:8080', '[::1]:8080']);
    expect(event?.error).toMatchObject({ kind: 'servfail' });
    expect(event?.error?.message).toBe(`DNS AAAA ${NAME}: ${SERVER} answered SERVFAIL`);
  });

  it('with both families: a failure of one aborts the other lookup at once', async () => {
    const { instancer, transport } = setup((q) => (q.type === 'A' ? 'hang' : { rcode: 5 }));
    await settle();
    expect(transport.of('A')[0]?.signal.aborted).toBe(true);
    expect(instancer.current()?.error).toMatchObject({ kind: 'refused' });
  });

  it('follows a CNAME to the addresses', async () => {
    const { instancer } = setup((q) =>
      q.type === 'A'
        ? {
            answers: [
              { type: 'CNAME', name: BARE, ttl: 30, class: 'IN', data: 'lb.example' },
              address('lb.example', '10.0.0.9'),
            ],
          }
        : {},
    );
    await settle();
    expect(instancer.current()?.instances.map((i) => i.key)).toEqual(['10.0.0.9:8080']);
  });

  it('stop() aborts both lookups in flight and completes', async () => {
    const { instancer, transport } = setup(() => 'hang');
    await settle();
    instancer.stop();
    expect(transport.queries.map((q) => q.signal.aborted)).toEqual([true, true]);
  });

  it.each([
    [{ name: NAME }, /port must be an integer from 1 to 65535, got undefined/],
    [{ name: NAME, port: 0 }, /port must be an integer from 1 to 65535, got 0/],
    [{ name: NAME, port: '80' }, /port must be an integer from 1 to 65535, got "80"/],
    [{ name: NAME, port: 80, family: 'ipv4' }, /family must be 4, 6 or "any", got "ipv4"/],
    [{ name: NAME, port: 80, ipVersion: 4 }, /unknown option "ipVersion" \(did you mean "family"\?\)/],
    [{ name: '127.0.0.1', port: 80 }, /is an IP address, not a name to look up/],
    [null, /options must be an object with a name and a port/],
  ])('%o is refused with a TypeError', (options, message) => {
    expect(() => new DnsAddressInstancer(options as unknown as DnsAddressInstancerOptions)).toThrow(
      TypeError,
    );
    expect(() => new DnsAddressInstancer(options as unknown as DnsAddressInstancerOptions)).toThrow(message);
  });
});

describe('default servers: the system resolvers as Node reports them', () => {
  const saved = dns.getServers();
  afterEach(() => dns.setServers(saved));

  it('asks what dns.getServers() reports, read again at each lookup (dns.setServers is followed)', async () => {
    dns.setServers(['127.0.0.1:5399', '[::1]:5398']);
    const clock = new FakeClock();
    const transport = new FakeDnsTransport((q) =>
      q.server === '127.0.0.1:5399'
        ? { rcode: 2 }
        : { answers: [srv('_x._tcp.example', 'a.example', 1, { ttl: 1 })] },
    );
    const instancer = new DnsSrvInstancer({ name: '_x._tcp.example', clock, transport });
    stops.push(() => instancer.stop());
    expect(instancer.servers).toBeUndefined();
    await settle();
    expect(transport.queries.map((q) => q.server)).toEqual(['127.0.0.1:5399', '[::1]:5398']);
    dns.setServers(['127.0.0.2']);
    clock.advance(1_000);
    await settle();
    expect(transport.queries.at(-1)?.server).toBe('127.0.0.2:53');
  });

  it('no system resolver is a "no-servers" error', async () => {
    dns.setServers([]);
    const instancer = new DnsSrvInstancer({
      name: '_x._tcp.example',
      clock: new FakeClock(),
      transport: new FakeDnsTransport(() => 'hang'),
    });
    stops.push(() => instancer.stop());
    await settle();
    expect(instancer.current()?.error).toMatchObject({ kind: 'no-servers' });
    expect(instancer.current()?.error?.message).toMatch(/no DNS server to ask/);
  });
});
