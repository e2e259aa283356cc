/**
 * Unit tests of KubernetesInstancer against a fake API server on loopback (fixtures/fake-api-server.ts), with a
 * FakeClock for every retry, idle and confirmation timer. The real API server is in *.integration.test.ts.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { InstancerEvent } from '@sdkit/sd-core';
import { FakeClock, type RecordingLogger, record, recordingLogger } from '@sdkit/sd-core/testing';
import { eventually, waitFor } from '@sdkit/test-harness';
import { startTestTelemetry } from '@sdkit/test-harness/telemetry';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { createKubernetesClient, type KubernetesClient } from './client.js';
import type { EndpointSlice, SliceEndpoint } from './endpoint-slice.js';
import { KubernetesClientError, KubernetesWatchError } from './errors.js';
import { endpoint, FakeApiServer, slice } from './fixtures/fake-api-server.js';
import { tempDir, writeKubeconfig } from './fixtures/kubeconfig.js';
import { KubernetesInstancer, type KubernetesInstancerOptions } from './instancer.js';

const BACKOFF = { initialMs: 100, maxMs: 1000, jitter: 0 } as const;

interface Setup {
  server: FakeApiServer;
  client: KubernetesClient;
  clock: FakeClock;
  logger: RecordingLogger;
  dir: string;
  instancer(options?: Partial<KubernetesInstancerOptions>): KubernetesInstancer;
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(
  spec: { token?: string; tokenFile?: string; tokens?: Record<string, string>; user?: string } = {},
): Promise<Setup> {
  const server = await FakeApiServer.start();
  cleanups.push(() => server.close());
  if (spec.tokens) server.tokens = new Map(Object.entries(spec.tokens));
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const kubeconfig = writeKubeconfig(dir, {
    server: server.url,
    namespace: 'shop',
    user: spec.user ?? 'alice',
    ...(spec.tokenFile === undefined
      ? { token: spec.token ?? 'alice-token' }
      : { tokenFile: spec.tokenFile }),
  });
  const clock = new FakeClock();
  const logger = recordingLogger();
  const client = await createKubernetesClient({ kubeconfig, clock, logger });
  cleanups.push(() => client.close());
  return {
    server,
    client,
    clock,
    logger,
    dir,
    instancer(options = {}) {
      const instancer = new KubernetesInstancer(client, { service: 'cart', backoff: BACKOFF, ...options });
      cleanups.push(() => instancer.stop());
      return instancer;
    },
  };
}

const keys = (e: InstancerEvent | undefined): string[] => e?.instances.map((i) => i.key) ?? [];

function until(instancer: KubernetesInstancer, predicate: (e: InstancerEvent) => boolean, what: string) {
  return waitFor(instancer.events$, predicate, what, 5000);
}

function hasKeys(expected: string[]) {
  return (e: InstancerEvent) => !e.error && JSON.stringify(keys(e)) === JSON.stringify([...expected].sort());
}

const eps = (...ips: string[]): SliceEndpoint[] => ips.map((ip) => endpoint(ip));

describe('KubernetesInstancer: list and watch', () => {
  it('lists every slice of the Service, then watches from the list resourceVersion with bookmarks', async () => {
    const { server, instancer } = await setup();
    server.put('shop', slice('cart-a', 'cart', eps('10.0.0.1', '10.0.0.2')));
    server.put('shop', slice('cart-b', 'cart', eps('10.0.0.3')));
    server.put('shop', slice('other', 'other', eps('10.0.0.4')));
    server.put('apps', slice('cart-c', 'cart', eps('10.0.0.5')));
    const listedAt = server.resourceVersion;
    const inst = instancer();
    const first = await until(
      inst,
      hasKeys(['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:8080']),
      'first set',
    );
    expect(first.instances.map((i) => i.address)).toEqual([
      '10.0.0.1:8080',
      '10.0.0.2:8080',
      '10.0.0.3:8080',
    ]);
    await eventually(async () => server.watchCount === 1, 'the watch');
    const [list, watch, ...more] = server.resourceRequests();
    expect(more).toEqual([]);
    expect(list!.path).toBe('/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices');
    expect(list!.query.get('labelSelector')).toBe('kubernetes.io/service-name=cart');
    expect(list!.query.get('limit')).toBe('500');
    expect(list!.query.get('watch')).toBeNull();
    expect(list!.authorization).toBe('Bearer alice-token');
    expect(watch!.query.get('watch')).toBe('true');
    expect(watch!.query.get('allowWatchBookmarks')).toBe('true');
    expect(watch!.query.get('resourceVersion')).toBe(String(listedAt));
    const timeout = Number(watch!.query.get('timeoutSeconds'));
    expect(timeout).toBeGreaterThanOrEqual(240);
    expect(timeout).toBeLessThanOrEqual(300);
  });

  it('applies watch events incrementally: one event per batch, with only the changes', async () => {
    const { server, instancer } = await setup();
    server.put('shop', slice('cart-a', 'cart', eps('10.0.0.1', '10.0.0.2')));
    const inst = instancer();
    await until(inst, hasKeys(['10.0.0.1:8080', '10.0.0.2:8080']), 'first set');
    await eventually(async () => server.watchCount === 1, 'the watch');
    const rec = record(inst.events$);
    server.put('shop', slice('cart-b', 'cart', eps('10.0.0.3')));
    await until(inst, hasKeys(['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:8080']), 'added slice');
    server.put('shop', slice('cart-a', 'cart', eps('10.0.0.1')));
    await until(inst, hasKeys(['10.0.0.1:8080', '10.0.0.3:8080']), 'modified slice');
    server.delete('shop', 'cart-b');
    await until(inst, hasKeys(['10.0.0.1:8080']), 'deleted slice');
    const before = rec.values.length;
    server.batch(() => {
      server.put('shop', slice('cart-c', 'cart', eps('10.0.0.7')));
      server.put('shop', slice('cart-d', 'cart', eps('10.0.0.8')));
      server.delete('shop', 'cart-a');
    });
    const last = await until(inst, hasKeys(['10.0.0.7:8080', '10.0.0.8:8080']), 'the batch');
    expect(rec.values.length).toBe(before + 1);
    expect(last.changes?.added.map((i) => i.key)).toEqual(['10.0.0.7:8080', '10.0.0.8:8080']);
    expect(last.changes?.removed.map((i) => i.key)).toEqual(['10.0.0.1:8080']);
    expect(rec.state.errored).toBe(false);
  });

  it('pages the list with limit and continue, and starts over when a continue token expired', async () => {
    const { server, instancer } = await setup();
    for (let i = 1; i <= 5; i++) server.put('shop', slice(`cart-${i}`, 'cart', eps(`10.0.0.${i}`)));
    server.expireContinue = 1;
    const inst = instancer({ pageSize: 2 });
    await until(inst, hasKeys([1, 2, 3, 4, 5].map((i) => `10.0.0.${i}:8080`)), 'all pages');
    await eventually(async () => server.watchCount === 1, 'the watch');
    const lists = server.resourceRequests().filter((r) => !r.watch);
    // page 1, page 2 (expired), page 1 again, pages 2 and 3
    expect(lists.map((r) => r.query.get('continue') !== null)).toEqual([false, true, false, true, true]);
    expect(lists.every((r) => r.query.get('limit') === '2')).toBe(true);
  });

  it('resumes a watch the server ended from the last resourceVersion seen (bookmarks count), without a list or an event', async () => {
    const { server, instancer } = await setup();
    server.put('shop', slice('cart-a', 'cart', eps('10.0.0.1')));
    const inst = instancer();
    await until(inst, hasKeys(['10.0.0.1:8080']), 'first set');
    await eventually(async () => server.watchCount === 1, 'the watch');
    const rec = record(inst.events$);
    server.put('shop', slice('unrelated', 'other', eps('10.9.9.9'))); // moves the resourceVersion on
    server.bookmark();
    const bookmarkRv = server.resourceVersion;
    await new Promise((r) => setTimeout(r, 50));
    server.endWatches();
    await eventually(
      async () => server.resourceRequests().filter((r) => r.watch).length === 2,
      'a second watch',
    );
    const watches = server.resourceRequests().filter((r) => r.watch);
    expect(watches[1]!.query.get('resourceVersion')).toBe(String(bookmarkRv));
    expect(server.resourceRequests().filter((r) => !r.watch)).toHaveLength(1);
    expect(rec.values).toHaveLength(1); // the replay only
  });

  it('reads events whatever the read boundaries (writes split into a few bytes each)', async () => {
    const { server, instancer } = await setup();
    server.fragmentBytes = 7;
    const inst = instancer();
    await until(inst, hasKeys([]), 'first (empty) set');
    await eventually(async () => server.watchCount === 1, 'the watch');
    server.put('shop', slice('cart-a', 'cart', [endpoint('10.0.0.1', { zone: 'zoné-ü' })]));
    const e = await until(inst, hasKeys(['10.0.0.1:8080']), 'fragmented event');
    expect(e.instances[0]!.metadata).toMatchObject({ zone: 'zoné-ü' });
  });
});

describe('KubernetesInstancer: failures are data', () => {
  it('after a broken connection: the last set with an error, backoff, then a watch from the last resourceVersion', async () => {
    const { server, instancer, clock } = await setup();
    server.put('shop', slice('cart-a', 'cart', eps('10.0.0.1')));
    const inst = instancer();
    await until(inst, hasKeys(['10.0.0.1:8080']), 'first set');
    await eventually(async () => server.watchCount === 1, 'the watch');
    const rv = server.resourceVersion;
    server.breakConnections();
    const failing = await until(inst, (e) => e.error !== undefined, 'an error event');
    expect(keys(failing)).toEqual(['10.0.0.1:8080']);
    expect(failing.error).toBeInstanceOf(KubernetesWatchError);
    expect(failing.error!.message).toMatch(
      /Kubernetes watch of the EndpointSlices of service "shop\/cart" failed/,
    );
    const watchesBefore = server.resourceRequests().filter((r) => r.watch).length;
    clock.advance(99);
    await new Promise((r) => setTimeout(r, 30));
    expect(server.resourceRequests().filter((r) => r.watch)).toHaveLength(watchesBefore);
    clock.advance(1);
    await eventually(async () => server.watchCount === 1, 'the watch again');
    const watches = server.resourceRequests().filter((r) => r.watch);
    expect(watches.at(-1)!.query.get('resourceVersion')).toBe(String(rv));
    expect(inst.current()?.error).toBeDefined(); // not yet confirmed
    clock.advance(1000);
    await until(inst, hasKeys(['10.0.0.1:8080']), 'the error cleared');
    expect(server.resourceRequests().filter((r) => !r.watch)).toHaveLength(1);
  });

  it('an event on the resumed watch clears the error at once', async () => {
    const { server, instancer, clock } = await setup();
    const inst = instancer();
    await until(inst, hasKeys([]), 'first set');
    await eventually(async () => server.watchCount === 1, 'the watch');
    server.breakConnections();
    await until(inst, (e) => e.error !== undefined, 'an error event');
    server.put('shop', slice('cart-a', 'cart', eps('10.0.0.1')));
    clock.advance(100);
    await until(inst, hasKeys(['10.0.0.1:8080']), 'the change, without error');
  });

  it.each(['event', 'http'] as const)(
    'on 410 Gone (as an %s) lists again and emits only the difference',
    async (goneAs) => {
      const { server, instancer, clock } = await setup();
      server.goneAs = goneAs;
      server.put('shop', slice('cart-a', 'cart', eps('10.0.0.1', '10.0.0.2')));
      server.put('shop', slice('cart-b', 'cart', eps('10.0.0.3')));
      const inst = instancer();
      await until(inst, hasKeys(['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:8080']), 'first set');
      await eventually(async () => server.watchCount === 1, 'the watch');
      server.breakConnections();
      await until(inst, (e) => e.error !== undefined, 'an error event');
      // While the instancer is away: changes, then the history is compacted.
      server.delete('shop', 'cart-b');
      server.put('shop', slice('cart-c', 'cart', eps('10.0.0.4')));
      server.put('shop', slice('cart-a', 'cart', eps('10.0.0.1', '10.0.0.5')));
      server.compact();
      const rec = record(inst.events$);
      clock.advance(100);
      const after = await until(
        inst,
        hasKeys(['10.0.0.1:8080', '10.0.0.4:8080', '10.0.0.5:8080']),
        'relisted',
      );
      expect(rec.values).toHaveLength(2); // the replayed error event, then the diff
      expect(after.changes?.added.map((i) => i.key)).toEqual(['10.0.0.4:8080', '10.0.0.5:8080']);
      expect(after.changes?.removed.map((i) => i.key)).toEqual(['10.0.0.2:8080', '10.0.0.3:8080']);
      await eventually(async () => server.watchCount === 1, 'the watch from the new list');
      expect(server.resourceRequests().filter((r) => !r.watch)).toHaveLength(2);
    },
  );

  it('a 410 on a watch resumed after a clean end relists with no event when nothing changed', async () => {
    const { server, instancer } = await setup();
    server.put('shop', slice('cart-a', 'cart', eps('10.0.0.1')));
    const inst = instancer();
    await until(inst, hasKeys(['10.0.0.1:8080']), 'first set');
    await eventually(async () => server.watchCount === 1, 'the watch');
    const rec = record(inst.events$);
    server.bookmark(); // a watch that ends having sent nothing at all would count as a failure
    server.put('shop', slice('x', 'other', eps('10.9.9.9')));
    server.compact();
    server.endWatches();
    await eventually(
      async () => server.resourceRequests().filter((r) => !r.watch).length === 2 && server.watchCount === 1,
      'a relist and a new watch',
    );
    expect(rec.values).toHaveLength(1);
  });

  it('a server that answers 410 to every watch meets a growing backoff, not a relist loop', async () => {
    const { server, instancer, clock } = await setup();
    server.intercepts.push({
      status: 410,
      body: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' },
      match: (r) => r.watch,
    });
    const inst = instancer();
    await until(inst, hasKeys([]), 'first set');
    const count = () => server.resourceRequests().length;
    // list + 410, two relists at once, then the backoff: 100 ms, 200 ms…
    await eventually(async () => count() === 6, 'three lists and three watches');
    await new Promise((r) => setTimeout(r, 50));
    expect(count()).toBe(6);
    clock.advance(100);
    await eventually(async () => count() === 8, 'a list and a watch after 100 ms');
    clock.advance(199);
    await new Promise((r) => setTimeout(r, 50));
    expect(count()).toBe(8);
    clock.advance(1);
    await eventually(async () => count() === 10, 'a list and a watch after 200 ms more');
    expect(inst.current()?.error).toBeUndefined(); // every list succeeded: the set is current
  });

  it('403: names the permission, namespace and user; retries with backoff; recovers when granted', async () => {
    const { server, instancer, clock } = await setup({ tokens: { 'alice-token': 'alice' } });
    server.denied.add('alice');
    const inst = instancer();
    const failing = await until(inst, (e) => e.error !== undefined, 'a 403 error');
    const error = failing.error as KubernetesWatchError;
    expect(keys(failing)).toEqual([]);
    expect(error.status).toBe(403);
    expect(error.reason).toBe('Forbidden');
    expect(error.message).toContain(
      'needs list and watch on endpointslices.discovery.k8s.io in namespace "shop" (user "alice")',
    );
    expect(error.message).toContain('kubectl create role endpointslice-reader -n shop --verb=list,watch');
    expect(error.message).toContain('--user=alice');
    expect(error.message).toContain('User "alice" cannot list resource "endpointslices"');
    const rec = record(inst.events$);
    for (const wait of [100, 200, 400, 800, 1000]) {
      const n = server.resourceRequests().length;
      clock.advance(wait);
      await eventually(async () => server.resourceRequests().length === n + 1, `retry after ${wait} ms`);
    }
    expect(rec.values).toHaveLength(1); // the same error is not emitted again
    server.put('shop', slice('cart-a', 'cart', eps('10.0.0.1')));
    server.denied.delete('alice');
    clock.advance(1000);
    await until(inst, hasKeys(['10.0.0.1:8080']), 'granted');
  });

  it('a 403 of a service account proposes a binding for it', async () => {
    const { server, instancer } = await setup({
      tokens: { 'alice-token': 'system:serviceaccount:shop:web' },
    });
    server.denied.add('system:serviceaccount:shop:web');
    const failing = await until(instancer(), (e) => e.error !== undefined, 'a 403 error');
    expect(failing.error!.message).toContain('(user "system:serviceaccount:shop:web")');
    expect(failing.error!.message).toContain('--serviceaccount=shop:web');
  });

  it('5xx and other statuses: an error event, retried no sooner than Retry-After', async () => {
    const { server, instancer, clock } = await setup();
    server.put('shop', slice('cart-a', 'cart', eps('10.0.0.1')));
    const inst = instancer();
    await until(inst, hasKeys(['10.0.0.1:8080']), 'first set');
    await eventually(async () => server.watchCount === 1, 'the watch');
    server.intercepts.push({
      status: 503,
      body: { kind: 'Status', code: 503, reason: 'ServiceUnavailable', message: 'etcd is down' },
      headers: { 'Retry-After': '3' },
      times: 1,
    });
    server.bookmark();
    server.endWatches();
    const failing = await until(inst, (e) => e.error !== undefined, 'a 503 error');
    expect(failing.error!.message).toMatch(/HTTP 503 ServiceUnavailable; the API server said: etcd is down/);
    expect(keys(failing)).toEqual(['10.0.0.1:8080']);
    const n = server.resourceRequests().length;
    clock.advance(2999);
    await new Promise((r) => setTimeout(r, 30));
    expect(server.resourceRequests()).toHaveLength(n);
    clock.advance(1);
    await eventually(async () => server.watchCount === 1, 'the watch again');
  });

  it('a watch ERROR event other than 410 is an error, and the watch resumes from the last resourceVersion', async () => {
    const { server, instancer, clock } = await setup();
    const inst = instancer();
    await until(inst, hasKeys([]), 'first set');
    await eventually(async () => server.watchCount === 1, 'the watch');
    const rv = server.resourceVersion;
    server.watchError({ code: 500, reason: 'InternalError', message: 'boom' });
    const failing = await until(inst, (e) => e.error !== undefined, 'the error');
    expect(failing.error!.message).toMatch(/HTTP 500 InternalError; the API server said: boom/);
    clock.advance(100);
    await eventually(async () => server.watchCount === 1, 'the watch again');
    expect(server.resourceRequests().at(-1)!.query.get('resourceVersion')).toBe(String(rv));
  });

  it('a watch that ends at once without sending anything counts as a failure (no hot loop)', async () => {
    const { server, instancer } = await setup();
    const inst = instancer();
    await until(inst, hasKeys([]), 'first set');
    await eventually(async () => server.watchCount === 1, 'the watch');
    server.endWatches();
    const failing = await until(inst, (e) => e.error !== undefined, 'the error');
    expect(failing.error!.message).toMatch(/ended the watch at once/);
  });

  it('a watch silent for watchIdleTimeoutMs is taken for dead and resumed, without an error', async () => {
    const { server, instancer, clock } = await setup();
    const inst = instancer({ watchIdleTimeoutMs: 5000 });
    await until(inst, hasKeys([]), 'first set');
    await eventually(async () => server.watchCount === 1, 'the watch');
    clock.advance(4999);
    await new Promise((r) => setTimeout(r, 30));
    expect(server.resourceRequests().filter((r) => r.watch)).toHaveLength(1);
    clock.advance(1);
    await eventually(
      async () => server.resourceRequests().filter((r) => r.watch).length === 2,
      'a new watch',
    );
    expect(inst.current()?.error).toBeUndefined();
  });

  it('the first list failing gives { instances: [], error }, and the API server coming back the set', async () => {
    const { server, instancer, clock } = await setup();
    server.intercepts.push({ status: 500, body: { kind: 'Status', code: 500, message: 'oops' }, times: 1 });
    server.put('shop', slice('cart-a', 'cart', eps('10.0.0.1')));
    const inst = instancer();
    const failing = await until(inst, (e) => e.error !== undefined, 'the error');
    expect(failing.instances).toEqual([]);
    expect(failing.error!.message).toMatch(/^Kubernetes list of/);
    clock.advance(100);
    await until(inst, hasKeys(['10.0.0.1:8080']), 'the set');
  });
});

describe('KubernetesInstancer: credentials', () => {
  it('reads a rotated token file on the next request; a 401 makes it re-read the file', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const tokenPath = join(dir, 'token');
    writeFileSync(tokenPath, 'alice-token\n');
    const { server, instancer, clock } = await setup({
      tokenFile: tokenPath,
      tokens: { 'alice-token': 'alice', 'alice-token-2': 'alice' },
    });
    const inst = instancer();
    await until(inst, hasKeys([]), 'first set');
    await eventually(async () => server.watchCount === 1, 'the watch');
    expect(server.resourceRequests().map((r) => r.authorization)).toEqual([
      'Bearer alice-token',
      'Bearer alice-token',
    ]);
    // Rotated while healthy: the next watch carries the new token.
    writeFileSync(tokenPath, 'alice-token-2');
    server.bookmark();
    server.endWatches();
    await eventually(async () => server.resourceRequests().length === 3, 'a new watch');
    expect(server.resourceRequests().at(-1)!.authorization).toBe('Bearer alice-token-2');
    // Revoked: 401 until the file holds a valid token again.
    server.tokens!.delete('alice-token-2');
    await eventually(async () => server.watchCount === 1, 'the new watch');
    server.bookmark();
    server.endWatches();
    const failing = await until(inst, (e) => e.error !== undefined, 'a 401');
    expect(failing.error!.message).toMatch(
      /401 Unauthorized: the API server rejected the credentials of kubeconfig user "alice"/,
    );
    writeFileSync(tokenPath, 'alice-token');
    clock.advance(100);
    await eventually(async () => server.watchCount === 1, 'the watch again');
    expect(server.resourceRequests().at(-1)!.authorization).toBe('Bearer alice-token');
  });
});

describe('KubernetesInstancer: the union of slices', () => {
  it('an endpoint in several slices appears once; deleting one slice keeps what another holds', async () => {
    const { server, instancer } = await setup();
    server.put('shop', slice('cart-a', 'cart', eps('10.0.0.1', '10.0.0.2')));
    server.put('shop', slice('cart-b', 'cart', eps('10.0.0.2', '10.0.0.3')));
    const inst = instancer();
    await until(inst, hasKeys(['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:8080']), 'first set');
    await eventually(async () => server.watchCount === 1, 'the watch');
    server.delete('shop', 'cart-a');
    await until(inst, hasKeys(['10.0.0.2:8080', '10.0.0.3:8080']), 'after the deletion');
  });

  it('an endpoint moving between slices does not flap: no event at all when both copies are equal', async () => {
    const { server, instancer } = await setup();
    const ep = endpoint('10.0.0.9', {
      zone: 'z1',
      targetRef: { kind: 'Pod', name: 'p', namespace: 'shop', uid: 'u' },
    });
    server.put('shop', slice('cart-b', 'cart', [ep, endpoint('10.0.0.1')]));
    server.put('shop', slice('cart-a', 'cart', eps('10.0.0.2')));
    const inst = instancer();
    await until(inst, hasKeys(['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.9:8080']), 'first set');
    await eventually(async () => server.watchCount === 1, 'the watch');
    const rec = record(inst.events$);
    // Moved from b to a in two events (added first, as the EndpointSlice controller writes), then back in one batch.
    server.put('shop', slice('cart-a', 'cart', [endpoint('10.0.0.2'), ep]));
    server.put('shop', slice('cart-b', 'cart', eps('10.0.0.1')));
    server.batch(() => {
      server.put('shop', slice('cart-a', 'cart', eps('10.0.0.2')));
      server.put('shop', slice('cart-b', 'cart', [ep, endpoint('10.0.0.1')]));
    });
    // A marker change, to know every earlier event was processed.
    server.put('shop', slice('cart-c', 'cart', eps('10.0.0.3')));
    await until(
      inst,
      hasKeys(['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:8080', '10.0.0.9:8080']),
      'the marker',
    );
    expect(rec.values).toHaveLength(2); // the replay, then the marker
    expect(rec.values[1]!.changes?.added.map((i) => i.key)).toEqual(['10.0.0.3:8080']);
    expect(rec.values[1]!.changes?.removed).toEqual([]);
  });

  it('always equals the union of the served endpoints of the slices (property, through the API server)', async () => {
    const { server, client } = await setup();
    const ips = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5'];
    const names = ['cart-1', 'cart-2', 'cart-3'];
    const ep = fc.record({ ip: fc.constantFrom(...ips), ready: fc.constantFrom(true, false, undefined) });
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('put' as const),
        name: fc.constantFrom(...names),
        eps: fc.array(ep, { maxLength: 4 }),
      }),
      fc.record({ kind: fc.constant('delete' as const), name: fc.constantFrom(...names) }),
      fc.record({
        kind: fc.constant('move' as const),
        from: fc.constantFrom(...names),
        to: fc.constantFrom(...names),
        ip: fc.constantFrom(...ips),
        batch: fc.boolean(),
      }),
    );
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 12 }), async (ops) => {
        const service = `svc-${++run}`;
        const model = new Map<string, EndpointSlice>();
        const inst = new KubernetesInstancer(client, { service, backoff: BACKOFF });
        try {
          await until(inst, (e) => !e.error, 'first set');
          await eventually(async () => server.watchCount === 1, 'the watch');
          for (const o of ops) {
            if (o.kind === 'put') {
              const s = slice(
                o.name,
                service,
                o.eps.map((e) =>
                  endpoint(e.ip, { conditions: e.ready === undefined ? {} : { ready: e.ready } }),
                ),
              );
              model.set(o.name, s);
              server.put('shop', s);
            } else if (o.kind === 'delete') {
              model.delete(o.name);
              server.delete('shop', o.name);
            } else {
              const from = model.get(o.from);
              const moving = from?.endpoints?.filter((e) => e.addresses?.[0] === o.ip) ?? [];
              if (!from || moving.length === 0 || o.from === o.to) continue;
              const to = model.get(o.to) ?? slice(o.to, service, []);
              const newTo = { ...to, endpoints: [...(to.endpoints ?? []), ...moving] };
              const newFrom = {
                ...from,
                endpoints: from.endpoints!.filter((e) => e.addresses?.[0] !== o.ip),
              };
              model.set(o.to, newTo);
              model.set(o.from, newFrom);
              const write = () => {
                server.put('shop', newTo);
                server.put('shop', newFrom);
              };
              if (o.batch) server.batch(write);
              else write();
            }
            const expected = new Set<string>();
            for (const s of model.values()) {
              for (const e of s.endpoints ?? []) {
                if (e.conditions?.ready !== false) expected.add(`${e.addresses![0]}:8080`);
              }
            }
            await until(inst, hasKeys([...expected]), `the union after ${JSON.stringify(o)}`);
          }
        } finally {
          inst.stop();
          for (const name of model.keys()) server.delete('shop', name);
          await eventually(async () => server.watchCount === 0, 'the watch closed');
        }
      }),
      { numRuns: 25 },
    );
  }, 60_000);
});

describe('KubernetesInstancer: readiness, ports, address types, metadata', () => {
  it('serves ready endpoints (ready unset counts), and with servingTerminating also serving+terminating ones', async () => {
    const { server, instancer } = await setup();
    server.put(
      'shop',
      slice('cart-a', 'cart', [
        endpoint('10.0.0.1', { conditions: { ready: true } }),
        endpoint('10.0.0.2'),
        endpoint('10.0.0.3', { conditions: { ready: false } }),
        endpoint('10.0.0.4', { conditions: { ready: false, serving: true, terminating: true } }),
      ]),
    );
    const ready = instancer();
    await until(ready, hasKeys(['10.0.0.1:8080', '10.0.0.2:8080']), 'ready only');
    const draining = instancer({ servingTerminating: true });
    const e = await until(
      draining,
      hasKeys(['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.4:8080']),
      'with terminating',
    );
    expect(e.instances[2]!.metadata).toMatchObject({
      conditions: { ready: false, serving: true, terminating: true },
    });
    // readiness flips
    await eventually(async () => server.watchCount === 2, 'the watches');
    server.put(
      'shop',
      slice('cart-a', 'cart', [endpoint('10.0.0.1', { conditions: { ready: false } }), endpoint('10.0.0.3')]),
    );
    await until(ready, hasKeys(['10.0.0.3:8080']), 'flipped');
  });

  it('a port number is dialled as given; a port name is looked up per slice; no port takes the first', async () => {
    const { server, instancer } = await setup();
    server.put(
      'shop',
      slice('cart-a', 'cart', eps('10.0.0.1'), {
        ports: [
          { name: 'http', port: 8080, protocol: 'TCP' },
          { name: 'grpc', port: 9000, protocol: 'TCP' },
        ],
      }),
    );
    server.put(
      'shop',
      slice('cart-b', 'cart', eps('10.0.0.2'), {
        ports: [
          { name: 'grpc', port: 9001, protocol: 'TCP' },
          { name: 'http', port: 8081, protocol: 'TCP' },
        ],
      }),
    );
    await until(instancer({ port: 'grpc' }), hasKeys(['10.0.0.1:9000', '10.0.0.2:9001']), 'by name');
    await until(instancer({ port: 7000 }), hasKeys(['10.0.0.1:7000', '10.0.0.2:7000']), 'by number');
    await until(instancer({ port: '7001' }), hasKeys(['10.0.0.1:7001', '10.0.0.2:7001']), 'digits');
    await until(instancer(), hasKeys(['10.0.0.1:8080', '10.0.0.2:9001']), 'first port');
  });

  it('a port name the Service does not have is an error naming its ports, until a slice has it', async () => {
    const { server, instancer } = await setup();
    server.put('shop', slice('cart-a', 'cart', eps('10.0.0.1')));
    const inst = instancer({ port: 'grpc' });
    const failing = await until(inst, (e) => e.error !== undefined, 'the port error');
    expect(failing.error!.message).toBe(
      'service "shop/cart" has no port named "grpc"; the ports of its EndpointSlices: "http" 8080/TCP',
    );
    expect(failing.instances).toEqual([]);
    await eventually(async () => server.watchCount === 1, 'the watch');
    server.put(
      'shop',
      slice('cart-a', 'cart', eps('10.0.0.1'), { ports: [{ name: 'grpc', port: 9000, protocol: 'TCP' }] }),
    );
    await until(inst, hasKeys(['10.0.0.1:9000']), 'the port appears');
    // The port goes away again: the last set is kept, with the error.
    server.put('shop', slice('cart-a', 'cart', eps('10.0.0.1', '10.0.0.2')));
    const again = await until(inst, (e) => e.error !== undefined, 'the port error again');
    expect(keys(again)).toEqual(['10.0.0.1:9000']);
    server.put(
      'shop',
      slice('cart-a', 'cart', eps('10.0.0.2'), { ports: [{ name: 'grpc', port: 9000, protocol: 'TCP' }] }),
    );
    await until(inst, hasKeys(['10.0.0.2:9000']), 'back, and brought up to date');
  });

  it('no port and no slice port with a number is an error too; a Service without slices is an empty set', async () => {
    const { server, instancer } = await setup();
    await until(instancer(), hasKeys([]), 'no slices: empty, no error');
    server.put('shop', slice('cart-a', 'cart', eps('10.0.0.1'), { ports: [] }));
    const failing = await until(instancer(), (e) => e.error !== undefined, 'the error');
    expect(failing.error!.message).toMatch(
      /has no port with a number in its EndpointSlices \(ports: none\); give a port number/,
    );
  });

  it('IPv6 endpoints are [ip]:port; FQDN slices are skipped with one warning per instancer', async () => {
    const { server, instancer, logger } = await setup();
    server.put('shop', slice('cart-v6', 'cart', eps('fd00::1', 'fd00::2'), { addressType: 'IPv6' }));
    server.put('shop', slice('cart-v4', 'cart', eps('10.0.0.1')));
    server.put('shop', slice('cart-f1', 'cart', eps('a.example.com'), { addressType: 'FQDN' }));
    server.put('shop', slice('cart-f2', 'cart', eps('b.example.com'), { addressType: 'FQDN' }));
    const inst = instancer();
    const e = await until(inst, hasKeys(['10.0.0.1:8080', '[fd00::1]:8080', '[fd00::2]:8080']), 'dual stack');
    expect(e.instances.map((i) => i.address)).toEqual(['10.0.0.1:8080', '[fd00::1]:8080', '[fd00::2]:8080']);
    await eventually(async () => server.watchCount === 1, 'the watch');
    server.put('shop', slice('cart-f1', 'cart', eps('c.example.com'), { addressType: 'FQDN' }));
    server.put('shop', slice('cart-v4', 'cart', eps('10.0.0.2')));
    await until(inst, hasKeys(['10.0.0.2:8080', '[fd00::1]:8080', '[fd00::2]:8080']), 'later change');
    const warnings = logger.records.filter((r) => r.level === 'warn' && /FQDN/.test(r.msg ?? ''));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toMatch(/service "shop\/cart" has FQDN EndpointSlices/);
  });

  it('metadata: zone, node, hostname, Pod, zone hints and conditions; frozen instances', async () => {
    const { server, instancer } = await setup();
    server.put(
      'shop',
      slice('cart-a', 'cart', [
        endpoint('10.0.0.1', {
          zone: 'eu-1a',
          nodeName: 'node-1',
          hostname: 'cart-0',
          targetRef: { kind: 'Pod', name: 'cart-0', namespace: 'shop', uid: 'uid-0' },
          hints: { forZones: [{ name: 'eu-1a' }] },
        }),
      ]),
    );
    const e = await until(instancer(), hasKeys(['10.0.0.1:8080']), 'the set');
    const instance = e.instances[0]!;
    expect(instance.metadata).toEqual({
      zone: 'eu-1a',
      nodeName: 'node-1',
      hostname: 'cart-0',
      targetRef: { kind: 'Pod', name: 'cart-0', namespace: 'shop', uid: 'uid-0' },
      hints: { forZones: ['eu-1a'] },
      conditions: { ready: true, serving: true, terminating: false },
    });
    expect(Object.isFrozen(instance)).toBe(true);
    expect(Object.isFrozen(e.instances)).toBe(true);
  });
});

describe('KubernetesInstancer: lifetime and options', () => {
  it('stop() ends the watch request, completes events$, and is idempotent', async () => {
    const { server, instancer } = await setup();
    const inst = instancer();
    await until(inst, hasKeys([]), 'first set');
    await eventually(async () => server.watchCount === 1, 'the watch');
    const rec = record(inst.events$);
    inst.stop();
    inst[Symbol.dispose]();
    expect(rec.state.completed).toBe(true);
    await eventually(async () => server.watchCount === 0, 'the watch request closed');
  });

  it("closing the client ends every instancer on it: last set with a 'closed' error, then completion", async () => {
    const { server, client, instancer } = await setup();
    server.put('shop', slice('cart-a', 'cart', eps('10.0.0.1')));
    const a = instancer();
    const b = instancer({ port: 9000 });
    await until(a, hasKeys(['10.0.0.1:8080']), 'a');
    await until(b, hasKeys(['10.0.0.1:9000']), 'b');
    const ra = record(a.events$);
    const rb = record(b.events$);
    client.close();
    for (const rec of [ra, rb]) {
      expect(rec.state.completed).toBe(true);
      const last = rec.values.at(-1)!;
      expect(last.error).toBeInstanceOf(KubernetesClientError);
      expect(last.error).toMatchObject({ reason: 'closed' });
      expect(last.instances).toHaveLength(1);
    }
    await eventually(async () => server.watchCount === 0, 'the watches closed');
    expect(() => new KubernetesInstancer(client, { service: 'cart' })).toThrow(KubernetesClientError);
  });

  it('validates its options with TypeErrors that name the mistake', async () => {
    const { client } = await setup();
    const make = (options: unknown) => () =>
      new KubernetesInstancer(client, options as KubernetesInstancerOptions);
    expect(make({ service: 'Cart' })).toThrow(/service must be a Service name/);
    expect(make({ service: 'cart', namespace: 'a/b' })).toThrow(/namespace must be/);
    expect(make({ service: 'cart', port: 0 })).toThrow(/port must be an integer from 1 to 65535/);
    expect(make({ service: 'cart', port: 'GRPC' })).toThrow(/port must be a port number or the name/);
    expect(make({ service: 'cart', serviceName: 'x' })).toThrow(
      /unknown option "serviceName" \(did you mean "service"\?\)/,
    );
    expect(make({ service: 'cart', backoff: { initialMs: 0 } })).toThrow(/backoff.initialMs/);
    expect(make({ service: 'cart', pageSize: 1.5 })).toThrow(/pageSize must be a positive integer/);
    expect(make(null)).toThrow(/options must be an object/);
    expect(() => new KubernetesInstancer({} as never, { service: 'cart' })).toThrow(
      /client must be a KubernetesClient from `await createKubernetesClient/,
    );
    expect(() => new KubernetesInstancer(Promise.resolve() as never, { service: 'cart' })).toThrow(
      /forget `await`/,
    );
  });
});

describe('KubernetesInstancer telemetry (the real OpenTelemetry SDK)', () => {
  it('reports the instances of namespace/service, errors, the reconnect after a failure and the relist after 410', async () => {
    const otel = startTestTelemetry({ traces: false });
    try {
      const { server, instancer, clock } = await setup();
      const attributes = { 'sdkit.source.name': 'kubernetes', 'sdkit.source.target': 'shop/cart' };
      server.put('shop', slice('cart-a', 'cart', eps('10.0.0.1', '10.0.0.2')));
      const inst = instancer();
      await until(inst, hasKeys(['10.0.0.1:8080', '10.0.0.2:8080']), 'first set');
      await eventually(async () => server.watchCount === 1, 'the watch');
      expect(await otel.points('sdkit.source.instance.count')).toEqual([{ attributes, value: 2 }]);
      // A broken connection: an error event, then the watch resumed from its resourceVersion (a reconnect).
      server.breakConnections();
      await until(inst, (e) => e.error !== undefined, 'an error event');
      clock.advance(100);
      await eventually(async () => server.watchCount === 1, 'the watch again');
      await eventually(async () => (await otel.value('sdkit.source.reconnects')) === 1, 'one reconnect');
      expect(await otel.points('sdkit.source.errors')).toEqual([
        { attributes: { ...attributes, 'error.type': 'KubernetesWatchError' }, value: 1 },
      ]);
      expect(await otel.points('sdkit.source.resyncs')).toEqual([]);
      // Broken again while the history is compacted: 410 Gone, a relist (a resync) and the difference.
      server.breakConnections();
      server.put('shop', slice('cart-a', 'cart', eps('10.0.0.1')));
      server.compact();
      // The failure is not reported again (same message): move the clock until the retry has relisted.
      await eventually(async () => {
        clock.advance(1000);
        return hasKeys(['10.0.0.1:8080'])(inst.current()!);
      }, 'relisted');
      expect(await otel.points('sdkit.source.resyncs')).toEqual([{ attributes, value: 1 }]);
      expect(await otel.value('sdkit.source.instance.count')).toBe(1);
    } finally {
      await otel.stop();
    }
  });
});
