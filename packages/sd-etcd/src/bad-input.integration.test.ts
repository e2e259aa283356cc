/**
 * Bad input against a real etcd. An EtcdInstancer on a prefix holding good values and garbage (random bytes and
 * invalid UTF-8, JSON of the wrong shape, empty values, ~1 MiB values, more than grpc-js's 4 MiB default in one
 * read), written with the raw etcd3 client and etcdctl before and while it runs: it keeps every good instance,
 * skips each bad key with one warning, keeps watching, and picks up a bad value replaced by a good one. And
 * EtcdRegistrar's constructor checks measured against etcd's own limits: a registration just under the computed
 * limit is accepted by an etcd started with a small `--max-request-bytes`, one over is refused before anything is
 * written; a key repeating the client's namespace is refused likewise.
 */
import type { InstancerEvent } from '@sdkit/sd-core';
import { recordingLogger } from '@sdkit/sd-core/testing';
import { type EtcdServer, startEtcd, waitFor } from '@sdkit/test-harness';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdClient, type EtcdGrpcClient } from './client.js';
import { codecs, decodeEntry } from './codecs.js';
import { bytes, garbageValue, hugeValue } from './fixtures/bad-values.js';
import { EtcdInstancer } from './instancer.js';
import { EtcdRegistrar, PUT_REQUEST_OVERHEAD_BYTES } from './registrar.js';

const WAIT = 10_000;
const MiB = 1024 * 1024;

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});

async function newClient(server: EtcdServer, options: { maxRequestBytes?: number; namespace?: string } = {}) {
  const client = await createEtcdClient({ endpoints: server.endpoints, ...options });
  cleanups.push(() => client.close());
  return client;
}

/** A value the default codec skips with a warning (not merely "not an endpoint"). */
function unreadable(value: Uint8Array): boolean {
  const out = decodeEntry(codecs.auto, 'k', value);
  return !out.ok && out.warn;
}

const shown = (e: InstancerEvent | undefined): string[] =>
  (e?.instances ?? []).map((i) => `${i.key}=${i.address}`).sort();

/** Warnings of the instancer about skipped entries, by key. */
function skipWarnings(logger: ReturnType<typeof recordingLogger>): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of logger.records) {
    if (r.level !== 'warn' || r.msg !== 'sdkit: skipping an etcd entry that is not a readable instance')
      continue;
    const key = String(r.obj.key);
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
}

describe('EtcdInstancer on real etcd: garbage under the prefix', () => {
  let server: EtcdServer;
  let client: EtcdGrpcClient;
  beforeAll(async () => {
    server = await startEtcd({ name: 'bad-input' });
    client = await createEtcdClient({ endpoints: server.endpoints });
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
  });

  it('keeps every good instance, skips each bad key with one warning, keeps watching, picks up repairs', async () => {
    const prefix = 'garbage-svc/';
    const raw = client.etcd;
    // Garbage: 40 values drawn by fast-check (fixed seed) that the default codec cannot read, plus the
    // deliberate ones below.
    const drawn = fc.sample(garbageValue, { numRuns: 400, seed: 42 }).filter(unreadable).slice(0, 40);
    expect(drawn.length).toBe(40);
    const bad = new Map<string, Uint8Array>();
    for (const [i, v] of drawn.entries()) bad.set(`${prefix}bad/drawn-${i}`, v);
    bad.set(`${prefix}bad/invalid-utf8`, Buffer.from([0x68, 0x74, 0x74, 0x70, 0xff, 0xfe, 0xc0, 0xaf]));
    bad.set(`${prefix}bad/addr-number`, bytes('{"Op":0,"Addr":5}'));
    bad.set(`${prefix}bad/op-7`, bytes('{"Op":7,"Addr":"10.0.0.1:1"}'));
    bad.set(`${prefix}bad/no-address`, bytes('{"host":"10.0.0.1","port":80}'));
    bad.set(`${prefix}bad/metadata-string`, bytes('{"address":"10.0.0.1:80","metadata":"zone-a"}'));
    bad.set(`${prefix}bad/one-mib-random`, hugeValue('random-bytes', MiB, 'r'));
    bad.set(`${prefix}bad/one-mib-ascii`, hugeValue('ascii', MiB, 'x'));
    const good = new Map<string, string>([
      [`${prefix}good/gokit`, 'http://10.0.0.1:8080'],
      [`${prefix}good/naming`, '{"Op":0,"Addr":"10.0.0.2:50051","Metadata":{"zone":"a"}}'],
      [`${prefix}good/json`, '{"address":"10.0.0.3:8080","metadata":{"zone":"b"}}'],
      [`${prefix}good/to-break`, 'http://10.0.0.4:8080'],
    ]);
    const goodShown = [
      `${prefix}good/gokit=http://10.0.0.1:8080`,
      `${prefix}good/json=10.0.0.3:8080`,
      `${prefix}good/naming=10.0.0.2:50051`,
      `${prefix}good/to-break=http://10.0.0.4:8080`,
    ];
    for (const [key, value] of bad) await raw.put(key).value(Buffer.from(value));
    for (const [key, value] of good) await raw.put(key).value(value);
    // etcdctl too: an empty value and wrong-shape JSON, as an operator would type them.
    await server.etcdctl('put', `${prefix}bad/empty-etcdctl`, '');
    await server.etcdctl('put', `${prefix}bad/array-of-objects`, '{"Addr":["10.0.0.9:1"]}');
    const badBefore = bad.size + 2;

    const logger = recordingLogger();
    const instancer = new EtcdInstancer(client, { prefix, logger });
    cleanups.push(() => instancer.stop());
    const events: InstancerEvent[] = [];
    instancer.events$.subscribe((e) => events.push(e));
    const first = await waitFor<InstancerEvent>(
      instancer.events$,
      (e) => e.instances.length > 0,
      'the first read',
      WAIT,
    );
    expect(shown(first)).toEqual(goodShown);
    let warnings = skipWarnings(logger);
    expect(warnings.size).toBe(badBefore);
    for (const key of [...bad.keys(), `${prefix}bad/empty-etcdctl`, `${prefix}bad/array-of-objects`]) {
      expect(warnings.get(key), key).toBe(1);
    }
    // Each warning names the key and the value's size, never the value (1 MiB values included).
    for (const r of logger.records) {
      const line = JSON.stringify(r);
      expect(line.length).toBeLessThan(1200);
      expect(line).not.toContain('x'.repeat(64));
    }
    expect(logger.records.find((r) => r.obj.key === `${prefix}bad/one-mib-ascii`)?.obj.valueBytes).toBe(MiB);

    // While watching: more garbage (incl. a good instance broken by a bad value), in a transaction and one by one…
    const later = fc.sample(garbageValue, { numRuns: 200, seed: 7 }).filter(unreadable);
    expect(later.length).toBeGreaterThanOrEqual(20);
    await raw
      .if(`${prefix}good/gokit`, 'Version', '>', 0)
      .then(...later.slice(0, 10).map((v, i) => raw.put(`${prefix}bad/later-txn-${i}`).value(Buffer.from(v))))
      .commit();
    for (let i = 10; i < 20; i++) await raw.put(`${prefix}bad/later-${i}`).value(Buffer.from(later[i]!));
    await raw.put(`${prefix}good/to-break`).value(Buffer.from([0xff, 0x00, 0xfe]));
    await raw.put(`${prefix}bad/later-mib`).value(hugeValue('json-addr', MiB, 'x'));
    await server.etcdctl('put', `${prefix}bad/later-empty`, '');
    // …then a good put, which must arrive: the watch survived all of it.
    await raw.put(`${prefix}good/late`).value('http://10.0.0.5:8080');
    const afterGarbage = await waitFor<InstancerEvent>(
      instancer.events$,
      (e) => shown(e).includes(`${prefix}good/late=http://10.0.0.5:8080`),
      'the good put made after the garbage',
      WAIT,
    );
    expect(shown(afterGarbage)).toEqual(
      [...goodShown.filter((s) => !s.includes('to-break')), `${prefix}good/late=http://10.0.0.5:8080`].sort(),
    );
    warnings = skipWarnings(logger);
    expect(warnings.get(`${prefix}good/to-break`)).toBe(1);
    expect(warnings.get(`${prefix}bad/later-mib`)).toBe(1);
    expect(warnings.get(`${prefix}bad/later-empty`)).toBe(1);
    for (let i = 0; i < 20; i++) {
      expect(warnings.get(`${prefix}bad/${i < 10 ? 'later-txn-' : 'later-'}${i}`), `later ${i}`).toBe(1);
    }
    expect(warnings.size).toBe(badBefore + 20 + 3);

    // Bad values replaced by good ones appear (one by raw put, one by etcdctl).
    await raw.put(`${prefix}bad/one-mib-random`).value('http://10.0.0.6:8080');
    await server.etcdctl('put', `${prefix}good/to-break`, '{"Op":0,"Addr":"10.0.0.4:50051","Metadata":null}');
    const repaired = await waitFor<InstancerEvent>(
      instancer.events$,
      (e) => shown(e).length === 6,
      'the two repaired keys',
      WAIT,
    );
    expect(shown(repaired)).toEqual(
      [
        ...goodShown.filter((s) => !s.includes('to-break')),
        `${prefix}good/late=http://10.0.0.5:8080`,
        `${prefix}bad/one-mib-random=http://10.0.0.6:8080`,
        `${prefix}good/to-break=10.0.0.4:50051`,
      ].sort(),
    );
    // Never an error event: garbage is data, not a failure of the watch.
    expect(events.filter((e) => e.error)).toEqual([]);
  });

  it('reads a prefix whose values add up to more than 4 MiB (grpc-js default receive limit)', async () => {
    const prefix = 'big-svc/';
    const raw = client.etcd;
    for (let i = 0; i < 4; i++)
      await raw.put(`${prefix}blob-${i}`).value(hugeValue('ascii', Math.round(1.2 * MiB), 'x'));
    await raw.put(`${prefix}good`).value('http://10.0.0.1:8080');
    const logger = recordingLogger();
    const instancer = new EtcdInstancer(client, { prefix, logger });
    cleanups.push(() => instancer.stop());
    const first = await waitFor<InstancerEvent>(instancer.events$, () => true, 'the first read', WAIT);
    expect(first.error).toBeUndefined();
    expect(shown(first)).toEqual([`${prefix}good=http://10.0.0.1:8080`]);
    expect(skipWarnings(logger).size).toBe(4);
  });
});

describe("EtcdRegistrar against etcd's limits (etcd started with --max-request-bytes=8192)", () => {
  const LIMIT = 8192;
  let server: EtcdServer;
  beforeAll(async () => {
    server = await startEtcd({ name: 'bad-input-limit', extraArgs: [`--max-request-bytes=${LIMIT}`] });
  });
  afterAll(() => server?.close());

  it('a value just under the computed limit is accepted by etcd; one byte over is refused before anything is written', async () => {
    const client = await newClient(server, { maxRequestBytes: LIMIT });
    expect(client.maxRequestBytes).toBe(LIMIT);
    const key = 'svc/size/10.0.0.1:8080';
    const room = LIMIT - PUT_REQUEST_OVERHEAD_BYTES - Buffer.byteLength(key);
    const fits = new EtcdRegistrar(client, { key, value: 'v'.repeat(room), ttlSeconds: 30 });
    cleanups.push(() => fits[Symbol.asyncDispose]());
    void fits.register();
    await waitFor(fits.state$, (s) => s === 'registered', 'registered (etcd accepted the put)', WAIT);
    const { stdout } = await server.etcdctl('get', key, '--print-value-only');
    expect(stdout.trim().length).toBe(room);

    const over = 'svc/size/10.0.0.2:8080';
    expect(
      () => new EtcdRegistrar(client, { key: over, value: 'v'.repeat(room + 1), ttlSeconds: 30 }),
    ).toThrow(
      new RegExp(
        `"svc/size/10.0.0.2:8080" is too large for etcd: .* = ${LIMIT + 1} bytes, over the limit of ${LIMIT}`,
      ),
    );
    expect((await server.etcdctl('get', over)).stdout).toBe('');

    // What etcd itself accepts, on a lease as the registrar puts: the largest value is a little above our limit
    // (the allowance is an upper bound of the framing), and etcd refuses anything bigger.
    const lease = await client.etcd.leaseClient.leaseGrant({ TTL: 30 });
    cleanups.push(() => client.etcd.leaseClient.leaseRevoke({ ID: lease.ID }));
    const probe = 'svc/size/10.0.0.3:8080';
    let lo = room;
    let hi = room + PUT_REQUEST_OVERHEAD_BYTES;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      const ok = await client.etcd
        .put(probe)
        .value('v'.repeat(mid))
        .lease(lease.ID)
        .then(
          () => true,
          (e: Error) => {
            expect(e.message).toMatch(/request is too large/);
            return false;
          },
        );
      if (ok) lo = mid;
      else hi = mid - 1;
    }
    const measuredOverhead = LIMIT - Buffer.byteLength(probe) - lo;
    expect(lo).toBeGreaterThanOrEqual(room);
    expect(measuredOverhead).toBeGreaterThan(16);
    expect(measuredOverhead).toBeLessThanOrEqual(PUT_REQUEST_OVERHEAD_BYTES);
  });

  it('counts the namespace; refuses a key that repeats it, writing nothing', async () => {
    const client = await newClient(server, { maxRequestBytes: LIMIT, namespace: '/services/' });
    const key = 'foosvc/10.0.0.1:8080';
    const room = LIMIT - PUT_REQUEST_OVERHEAD_BYTES - Buffer.byteLength(`/services/${key}`);
    const fits = new EtcdRegistrar(client, { key, value: 'v'.repeat(room), ttlSeconds: 30 });
    cleanups.push(() => fits[Symbol.asyncDispose]());
    void fits.register();
    await waitFor(fits.state$, (s) => s === 'registered', 'registered (etcd accepted the put)', WAIT);
    expect((await server.etcdctl('get', `/services/${key}`, '--print-value-only')).stdout.trim().length).toBe(
      room,
    );
    expect(
      () => new EtcdRegistrar(client, { key: 'foosvc/10.0.0.2:8080', value: 'v'.repeat(room + 1) }),
    ).toThrow(/too large for etcd: key 30 bytes \(with the namespace\)/);

    expect(
      () =>
        new EtcdRegistrar(client, { key: '/services/foosvc/10.0.0.3:8080', value: 'http://10.0.0.3:8080' }),
    ).toThrow(/Pass the key without the namespace \("foosvc\/10.0.0.3:8080"\)/);
    const { stdout } = await server.etcdctl('get', '/services/', '--prefix', '--keys-only');
    expect(stdout.split('\n').filter(Boolean)).toEqual([`/services/${key}`]);
  });
});
