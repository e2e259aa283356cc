/**
 * Unit tests of DnsSrvInstancer through a fake transport (real DNS messages, no sockets) and a FakeClock: TTL
 * floor and ceiling, refresh scheduling, backoff, last known good, stop semantics. The real server is in
 * *.integration.test.ts.
 */
import type { InstancerEvent } from '@sdkit/sd-core';
import { FakeClock, record, recordingLogger } from '@sdkit/sd-core/testing';
import { startTestTelemetry } from '@sdkit/test-harness/telemetry';
import { afterEach, describe, expect, it } from 'vitest';
import { DnsError } from './dns-error.js';
import { DnsSrvInstancer, type DnsSrvInstancerOptions } from './dns-srv-instancer.js';
import {
  cname,
  FakeDnsTransport,
  type FakeReply,
  refused,
  type SeenQuery,
  settle,
  soa,
  srv,
} from './fixtures/fake-dns-transport.js';

const NAME = '_http._tcp.example.';
const BARE = '_http._tcp.example';
const SERVER = '127.0.0.1:5353';

const stops: (() => void)[] = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

function setup(
  handler: (query: SeenQuery) => FakeReply,
  options: Partial<DnsSrvInstancerOptions> = {},
): { instancer: DnsSrvInstancer; transport: FakeDnsTransport; clock: FakeClock } {
  const clock = new FakeClock();
  const transport = new FakeDnsTransport(handler);
  const instancer = new DnsSrvInstancer({
    name: NAME,
    servers: [SERVER],
    clock,
    transport,
    backoff: { jitter: 0 },
    ...options,
  });
  stops.push(() => instancer.stop());
  return { instancer, transport, clock };
}

const keys = (event: InstancerEvent | undefined): string[] | undefined => event?.instances.map((i) => i.key);

describe('DnsSrvInstancer: answers', () => {
  it('turns each SRV record into an instance "target:port" with priority, weight, target and port', async () => {
    const { instancer, transport } = setup(() => ({
      answers: [
        srv(BARE, 'B.Example', 8080, { priority: 20, weight: 1 }),
        srv(BARE, 'a.example', 9090, { priority: 10, weight: 60 }),
      ],
    }));
    expect(instancer.current()).toBeUndefined();
    await settle();
    expect(instancer.current()).toEqual({
      instances: [
        {
          key: 'a.example:9090',
          address: 'a.example:9090',
          metadata: { priority: 10, weight: 60, target: 'a.example', port: 9090 },
        },
        {
          key: 'b.example:8080',
          address: 'b.example:8080',
          metadata: { priority: 20, weight: 1, target: 'b.example', port: 8080 },
        },
      ],
    });
    const [query] = transport.queries;
    expect(query).toMatchObject({ server: SERVER, protocol: 'udp', name: BARE, type: 'SRV', edns: true });
    expect(query?.recursionDesired).toBe(true);
    expect(instancer.name).toBe(NAME);
    expect(instancer.servers).toEqual([SERVER]);
  });

  it('takes the name with or without its trailing dot, and asks for it as given (no search domains)', async () => {
    const { instancer, transport } = setup(() => ({ answers: [srv(BARE, 'a.example', 1)] }), { name: BARE });
    await settle();
    expect(instancer.name).toBe(NAME);
    expect(transport.queries[0]?.name).toBe(BARE);
  });

  it('an answer without SRV records (NOERROR/NODATA) is a real answer: the set becomes empty', async () => {
    let empty = false;
    const { instancer, clock } = setup(() =>
      empty
        ? { authorities: [soa('example', 60, 10)] }
        : { answers: [srv(BARE, 'a.example', 1, { ttl: 5 })] },
    );
    const rec = record(instancer.events$);
    await settle();
    empty = true;
    clock.advance(5_000);
    await settle();
    expect(rec.values.map(keys)).toEqual([['a.example:1'], []]);
    expect(rec.values[1]?.error).toBeUndefined();
  });

  it('a single record with target "." means "not available here" (RFC 2782): an empty set; port 0 is skipped', async () => {
    const { instancer } = setup(() => ({
      answers: [srv(BARE, '.', 0), srv(BARE, 'zero.example', 0), srv(BARE, 'ok.example', 7)],
    }));
    await settle();
    expect(keys(instancer.current())).toEqual(['ok.example:7']);
  });

  it('of two records with the same target and port, keeps the lower priority, then the higher weight', async () => {
    const { instancer } = setup(() => ({
      answers: [
        srv(BARE, 'a.example', 1, { priority: 20, weight: 100 }),
        srv(BARE, 'a.example', 1, { priority: 10, weight: 1 }),
        srv(BARE, 'a.example', 1, { priority: 10, weight: 3 }),
        srv(BARE, 'a.example', 1, { priority: 10, weight: 2 }),
      ],
    }));
    await settle();
    expect(instancer.current()?.instances[0]?.metadata).toMatchObject({ priority: 10, weight: 3 });
  });

  it('follows a CNAME chain to the SRV records, and the smallest TTL on the way decides the refresh', async () => {
    const { instancer, transport, clock } = setup(() => ({
      answers: [
        cname(BARE, 'alias.example', 40),
        cname('alias.example', 'real.example', 20),
        srv('real.example', 'a.example', 1, { ttl: 300 }),
      ],
    }));
    await settle();
    expect(keys(instancer.current())).toEqual(['a.example:1']);
    clock.advance(19_999);
    await settle();
    expect(transport.queries).toHaveLength(1);
    clock.advance(1);
    await settle();
    expect(transport.queries).toHaveLength(2);
  });

  it('asks again for a CNAME target that the answer does not cover (an authoritative server of another zone)', async () => {
    const { instancer, transport } = setup((q) =>
      q.name === BARE
        ? { answers: [cname(BARE, 'other.zone', 30)] }
        : { answers: [srv('other.zone', 'a.example', 1)] },
    );
    await settle();
    expect(transport.queries.map((q) => q.name)).toEqual([BARE, 'other.zone']);
    expect(keys(instancer.current())).toEqual(['a.example:1']);
  });

  it('a CNAME loop is a "malformed" error', async () => {
    const { instancer } = setup(() => ({
      answers: [cname(BARE, 'x.example'), cname('x.example', BARE)],
    }));
    await settle();
    const error = instancer.current()?.error as DnsError;
    expect(error).toBeInstanceOf(DnsError);
    expect(error.kind).toBe('malformed');
    expect(error.message).toMatch(/CNAME chain loops/);
  });

  it('asks over TCP when the UDP answer is truncated, and uses the TCP answer', async () => {
    const { instancer, transport } = setup((q) =>
      q.protocol === 'udp'
        ? { truncated: true }
        : { answers: [srv(BARE, 'a.example', 1), srv(BARE, 'b.example', 2)] },
    );
    await settle();
    expect(transport.queries.map((q) => q.protocol)).toEqual(['udp', 'tcp']);
    expect(keys(instancer.current())).toEqual(['a.example:1', 'b.example:2']);
  });

  it('asks once more without EDNS when a server answers FORMERR to EDNS', async () => {
    const { instancer, transport } = setup((q) =>
      q.edns ? { rcode: 1 } : { answers: [srv(BARE, 'a.example', 1)] },
    );
    await settle();
    expect(transport.queries.map((q) => q.edns)).toEqual([true, false]);
    expect(keys(instancer.current())).toEqual(['a.example:1']);
  });
});

describe('DnsSrvInstancer: refresh timing', () => {
  it("refreshes when the answer's TTL runs out, and an unchanged answer emits nothing", async () => {
    const { instancer, transport, clock } = setup(() => ({
      answers: [srv(BARE, 'a.example', 1, { ttl: 30 })],
    }));
    const rec = record(instancer.events$);
    await settle();
    expect(clock.nextTimerAt).toBe(30_000);
    clock.advance(29_999);
    await settle();
    expect(transport.queries).toHaveLength(1);
    clock.advance(1);
    await settle();
    expect(transport.queries).toHaveLength(2);
    expect(rec.values).toHaveLength(1);
  });

  it('a change between refreshes is one event with the new set', async () => {
    let answers = [srv(BARE, 'a.example', 1, { ttl: 10 })];
    const { instancer, clock } = setup(() => ({ answers }));
    const rec = record(instancer.events$);
    await settle();
    answers = [srv(BARE, 'a.example', 1, { ttl: 10 }), srv(BARE, 'b.example', 2, { ttl: 10 })];
    clock.advance(10_000);
    await settle();
    answers = [srv(BARE, 'b.example', 2, { ttl: 10, priority: 5 })];
    clock.advance(10_000);
    await settle();
    expect(rec.values.map(keys)).toEqual([['a.example:1'], ['a.example:1', 'b.example:2'], ['b.example:2']]);
    expect(rec.values[2]?.instances[0]?.metadata).toMatchObject({ priority: 5 });
  });

  it('a TTL below the floor counts as minTtlMs (default 1 s): TTL 0 is no busy loop', async () => {
    const { transport, clock } = setup(() => ({ answers: [srv(BARE, 'a.example', 1, { ttl: 0 })] }));
    await settle();
    expect(clock.nextTimerAt).toBe(1_000);
    clock.advance(1_000);
    await settle();
    expect(transport.queries).toHaveLength(2);
  });

  it('a TTL above the ceiling counts as maxTtlMs (default 5 min)', async () => {
    const { clock } = setup(() => ({ answers: [srv(BARE, 'a.example', 1, { ttl: 86_400 })] }));
    await settle();
    expect(clock.nextTimerAt).toBe(300_000);
  });

  it('minTtlMs === maxTtlMs refreshes at a fixed interval whatever the TTL', async () => {
    let ttl = 1;
    const { clock } = setup(() => ({ answers: [srv(BARE, 'a.example', 1, { ttl })] }), {
      minTtlMs: 15_000,
      maxTtlMs: 15_000,
    });
    await settle();
    expect(clock.nextTimerAt).toBe(15_000);
    ttl = 3_600;
    clock.advance(15_000);
    await settle();
    expect(clock.nextTimerAt).toBe(30_000);
  });

  it('an empty answer is refreshed after the negative TTL of its SOA (the smaller of its TTL and minimum)', async () => {
    const { clock } = setup(() => ({ authorities: [soa('example', 60, 20)] }));
    await settle();
    expect(clock.nextTimerAt).toBe(20_000);
  });

  it('an empty answer without an SOA is refreshed at the floor', async () => {
    const { clock } = setup(() => ({}), { minTtlMs: 2_500 });
    await settle();
    expect(clock.nextTimerAt).toBe(2_500);
  });
});

describe('DnsSrvInstancer: failures are data', () => {
  it('the first event can be a failure: { instances: [], error }', async () => {
    const { instancer } = setup(() => ({ rcode: 2 }));
    await settle();
    const event = instancer.current();
    expect(event?.instances).toEqual([]);
    expect(event?.error).toBeInstanceOf(DnsError);
    expect(event?.error).toMatchObject({
      kind: 'servfail',
      rcode: 2,
      server: SERVER,
      question: NAME,
      type: 'SRV',
      message: `DNS SRV ${NAME}: ${SERVER} answered SERVFAIL`,
    });
  });

  it.each([
    ['nxdomain', { rcode: 3 }, /answered NXDOMAIN \(no such name\)/],
    ['servfail', { rcode: 2 }, /answered SERVFAIL/],
    ['refused', { rcode: 5 }, /answered REFUSED/],
    ['rcode', { rcode: 4 }, /answered NOTIMP/],
    ['unreachable', refused(), /127\.0\.0\.1:5353 is unreachable \(ECONNREFUSED\)/],
    ['malformed', new Uint8Array([1, 2, 3]), /cannot be read/],
  ] as const)(
    '%s keeps the last known set, then an answer clears the error',
    async (kind, failure, message) => {
      let failing = false;
      const { instancer, clock } = setup(() =>
        failing ? (failure as FakeReply) : { answers: [srv(BARE, 'a.example', 1, { ttl: 10 })] },
      );
      const rec = record(instancer.events$);
      await settle();
      failing = true;
      clock.advance(10_000);
      await settle();
      failing = false;
      clock.advance(500);
      await settle();
      expect(rec.values.map(keys)).toEqual([['a.example:1'], ['a.example:1'], ['a.example:1']]);
      const error = rec.values[1]?.error as DnsError;
      expect(error).toBeInstanceOf(DnsError);
      expect(error.kind).toBe(kind);
      expect(error.message).toMatch(message);
      expect(rec.values[2]?.error).toBeUndefined();
      expect(rec.state).toEqual({ completed: false, errored: false });
    },
  );

  it('a timeout: no answer within timeoutMs aborts the exchange and is a "timeout" error', async () => {
    let hang = false;
    const { instancer, transport, clock } = setup(
      () => (hang ? 'hang' : { answers: [srv(BARE, 'a.example', 1, { ttl: 1 })] }),
      { timeoutMs: 3_000 },
    );
    await settle();
    hang = true;
    clock.advance(1_000);
    await settle();
    const asked = transport.queries[1]!;
    clock.advance(2_999);
    await settle();
    expect(asked.signal.aborted).toBe(false);
    expect(instancer.current()?.error).toBeUndefined();
    clock.advance(1);
    await settle();
    expect(asked.signal.aborted).toBe(true);
    expect(instancer.current()?.error).toMatchObject({
      kind: 'timeout',
      message: `DNS SRV ${NAME}: no answer from ${SERVER} within 3000 ms`,
    });
    expect(keys(instancer.current())).toEqual(['a.example:1']);
  });

  it('answers to another query (ID) or another question are "malformed"', async () => {
    let reply: (q: SeenQuery) => FakeReply = () => ({ answers: [srv(BARE, 'a.example', 1, { ttl: 1 })] });
    const { instancer, clock } = setup((q) => reply(q));
    await settle();
    reply = (q) => ({ id: (q.id + 1) & 0xffff, answers: [] });
    clock.advance(1_000);
    await settle();
    expect(instancer.current()?.error).toMatchObject({ kind: 'malformed' });
    expect(instancer.current()?.error?.message).toMatch(/answered another query \(ID \d+, not \d+\)/);
    reply = () => ({ question: { name: 'other.example', type: 'SRV' }, answers: [] });
    clock.advance(500);
    await settle();
    expect(instancer.current()?.error).toMatchObject({ kind: 'malformed' });
    expect(instancer.current()?.error?.message).toMatch(/answered another question \(SRV other\.example\.\)/);
    expect(keys(instancer.current())).toEqual(['a.example:1']);
  });

  it('retries with backoff (default 500 ms doubling), capped by maxTtlMs, and the same error emits once', async () => {
    const { instancer, transport, clock } = setup(() => ({ rcode: 2 }), { maxTtlMs: 3_000 });
    const rec = record(instancer.events$);
    await settle();
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const next = clock.nextTimerAt!;
      times.push(next);
      clock.advance(next - clock.now());
      await settle();
    }
    // 500, 1000, 2000, then capped at 3000 (maxTtlMs), not 4000 and 8000.
    expect(times).toEqual([500, 1_500, 3_500, 6_500, 9_500]);
    expect(transport.queries).toHaveLength(6);
    expect(rec.values).toHaveLength(1);
  });

  it('after a recovery the backoff starts over', async () => {
    let failing = true;
    const { clock } = setup(() =>
      failing ? { rcode: 2 } : { answers: [srv(BARE, 'a.example', 1, { ttl: 10 })] },
    );
    await settle();
    clock.advance(500);
    await settle();
    clock.advance(1_000);
    await settle();
    failing = false;
    clock.advance(2_000);
    await settle();
    failing = true;
    clock.advance(10_000);
    await settle();
    expect(clock.nextTimerAt! - clock.now()).toBe(500);
  });

  it('logs a streak of one failure once at warn, and the recovery at info', async () => {
    const logger = recordingLogger();
    let failing = true;
    const { clock } = setup(
      () => (failing ? { rcode: 2 } : { answers: [srv(BARE, 'a.example', 1, { ttl: 10 })] }),
      { logger },
    );
    await settle();
    clock.advance(500);
    await settle();
    clock.advance(1_000);
    await settle();
    failing = false;
    clock.advance(2_000);
    await settle();
    const levels = logger.records.filter((r) => r.level !== 'debug').map((r) => [r.level, r.msg]);
    expect(levels).toEqual([
      ['warn', 'sdkit: DNS lookup failing; retrying'],
      ['info', 'sdkit: DNS lookups answer again'],
    ]);
  });
});

describe('DnsSrvInstancer: several servers', () => {
  const servers = ['127.0.0.1:5301', '127.0.0.1:5302'];

  it('asks the next server when one fails, and an answer from it is no error', async () => {
    const { instancer, transport } = setup(
      (q) => (q.server === servers[0] ? refused() : { answers: [srv(BARE, 'a.example', 1)] }),
      { servers },
    );
    await settle();
    expect(transport.queries.map((q) => q.server)).toEqual(servers);
    expect(instancer.current()).toMatchObject({ instances: [{ key: 'a.example:1' }] });
    expect(instancer.current()?.error).toBeUndefined();
  });

  it('a timeout of the first server moves on to the second', async () => {
    const { instancer, clock } = setup(
      (q) => (q.server === servers[0] ? 'hang' : { answers: [srv(BARE, 'a.example', 1)] }),
      { servers },
    );
    await settle();
    expect(instancer.current()).toBeUndefined();
    clock.advance(2_000);
    await settle();
    expect(keys(instancer.current())).toEqual(['a.example:1']);
  });

  it("when every server fails: the first server's kind, every server's error in attempts, all in the message", async () => {
    const { instancer } = setup((q) => (q.server === servers[0] ? { rcode: 2 } : refused()), { servers });
    await settle();
    const error = instancer.current()?.error as DnsError;
    expect(error.kind).toBe('servfail');
    expect(error.server).toBe(servers[0]);
    expect(error.attempts?.map((e) => e.kind)).toEqual(['servfail', 'unreachable']);
    expect(error.message).toBe(
      `DNS SRV ${NAME}: every server failed: ${servers[0]} answered SERVFAIL; ${servers[1]} is unreachable (ECONNREFUSED)`,
    );
  });

  it('NXDOMAIN from one server is final: the next is not asked', async () => {
    const { instancer, transport } = setup(() => ({ rcode: 3 }), { servers });
    await settle();
    expect(transport.queries).toHaveLength(1);
    expect(instancer.current()?.error).toMatchObject({ kind: 'nxdomain' });
  });
});

describe('DnsSrvInstancer: stop', () => {
  it('completes events$, aborts the lookup in flight, leaves no timer, and emits nothing later', async () => {
    const { instancer, transport, clock } = setup(() => 'hang');
    const rec = record(instancer.events$);
    await settle();
    const asked = transport.queries[0]!;
    instancer.stop();
    expect(asked.signal.aborted).toBe(true);
    expect(rec.state).toEqual({ completed: true, errored: false });
    await settle();
    expect(clock.pendingTimers).toBe(0);
    expect(rec.values).toEqual([]);
    instancer.stop();
  });

  it('between refreshes: cancels the next one; a late subscriber gets the last event, then completion', async () => {
    const { instancer, transport, clock } = setup(() => ({ answers: [srv(BARE, 'a.example', 1)] }));
    await settle();
    instancer[Symbol.dispose]();
    expect(clock.pendingTimers).toBe(0);
    clock.advance(60_000);
    await settle();
    expect(transport.queries).toHaveLength(1);
    const late = record(instancer.events$);
    expect(late.values.map(keys)).toEqual([['a.example:1']]);
    expect(late.state.completed).toBe(true);
  });

  it('an answer that arrives after stop() is dropped', async () => {
    let answer: ((bytes: Uint8Array) => void) | undefined;
    const clock = new FakeClock();
    const instancer = new DnsSrvInstancer({
      name: NAME,
      servers: [SERVER],
      clock,
      transport: { exchange: () => new Promise<Uint8Array>((resolve) => (answer = resolve)) },
    });
    const rec = record(instancer.events$);
    instancer.stop();
    answer?.(new Uint8Array(12));
    await settle();
    expect(rec.values).toEqual([]);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('DnsSrvInstancer: bad options', () => {
  const base = { name: NAME, servers: [SERVER] };
  it.each([
    [undefined, /options must be an object with a name/],
    [{}, /name must be a domain name string, got undefined/],
    [{ name: '' }, /name "" is not a domain name: it is empty/],
    [{ name: '.' }, /it is empty/],
    [{ name: 'a..b' }, /bad label ""/],
    [{ name: '-a.example' }, /bad label "-a"/],
    [{ name: `${'a'.repeat(64)}.example` }, /bad label/],
    [{ name: '10.0.0.1' }, /is an IP address/],
    [{ ...base, servers: [] }, /servers must be a non-empty array/],
    [{ ...base, servers: '127.0.0.1' }, /servers must be a non-empty array/],
    [{ ...base, servers: ['dns.example'] }, /"dns\.example" is not an IP address/],
    [{ ...base, servers: ['::1:53:x'] }, /not a DNS server address/],
    [{ ...base, servers: ['fe80::1:5353x'] }, /not a DNS server address/],
    [{ ...base, servers: ['[::1]5353'] }, /unexpected "5353" after "\]"/],
    [{ ...base, servers: ['127.0.0.1:0'] }, /port 0 is not from 1 to 65535/],
    [{ ...base, servers: ['127.0.0.1:http'] }, /port "http" is not a number/],
    [{ ...base, servers: [53] }, /it is not a string/],
    [{ ...base, minTtlMs: 0 }, /minTtlMs must be a finite number of ms > 0, got 0/],
    [{ ...base, maxTtlMs: Number.POSITIVE_INFINITY }, /maxTtlMs must be a finite number/],
    [{ ...base, minTtlMs: 10_000, maxTtlMs: 5_000 }, /maxTtlMs \(5000\) must be >= minTtlMs \(10000\)/],
    [{ ...base, timeoutMs: -1 }, /timeoutMs must be/],
    [{ ...base, timeoutMs: '2000' }, /timeoutMs must be a finite number of ms > 0, got "2000"/],
    [{ ...base, backoff: { initialMs: 0 } }, /DnsSrvInstancer: backoff\.initialMs must be/],
    [{ ...base, clock: {} }, /clock must be a Clock/],
    [{ ...base, logger: console.log }, /logger must be a pino-compatible logger/],
    [{ ...base, transport: {} }, /transport must be a DnsTransport/],
    [{ ...base, port: 80 }, /each SRV record names its own target and port; .* use DnsAddressInstancer/],
    [{ ...base, timeout: 5 }, /unknown option "timeout" \(did you mean "timeoutMs"\?\)/],
    [{ ...base, server: '1.1.1.1' }, /unknown option "server" \(did you mean "servers"\?\)/],
    [{ service: NAME }, /unknown option "service" \(did you mean "name"\?\)/],
  ])('%o is refused with a TypeError', (options, message) => {
    expect(() => new DnsSrvInstancer(options as unknown as DnsSrvInstancerOptions)).toThrow(TypeError);
    expect(() => new DnsSrvInstancer(options as unknown as DnsSrvInstancerOptions)).toThrow(message);
  });

  it('accepts the forms dns.getServers() reports', () => {
    const instancer = new DnsSrvInstancer({
      name: NAME,
      servers: ['127.0.0.1', '127.0.0.1:5353', '::1', '[::1]', '[::1]:5353', '::ffff:127.0.0.1'],
      clock: new FakeClock(),
      transport: new FakeDnsTransport(() => 'hang'),
    });
    instancer.stop();
  });
});

describe('DnsSrvInstancer telemetry (the real OpenTelemetry SDK)', () => {
  it('reports its instances and errors as source "dns" with the SRV name as target', async () => {
    const otel = startTestTelemetry({ traces: false });
    try {
      let reply: FakeReply = { answers: [srv(BARE, 'a.example', 80), srv(BARE, 'b.example', 80)] };
      const { instancer, clock } = setup(() => reply, { minTtlMs: 1_000, maxTtlMs: 1_000 });
      await settle();
      expect(keys(instancer.current())).toEqual(['a.example:80', 'b.example:80']);
      const attributes = { 'sdkit.source.name': 'dns', 'sdkit.source.target': NAME };
      expect(await otel.points('sdkit.source.instance.count')).toEqual([{ attributes, value: 2 }]);
      reply = { rcode: 2 };
      clock.advance(1_000);
      await settle();
      expect(instancer.current()?.error).toBeInstanceOf(DnsError);
      expect(await otel.points('sdkit.source.errors')).toEqual([
        { attributes: { ...attributes, 'error.type': 'DnsError' }, value: 1 },
      ]);
      // The last known good set is still what the source holds.
      expect(await otel.value('sdkit.source.instance.count')).toBe(2);
    } finally {
      await otel.stop();
    }
  });
});
