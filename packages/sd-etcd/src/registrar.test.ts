import type { RegistrarState } from '@sdkit/sd-core';
import { createBackoff } from '@sdkit/sd-core';
import { FakeClock, recordingLogger } from '@sdkit/sd-core/testing';
import { startTestTelemetry } from '@sdkit/test-harness/telemetry';
import { EtcdPermissionDeniedError } from 'etcd3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EtcdClient } from './client.js';
import { codecs } from './codecs.js';
import { inertClient } from './fixtures/fake-client.js';
import { createGrpcTransport, type GrpcRoot } from './grpc-transport.js';
import {
  type KeepAliveHandlers,
  type KeepAliveStream,
  type LeaseBackend,
  MAX_CALLS_IN_FLIGHT,
  transportLeaseBackend,
} from './lease-backend.js';
import { type LeaseHolder, LeaseKeeper } from './lease-keeper.js';
import { EtcdLeasePool, leaseBackendOverride } from './lease-pool.js';
import { EtcdAccessDeniedError, EtcdRegistrar, type EtcdRegistrarOptions } from './registrar.js';
import type { EtcdTransport } from './transport.js';

// ---------------------------------------------------------------------------------------------------------------
// A hand-written fake etcd: leases, keys attached to leases, keep-alive streams, outages and held puts.

class LeaseNotFound extends Error {}
class Unavailable extends Error {}
class ClientClosed extends Error {}
/** What etcd answers when the user's roles do not allow a call (etcd3's message for it). */
class PermissionDenied extends Error {
  constructor() {
    super('7 PERMISSION_DENIED: etcdserver: permission denied');
  }
}

interface HeldPut {
  readonly key: string;
  release(): void;
}

class FakeEtcd implements LeaseBackend {
  available = true;
  closed = false;
  /** Answer keep-alives (false: requests vanish, as with a partition). */
  answerKeepAlives = true;
  /** Hold every put until released (to race deregister against an in-flight put). */
  holdPuts = false;
  readonly held: HeldPut[] = [];
  readonly leases = new Map<string, number>();
  readonly keys = new Map<string, { value: string; lease: string }>();
  readonly calls: string[] = [];
  readonly streams = new Set<KeepAliveHandlers>();
  /** Key prefixes the client's user may not write (puts and deletes of keys under them are denied). */
  readonly readOnly = new Set<string>();
  /** Deny lease grants / revokes (permission denied). */
  denyGrants = false;
  denyRevokes = false;
  #nextId = 100;

  count(prefix: string): number {
    return this.calls.filter((c) => c.startsWith(prefix)).length;
  }

  #check(): void {
    if (this.closed) throw new ClientClosed('client closed');
    if (!this.available) throw new Unavailable('etcd unavailable');
  }

  #checkWrite(key: string): void {
    for (const prefix of this.readOnly) if (key.startsWith(prefix)) throw new PermissionDenied();
  }

  async grant(ttlSeconds: number) {
    this.calls.push(`grant ${ttlSeconds}`);
    this.#check();
    if (this.denyGrants) throw new PermissionDenied();
    const id = String(this.#nextId++);
    this.leases.set(id, ttlSeconds);
    return { id, ttlSeconds };
  }

  async revoke(leaseId: string) {
    this.calls.push(`revoke ${leaseId}`);
    this.#check();
    if (this.denyRevokes) throw new PermissionDenied();
    this.dropLease(leaseId);
  }

  async keepAlive(handlers: KeepAliveHandlers): Promise<KeepAliveStream> {
    this.calls.push('stream');
    this.#check();
    this.streams.add(handlers);
    return {
      send: (leaseId) => {
        if (!this.streams.has(handlers)) return;
        this.calls.push(`keepalive ${leaseId}`);
        if (!this.answerKeepAlives || !this.available) return;
        const ttl = this.leases.get(leaseId) ?? 0;
        queueMicrotask(() => {
          if (this.streams.has(handlers)) handlers.onResponse(leaseId, ttl);
        });
      },
      close: () => {
        this.streams.delete(handlers);
      },
    };
  }

  async put(key: string, value: string, leaseId: string) {
    this.calls.push(`put ${key} ${leaseId}`);
    this.#check();
    this.#checkWrite(key);
    if (this.holdPuts) {
      await new Promise<void>((resolve) => this.held.push({ key, release: resolve }));
      this.#check();
    }
    if (!this.leases.has(leaseId)) throw new LeaseNotFound(`lease ${leaseId} not found`);
    this.keys.set(key, { value, lease: leaseId });
  }

  async deleteIfLease(key: string, leaseId: string) {
    this.calls.push(`delete ${key} ${leaseId}`);
    this.#check();
    this.#checkWrite(key);
    if (this.keys.get(key)?.lease !== leaseId) return false;
    this.keys.delete(key);
    return true;
  }

  isLeaseNotFound = (e: unknown) => e instanceof LeaseNotFound;
  isClientClosed = (e: unknown) => e instanceof ClientClosed;
  isPermissionDenied = (e: unknown) => e instanceof PermissionDenied;

  // --- test controls ---
  dropLease(leaseId: string): void {
    this.leases.delete(leaseId);
    for (const [k, v] of this.keys) if (v.lease === leaseId) this.keys.delete(k);
  }
  /** etcd restarted with its data wiped. */
  wipe(): void {
    this.leases.clear();
    this.keys.clear();
    this.breakStreams();
  }
  goDown(): void {
    this.available = false;
    this.breakStreams();
  }
  comeUp(): void {
    this.available = true;
  }
  breakStreams(): void {
    const streams = [...this.streams];
    this.streams.clear();
    for (const s of streams) s.onClose(new Unavailable('stream broken'));
  }
  releasePuts(): void {
    for (const h of this.held.splice(0)) h.release();
  }
}

const fakeClient = inertClient({ logger: undefined });

interface Setup {
  etcd: FakeEtcd;
  clock: FakeClock;
  pool: EtcdLeasePool;
  make(options?: Partial<EtcdRegistrarOptions>): EtcdRegistrar;
  /** Moves fake time in small steps, letting promise chains run in between. */
  advance(ms: number, step?: number): Promise<void>;
}

async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((r) => setImmediate(r));
}

/** The fake etcd's client as a user `writer-a` (named in permission-denied errors). */
const writerClient = inertClient({ logger: undefined, username: 'writer-a' });

function setup(share = true, client: EtcdClient = fakeClient): Setup {
  const etcd = new FakeEtcd();
  const clock = new FakeClock();
  const backoff = { initialMs: 100, maxMs: 2000, random: () => 0.5 };
  const pool = new EtcdLeasePool(client, { share, clock, backoff, [leaseBackendOverride]: etcd });
  let n = 0;
  return {
    etcd,
    clock,
    pool,
    make: (options = {}) =>
      new EtcdRegistrar(client, {
        key: `/services/foosvc/10.0.0.${++n}:8080`,
        value: `http://10.0.0.${n}:8080`,
        ttlSeconds: 3,
        lease: pool,
        clock,
        backoff,
        ...options,
      } as EtcdRegistrarOptions),
    async advance(ms, step = 50) {
      await flush();
      let t = 0;
      do {
        const d = Math.min(step, ms - t);
        clock.advance(d);
        t += d;
        await flush();
      } while (t < ms);
    },
  };
}

function record(r: EtcdRegistrar): RegistrarState[] {
  const states: RegistrarState[] = [];
  r.state$.subscribe((s) => states.push(s));
  return states;
}

// ---------------------------------------------------------------------------------------------------------------

describe('EtcdRegistrar options', () => {
  const base = { key: '/services/a/1', value: 'http://1' };
  const cases: Array<[string, unknown, RegExp]> = [
    ['empty key', { ...base, key: '' }, /key must be a non-empty string, got ""/],
    ['missing key', { value: 'x' }, /key must be a non-empty string, got undefined/],
    ['neither instance nor value', { key: 'k' }, /exactly one of 'instance' and 'value'.*neither/],
    ['both instance and value', { ...base, instance: { address: 'a:1' } }, /exactly one.*both/],
    ['empty value', { ...base, value: '' }, /value must be a non-empty string, got ""/],
    ['ttlSeconds 0', { ...base, ttlSeconds: 0 }, /ttlSeconds must be an integer from 1 .* got 0/],
    ['ttlSeconds 1.5', { ...base, ttlSeconds: 1.5 }, /ttlSeconds .* got 1\.5/],
    ['ttlSeconds NaN', { ...base, ttlSeconds: Number.NaN }, /ttlSeconds .* got NaN/],
    ['ttlSeconds "10"', { ...base, ttlSeconds: '10' }, /ttlSeconds .* got "10"/],
    ['codec with value', { ...base, codec: codecs.gokit }, /'codec' applies to 'instance' only/],
    ['codec without encode', { key: 'k', instance: { address: 'a:1' }, codec: {} }, /codec must be a Codec/],
    [
      'instance key mismatch',
      { key: 'k', instance: { key: 'j', address: 'a:1' } },
      /instance.key "j" differs/,
    ],
    [
      'unencodable instance',
      { key: 'k', instance: { address: '' } },
      /codec auto cannot encode instance "k"/,
    ],
    [
      'bad lease option',
      { ...base, lease: 'sometimes' },
      /lease must be 'shared', 'exclusive' or an EtcdLeasePool/,
    ],
    ['bad backoff', { ...base, backoff: { initialMs: -1 } }, /backoff.initialMs must be a finite number > 0/],
  ];
  for (const [name, options, message] of cases) {
    it(`rejects ${name} with a TypeError before writing anything`, () => {
      const { etcd, pool } = setup();
      expect(() => new EtcdRegistrar(fakeClient, { lease: pool, ...(options as object) })).toThrow(TypeError);
      expect(() => new EtcdRegistrar(fakeClient, { lease: pool, ...(options as object) })).toThrow(message);
      expect(etcd.calls).toEqual([]);
    });
  }

  it('rejects a lease pool of another client', () => {
    const { pool } = setup();
    const other = inertClient();
    expect(() => new EtcdRegistrar(other, { ...base, lease: pool })).toThrow(/belongs to another EtcdClient/);
  });

  it('encodes the value: verbatim, default codec (auto), gokit, etcdNaming, json', () => {
    const { pool } = setup();
    const mk = (o: Partial<EtcdRegistrarOptions>) => new EtcdRegistrar(fakeClient, { lease: pool, ...o });
    expect(mk({ key: '/services/foosvc/127.0.0.1:8080', value: 'http://127.0.0.1:8080' }).value).toBe(
      'http://127.0.0.1:8080',
    );
    // default codec: go-kit's instance string when there is no metadata…
    expect(mk({ key: 'k', instance: { address: 'http://127.0.0.1:8080' } }).value).toBe(
      'http://127.0.0.1:8080',
    );
    // …and JSON (nothing dropped) when there is
    expect(mk({ key: 'k', instance: { address: 'h:1', metadata: { zone: 'a' } } }).value).toBe(
      '{"address":"h:1","metadata":{"zone":"a"}}',
    );
    expect(mk({ key: 'k', instance: { address: 'http://h:1' }, codec: codecs.gokit }).value).toBe(
      'http://h:1',
    );
    const naming = mk({
      instance: { key: 'my-service/127.0.0.1:50051', address: '127.0.0.1:50051', metadata: { zone: 'a' } },
      codec: codecs.etcdNaming,
    });
    expect(naming.key).toBe('my-service/127.0.0.1:50051');
    expect(naming.value).toBe('{"Op":0,"Addr":"127.0.0.1:50051","Metadata":{"zone":"a"}}');
    expect(mk({ key: 'k', instance: { address: 'h:1' }, codec: codecs.json }).value).toBe(
      '{"address":"h:1"}',
    );
    expect(mk({ key: 'k', value: 'v' }).ttlSeconds).toBe(10);
  });
});

describe('backoff', () => {
  it('grows exponentially up to maxMs, with jitter in [d/2, d]', () => {
    const lo = createBackoff({ initialMs: 100, maxMs: 1000, random: () => 0 }, 't');
    const hi = createBackoff({ initialMs: 100, maxMs: 1000, random: () => 0.999999 }, 't');
    expect([0, 1, 2, 3, 4, 10].map((a) => lo.delay(a))).toEqual([50, 100, 200, 400, 500, 500]);
    expect(hi.delay(0)).toBeCloseTo(100, 3);
    expect(hi.delay(10)).toBeCloseTo(1000, 2);
    fc.assert(
      fc.property(fc.nat(60), fc.double({ min: 0, max: 1, noNaN: true }), (attempt, r) => {
        const d = createBackoff({ initialMs: 10, maxMs: 5000, random: () => r }, 't').delay(attempt);
        const ceiling = Math.min(5000, 10 * 2 ** attempt);
        return d >= ceiling / 2 && d <= ceiling;
      }),
    );
  });
});

describe('EtcdRegistrar lifecycle (fake etcd)', () => {
  it('register() puts the key under a granted lease; concurrent calls share one attempt', async () => {
    const { etcd, make, advance } = setup();
    const r = make();
    const states = record(r);
    expect(r.state).toBeUndefined();
    const p1 = r.register();
    const p2 = r.register();
    expect(p2).toBe(p1);
    await advance(0);
    await p1;
    expect(states).toEqual(['registering', 'registered']);
    expect(etcd.count('grant')).toBe(1);
    expect(etcd.count('put')).toBe(1);
    expect(etcd.keys.get(r.key)).toEqual({ value: r.value, lease: r.leaseId });
    expect(r.register()).toBe(p1); // idempotent once registered: nothing new
    await advance(0);
    expect(etcd.count('put')).toBe(1);
  });

  it('keeps the lease alive every TTL/3 while registered', async () => {
    const { etcd, make, advance } = setup();
    const r = make({ ttlSeconds: 3 });
    await Promise.all([r.register(), advance(0)]);
    const before = etcd.count('keepalive');
    await advance(10_000);
    // 10 s / 1 s interval
    expect(etcd.count('keepalive') - before).toBeGreaterThanOrEqual(9);
    expect(etcd.count('keepalive') - before).toBeLessThanOrEqual(11);
    expect(etcd.count('stream')).toBe(1);
    expect(r.state).toBe('registered');
  });

  it('a lease revoked behind its back (keep-alive TTL 0): lost → registering → registered on a new lease', async () => {
    const { etcd, make, advance } = setup();
    const r = make();
    const states = record(r);
    await Promise.all([r.register(), advance(0)]);
    const first = r.leaseId!;
    etcd.dropLease(first); // `etcdctl lease revoke`
    expect(etcd.keys.has(r.key)).toBe(false);
    await advance(1100); // next keep-alive (TTL/3 = 1 s) gets TTL 0
    expect(states).toEqual(['registering', 'registered', 'lost', 'registering', 'registered']);
    expect(r.leaseId).not.toBe(first);
    expect(etcd.keys.get(r.key)).toEqual({ value: r.value, lease: r.leaseId });
    expect(etcd.count('grant')).toBe(2);
  });

  it('a put rejected with "lease not found" makes the keeper re-grant', async () => {
    const { etcd, make, advance } = setup();
    const a = make();
    await Promise.all([a.register(), advance(0)]);
    const first = a.leaseId!;
    etcd.dropLease(first);
    // A second registrar on the shared lease learns of the loss from its put, before any keep-alive does.
    const b = make();
    // (the lost lease lived less than a TTL, so the re-grant waits one backoff step)
    await Promise.all([b.register(), advance(500)]);
    expect(b.leaseId).not.toBe(first);
    expect(a.leaseId).toBe(b.leaseId);
    expect(etcd.keys.get(a.key)?.lease).toBe(b.leaseId);
    expect(etcd.count('grant')).toBe(2);
  });

  it('keeps trying while etcd is down, with backoff, and registers when it comes back', async () => {
    const { etcd, make, advance } = setup();
    etcd.goDown();
    const r = make();
    let done = false;
    void r.register().then(() => {
      done = true;
    });
    await advance(10_000);
    const grants = etcd.count('grant');
    // backoff 50,100,200,…,1000 (maxMs 2000 × jitter 0.5) → about 14 attempts in 10 s, not hundreds
    expect(grants).toBeGreaterThan(5);
    expect(grants).toBeLessThan(20);
    expect(done).toBe(false);
    expect(r.state).toBe('registering');
    etcd.comeUp();
    await advance(1500);
    expect(done).toBe(true);
    expect(r.state).toBe('registered');
    expect(etcd.keys.get(r.key)?.lease).toBe(r.leaseId);
  });

  it('retries a failing put with backoff (not via a new lease)', async () => {
    const { etcd, make, advance } = setup();
    const r = make();
    let failures = 3;
    const put = etcd.put.bind(etcd);
    etcd.put = async (k, v, l) => {
      if (failures-- > 0) {
        etcd.calls.push('put-fail');
        throw new Unavailable('timeout');
      }
      return put(k, v, l);
    };
    await Promise.all([r.register(), advance(2000)]);
    expect(etcd.count('put-fail')).toBe(3);
    expect(etcd.count('grant')).toBe(1);
    expect(r.state).toBe('registered');
  });

  it('unanswered keep-alives for a TTL → lost; lease still alive when etcd answers again → registered on it', async () => {
    const { etcd, make, advance } = setup();
    const r = make({ ttlSeconds: 3 });
    const states = record(r);
    await Promise.all([r.register(), advance(0)]);
    const lease = r.leaseId;
    etcd.answerKeepAlives = false; // partition: requests vanish
    await advance(3500);
    expect(r.state).toBe('lost');
    expect(etcd.count('stream')).toBeGreaterThan(1); // stalled streams are reopened
    etcd.answerKeepAlives = true; // etcd kept the lease (e.g. restarted keeping its data)
    await advance(1500);
    expect(states).toEqual(['registering', 'registered', 'lost', 'registering', 'registered']);
    expect(r.leaseId).toBe(lease);
    expect(etcd.count('grant')).toBe(1);
  });

  it('etcd wiped while down: lost, then a new lease and the key again once it is back', async () => {
    const { etcd, make, advance } = setup();
    const r = make({ ttlSeconds: 3 });
    await Promise.all([r.register(), advance(0)]);
    const first = r.leaseId;
    etcd.goDown();
    await advance(3500);
    expect(r.state).toBe('lost');
    etcd.wipe();
    etcd.comeUp();
    await advance(2500);
    expect(r.state).toBe('registered');
    expect(r.leaseId).not.toBe(first);
    expect(etcd.keys.get(r.key)).toEqual({ value: r.value, lease: r.leaseId });
  });

  it('deregister() deletes the key and revokes the lease; idempotent; register() works again after it', async () => {
    const { etcd, make, advance, pool, clock } = setup();
    const r = make();
    const states = record(r);
    await Promise.all([r.register(), advance(0)]);
    const lease = r.leaseId!;
    const d1 = r.deregister();
    expect(r.deregister()).toBe(d1);
    await d1;
    expect(etcd.keys.has(r.key)).toBe(false);
    expect(etcd.leases.has(lease)).toBe(false);
    expect(etcd.calls).toContain(`revoke ${lease}`);
    expect(pool.size).toBe(0);
    expect(clock.pendingTimers).toBe(0);
    expect(r.state).toBe('deregistered');
    const calls = etcd.calls.length;
    await r.deregister();
    expect(etcd.calls.length).toBe(calls);
    await advance(10_000);
    expect(etcd.count('keepalive')).toBe(
      etcd.calls.slice(0, calls).filter((c) => c.startsWith('keepalive')).length,
    );
    await Promise.all([r.register(), advance(0)]);
    expect(etcd.keys.get(r.key)?.lease).toBe(r.leaseId);
    expect(states).toEqual(['registering', 'registered', 'deregistered', 'registering', 'registered']);
    await r.deregister();
  });

  it('deregister() while a put is in flight: waits for it, then deletes — the key never comes back', async () => {
    const { etcd, make, advance } = setup();
    etcd.holdPuts = true;
    const r = make();
    const registered = r.register();
    await advance(0);
    expect(etcd.held).toHaveLength(1);
    const deregistered = r.deregister();
    await expect(registered).rejects.toThrow(/deregister\(\) was called before the registration/);
    etcd.releasePuts(); // the put lands now, after deregister() was called
    await deregistered;
    expect(etcd.keys.has(r.key)).toBe(false);
    expect(etcd.leases.size).toBe(0);
    await advance(10_000);
    expect(etcd.keys.size).toBe(0);
  });

  it('deregister() while the grant is in flight: the late lease is revoked, nothing is put', async () => {
    const { etcd, make, advance } = setup();
    let releaseGrant!: () => void;
    const grant = etcd.grant.bind(etcd);
    etcd.grant = async (ttl) => {
      await new Promise<void>((r) => {
        releaseGrant = r;
      });
      return grant(ttl);
    };
    const r = make();
    const registered = r.register();
    await advance(0);
    const deregistered = r.deregister();
    releaseGrant();
    await deregistered;
    await expect(registered).rejects.toThrow(/deregister\(\)/);
    expect(etcd.count('put')).toBe(0);
    expect(etcd.leases.size).toBe(0);
  });

  it('deregister() when etcd stays unreachable: retries for one TTL, then rejects naming the key and TTL; state is deregistered anyway', async () => {
    const { etcd, make, advance, clock } = setup(false);
    const r = make({ ttlSeconds: 7 });
    await Promise.all([r.register(), advance(0)]);
    etcd.goDown();
    const started = clock.now();
    let settledAt: number | undefined;
    const result = r.deregister().finally(() => {
      settledAt = clock.now();
    });
    result.catch(() => {});
    await advance(6_000);
    expect(settledAt).toBeUndefined(); // still retrying within the TTL
    await advance(2_000);
    await expect(result).rejects.toThrow(/could not remove "\/services\/foosvc\/.*" .*expires within 7 s/);
    expect(settledAt! - started).toBeLessThanOrEqual(7_000 + 50);
    expect(etcd.count('delete')).toBeGreaterThan(3);
    expect(etcd.count('revoke')).toBeGreaterThan(3);
    expect(r.state).toBe('deregistered');
    const calls = etcd.calls.length;
    await advance(20_000);
    expect(etcd.calls.length).toBe(calls); // nothing is kept alive or retried after that
    expect(clock.pendingTimers).toBe(0);
  });

  it('deregister() rides out passing failures (etcd "too many requests"): the delete and the revoke are retried with backoff until they succeed', async () => {
    const { etcd, make, advance } = setup(false);
    const r = make({ ttlSeconds: 5 });
    await Promise.all([r.register(), advance(0)]);
    const lease = r.leaseId!;
    etcd.goDown();
    const result = r.deregister();
    await advance(700); // a few failed attempts
    expect(etcd.count('delete')).toBeGreaterThan(1);
    etcd.comeUp();
    await Promise.all([result, advance(3_000)]);
    expect(etcd.keys.size).toBe(0);
    expect(etcd.leases.has(lease)).toBe(false);
    expect(r.state).toBe('deregistered');
  });

  it('deregister() that cannot delete a key on a shared lease says the key stays while the lease lives (it does not expire)', async () => {
    const { etcd, make, advance } = setup(true);
    const a = make();
    const b = make();
    await Promise.all([a.register(), b.register(), advance(0)]);
    etcd.available = false;
    const result = a.deregister();
    result.catch(() => {});
    await advance(4_000);
    await expect(result).rejects.toThrow(/it stays while the shared lease lives/);
    expect(etcd.count('revoke')).toBe(0); // b still holds the lease
    await Promise.all([b.deregister().catch(() => {}), advance(4_000)]);
  });

  it('the etcd client closed under it: goes lost and stops trying (no timers, no calls)', async () => {
    const { etcd, make, advance, clock } = setup();
    const r = make();
    await Promise.all([r.register(), advance(0)]);
    etcd.closed = true;
    etcd.breakStreams();
    await advance(1000);
    expect(r.state).toBe('lost');
    const calls = etcd.calls.length;
    await advance(30_000);
    expect(etcd.calls.length).toBe(calls);
    expect(clock.pendingTimers).toBe(0);
    await expect(r.deregister()).rejects.toThrow(/could not remove/);
    expect(r.state).toBe('deregistered');
  });

  it('never deletes a key that now belongs to another lease (a newer owner)', async () => {
    const { etcd, make, advance } = setup();
    const r = make();
    await Promise.all([r.register(), advance(0)]);
    etcd.leases.set('999', 10);
    etcd.keys.set(r.key, { value: 'someone else', lease: '999' });
    await r.deregister();
    expect(etcd.keys.get(r.key)).toEqual({ value: 'someone else', lease: '999' });
  });

  it('[Symbol.asyncDispose] deregisters, completes state$, and register() then rejects', async () => {
    const { etcd, make, advance } = setup();
    const r = make();
    let completed = false;
    r.state$.subscribe({ complete: () => (completed = true) });
    await Promise.all([r.register(), advance(0)]);
    await r[Symbol.asyncDispose]();
    expect(completed).toBe(true);
    expect(etcd.keys.size).toBe(0);
    await expect(r.register()).rejects.toThrow(/after dispose/);
  });

  it('state$ replays the current state to a late subscriber, distinct only', async () => {
    const { make, advance } = setup();
    const r = make();
    await Promise.all([r.register(), advance(0)]);
    await Promise.all([r.register(), r.register()]);
    expect(record(r)).toEqual(['registered']);
    const fresh = make();
    expect(record(fresh)).toEqual([]);
    await fresh.deregister();
    expect(fresh.state).toBe('deregistered');
  });
});

describe('permission denied (fake etcd with auth)', () => {
  /** Settles `promise` and returns its rejection (fails the test if it resolves). */
  async function rejectionOf(promise: Promise<unknown>): Promise<EtcdAccessDeniedError> {
    const outcome = await promise.then(
      () => 'resolved',
      (e: unknown) => e,
    );
    expect(outcome).toBeInstanceOf(EtcdAccessDeniedError);
    return outcome as EtcdAccessDeniedError;
  }

  it('a denied put: register() rejects at once, clearly; nothing is retried; the lease is released', async () => {
    const { etcd, make, advance, pool, clock } = setup(true, writerClient);
    const logger = recordingLogger();
    etcd.readOnly.add('/services/b/');
    const r = make({ key: '/services/b/10.0.0.9:8080', logger });
    const states = record(r);
    const registered = r.register();
    await advance(0); // no backoff step: the answer is final
    const err = await rejectionOf(registered);
    expect(err.operation).toBe('put');
    expect(err.key).toBe('/services/b/10.0.0.9:8080');
    expect(err.username).toBe('writer-a');
    expect(err.cause).toBeInstanceOf(PermissionDenied);
    expect(err.message).toMatch(
      /^EtcdRegistrar: permission denied: etcd user "writer-a" may not write "\/services\/b\/10\.0\.0\.9:8080" \(7 PERMISSION_DENIED: etcdserver: permission denied\); not retrying/,
    );
    expect(r.state).toBe('deregistered');
    expect(states).toEqual(['registering', 'deregistered']);
    expect(r.leaseId).toBeUndefined();
    await advance(30_000, 500);
    expect(etcd.count('put')).toBe(1);
    expect(etcd.count('grant')).toBe(1);
    expect(etcd.count('delete')).toBe(0); // a delete would be denied too
    expect(etcd.leases.size).toBe(0); // the lease it held for nothing is revoked
    expect(pool.size).toBe(0);
    expect(clock.pendingTimers).toBe(0);
    const errors = logger.records.filter((rec) => rec.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.msg).toBe(err.message);
    expect(errors[0]?.obj).toMatchObject({ key: r.key, operation: 'put', username: 'writer-a' });
    expect(logger.records.filter((rec) => rec.msg?.endsWith('; retrying'))).toEqual([]);
    expect(states).toEqual(['registering', 'deregistered']);
  });

  it('a later register() tries again, and works once the roles allow it', async () => {
    const { etcd, make, advance } = setup(true, writerClient);
    etcd.readOnly.add('/services/b/');
    const r = make({ key: '/services/b/1' });
    const states = record(r);
    const first = r.register();
    await advance(0);
    await rejectionOf(first);
    // Still denied: rejected again, one more put only.
    const second = r.register();
    expect(second).not.toBe(first);
    await advance(0);
    await rejectionOf(second);
    expect(etcd.count('put')).toBe(2);
    etcd.readOnly.clear(); // `etcdctl role grant-permission …`
    await Promise.all([r.register(), advance(0)]);
    expect(r.state).toBe('registered');
    expect(etcd.keys.get('/services/b/1')?.lease).toBe(r.leaseId);
    expect(states).toEqual([
      'registering',
      'deregistered',
      'registering',
      'deregistered',
      'registering',
      'registered',
    ]);
    await r.deregister();
    expect(etcd.leases.size).toBe(0);
  });

  it('deregister() after a denial resolves at once (nothing to remove); so does dispose', async () => {
    const { etcd, make, advance } = setup(true, writerClient);
    etcd.readOnly.add('/services/');
    const r = make();
    const registered = r.register();
    await advance(0);
    await rejectionOf(registered);
    await r.deregister();
    await r[Symbol.asyncDispose]();
    expect(r.state).toBe('deregistered');
    expect(etcd.count('delete')).toBe(0);
  });

  it('a denied grant: register() rejects naming the grant; the keeper stops (one grant, no timers); register() again retries', async () => {
    const { etcd, make, advance, pool, clock } = setup(true, writerClient);
    const logger = recordingLogger();
    etcd.denyGrants = true;
    const r = make({ key: '/services/a/1', logger });
    const registered = r.register();
    await advance(0);
    const err = await rejectionOf(registered);
    expect(err.operation).toBe('grant');
    expect(err.message).toMatch(
      /^EtcdRegistrar: permission denied: etcd user "writer-a" may not grant a lease for "\/services\/a\/1" \(.*permission denied\); not retrying/,
    );
    expect(r.state).toBe('deregistered');
    await advance(30_000, 500);
    expect(etcd.count('grant')).toBe(1);
    expect(etcd.count('put')).toBe(0);
    expect(pool.size).toBe(0);
    expect(clock.pendingTimers).toBe(0);
    etcd.denyGrants = false;
    await Promise.all([r.register(), advance(0)]);
    expect(r.state).toBe('registered');
    expect(etcd.count('grant')).toBe(2);
    await r.deregister();
  });

  it('a denied grant on a shared lease rejects every registrar waiting for it', async () => {
    const { etcd, make, advance, pool } = setup(true, writerClient);
    etcd.denyGrants = true;
    const [a, b] = [make(), make()];
    const both = [a.register(), b.register()];
    await advance(0);
    for (const p of both) expect((await rejectionOf(p)).operation).toBe('grant');
    expect([a.state, b.state]).toEqual(['deregistered', 'deregistered']);
    expect(etcd.count('grant')).toBe(1);
    expect(pool.size).toBe(0);
  });

  it('one registrar denied on a shared lease leaves the others registered on it', async () => {
    const { etcd, make, advance, pool } = setup(true, writerClient);
    etcd.readOnly.add('/services/b/');
    const a = make({ key: '/services/a/1' });
    const b = make({ key: '/services/b/1' });
    const [ra, rb] = [a.register(), b.register()];
    await advance(0);
    await ra;
    await rejectionOf(rb);
    expect(a.state).toBe('registered');
    expect(pool.size).toBe(1);
    const lease = a.leaseId!;
    expect(etcd.leases.has(lease)).toBe(true);
    expect(etcd.count('revoke')).toBe(0);
    await advance(5000);
    expect(a.state).toBe('registered');
    expect(etcd.keys.get('/services/a/1')?.lease).toBe(lease);
    expect(etcd.keys.has('/services/b/1')).toBe(false);
    await a.deregister();
    expect(etcd.leases.size).toBe(0);
  });

  it('denied while registered (roles changed, then the lease was lost): gives up instead of retrying forever', async () => {
    const { etcd, make, advance, clock } = setup(true, writerClient);
    const logger = recordingLogger();
    const r = make({ key: '/services/a/1', logger });
    const states = record(r);
    await Promise.all([r.register(), advance(0)]);
    etcd.readOnly.add('/services/a/');
    etcd.dropLease(r.leaseId!);
    await advance(1100); // the next keep-alive finds the lease gone; the re-put is denied
    expect(states).toEqual(['registering', 'registered', 'lost', 'registering', 'deregistered']);
    const puts = etcd.count('put');
    await advance(30_000, 500);
    expect(etcd.count('put')).toBe(puts);
    expect(clock.pendingTimers).toBe(0);
    expect(etcd.leases.size).toBe(0);
    const errors = logger.records.filter((rec) => rec.level === 'error');
    expect(errors.map((rec) => rec.msg)).toEqual([
      expect.stringMatching(/permission denied: etcd user "writer-a" may not write "\/services\/a\/1"/),
    ]);
  });

  it('deregister() denied: rejects naming the delete (or the revoke), the key and the user; state deregistered', async () => {
    const { etcd, make, advance } = setup(true, writerClient);
    const r = make({ key: '/services/a/1', ttlSeconds: 4 });
    await Promise.all([r.register(), advance(0)]);
    etcd.readOnly.add('/services/a/');
    etcd.denyRevokes = true;
    const err = await rejectionOf(r.deregister());
    expect(err.operation).toBe('delete');
    expect(err.message).toMatch(
      /^EtcdRegistrar: could not remove "\/services\/a\/1" from etcd: permission denied: etcd user "writer-a" may not delete it \(.*\); it expires within 4 s$/,
    );
    expect(r.state).toBe('deregistered');

    const s = make({ key: '/services/c/1', ttlSeconds: 4 });
    etcd.denyRevokes = false;
    await Promise.all([s.register(), advance(0)]);
    etcd.denyRevokes = true;
    const revokeErr = await rejectionOf(s.deregister());
    expect(revokeErr.operation).toBe('revoke');
    expect(revokeErr.message).toMatch(/may not revoke its lease \(.*\); it expires within 4 s$/);
  });

  it('without auth the message says no user was configured', async () => {
    const { etcd, make, advance } = setup();
    etcd.readOnly.add('/');
    const r = make({ key: '/x' });
    const registered = r.register();
    await advance(0);
    const err = await rejectionOf(registered);
    expect(err.username).toBeUndefined();
    expect(err.message).toMatch(
      /permission denied: this etcd client \(no auth\.username\) may not write "\/x"/,
    );
  });

  it('LeaseKeeper: a denied grant goes back to idle, tells every holder once, and a new holder starts granting again', async () => {
    const etcd = new FakeEtcd();
    const clock = new FakeClock();
    const keeper = new LeaseKeeper(etcd, {
      ttlSeconds: 3,
      clock,
      backoff: createBackoff({ random: () => 0.5 }, 't'),
      logger: recordingLogger(),
    });
    const events: string[] = [];
    const holder = (name: string): LeaseHolder => ({
      leaseReady: (id) => events.push(`${name} ready ${id}`),
      leaseLost: () => events.push(`${name} lost`),
      leaseDenied: (e) => events.push(`${name} denied ${e.message}`),
      clientClosed: () => events.push(`${name} client closed`),
    });
    etcd.denyGrants = true;
    const [h1, h2] = [holder('h1'), holder('h2')];
    keeper.attach(h1);
    keeper.attach(h2);
    clock.advance(0);
    await flush();
    expect(keeper.phase).toBe('idle');
    expect(events).toEqual([
      'h1 denied 7 PERMISSION_DENIED: etcdserver: permission denied',
      'h2 denied 7 PERMISSION_DENIED: etcdserver: permission denied',
    ]);
    expect(clock.pendingTimers).toBe(0);
    keeper.detach(h1);
    keeper.detach(h2);
    etcd.denyGrants = false;
    keeper.attach(holder('h3'));
    clock.advance(0);
    await flush();
    expect(keeper.phase).toBe('alive');
    expect(events.at(-1)).toMatch(/^h3 ready \d+$/);
    await keeper.close();
    expect(etcd.leases.size).toBe(0);
  });

  it('transportLeaseBackend: at most MAX_CALLS_IN_FLIGHT unary calls per client (across its namespaces); the rest wait in order; a failed call frees its slot', async () => {
    const started: string[] = [];
    const pending = new Map<string, { resolve(): void; reject(e: Error): void }>();
    const text = new TextDecoder();
    /** A fake transport whose puts stay in flight until settled by hand. */
    const transport = {
      kind: 'grpc',
      put: (key: Uint8Array) =>
        new Promise<void>((resolve, reject) => {
          const k = text.decode(key);
          started.push(k);
          pending.set(k, { resolve, reject });
        }),
      classify: () => 'other',
    } as unknown as EtcdTransport;
    const a = transportLeaseBackend(transport, { namespace: '' });
    const b = transportLeaseBackend(transport, { namespace: '' }); // another pool of the same client
    const n = MAX_CALLS_IN_FLIGHT;
    const puts = Array.from({ length: n + 3 }, (_, i) => (i % 2 ? a : b).put(`k${i}`, 'v', '1'));
    for (const p of puts) p.catch(() => {});
    await flush();
    expect(started.length).toBe(n);
    pending.get('k0')!.reject(new Error('too many requests'));
    pending.get('k1')!.resolve();
    await flush();
    expect(started).toEqual(Array.from({ length: n + 2 }, (_, i) => `k${i}`)); // in order
    await expect(puts[0]).rejects.toThrow('too many requests');
    for (const key of started.slice(2)) pending.get(key)!.resolve();
    await flush();
    expect(started.length).toBe(n + 3);
    pending.get(`k${n + 2}`)!.resolve();
    await Promise.all(puts.slice(1));
    // A client of its own is not held up by this one's calls.
    const other = transportLeaseBackend({ ...transport }, { namespace: '' });
    const before = started.length;
    void other.put('solo', 'v', '1');
    await flush();
    expect(started.length).toBe(before + 1);
    pending.get('solo')!.resolve();
  });

  it("the gRPC backend recognises etcd3's EtcdPermissionDeniedError, and only that", () => {
    const backend = transportLeaseBackend(createGrpcTransport({} as GrpcRoot), { namespace: '' });
    expect(backend.isPermissionDenied(new EtcdPermissionDeniedError('etcdserver: permission denied'))).toBe(
      true,
    );
    expect(backend.isPermissionDenied(new Error('etcdserver: permission denied'))).toBe(false);
    expect(backend.isPermissionDenied(undefined)).toBe(false);
  });
});

describe('shared leases (fake etcd)', () => {
  it('registrars of one pool and TTL share one lease and one stream; a loss re-registers all of them', async () => {
    const { etcd, make, advance, pool } = setup();
    const rs = Array.from({ length: 5 }, () => make({ ttlSeconds: 3 }));
    await Promise.all([...rs.map((r) => r.register()), advance(0)]);
    expect(etcd.count('grant')).toBe(1);
    expect(new Set(rs.map((r) => r.leaseId)).size).toBe(1);
    expect(pool.size).toBe(1);
    await advance(3000);
    expect(etcd.count('stream')).toBe(1);
    etcd.dropLease(rs[0]!.leaseId!);
    expect(etcd.keys.size).toBe(0);
    await advance(1100);
    expect(etcd.count('grant')).toBe(2);
    expect(new Set(rs.map((r) => r.leaseId)).size).toBe(1);
    expect(rs.every((r) => r.state === 'registered')).toBe(true);
    expect([...etcd.keys.values()].every((v) => v.lease === rs[0]!.leaseId)).toBe(true);
    expect(etcd.keys.size).toBe(5);
    // A different TTL gets its own lease.
    const other = make({ ttlSeconds: 5 });
    await Promise.all([other.register(), advance(0)]);
    expect(other.leaseId).not.toBe(rs[0]!.leaseId);
    expect(pool.size).toBe(2);
    await other.deregister();
  });

  it('deregistering one deletes only its key (no revoke); the last one revokes the lease', async () => {
    const { etcd, make, advance, pool } = setup();
    const [a, b] = [make(), make()];
    await Promise.all([a.register(), b.register(), advance(0)]);
    const lease = a.leaseId!;
    await a.deregister();
    expect(etcd.keys.has(a.key)).toBe(false);
    expect(etcd.keys.get(b.key)?.lease).toBe(lease);
    expect(etcd.count('revoke')).toBe(0);
    await advance(5000);
    expect(b.state).toBe('registered');
    await b.deregister();
    expect(etcd.calls).toContain(`revoke ${lease}`);
    expect(etcd.leases.size).toBe(0);
    expect(pool.size).toBe(0);
    // A new registration after that grants a new lease.
    const c = make();
    await Promise.all([c.register(), advance(0)]);
    expect(c.leaseId).not.toBe(lease);
    await c.deregister();
  });

  it('share: false gives every registrar its own lease', async () => {
    const { etcd, make, advance } = setup(false);
    const [a, b] = [make(), make()];
    await Promise.all([a.register(), b.register(), advance(0)]);
    expect(etcd.count('grant')).toBe(2);
    expect(a.leaseId).not.toBe(b.leaseId);
    await a.deregister();
    expect(etcd.leases.has(b.leaseId!)).toBe(true);
    await b.deregister();
    expect(etcd.leases.size).toBe(0);
  });

  it('model check: whatever happens, registered means the key is in etcd on a live lease, and after deregister nothing is left', async () => {
    type Op =
      | { t: 'register' | 'deregister'; i: number }
      | { t: 'revoke' | 'wipe' | 'down' | 'up' | 'hold' | 'release' | 'deny' | 'allow' }
      | { t: 'advance'; ms: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ t: fc.constantFrom('register' as const, 'deregister' as const), i: fc.nat(2) }),
      fc.record({ t: fc.constantFrom('revoke' as const, 'wipe' as const, 'down' as const, 'up' as const) }),
      fc.record({ t: fc.constantFrom('hold' as const, 'release' as const) }),
      // roles change: the user may no longer write the first registrar's key (and the grant is denied), or again
      fc.record({ t: fc.constantFrom('deny' as const, 'allow' as const) }),
      fc.record({ t: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 4000 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 25 }), fc.boolean(), async (ops, share) => {
        const { etcd, make, advance, clock } = setup(share);
        const rs = [make(), make(), make()];
        const pending: Promise<unknown>[] = [];
        for (const o of ops) {
          switch (o.t) {
            case 'register':
              pending.push(rs[o.i]!.register().catch(() => undefined));
              break;
            case 'deregister':
              pending.push(rs[o.i]!.deregister().catch(() => undefined));
              break;
            case 'revoke':
              for (const id of [...etcd.leases.keys()]) etcd.dropLease(id);
              break;
            case 'wipe':
              etcd.wipe();
              break;
            case 'down':
              etcd.goDown();
              break;
            case 'up':
              etcd.comeUp();
              break;
            case 'hold':
              etcd.holdPuts = true;
              break;
            case 'release':
              etcd.holdPuts = false;
              etcd.releasePuts();
              break;
            case 'deny':
              etcd.readOnly.add(rs[0]!.key);
              etcd.denyGrants = true;
              break;
            case 'allow':
              etcd.readOnly.clear();
              etcd.denyGrants = false;
              break;
            case 'advance':
              await advance(o.ms, 250);
              break;
          }
          await flush();
        }
        // Heal, let everything settle, then check the invariant for registered registrars.
        etcd.comeUp();
        etcd.holdPuts = false;
        etcd.releasePuts();
        etcd.readOnly.clear();
        etcd.denyGrants = false;
        await advance(8000, 250);
        for (const r of rs) {
          if (r.state === 'registered') {
            const entry = etcd.keys.get(r.key);
            expect(entry?.value).toBe(r.value);
            expect(etcd.leases.has(entry!.lease)).toBe(true);
          }
        }
        // Deregister everything: no key and no lease may remain, even much later.
        await Promise.all(rs.map((r) => r.deregister()));
        await Promise.all(pending);
        await advance(8000, 500);
        expect([...etcd.keys.keys()]).toEqual([]);
        expect([...etcd.leases.keys()]).toEqual([]);
        expect(rs.map((r) => r.state)).toEqual(['deregistered', 'deregistered', 'deregistered']);
        expect(clock.pendingTimers).toBe(0); // nothing left running
      }),
      { numRuns: 60 },
    );
  });
});

describe('EtcdRegistrar telemetry (the real OpenTelemetry SDK)', () => {
  it('counts its state changes by state and the lease granted again after a loss', async () => {
    const otel = startTestTelemetry({ traces: false });
    try {
      const { etcd, make, advance } = setup();
      const r = make();
      await Promise.all([r.register(), advance(0)]);
      etcd.dropLease(r.leaseId!);
      await advance(1100);
      expect(r.state).toBe('registered');
      const byState = Object.fromEntries(
        (await otel.points('sdkit.registrar.state_changes')).map((p) => [
          p.attributes['sdkit.registrar.state'],
          p.value,
        ]),
      );
      expect(byState).toEqual({ registering: 2, registered: 2, lost: 1 });
      expect(await otel.points('sdkit.registrar.lease.regrants')).toEqual([
        { attributes: { 'sdkit.source.name': 'etcd' }, value: 1 },
      ]);
    } finally {
      await otel.stop();
    }
  });
});
