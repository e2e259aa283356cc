/**
 * EtcdInstancer and EtcdRegistrar through etcd's own proxies (seed 004): the L4 TCP gateway (`etcd gateway
 * start`) and the L7 gRPC proxy with `--namespace=/ns/` (`etcd grpc-proxy start`), both real processes in front of
 * a real etcd. For each: registrations made through the proxy and writes made with etcdctl directly at etcd reach
 * an instancer through the proxy; a SIGKILLed registrant (a separate plain-`node` process) disappears after its
 * lease runs out; a deregistered one at once; a killed and restarted proxy is an error event and then a clean
 * recovery; a compaction while the proxy is down still converges to etcd's exact state. Plus the namespace
 * arithmetic of the gRPC proxy and the fact that it does not serve etcd's HTTP/JSON gateway.
 *
 * The registrant process runs the built package (`pnpm build` first).
 */
import { fileURLToPath } from 'node:url';
import type { Instance, InstancerEvent } from '@sdkit/sd-core';
import {
  type EtcdProxy,
  type EtcdServer,
  eventually,
  startEtcd,
  startEtcdGateway,
  startEtcdGrpcProxy,
  startNodeScript,
  waitFor,
} from '@sdkit/test-harness';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdClient, type EtcdClient, EtcdClientError, type EtcdClientOptions } from './client.js';
import { codecs } from './codecs.js';
import { EtcdInstancer } from './instancer.js';
import { EtcdRegistrar } from './registrar.js';

const WAIT = 20_000;
const REGISTRANT = fileURLToPath(new URL('./fixtures/proxy-registrant.mjs', import.meta.url));
/** The lease TTL of the killed registrant. */
const KILL_TTL_SECONDS = 2;
/**
 * Upper bound for a SIGKILLed registrant to leave the instancer: etcd expires a lease at most one TTL after the last
 * keep-alive that reached it, checking every 500 ms; plus slack for a loaded machine. The same through either
 * proxy: the gateway only copies bytes, and the gRPC proxy keeps a lease alive only while the client's keep-alive
 * stream is open (it ends with the killed process's connection).
 */
const KILL_BOUND_MS = KILL_TTL_SECONDS * 1000 + 500 + 1500;
/** The gRPC proxy's namespace in these tests. */
const NS = '/ns/';

type Transport = 'grpc' | 'http';

/**
 * Client transports the proxy tests run with. The L4 gateway case runs with both (the gateway forwards bytes to
 * etcd's client port, which serves etcd's HTTP/JSON gateway too). The gRPC proxy does not serve that HTTP gateway
 * (see the 404 test below), so its cases run with 'grpc' only (`proxyCases`).
 */
const TRANSPORTS: ReadonlyArray<{ transport: Transport }> = [{ transport: 'grpc' }, { transport: 'http' }];

interface ProxyCase {
  readonly kind: 'gateway' | 'grpc-proxy';
  /** What the proxy prepends to every key: the same keys are at `namespace + key` in etcd. */
  readonly namespace: string;
  start(etcd: EtcdServer): Promise<EtcdProxy>;
}

function proxyCases(transport: Transport): ProxyCase[] {
  const cases: ProxyCase[] = [
    { kind: 'gateway', namespace: '', start: (etcd) => startEtcdGateway({ endpoints: etcd.endpoints }) },
    {
      kind: 'grpc-proxy',
      namespace: NS,
      start: (etcd) => startEtcdGrpcProxy({ endpoints: etcd.endpoints, namespace: NS }),
    },
  ];
  // The gRPC proxy speaks gRPC only.
  return cases.filter((c) => transport === 'grpc' || c.kind === 'gateway');
}

/** Every client, registrar, instancer and process a test makes is disposed after it, whatever happened. */
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});
function later<T>(value: T, dispose: (v: T) => unknown): T {
  cleanups.push(() => dispose(value));
  return value;
}

function makeClientFor(transport: Transport) {
  return async (
    endpoints: readonly string[],
    extra: Partial<EtcdClientOptions> = {},
  ): Promise<EtcdClient> => {
    const client = await createEtcdClient({
      endpoints,
      ...extra,
      // Passed only when not the default, so this file runs before createEtcdClient knows the option.
      ...(transport === 'grpc' ? {} : { transport }),
    } as EtcdClientOptions);
    return later(client, (c) => c.close());
  };
}

function instancerOn(client: EtcdClient, prefix: string): EtcdInstancer {
  return later(new EtcdInstancer(client, { prefix, codec: codecs.gokit }), (i) => i.stop());
}

function registrarOn(client: EtcdClient, key: string, value: string, ttlSeconds: number): EtcdRegistrar {
  return later(new EtcdRegistrar(client, { key, value, ttlSeconds }), (r) => r[Symbol.asyncDispose]());
}

/** The first event of `instancer` (the latest one included) that satisfies `predicate`. */
function next(
  instancer: EtcdInstancer,
  predicate: (e: InstancerEvent) => boolean,
  what: string,
  timeoutMs = WAIT,
): Promise<InstancerEvent> {
  return waitFor<InstancerEvent>(instancer.events$, predicate, what, timeoutMs);
}

/** `[key, address]` pairs of an event, sorted by key (the instancer sorts already). */
function pairs(instances: readonly Instance[]): Array<[string, string]> {
  return instances.map((i) => [i.key, i.address]);
}

function has(e: InstancerEvent | undefined, key: string): boolean {
  return e?.instances.some((i) => i.key === key) ?? false;
}

function record(instancer: EtcdInstancer): Array<{ at: number; event: InstancerEvent }> {
  const events: Array<{ at: number; event: InstancerEvent }> = [];
  const sub = instancer.events$.subscribe((event) => events.push({ at: performance.now(), event }));
  cleanups.push(() => sub.unsubscribe());
  return events;
}

/**
 * etcd's own listing of `prefix` (etcdctl, directly at etcd), as `[key, value]` sorted by key, with `strip`
 * removed from the front of every key.
 */
async function listing(etcd: EtcdServer, prefix: string, strip = ''): Promise<Array<[string, string]>> {
  const { stdout } = await etcd.etcdctl('get', prefix, '--prefix', '-w', 'json');
  const kvs = (JSON.parse(stdout) as { kvs?: Array<{ key: string; value: string }> }).kvs ?? [];
  return kvs
    .map((kv): [string, string] => [
      Buffer.from(kv.key, 'base64').toString('utf8'),
      Buffer.from(kv.value, 'base64').toString('utf8'),
    ])
    .map(([k, v]): [string, string] => {
      if (!k.startsWith(strip)) throw new Error(`listing: ${k} does not start with ${strip}`);
      return [k.slice(strip.length), v];
    })
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** `etcdctl get <key>` directly at etcd: the value, or undefined when absent. */
async function valueAt(etcd: EtcdServer, key: string): Promise<string | undefined> {
  const { stdout } = await etcd.etcdctl('get', key, '--print-value-only');
  return stdout === '' ? undefined : stdout.replace(/\n$/, '');
}

/** One HTTP request to `url`; resolves with its status. */
async function status(url: string, method: 'GET' | 'POST', body?: string): Promise<number> {
  const res = await fetch(url, {
    method,
    ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }),
  });
  await res.arrayBuffer();
  return res.status;
}

// ---------------------------------------------------------------------------------------------------------------

describe("sdkit through etcd's gateway and gRPC proxy", () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await startEtcd({ name: 'proxies' });
  });
  afterAll(() => etcd?.close());

  describe.each(TRANSPORTS)('client transport $transport', ({ transport }) => {
    const makeClient = makeClientFor(transport);

    describe.each(proxyCases(transport))('$kind', (pc) => {
      let proxy: EtcdProxy;
      beforeAll(async () => {
        proxy = await pc.start(etcd);
      });
      afterAll(() => proxy?.close());
      afterEach(async () => {
        // A test that failed half-way must not leave the proxy down for the next one.
        await proxy?.start();
      });

      const base = `/proxies/${transport}/${pc.kind}/`;
      /** Where a key the client names through the proxy is stored in etcd. */
      const at = (key: string) => `${pc.namespace}${key}`;

      it('an instancer through the proxy sees registrations made through it and etcdctl puts/deletes made directly at etcd', async () => {
        const prefix = `${base}sees/`;
        const client = await makeClient(proxy.endpoints);
        const instancer = instancerOn(client, prefix);
        const first = await next(instancer, () => true, 'the first event', WAIT);
        expect(first).toEqual({ instances: [] });

        const registrar = registrarOn(client, `${prefix}reg`, 'http://127.0.0.1:9001', 10);
        await registrar.register();
        await next(
          instancer,
          (e) =>
            !e.error &&
            JSON.stringify(pairs(e.instances)) ===
              JSON.stringify([[`${prefix}reg`, 'http://127.0.0.1:9001']]),
          'the registration made through the proxy',
          WAIT,
        );
        // Stored in etcd at the namespaced key (the gateway adds nothing).
        expect(await valueAt(etcd, at(`${prefix}reg`))).toBe('http://127.0.0.1:9001');
        if (pc.namespace !== '') expect(await valueAt(etcd, `${prefix}reg`)).toBeUndefined();

        if (pc.namespace !== '') {
          // The same key without the namespace is outside what the proxy's clients see: written first, it must be
          // absent from the event that carries the write after it.
          await etcd.etcdctl('put', `${prefix}outside`, 'http://127.0.0.1:9009');
        }
        await etcd.etcdctl('put', at(`${prefix}ctl`), 'http://127.0.0.1:9002');
        const both = await next(instancer, (e) => has(e, `${prefix}ctl`), 'the etcdctl put', WAIT);
        expect(both.error).toBeUndefined();
        expect(pairs(both.instances)).toEqual([
          [`${prefix}ctl`, 'http://127.0.0.1:9002'],
          [`${prefix}reg`, 'http://127.0.0.1:9001'],
        ]);

        await etcd.etcdctl('del', at(`${prefix}ctl`));
        const after = await next(instancer, (e) => !has(e, `${prefix}ctl`), 'the etcdctl delete', WAIT);
        expect(after.error).toBeUndefined();
        expect(pairs(after.instances)).toEqual([[`${prefix}reg`, 'http://127.0.0.1:9001']]);
        if (pc.namespace !== '') await etcd.etcdctl('del', `${prefix}outside`);
      });

      it(`a SIGKILLed registrant process (through the proxy, TTL ${KILL_TTL_SECONDS} s) is seen until the kill and gone after its lease runs out`, async () => {
        const prefix = `${base}killed/`;
        const key = `${prefix}svc-1`;
        const value = 'http://127.0.0.1:9101';
        const client = await makeClient(proxy.endpoints);
        const instancer = instancerOn(client, prefix);
        const events = record(instancer);
        await next(instancer, (e) => !e.error, 'the first read', WAIT);

        const registrant = later(
          startNodeScript(REGISTRANT, [
            JSON.stringify({
              endpoints: proxy.endpoints,
              transport,
              key,
              value,
              ttlSeconds: KILL_TTL_SECONDS,
            }),
          ]),
          (r) => r.kill(),
        );
        await registrant.line(/"registered":true/, WAIT);
        await next(instancer, (e) => has(e, key), 'the registrant, through the instancer', WAIT);
        expect(await valueAt(etcd, at(key))).toBe(value);
        // Keep-alives through the proxy reach etcd: the registration outlives its first TTL.
        const registeredAt = performance.now();
        await eventually(
          async () =>
            performance.now() - registeredAt > KILL_TTL_SECONDS * 1000 + 500 &&
            (await valueAt(etcd, at(key))) === value,
          'the registration to outlive one TTL',
          WAIT,
        );
        expect(has(instancer.current(), key)).toBe(true);

        const killedAt = performance.now();
        expect((await registrant.kill('SIGKILL')).signal).toBe('SIGKILL');
        // Nothing ran on the way out: the key is still in etcd right after the process died…
        expect(await valueAt(etcd, at(key))).toBe(value);
        // …and the instancer drops it only when the lease expires.
        const gone = await next(instancer, (e) => !has(e, key), 'the killed registrant to go', WAIT);
        const goneMs = performance.now() - killedAt;
        expect(gone.error).toBeUndefined();
        expect(gone.instances).toEqual([]);
        expect(await valueAt(etcd, at(key))).toBeUndefined();

        // Present from its first sighting until the kill: no event in between lacked it.
        const firstSeen = events.findIndex((x) => has(x.event, key));
        const untilKill = events.slice(firstSeen).filter((x) => x.at <= killedAt);
        expect(untilKill.length).toBeGreaterThan(0);
        expect(untilKill.every((x) => has(x.event, key) && !x.event.error)).toBe(true);
        // Not a clean removal (milliseconds, see the deregister test): the lease outlived the process.
        expect(goneMs).toBeGreaterThan((KILL_TTL_SECONDS * 1000) / 4);
        expect(goneMs).toBeLessThan(KILL_BOUND_MS);
        console.info(
          `[measure] ${pc.kind}/${transport}: SIGKILLed registrant gone from the instancer after ${goneMs.toFixed(0)} ms (TTL ${KILL_TTL_SECONDS} s)`,
        );
      });

      it('a deregistered registrant goes at once, well within its TTL; its sibling on the same lease stays', async () => {
        const prefix = `${base}deregistered/`;
        const ttlSeconds = 30;
        const client = await makeClient(proxy.endpoints);
        const instancer = instancerOn(client, prefix);
        const a = registrarOn(client, `${prefix}a`, 'http://127.0.0.1:9201', ttlSeconds);
        const b = registrarOn(client, `${prefix}b`, 'http://127.0.0.1:9202', ttlSeconds);
        await Promise.all([a.register(), b.register()]);
        await next(instancer, (e) => !e.error && e.instances.length === 2, 'both registrations', WAIT);
        const started = performance.now();
        await a.deregister();
        const event = await next(instancer, (e) => !has(e, `${prefix}a`), 'a to go', 5_000);
        const ms = performance.now() - started;
        expect(event.error).toBeUndefined();
        expect(pairs(event.instances)).toEqual([[`${prefix}b`, 'http://127.0.0.1:9202']]);
        expect(ms).toBeLessThan(2_000);
        expect(await listing(etcd, at(prefix), pc.namespace)).toEqual([
          [`${prefix}b`, 'http://127.0.0.1:9202'],
        ]);
        console.info(
          `[measure] ${pc.kind}/${transport}: deregister() → instancer event without it ${ms.toFixed(0)} ms`,
        );
      });

      it('a killed proxy is an error event with the last instances kept; after its restart the instancer recovers with what changed meanwhile', async () => {
        const prefix = `${base}restart/`;
        await etcd.etcdctl('put', at(`${prefix}a`), 'http://127.0.0.1:9301');
        const client = await makeClient(proxy.endpoints);
        const instancer = instancerOn(client, prefix);
        const before = await next(instancer, (e) => !e.error && has(e, `${prefix}a`), 'a', WAIT);
        const events = record(instancer);

        const killedAt = performance.now();
        await proxy.kill();
        const failed = await next(instancer, (e) => e.error !== undefined, 'an error event', WAIT);
        const errorMs = performance.now() - killedAt;
        expect(failed.instances).toEqual(before.instances);

        // Written directly at etcd while the proxy is down.
        await etcd.etcdctl('put', at(`${prefix}b`), 'http://127.0.0.1:9302');
        await proxy.start();
        const restartedAt = performance.now();
        const back = await next(instancer, (e) => !e.error && has(e, `${prefix}b`), 'the recovery', WAIT);
        const recoveryMs = performance.now() - restartedAt;
        expect(pairs(back.instances)).toEqual([
          [`${prefix}a`, 'http://127.0.0.1:9301'],
          [`${prefix}b`, 'http://127.0.0.1:9302'],
        ]);
        expect(pairs(back.instances)).toEqual(await listing(etcd, at(prefix), pc.namespace));
        // Errors are data: no event dropped `a` on the way.
        expect(events.every((x) => has(x.event, `${prefix}a`))).toBe(true);
        // And the watch is live again.
        await etcd.etcdctl('del', at(`${prefix}a`));
        const live = await next(instancer, (e) => !has(e, `${prefix}a`), 'a delete after recovery', WAIT);
        expect(pairs(live.instances)).toEqual([[`${prefix}b`, 'http://127.0.0.1:9302']]);
        console.info(
          `[measure] ${pc.kind}/${transport}: proxy SIGKILL → error event ${errorMs.toFixed(0)} ms; proxy ready → recovered event ${recoveryMs.toFixed(0)} ms`,
        );
      });

      it("compaction while the proxy is down: after its restart the instancer converges to etcd's exact state", async () => {
        const prefix = `${base}compact/`;
        for (const i of [1, 2, 3])
          await etcd.etcdctl('put', at(`${prefix}k${i}`), `http://127.0.0.1:940${i}`);
        const client = await makeClient(proxy.endpoints);
        const instancer = instancerOn(client, prefix);
        await next(instancer, (e) => !e.error && e.instances.length === 3, 'k1..k3', WAIT);

        await proxy.stop();
        await next(instancer, (e) => e.error !== undefined, 'an error event', WAIT);
        const fromRevision = await etcd.revision();
        await etcd.etcdctl('put', at(`${prefix}k4`), 'http://127.0.0.1:9404');
        await etcd.etcdctl('del', at(`${prefix}k1`));
        await etcd.etcdctl('put', at(`${prefix}k2`), 'http://127.0.0.1:9412');
        await etcd.etcdctl('del', at(`${prefix}k3`));
        await etcd.etcdctl('put', at(`${prefix}k5`), 'http://127.0.0.1:9405');
        const compacted = await etcd.compact();
        // The revisions the instancer would resume from are gone.
        expect(compacted).toBeGreaterThan(fromRevision + 1);
        await expect(
          etcd.etcdctl('get', at(prefix), '--prefix', `--rev=${fromRevision + 1}`),
        ).rejects.toThrow(/compacted/);
        const truth = await listing(etcd, at(prefix), pc.namespace);
        expect(truth).toEqual([
          [`${prefix}k2`, 'http://127.0.0.1:9412'],
          [`${prefix}k4`, 'http://127.0.0.1:9404'],
          [`${prefix}k5`, 'http://127.0.0.1:9405'],
        ]);

        await proxy.start();
        const restartedAt = performance.now();
        await next(
          instancer,
          (e) => !e.error && JSON.stringify(pairs(e.instances)) === JSON.stringify(truth),
          `convergence to ${JSON.stringify(truth)}`,
          WAIT,
        );
        const convergeMs = performance.now() - restartedAt;
        // The watch goes on from there.
        await etcd.etcdctl('put', at(`${prefix}k6`), 'http://127.0.0.1:9406');
        const withK6 = await next(instancer, (e) => has(e, `${prefix}k6`), 'k6', WAIT);
        expect(pairs(withK6.instances)).toEqual(await listing(etcd, at(prefix), pc.namespace));
        console.info(
          `[measure] ${pc.kind}/${transport}: compacted while the proxy was down → converged ${convergeMs.toFixed(0)} ms after it was ready`,
        );
      });
    });
  });

  describe(`the gRPC proxy with --namespace=${NS}`, () => {
    let proxy: EtcdProxy;
    beforeAll(async () => {
      proxy = await startEtcdGrpcProxy({ endpoints: etcd.endpoints, namespace: NS, name: 'grpc-proxy-ns' });
    });
    afterAll(() => proxy?.close());

    it(`joins by concatenation: /services/foo/1 through it is /ns//services/foo/1 in etcd; a direct client sees the same keys with namespace '${NS}'`, async () => {
      const through = await createEtcdClient({ endpoints: proxy.endpoints });
      later(through, (c) => c.close());
      const direct = await createEtcdClient({ endpoints: etcd.endpoints, namespace: NS });
      later(direct, (c) => c.close());
      // Without the trailing slash the direct client's keys are /ns/services/…: not the proxy's.
      const noSlash = await createEtcdClient({ endpoints: etcd.endpoints, namespace: '/ns' });
      later(noSlash, (c) => c.close());

      await registrarOn(through, '/services/foo/1', 'http://127.0.0.1:9501', 10).register();
      expect(await listing(etcd, '/ns//services/')).toEqual([
        ['/ns//services/foo/1', 'http://127.0.0.1:9501'],
      ]);
      expect(await valueAt(etcd, '/ns/services/foo/1')).toBeUndefined();
      expect(await valueAt(etcd, '/services/foo/1')).toBeUndefined();

      await registrarOn(direct, '/services/foo/2', 'http://127.0.0.1:9502', 10).register();
      expect(await valueAt(etcd, '/ns//services/foo/2')).toBe('http://127.0.0.1:9502');

      const expected = [
        ['/services/foo/1', 'http://127.0.0.1:9501'],
        ['/services/foo/2', 'http://127.0.0.1:9502'],
      ];
      const viaProxy = instancerOn(through, '/services/foo/');
      const viaDirect = instancerOn(direct, '/services/foo/');
      const viaNoSlash = instancerOn(noSlash, '/services/foo/');
      for (const [name, instancer] of [
        ['through the proxy', viaProxy],
        ['direct, namespace /ns/', viaDirect],
      ] as const) {
        await next(
          instancer,
          (e) => !e.error && JSON.stringify(pairs(e.instances)) === JSON.stringify(expected),
          `both registrations ${name}`,
          WAIT,
        );
      }
      const nothing = await next(viaNoSlash, () => true, 'the first event, namespace /ns', WAIT);
      expect(nothing).toEqual({ instances: [] });
    });

    it("does not serve etcd's HTTP/JSON gateway: /v3/kv/range answers 404 (the L4 gateway forwards it to etcd: 200)", async () => {
      const body = JSON.stringify({ key: Buffer.from('/services/foo/1').toString('base64') });
      expect(await status(`${proxy.endpoints[0]}/v3/kv/range`, 'GET')).toBe(404);
      expect(await status(`${proxy.endpoints[0]}/v3/kv/range`, 'POST', body)).toBe(404);
      expect(await status(`${proxy.endpoints[0]}/v3beta/kv/range`, 'POST', body)).toBe(404);
      // It is up and serving all the same: its /health reads through to etcd.
      expect(await status(`${proxy.endpoints[0]}/health`, 'GET')).toBe(200);
      await using gateway = await startEtcdGateway({ endpoints: etcd.endpoints });
      expect(await status(`${gateway.endpoints[0]}/v3/kv/range`, 'POST', body)).toBe(200);
      expect(await status(`${etcd.endpoints[0]}/v3/kv/range`, 'POST', body)).toBe(200);
    });

    it("an HTTP client pointed at it fails at once, saying the gRPC proxy does not serve etcd's HTTP gateway", async () => {
      const started = performance.now();
      const error = await createEtcdClient({
        transport: 'http',
        endpoints: proxy.endpoints,
        dialTimeoutMs: 20_000,
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(EtcdClientError);
      expect((error as EtcdClientError).reason).toBe('unreachable');
      expect((error as Error).message).toMatch(/does not serve the HTTP\/JSON gateway.*gRPC proxy/);
      expect(performance.now() - started).toBeLessThan(10_000); // not after the 20 s dial timeout
    });
  });
});
