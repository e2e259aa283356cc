/**
 * The DNS instancers against a real DNS server (BIND, from test/harness) whose records change during the tests
 * (nsupdate), and whose faults are real: NXDOMAIN, SERVFAIL (a zone that does not load), timeouts (the server
 * SIGSTOPped), and the server going away (killed) — each an error event with the last set kept, then recovery.
 */
import type { InstancerEvent } from '@sdkit/sd-core';
import { instancerForTarget } from '@sdkit/sd-core';
import { record, recordingLogger } from '@sdkit/sd-core/testing';
import { type DnsServer, freePort, startDnsServer, waitFor } from '@sdkit/test-harness';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DnsAddressInstancer } from './dns-address-instancer.js';
import type { DnsError } from './dns-error.js';
import type { DnsInstancerOptions } from './dns-instancer-options.js';
import { DnsSrvInstancer } from './dns-srv-instancer.js';
import { dnsTargetSource } from './dns-target-source.js';
import type { DnsTransport } from './dns-transport.js';
import { nodeDnsTransport } from './node-dns-transport.js';

/** Quick refreshes for tests: records carry TTL 1 (1 s); failures are retried after 50–200 ms. */
const FAST = {
  minTtlMs: 100,
  maxTtlMs: 1_000,
  timeoutMs: 500,
  backoff: { initialMs: 50, maxMs: 200 },
} as const satisfies Partial<DnsInstancerOptions>;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function srvInstancer(server: DnsServer, name: string, options: Partial<DnsInstancerOptions> = {}) {
  const instancer = new DnsSrvInstancer({ name, servers: [server.server], ...FAST, ...options });
  cleanups.push(() => instancer.stop());
  return instancer;
}

const keys = (event: InstancerEvent): string[] => event.instances.map((i) => i.key);
const sameKeys = (expected: string[]) => (event: InstancerEvent) =>
  event.error === undefined && JSON.stringify(keys(event)) === JSON.stringify(expected);
const failedWith = (kind: string) => (event: InstancerEvent) =>
  (event.error as DnsError | undefined)?.kind === kind;

/** Every event of a recording: an error event holds the last known good set, and no answer was empty. */
function expectNoEmptySetFromFailures(events: readonly InstancerEvent[], lastKnownGood: string[]): void {
  for (const event of events) {
    if (event.error !== undefined) expect(keys(event)).toEqual(lastKnownGood);
    else expect(event.instances.length).toBeGreaterThan(0);
  }
}

describe('DnsSrvInstancer against BIND', () => {
  let dns: DnsServer;
  beforeAll(async () => {
    dns = await startDnsServer({
      records: [
        '_http._tcp 1 IN SRV 10 5 8080 a',
        '_gone._tcp 1 IN SRV 10 5 8080 a',
        '_empty._tcp 1 IN SRV 10 5 8080 a',
        '_empty._tcp 1 IN TXT "keeps the name alive"',
        'a 1 IN A 127.0.0.1',
      ],
    });
  });
  afterAll(() => dns?.close());

  it('sees SRV records added, changed (priority, weight) and removed while it runs', async () => {
    const name = `_http._tcp.${dns.zone}`;
    const instancer = srvInstancer(dns, name);
    const first = await waitFor(instancer.events$, sameKeys(['a.sdkit.test:8080']), 'the first answer');
    expect(first.instances[0]?.metadata).toEqual({
      priority: 10,
      weight: 5,
      target: 'a.sdkit.test',
      port: 8080,
    });

    await dns.update(`update add ${name} 1 IN SRV 20 1 9090 b.${dns.zone}`);
    await waitFor(instancer.events$, sameKeys(['a.sdkit.test:8080', 'b.sdkit.test:9090']), 'b added');

    await dns.update(
      `update delete ${name} SRV 10 5 8080 a.${dns.zone}`,
      `update add ${name} 1 IN SRV 5 70 8080 a.${dns.zone}`,
    );
    const changed = await waitFor(
      instancer.events$,
      (e: InstancerEvent) => e.instances[0]?.metadata?.priority === 5,
      'a with priority 5',
    );
    expect(changed.instances.map((i) => [i.key, i.metadata?.priority, i.metadata?.weight])).toEqual([
      ['a.sdkit.test:8080', 5, 70],
      ['b.sdkit.test:9090', 20, 1],
    ]);

    await dns.update(`update delete ${name} SRV 5 70 8080 a.${dns.zone}`);
    await waitFor(instancer.events$, sameKeys(['b.sdkit.test:9090']), 'a removed');
  });

  it('the last record deleted makes the name NXDOMAIN: an error event with the last set kept, then recovery', async () => {
    const name = `_gone._tcp.${dns.zone}`;
    const instancer = srvInstancer(dns, name);
    const rec = record(instancer.events$);
    await waitFor(instancer.events$, sameKeys(['a.sdkit.test:8080']), 'the first answer');
    await dns.update(`update delete ${name} SRV`);
    const failed = await waitFor(instancer.events$, failedWith('nxdomain'), 'NXDOMAIN');
    expect(keys(failed)).toEqual(['a.sdkit.test:8080']);
    expect(failed.error?.message).toBe(`DNS SRV ${name}: ${dns.server} answered NXDOMAIN (no such name)`);
    await dns.update(`update add ${name} 1 IN SRV 10 5 7070 c.${dns.zone}`);
    await waitFor(instancer.events$, sameKeys(['c.sdkit.test:7070']), 'recovery');
    expectNoEmptySetFromFailures(rec.values.slice(0, -1), ['a.sdkit.test:8080']);
  });

  it('NOERROR without SRV records (the name keeps a TXT record) is a real answer: an empty set, no error', async () => {
    const name = `_empty._tcp.${dns.zone}`;
    const instancer = srvInstancer(dns, name);
    await waitFor(instancer.events$, sameKeys(['a.sdkit.test:8080']), 'the first answer');
    await dns.update(`update delete ${name} SRV`);
    await waitFor(instancer.events$, sameKeys([]), 'the empty set');
  });

  it("refreshes on the records' TTL: BIND's TTL is what decides the next lookup, within the floor and ceiling", async () => {
    const name = `_ttl._tcp.${dns.zone}`;
    await dns.update(`update add ${name} 3 IN SRV 10 5 8080 a.${dns.zone}`);
    const logger = recordingLogger();
    const instancer = srvInstancer(dns, name, { logger, maxTtlMs: 60_000 });
    await waitFor(instancer.events$, sameKeys(['a.sdkit.test:8080']), 'the first answer');
    const answer = logger.records.find((r) => r.msg === 'sdkit: DNS answer');
    expect(answer?.obj).toMatchObject({ ttlMs: 3_000, nextInMs: 3_000, instances: 1 });
  });

  it('asks over TCP when the answer does not fit in a UDP datagram (80 SRV records)', async () => {
    const name = `_many._tcp.${dns.zone}`;
    const commands = Array.from(
      { length: 80 },
      (_, i) => `update add ${name} 1 IN SRV 10 5 ${8000 + i} host-${String(i).padStart(2, '0')}.${dns.zone}`,
    );
    await dns.update(...commands);
    const protocols: string[] = [];
    const transport: DnsTransport = {
      exchange: (exchange) => {
        protocols.push(exchange.protocol);
        return nodeDnsTransport.exchange(exchange);
      },
    };
    const instancer = srvInstancer(dns, name, { transport });
    const event = await waitFor(
      instancer.events$,
      (e: InstancerEvent) => e.instances.length > 0,
      'the answer',
    );
    expect(event.instances).toHaveLength(80);
    expect(event.instances[79]?.key).toBe('host-79.sdkit.test:8079');
    expect(protocols.slice(0, 2)).toEqual(['udp', 'tcp']);
  });

  it('asks the next server when the first is gone, without an error', async () => {
    const instancer = new DnsSrvInstancer({
      name: `_http._tcp.${dns.zone}`,
      // A port nothing listens on: its queries fail at once (ECONNREFUSED).
      servers: [`127.0.0.1:${await freePort()}`, dns.server6],
      ...FAST,
    });
    cleanups.push(() => instancer.stop());
    const event = await waitFor(
      instancer.events$,
      (e: InstancerEvent) => e.instances.length > 0 || e.error !== undefined,
      'an event',
    );
    expect(event.error).toBeUndefined();
  });

  it('follows a dns+srv:// target through dnsTargetSource', async () => {
    const instancer = dnsTargetSource[instancerForTarget](
      { scheme: 'dns+srv', authority: `[::1]:${dns.port}`, path: `_gone._tcp.${dns.zone}` },
      FAST,
    );
    cleanups.push(() => instancer.stop());
    await waitFor(instancer.events$, sameKeys(['c.sdkit.test:7070']), 'the answer');
  });
});

describe('DnsAddressInstancer against BIND', () => {
  let dns: DnsServer;
  beforeAll(async () => {
    dns = await startDnsServer({ records: ['api 1 IN A 127.0.0.1', 'api 1 IN AAAA ::1'] });
  });
  afterAll(() => dns?.close());

  it('A and AAAA records (asking over IPv6), and a change to them', async () => {
    const name = `api.${dns.zone}`;
    const instancer = new DnsAddressInstancer({ name, port: 8080, servers: [dns.server6], ...FAST });
    cleanups.push(() => instancer.stop());
    const first = await waitFor(
      instancer.events$,
      sameKeys(['127.0.0.1:8080', '[::1]:8080']),
      'both addresses',
    );
    expect(first.instances.map((i) => i.metadata)).toEqual([{ family: 4 }, { family: 6 }]);
    await dns.update(`update add ${name} 1 IN AAAA ::2`, `update delete ${name} A`);
    await waitFor(instancer.events$, sameKeys(['[::1]:8080', '[::2]:8080']), 'the change');
  });

  it.each([
    [4, ['127.0.0.1:9000']],
    [6, ['[::1]:9000']],
  ] as const)('family %s', async (family, expected) => {
    await dns.update(
      `update add other.${dns.zone} 1 IN A 127.0.0.1`,
      `update add other.${dns.zone} 1 IN AAAA ::1`,
    );
    const instancer = new DnsAddressInstancer({
      name: `other.${dns.zone}`,
      port: 9000,
      family,
      servers: [dns.server],
      ...FAST,
    });
    cleanups.push(() => instancer.stop());
    await waitFor(instancer.events$, sameKeys([...expected]), `the ${family === 4 ? 'A' : 'AAAA'} records`);
  });
});

describe('faults of a real server: an error event with the last set kept, then recovery', () => {
  let dns: DnsServer;
  afterEach(() => dns?.close());

  async function follow(): Promise<{ instancer: DnsSrvInstancer; events: InstancerEvent[] }> {
    dns = await startDnsServer({ name: 'dns-faults', records: ['_http._tcp 1 IN SRV 10 5 8080 a'] });
    const instancer = srvInstancer(dns, `_http._tcp.${dns.zone}`);
    const rec = record(instancer.events$);
    await waitFor(instancer.events$, sameKeys(['a.sdkit.test:8080']), 'the first answer');
    return { instancer, events: rec.values };
  }

  it('SERVFAIL (the zone does not load)', async () => {
    const { instancer, events } = await follow();
    await dns.setZoneLoads(false);
    const failed = await waitFor(instancer.events$, failedWith('servfail'), 'SERVFAIL');
    expect(keys(failed)).toEqual(['a.sdkit.test:8080']);
    expect(failed.error?.message).toMatch(/answered SERVFAIL$/);
    await dns.setZoneLoads(true);
    await waitFor(
      instancer.events$,
      (e: InstancerEvent) => e.error === undefined && events.indexOf(e) > events.indexOf(failed),
      'recovery',
    );
    expectNoEmptySetFromFailures(events, ['a.sdkit.test:8080']);
  });

  it('timeouts (the server SIGSTOPped: its sockets open, nothing answers)', async () => {
    const { instancer, events } = await follow();
    dns.pause();
    const failed = await waitFor(instancer.events$, failedWith('timeout'), 'a timeout');
    expect(keys(failed)).toEqual(['a.sdkit.test:8080']);
    expect(failed.error?.message).toBe(
      `DNS SRV _http._tcp.${dns.zone}: no answer from ${dns.server} within ${FAST.timeoutMs} ms`,
    );
    dns.resume();
    await waitFor(
      instancer.events$,
      (e: InstancerEvent) => e.error === undefined && events.indexOf(e) > events.indexOf(failed),
      'recovery',
    );
    expectNoEmptySetFromFailures(events, ['a.sdkit.test:8080']);
  });

  it('the server goes away (killed), then comes back on the same port', async () => {
    const { instancer, events } = await follow();
    await dns.kill();
    const failed = await waitFor(instancer.events$, failedWith('unreachable'), 'unreachable');
    expect(keys(failed)).toEqual(['a.sdkit.test:8080']);
    expect(failed.error?.message).toBe(
      `DNS SRV _http._tcp.${dns.zone}: ${dns.server} is unreachable (ECONNREFUSED)`,
    );
    await dns.start();
    await waitFor(
      instancer.events$,
      (e: InstancerEvent) => e.error === undefined && events.indexOf(e) > events.indexOf(failed),
      'recovery',
    );
    expectNoEmptySetFromFailures(events, ['a.sdkit.test:8080']);
  });
});
