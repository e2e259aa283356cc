/**
 * KubernetesInstancer against a real API server (k8s.io/apiserver on etcd 3.5, started by test/harness): growth to
 * 5000 endpoints over 50 slices, endpoints moving between slices, scale to zero and back, readiness flips, ports.
 * Faults (restart after compaction, a killed server, RBAC, token rotation) are in faults.integration.test.ts.
 */
import type { InstancerEvent } from '@sdkit/sd-core';
import { recordingLogger } from '@sdkit/sd-core/testing';
import { type KubeApiServer, startKubeApiServer, waitFor } from '@sdkit/test-harness';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createKubernetesClient, type KubernetesClient } from './client.js';
import type { SliceEndpoint } from './endpoint-slice.js';
import { deleteSlice, ensureNamespace, ip, putSlice, sliceObject } from './fixtures/kube-api.js';
import { KubernetesInstancer, type KubernetesInstancerOptions } from './instancer.js';

const NS = 'sd-kubernetes';
const BACKOFF = { initialMs: 50, maxMs: 500 };

let kube: KubeApiServer;
let client: KubernetesClient;
const stops: (() => void)[] = [];

beforeAll(async () => {
  kube = await startKubeApiServer({ name: 'sd-kubernetes' });
  await ensureNamespace(kube, NS);
  client = await createKubernetesClient({ kubeconfig: await kube.kubeconfig(), logger: recordingLogger() });
});
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});
afterAll(async () => {
  client?.close();
  await kube?.close();
});

function follow(service: string, options: Partial<KubernetesInstancerOptions> = {}): KubernetesInstancer {
  const instancer = new KubernetesInstancer(client, { service, namespace: NS, backoff: BACKOFF, ...options });
  stops.push(() => instancer.stop());
  return instancer;
}

const keysOf = (e: InstancerEvent): string[] => e.instances.map((i) => i.key);

function sameKeys(expected: Iterable<string>): (e: InstancerEvent) => boolean {
  const want = [...expected].sort().join(',');
  return (e) => !e.error && keysOf(e).join(',') === want;
}

function until(
  instancer: KubernetesInstancer,
  predicate: (e: InstancerEvent) => boolean,
  what: string,
  ms = 15_000,
) {
  return waitFor(instancer.events$, predicate, what, ms);
}

const ready = (n: number, extra: Omit<SliceEndpoint, 'addresses'> = {}): SliceEndpoint => ({
  addresses: [ip(n)],
  conditions: { ready: true },
  ...extra,
});

describe('KubernetesInstancer on a real API server', () => {
  it('follows a Service from 1 to 5000 endpoints over 50 slices; the set always equals the union', async () => {
    const service = 'big';
    const inst = follow(service);
    await until(inst, sameKeys([]), 'an empty first set');
    const events: InstancerEvent[] = [];
    const sub = inst.events$.subscribe((e) => events.push(e));
    try {
      await putSlice(kube, NS, sliceObject('big-0', service, [ready(1)]));
      await until(inst, sameKeys([`${ip(1)}:8080`]), 'one endpoint');
      const expected = new Set<string>();
      // Fill slice after slice, 100 endpoints each, checking the union after every write.
      for (let s = 0; s < 50; s++) {
        const endpoints = Array.from({ length: 100 }, (_, i) => ready(s * 100 + i + 1));
        await putSlice(kube, NS, sliceObject(`big-${s}`, service, endpoints));
        for (const e of endpoints) expected.add(`${e.addresses![0]}:8080`);
        await until(inst, sameKeys(expected), `the union after slice ${s}`);
      }
      expect(inst.current()!.instances).toHaveLength(5000);
      // Growing only: no event ever lost an endpoint, and none carried an error.
      for (let i = 1; i < events.length; i++) {
        expect(events[i]!.error).toBeUndefined();
        expect(events[i]!.changes?.removed ?? []).toEqual([]);
        expect(events[i]!.instances.length).toBeGreaterThanOrEqual(events[i - 1]!.instances.length);
      }
      // A fresh instancer lists all 50 slices (paginated) and gets the same set.
      const fresh = follow(service, { pageSize: 7 });
      await until(fresh, sameKeys(expected), 'the same set from a paginated list');
    } finally {
      sub.unsubscribe();
      for (let s = 0; s < 50; s++) await deleteSlice(kube, NS, `big-${s}`);
    }
  }, 180_000);

  it('endpoints moving between slices never leave the set (no flapping)', async () => {
    const service = 'mover';
    await putSlice(
      kube,
      NS,
      sliceObject(
        'mover-a',
        service,
        [1, 2, 3, 4, 5].map((n) => ready(n)),
      ),
    );
    await putSlice(
      kube,
      NS,
      sliceObject(
        'mover-b',
        service,
        [6, 7, 8].map((n) => ready(n)),
      ),
    );
    const inst = follow(service);
    const all = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => `${ip(n)}:8080`);
    await until(inst, sameKeys(all), 'first set');
    const events: InstancerEvent[] = [];
    const sub = inst.events$.subscribe((e) => events.push(e));
    try {
      // Move 4 and 5 from a to b, then 6 from b to a: each added to its new slice before it leaves the old one, as
      // the EndpointSlice controller writes them.
      await putSlice(
        kube,
        NS,
        sliceObject(
          'mover-b',
          service,
          [6, 7, 8, 4, 5].map((n) => ready(n)),
        ),
      );
      await putSlice(
        kube,
        NS,
        sliceObject(
          'mover-a',
          service,
          [1, 2, 3].map((n) => ready(n)),
        ),
      );
      await putSlice(
        kube,
        NS,
        sliceObject(
          'mover-a',
          service,
          [1, 2, 3, 6].map((n) => ready(n)),
        ),
      );
      await putSlice(
        kube,
        NS,
        sliceObject(
          'mover-b',
          service,
          [7, 8, 4, 5].map((n) => ready(n)),
        ),
      );
      // A marker endpoint, to know that every change before it arrived.
      await putSlice(kube, NS, sliceObject('mover-c', service, [ready(99)]));
      await until(inst, sameKeys([...all, `${ip(99)}:8080`]), 'the marker');
      for (const e of events) expect(keysOf(e)).toEqual(expect.arrayContaining(all));
      // Equal copies: the moves themselves produced no event at all (the replay, then the marker).
      expect(events).toHaveLength(2);
    } finally {
      sub.unsubscribe();
      for (const name of ['mover-a', 'mover-b', 'mover-c']) await deleteSlice(kube, NS, name);
    }
  }, 60_000);

  it('scales to zero and back; deleting a slice removes only what no other slice holds', async () => {
    const service = 'scaler';
    await putSlice(kube, NS, sliceObject('scaler-a', service, [ready(1), ready(2)]));
    await putSlice(kube, NS, sliceObject('scaler-b', service, [ready(2), ready(3)]));
    const inst = follow(service);
    await until(inst, sameKeys([1, 2, 3].map((n) => `${ip(n)}:8080`)), 'first set');
    try {
      await deleteSlice(kube, NS, 'scaler-a');
      await until(inst, sameKeys([2, 3].map((n) => `${ip(n)}:8080`)), 'slice a deleted, 2 kept');
      await putSlice(kube, NS, sliceObject('scaler-b', service, [])); // the controller keeps one empty slice
      await until(inst, sameKeys([]), 'zero');
      await putSlice(kube, NS, sliceObject('scaler-b', service, [ready(4), ready(5)]));
      await until(inst, sameKeys([4, 5].map((n) => `${ip(n)}:8080`)), 'back');
    } finally {
      await deleteSlice(kube, NS, 'scaler-b');
    }
  }, 60_000);

  it('follows readiness flips; servingTerminating keeps draining endpoints; metadata as the slice says', async () => {
    const service = 'flipper';
    const pod = (n: number) => ({ kind: 'Pod', name: `flipper-${n}`, namespace: NS, uid: `uid-${n}` });
    const ep = (n: number, conditions: NonNullable<SliceEndpoint['conditions']>): SliceEndpoint => ({
      addresses: [ip(n)],
      conditions,
      zone: 'zone-a',
      nodeName: 'node-1',
      targetRef: pod(n),
      hints: { forZones: [{ name: 'zone-a' }] },
    });
    await putSlice(
      kube,
      NS,
      sliceObject('flipper-a', service, [ep(1, { ready: true }), ep(2, { ready: true })]),
    );
    const inst = follow(service);
    const draining = follow(service, { servingTerminating: true });
    const first = await until(inst, sameKeys([1, 2].map((n) => `${ip(n)}:8080`)), 'both ready');
    expect(first.instances[0]!.metadata).toEqual({
      zone: 'zone-a',
      nodeName: 'node-1',
      targetRef: pod(1),
      hints: { forZones: ['zone-a'] },
      conditions: { ready: true, serving: true, terminating: false },
    });
    try {
      await putSlice(
        kube,
        NS,
        sliceObject('flipper-a', service, [
          ep(1, { ready: false, serving: true, terminating: true }),
          ep(2, { ready: true }),
        ]),
      );
      await until(inst, sameKeys([`${ip(2)}:8080`]), '1 not ready');
      const d = await until(
        draining,
        (e) =>
          keysOf(e).length === 2 &&
          (e.instances[0]!.metadata as { conditions: { terminating: boolean } }).conditions.terminating,
        '1 terminating but serving',
      );
      expect(d.instances[0]!.metadata).toMatchObject({
        conditions: { ready: false, serving: true, terminating: true },
      });
      await putSlice(
        kube,
        NS,
        sliceObject('flipper-a', service, [ep(1, { ready: true }), ep(2, { ready: false })]),
      );
      await until(inst, sameKeys([`${ip(1)}:8080`]), 'flipped');
      await until(draining, sameKeys([`${ip(1)}:8080`]), 'flipped (draining)');
    } finally {
      await deleteSlice(kube, NS, 'flipper-a');
    }
  }, 60_000);

  it('ports by name per slice, by number, the first port; a missing name is an error naming the ports', async () => {
    const service = 'ported';
    const ports = (grpc: number) => [
      { name: 'http', port: 8080, protocol: 'TCP' },
      { name: 'grpc', port: grpc, protocol: 'TCP' },
    ];
    await putSlice(kube, NS, sliceObject('ported-a', service, [ready(1)], { ports: ports(9000) }));
    await putSlice(kube, NS, sliceObject('ported-b', service, [ready(2)], { ports: ports(9001) }));
    try {
      await until(follow(service, { port: 'grpc' }), sameKeys([`${ip(1)}:9000`, `${ip(2)}:9001`]), 'by name');
      await until(follow(service, { port: 7000 }), sameKeys([`${ip(1)}:7000`, `${ip(2)}:7000`]), 'by number');
      await until(follow(service), sameKeys([`${ip(1)}:8080`, `${ip(2)}:8080`]), 'first port');
      const missing = await until(
        follow(service, { port: 'metrics' }),
        (e) => e.error !== undefined,
        'an error',
      );
      expect(missing.error!.message).toBe(
        `service "${NS}/${service}" has no port named "metrics"; the ports of its EndpointSlices: "grpc" 9000/TCP, "grpc" 9001/TCP, "http" 8080/TCP`,
      );
    } finally {
      await deleteSlice(kube, NS, 'ported-a');
      await deleteSlice(kube, NS, 'ported-b');
    }
  }, 60_000);

  it('IPv6 slices give [ip]:port instances', async () => {
    const service = 'six';
    await putSlice(
      kube,
      NS,
      sliceObject('six-a', service, [{ addresses: ['fd00::1'], conditions: { ready: true } }], {
        addressType: 'IPv6',
      }),
    );
    try {
      const e = await until(follow(service), sameKeys(['[fd00::1]:8080']), 'IPv6');
      expect(e.instances[0]!.address).toBe('[fd00::1]:8080');
    } finally {
      await deleteSlice(kube, NS, 'six-a');
    }
  }, 30_000);
});
