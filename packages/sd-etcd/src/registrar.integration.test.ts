import type { InstancerEvent, RegistrarState } from '@sdkit/sd-core';
import { type EtcdServer, eventually, startEtcd, waitFor } from '@sdkit/test-harness';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdClient, type EtcdClient, type EtcdGrpcClient } from './client.js';
import { codecs } from './codecs.js';
import { EtcdInstancer } from './instancer.js';
import { EtcdRegistrar } from './registrar.js';

// Real etcd (one process per describe block and transport; the destructive ones get their own). Every block runs
// with the registrars' client on each transport (gRPC and HTTP/JSON); what the tests check etcd against is
// etcdctl. Lease ids: both transports give decimal strings, etcdctl speaks hex (zero-padded to 16 digits).
const TRANSPORTS = [{ transport: 'grpc' as const }, { transport: 'http' as const }];
const hex = (id: string): string => BigInt(id).toString(16).padStart(16, '0');

/** `etcdctl get <key>` output: "key\nvalue\n", or "" when absent. */
async function get(server: EtcdServer, key: string): Promise<string> {
  return (await server.etcdctl('get', key)).stdout;
}

/** The lease (decimal, read as text: int64 does not fit a JS number) and version of `key`, via `-w json`. */
async function meta(
  server: EtcdServer,
  key: string,
): Promise<{ lease: string; version: number } | undefined> {
  const { stdout } = await server.etcdctl('get', key, '-w', 'json');
  const lease = /"lease":(\d+)/.exec(stdout)?.[1];
  const version = /"version":(\d+)/.exec(stdout)?.[1];
  return lease && version ? { lease, version: Number(version) } : undefined;
}

/** Lease ids (hex) from `etcdctl lease list`. */
async function leases(server: EtcdServer): Promise<string[]> {
  const { stdout } = await server.etcdctl('lease', 'list');
  return stdout
    .split('\n')
    .slice(1)
    .map((l) => l.trim())
    .filter(Boolean);
}

async function countPrefix(server: EtcdServer, prefix: string): Promise<number> {
  const { stdout } = await server.etcdctl(
    'get',
    prefix,
    '--prefix',
    '--keys-only',
    '--limit=1',
    '-w',
    'json',
  );
  return Number(/"count":(\d+)/.exec(stdout)?.[1] ?? 0);
}

function record(r: EtcdRegistrar): RegistrarState[] {
  const states: RegistrarState[] = [];
  r.state$.subscribe((s) => states.push(s));
  return states;
}

/** Every registrar and client made by a test is disposed after it, whatever happened. */
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});
/** A client over `transport`, closed after the test. */
async function newClient(server: EtcdServer, transport: 'grpc' | 'http'): Promise<EtcdClient> {
  const client =
    transport === 'http'
      ? await createEtcdClient({ transport: 'http', endpoints: server.endpoints })
      : await createEtcdClient({ endpoints: server.endpoints });
  cleanups.push(() => client.close());
  return client;
}
async function newGrpcClient(server: EtcdServer): Promise<EtcdGrpcClient> {
  const client = await createEtcdClient({ endpoints: server.endpoints });
  cleanups.push(() => client.close());
  return client;
}
function track(r: EtcdRegistrar): EtcdRegistrar {
  cleanups.push(() => r[Symbol.asyncDispose]());
  return r;
}

describe.each(TRANSPORTS)(
  'EtcdRegistrar on real etcd: formats, leases, deregistration ($transport)',
  ({ transport }) => {
    let server: EtcdServer;
    beforeAll(async () => {
      server = await startEtcd({ name: `registrar-basic-${transport}` });
    });
    afterAll(() => server?.close());

    it('go-kit format: value http://127.0.0.1:8080 under /services/foosvc/127.0.0.1:8080, on a kept-alive lease', async () => {
      const client = await newClient(server, transport);
      const key = '/services/foosvc/127.0.0.1:8080';
      const r = track(new EtcdRegistrar(client, { key, value: 'http://127.0.0.1:8080', ttlSeconds: 10 }));
      await r.register();
      expect(r.state).toBe('registered');
      expect(await get(server, key)).toBe(`${key}\nhttp://127.0.0.1:8080\n`);
      const m = await meta(server, key);
      expect(m?.lease).toBe(r.leaseId);
      const ttl = (await server.etcdctl('lease', 'timetolive', hex(r.leaseId!), '--keys')).stdout;
      expect(ttl).toMatch(
        new RegExp(
          `lease ${hex(r.leaseId!)} granted with TTL\\(10s\\), remaining\\(\\d+s\\), attached keys\\(\\[${key}\\]\\)`,
        ),
      );
      // Same bytes from an instance with the gokit codec.
      const viaInstance = track(
        new EtcdRegistrar(client, {
          key: '/services/foosvc/127.0.0.1:8081',
          instance: { address: 'http://127.0.0.1:8081' },
          codec: codecs.gokit,
        }),
      );
      await viaInstance.register();
      expect(await get(server, '/services/foosvc/127.0.0.1:8081')).toBe(
        '/services/foosvc/127.0.0.1:8081\nhttp://127.0.0.1:8081\n',
      );
    });

    it('etcd naming format: {"Op":0,"Addr":…,"Metadata":…} under my-service/127.0.0.1:50051', async () => {
      const client = await newClient(server, transport);
      const r = track(
        new EtcdRegistrar(client, {
          key: 'my-service/127.0.0.1:50051',
          instance: { address: '127.0.0.1:50051', metadata: { zone: 'eu-1', weight: 2 } },
          codec: codecs.etcdNaming,
        }),
      );
      const bare = track(
        new EtcdRegistrar(client, {
          key: 'my-service/127.0.0.1:50052',
          instance: { address: '127.0.0.1:50052' },
          codec: codecs.etcdNaming,
        }),
      );
      await Promise.all([r.register(), bare.register()]);
      expect(await get(server, 'my-service/127.0.0.1:50051')).toBe(
        'my-service/127.0.0.1:50051\n{"Op":0,"Addr":"127.0.0.1:50051","Metadata":{"weight":2,"zone":"eu-1"}}\n',
      );
      expect(await get(server, 'my-service/127.0.0.1:50052')).toBe(
        'my-service/127.0.0.1:50052\n{"Op":0,"Addr":"127.0.0.1:50052","Metadata":null}\n',
      );
      expect((await meta(server, 'my-service/127.0.0.1:50051'))?.lease).toBe(r.leaseId);
    });

    it('register() is idempotent (one put); deregister() deletes at once and revokes the lease; idempotent', async () => {
      const client = await newClient(server, transport);
      const key = '/services/idem/127.0.0.1:9000';
      const r = track(
        new EtcdRegistrar(client, {
          key,
          value: 'http://127.0.0.1:9000',
          ttlSeconds: 30,
          lease: 'exclusive',
        }),
      );
      const states = record(r);
      const p = r.register();
      expect(r.register()).toBe(p);
      await Promise.all([p, r.register()]);
      await r.register();
      expect((await meta(server, key))?.version).toBe(1); // exactly one put
      const lease = hex(r.leaseId!);
      expect(await leases(server)).toContain(lease);

      const started = performance.now();
      await Promise.all([r.deregister(), r.deregister()]);
      const ms = performance.now() - started;
      expect(ms).toBeLessThan(2000); // at once, not after the 30 s TTL
      expect(await get(server, key)).toBe('');
      expect(await leases(server)).not.toContain(lease);
      expect((await server.etcdctl('lease', 'timetolive', lease)).stdout).toMatch(/already expired/);
      await r.deregister();
      expect(states).toEqual(['registering', 'registered', 'deregistered']);
      console.info(`[measure] ${transport}: deregister (delete + revoke) took ${ms.toFixed(1)} ms`);
    });

    it('a shared lease: deregistering one keeps the others and the lease; the last revokes it', async () => {
      const client = await newClient(server, transport);
      const a = track(
        new EtcdRegistrar(client, { key: '/services/shared/a', value: 'http://a', ttlSeconds: 7 }),
      );
      const b = track(
        new EtcdRegistrar(client, { key: '/services/shared/b', value: 'http://b', ttlSeconds: 7 }),
      );
      await Promise.all([a.register(), b.register()]);
      expect(a.leaseId).toBe(b.leaseId);
      const lease = hex(a.leaseId!);
      await a.deregister();
      expect(await get(server, '/services/shared/a')).toBe('');
      expect(await get(server, '/services/shared/b')).toBe('/services/shared/b\nhttp://b\n');
      expect(await leases(server)).toContain(lease);
      await b.deregister();
      expect(await countPrefix(server, '/services/shared/')).toBe(0);
      expect(await leases(server)).not.toContain(lease);
    });

    it('[Symbol.asyncDispose] deregisters at once; register() afterwards rejects', async () => {
      const client = await newClient(server, transport);
      const key = '/services/dispose/1';
      let completed = false;
      {
        const r = new EtcdRegistrar(client, { key, value: 'http://1', ttlSeconds: 30 });
        r.state$.subscribe({ complete: () => (completed = true) });
        await r.register();
        expect(await get(server, key)).not.toBe('');
        await r[Symbol.asyncDispose]();
        await expect(r.register()).rejects.toThrow(/after dispose/);
      }
      expect(completed).toBe(true);
      expect(await get(server, key)).toBe('');
    });

    it('ending its lease does not disturb an instancer of the same client (it keeps delivering, never an error)', async () => {
      const client = await newClient(server, transport);
      const prefix = '/services/neighbour/';
      const instancer = new EtcdInstancer(client, { prefix, codec: codecs.gokit });
      cleanups.push(() => instancer.stop());
      const events: InstancerEvent[] = [];
      instancer.events$.subscribe((e) => events.push(e));
      const r = new EtcdRegistrar(client, { key: `${prefix}1`, value: 'http://1', ttlSeconds: 3 });
      await r.register();
      await waitFor<InstancerEvent>(
        instancer.events$,
        (e) => e.instances.length === 1,
        'the registration seen',
        10_000,
      );
      await r.deregister(); // last holder: the lease and its keep-alives end
      await waitFor<InstancerEvent>(
        instancer.events$,
        (e) => e.instances.length === 0,
        'the deregistration seen',
        10_000,
      );
      await server.etcdctl('put', `${prefix}2`, 'http://2');
      const last = await waitFor<InstancerEvent>(
        instancer.events$,
        (e) => e.instances.some((i) => i.key === `${prefix}2`),
        'a later put seen',
        10_000,
      );
      expect(last.instances.map((i) => i.address)).toEqual(['http://2']);
      expect(events.filter((e) => e.error)).toEqual([]);
    });

    it('a lease revoked with etcdctl: lost → registering → registered on a new lease', async () => {
      const client = await newClient(server, transport);
      const key = '/services/revoked/1';
      const r = track(new EtcdRegistrar(client, { key, value: 'http://1', ttlSeconds: 3 }));
      const states = record(r);
      await r.register();
      const first = r.leaseId!;
      const started = performance.now();
      await server.etcdctl('lease', 'revoke', hex(first));
      expect(await get(server, key)).toBe('');
      await waitFor(r.state$, (s) => s === 'lost', 'state lost after the revoke', 10_000);
      await waitFor(r.state$, (s) => s === 'registered', 'registered again', 10_000);
      const ms = performance.now() - started;
      expect(states).toEqual(['registering', 'registered', 'lost', 'registering', 'registered']);
      expect(r.leaseId).not.toBe(first);
      expect(await get(server, key)).toBe(`${key}\nhttp://1\n`);
      expect((await meta(server, key))?.lease).toBe(r.leaseId);
      console.info(
        `[measure] ${transport}: external revoke → registered again: ${ms.toFixed(0)} ms (TTL 3 s, keep-alive every 1 s)`,
      );
    });
  },
);

// gRPC only: about etcd3's streams (a keep-alive stream and a watch stream multiplexed on one connection); over
// HTTP every keep-alive is its own request and nothing is shared (the transport-neutral version is above).
describe('EtcdRegistrar on real etcd: gRPC streams', () => {
  let server: EtcdServer;
  beforeAll(async () => {
    server = await startEtcd({ name: 'registrar-grpc-streams' });
  });
  afterAll(() => server?.close());

  it('closing its keep-alive stream does not disturb other streams of the client (a watch stays connected)', async () => {
    const client = await newGrpcClient(server);
    const watcher = await client.etcd.watch().prefix('/services/neighbour/').create();
    cleanups.push(() => watcher.cancel());
    let disconnects = 0;
    watcher.on('disconnected', () => disconnects++);
    const r = new EtcdRegistrar(client, { key: '/services/neighbour/1', value: 'http://1', ttlSeconds: 3 });
    await r.register();
    await r.deregister(); // last holder: the lease and its keep-alive stream are closed
    // The watch still delivers, on the same connection.
    const seen = new Promise<string>((resolve) => watcher.once('put', (kv) => resolve(kv.key.toString())));
    await server.etcdctl('put', '/services/neighbour/2', 'x');
    expect(await seen).toBe('/services/neighbour/2');
    expect(disconnects).toBe(0);
  });
});

describe.each(TRANSPORTS)('EtcdRegistrar across etcd restarts ($transport)', ({ transport }) => {
  let server: EtcdServer;
  beforeAll(async () => {
    server = await startEtcd({ name: `registrar-restart-${transport}` });
  });
  afterAll(() => server?.close());

  it('restart with data wiped: lost → registering → registered on a new lease, key back', async () => {
    const client = await newClient(server, transport);
    const key = '/services/wiped/127.0.0.1:8080';
    const r = track(new EtcdRegistrar(client, { key, value: 'http://127.0.0.1:8080', ttlSeconds: 3 }));
    const states = record(r);
    await r.register();
    const first = r.leaseId;
    await server.restart({ wipe: true });
    const back = performance.now();
    expect(await get(server, key)).toBe(''); // really wiped
    await waitFor(r.state$, (s) => s === 'lost', 'lost after the wipe', 15_000);
    await waitFor(r.state$, (s) => s === 'registered', 'registered again after the wipe', 15_000);
    const ms = performance.now() - back;
    expect(states.slice(0, 2)).toEqual(['registering', 'registered']);
    expect(states.slice(-3)).toEqual(['lost', 'registering', 'registered']);
    expect(r.leaseId).not.toBe(first);
    expect(await get(server, key)).toBe(`${key}\nhttp://127.0.0.1:8080\n`);
    expect((await meta(server, key))?.lease).toBe(r.leaseId);
    expect(await leases(server)).toEqual([hex(r.leaseId!)]);
    console.info(
      `[measure] ${transport}: wipe-restart: etcd healthy → registered again in ${ms.toFixed(0)} ms (TTL 3 s)`,
    );
  });

  it('restart keeping data (quick): stays or returns registered on the same lease, kept alive', async () => {
    const client = await newClient(server, transport);
    const key = '/services/kept/1';
    const r = track(new EtcdRegistrar(client, { key, value: 'http://1', ttlSeconds: 2 }));
    await r.register();
    const lease = r.leaseId;
    await server.restart();
    // The keep-alive stream reconnects; the lease survived the restart.
    await eventually(async () => r.state === 'registered', 'registered', 15_000);
    // Still kept alive: after more than a whole TTL (nothing to await: we check that nothing happens).
    await new Promise((res) => setTimeout(res, 3000));
    expect(r.state).toBe('registered');
    expect(r.leaseId).toBe(lease);
    expect((await meta(server, key))?.lease).toBe(lease);
    expect((await server.etcdctl('lease', 'timetolive', hex(lease!))).stdout).toMatch(
      /granted with TTL\(2s\)/,
    );
  });

  it('etcd down longer than the TTL, data kept: presumed lost, then registered again when etcd is back', async () => {
    const client = await newClient(server, transport);
    const key = '/services/outage/1';
    const r = track(new EtcdRegistrar(client, { key, value: 'http://1', ttlSeconds: 2 }));
    const states = record(r);
    await r.register();
    await server.stop();
    await waitFor(r.state$, (s) => s === 'lost', 'presumed lost while etcd is down', 10_000);
    await server.start();
    const back = performance.now();
    await waitFor(r.state$, (s) => s === 'registered', 'registered after etcd is back', 20_000);
    const ms = performance.now() - back;
    expect(states.slice(-3)).toEqual(['lost', 'registering', 'registered']);
    expect(await get(server, key)).toBe(`${key}\nhttp://1\n`);
    expect((await meta(server, key))?.lease).toBe(r.leaseId);
    console.info(
      `[measure] ${transport}: outage > TTL, data kept: etcd back → registered in ${ms.toFixed(0)} ms`,
    );
  });

  it('register() while etcd is down keeps trying and resolves once etcd is up', async () => {
    const client = await newClient(server, transport);
    const r = track(new EtcdRegistrar(client, { key: '/services/late/1', value: 'http://1', ttlSeconds: 3 }));
    await server.stop();
    let done = false;
    const p = r.register().then(() => {
      done = true;
    });
    await new Promise((res) => setTimeout(res, 1500)); // a stretch of failing attempts
    expect(done).toBe(false);
    expect(r.state).toBe('registering');
    await server.start();
    const up = performance.now();
    await p;
    console.info(
      `[measure] ${transport}: register() resolved ${(performance.now() - up).toFixed(0)} ms after etcd came up`,
    );
    expect(await get(server, '/services/late/1')).toBe('/services/late/1\nhttp://1\n');
  });

  it('deregister() while etcd is down rejects clearly; the key then expires with its TTL', async () => {
    const client = await newClient(server, transport);
    const key = '/services/orphan/1';
    const r = track(new EtcdRegistrar(client, { key, value: 'http://1', ttlSeconds: 2, lease: 'exclusive' }));
    await r.register();
    await server.stop();
    await expect(r.deregister()).rejects.toThrow(
      /could not remove "\/services\/orphan\/1" .*expires within 2 s/,
    );
    expect(r.state).toBe('deregistered');
    await server.start();
    // nothing keeps the lease alive any more: gone within the TTL (plus etcd's lease checkpoint slack)
    await eventually(async () => (await get(server, key)) === '', 'the key to expire', 10_000);
  });
});

describe.each(TRANSPORTS)('many registrars on one shared lease ($transport)', ({ transport }) => {
  let server: EtcdServer;
  beforeAll(async () => {
    server = await startEtcd({ name: `registrar-many-${transport}` });
  });
  afterAll(() => server?.close());

  it('1 000 registrars: one lease, all keys; all back after a wipe-restart; all gone after deregister', async () => {
    const client = await newClient(server, transport);
    const n = 1000;
    const rs = Array.from({ length: n }, (_, i) =>
      track(
        new EtcdRegistrar(client, {
          key: `/services/many/10.0.${i >> 8}.${i & 255}:8080`,
          value: `http://10.0.${i >> 8}.${i & 255}:8080`,
          ttlSeconds: 5,
        }),
      ),
    );
    let started = performance.now();
    await Promise.all(rs.map((r) => r.register()));
    const registerMs = performance.now() - started;
    expect(await countPrefix(server, '/services/many/')).toBe(n);
    expect(await leases(server)).toHaveLength(1);
    expect(new Set(rs.map((r) => r.leaseId)).size).toBe(1);

    await server.restart({ wipe: true });
    started = performance.now();
    await eventually(
      async () => rs.every((r) => r.state === 'registered' && r.leaseId !== undefined),
      'all registered again',
      30_000,
    );
    await eventually(
      async () => (await countPrefix(server, '/services/many/')) === n,
      `${n} keys back`,
      30_000,
    );
    const recoverMs = performance.now() - started;
    const after = await leases(server);
    expect(after).toHaveLength(1);
    expect(after[0]).toBe(hex(rs[0]!.leaseId!));

    started = performance.now();
    await Promise.all(rs.map((r) => r.deregister()));
    const deregisterMs = performance.now() - started;
    expect(await countPrefix(server, '/services/many/')).toBe(0);
    expect(await leases(server)).toEqual([]);
    console.info(
      `[measure] ${transport}: ${n} registrars: register ${registerMs.toFixed(0)} ms; wipe-restart → all back ${recoverMs.toFixed(0)} ms; deregister all ${deregisterMs.toFixed(0)} ms`,
    );
  });
});
