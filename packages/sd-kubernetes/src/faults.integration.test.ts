/**
 * KubernetesInstancer and createKubernetesClient on a real API server that fails: compaction and a restart (410 →
 * relist), a killed API server, a user without permission (403) then granted, rotated token files (kubeconfig
 * `tokenFile`, and an in-cluster service account). Each test leaves the server running and every user allowed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { InstancerEvent } from '@sdkit/sd-core';
import { type RecordingLogger, recordingLogger } from '@sdkit/sd-core/testing';
import { eventually, type KubeApiServer, startKubeApiServer, waitFor } from '@sdkit/test-harness';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createKubernetesClient, type KubernetesClient } from './client.js';
import { KubernetesWatchError } from './errors.js';
import { deleteSlice, ensureNamespace, ip, putSlice, sliceObject } from './fixtures/kube-api.js';
import { tempDir, writeKubeconfig } from './fixtures/kubeconfig.js';
import { KubernetesInstancer, type KubernetesInstancerOptions } from './instancer.js';

const NS = 'sd-kubernetes-faults';
const BACKOFF = { initialMs: 50, maxMs: 500 };

let kube: KubeApiServer;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  kube = await startKubeApiServer({ name: 'sd-kubernetes-faults', users: ['alice', 'bob'] });
  await ensureNamespace(kube, NS);
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  if (kube.pid === undefined) await kube.start();
  await kube.allow('alice');
  await kube.allow('bob');
});
afterAll(async () => {
  await kube?.close();
});

async function client(kubeconfig: string | KubeConfig, logger: RecordingLogger = recordingLogger()) {
  const c = await createKubernetesClient({ kubeconfig, logger });
  cleanups.push(() => c.close());
  return c;
}

function follow(
  c: KubernetesClient,
  service: string,
  options: Partial<KubernetesInstancerOptions> = {},
): KubernetesInstancer {
  const instancer = new KubernetesInstancer(c, { service, namespace: NS, backoff: BACKOFF, ...options });
  cleanups.push(() => instancer.stop());
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
  ms = 20_000,
) {
  return waitFor(instancer.events$, predicate, what, ms);
}

const ready = (n: number) => ({ addresses: [ip(n)], conditions: { ready: true } });
const key = (n: number) => `${ip(n)}:8080`;

function dir(): string {
  const t = tempDir();
  cleanups.push(t.cleanup);
  return t.dir;
}

describe('KubernetesInstancer on a failing API server', () => {
  it('etcd compacted and the API server restarted: 410 Gone, a relist, the diff; nothing lost', async () => {
    const logger = recordingLogger();
    const c = await client(await kube.kubeconfig(), logger);
    await putSlice(kube, NS, sliceObject('gone-a', 'gone', [ready(1), ready(2)]));
    await putSlice(kube, NS, sliceObject('gone-b', 'gone', [ready(3)]));
    cleanups.push(() => Promise.all(['gone-a', 'gone-b', 'gone-c'].map((n) => deleteSlice(kube, NS, n))));
    const inst = follow(c, 'gone');
    // The checked history: the service's set after each write, in order. Every event must show one of them, never
    // going back to an earlier one, and the last must be reached: nothing lost, nothing invented.
    const history = [
      [1, 2, 3],
      [1, 2],
      [1, 2, 4],
      [1, 4, 5],
      [1, 4, 5, 6],
    ].map((ns) => ns.map(key).sort().join(','));
    const seen: string[] = [];
    const sub = inst.events$.subscribe((e) => seen.push(keysOf(e).join(',')));
    cleanups.push(() => sub.unsubscribe());
    await until(inst, sameKeys([key(1), key(2), key(3)]), 'first set');
    // Other writes move etcd's revision past the one this watch holds; then history goes, and the watch cache.
    for (let i = 0; i < 20; i++)
      await putSlice(kube, NS, sliceObject(`other-${i % 3}`, 'other', [ready(100 + i)]));
    cleanups.push(() => Promise.all([0, 1, 2].map((i) => deleteSlice(kube, NS, `other-${i}`))));
    await kube.compactEtcd();
    await kube.restart();
    // Changes while the instancer reconnects: they must all arrive.
    await deleteSlice(kube, NS, 'gone-b');
    await putSlice(kube, NS, sliceObject('gone-c', 'gone', [ready(4)]));
    await putSlice(kube, NS, sliceObject('gone-a', 'gone', [ready(1), ready(5)]));
    await until(inst, sameKeys([key(1), key(4), key(5)]), 'converged after the restart');
    expect(logger.records.some((r) => /410 Gone\); listing again/.test(r.msg ?? ''))).toBe(true);
    // And it goes on watching.
    await putSlice(kube, NS, sliceObject('gone-c', 'gone', [ready(4), ready(6)]));
    await until(inst, sameKeys([key(1), key(4), key(5), key(6)]), 'a later change');
    let at = 0;
    for (const set of seen) {
      const i = history.indexOf(set, at);
      expect(
        i,
        `event ${set} is not a state the writes produced after ${history[at]}`,
      ).toBeGreaterThanOrEqual(0);
      at = i;
    }
    expect(at).toBe(history.length - 1);
  }, 120_000);

  it('the API server killed: the last set with an error, then back with nothing lost', async () => {
    const c = await client(await kube.kubeconfig());
    await putSlice(kube, NS, sliceObject('kill-a', 'kill', [ready(1), ready(2)]));
    cleanups.push(() => deleteSlice(kube, NS, 'kill-a'));
    const inst = follow(c, 'kill');
    await until(inst, sameKeys([key(1), key(2)]), 'first set');
    await kube.kill();
    const failing = await until(inst, (e) => e.error !== undefined, 'an error while it is down');
    expect(keysOf(failing)).toEqual([key(1), key(2)]);
    expect(failing.error).toBeInstanceOf(KubernetesWatchError);
    expect(failing.error!.message).toMatch(
      /cannot reach the Kubernetes API server at https:\/\/127\.0\.0\.1:\d+/,
    );
    await kube.start();
    await until(inst, sameKeys([key(1), key(2)]), 'the error cleared');
    await putSlice(kube, NS, sliceObject('kill-a', 'kill', [ready(2), ready(3)]));
    await until(inst, sameKeys([key(2), key(3)]), 'a change after the restart');
  }, 120_000);

  it('403: a user without permission gets an error naming what is missing; granted, it catches up', async () => {
    await putSlice(kube, NS, sliceObject('rbac-a', 'rbac', [ready(1)]));
    cleanups.push(() => deleteSlice(kube, NS, 'rbac-a'));
    await kube.deny('alice');
    const c = await client(await kube.kubeconfig('alice')); // discovery stays allowed: the client is created
    const inst = follow(c, 'rbac');
    const failing = await until(inst, (e) => e.error !== undefined, 'a 403');
    const error = failing.error as KubernetesWatchError;
    expect(error.status).toBe(403);
    expect(error.message).toContain(
      `needs list and watch on endpointslices.discovery.k8s.io in namespace "${NS}" (user "alice")`,
    );
    expect(failing.instances).toEqual([]);
    // It keeps trying: more requests get refused, no new event for the same error.
    const events: InstancerEvent[] = [];
    const sub = inst.events$.subscribe((e) => events.push(e));
    await new Promise((r) => setTimeout(r, 1500));
    sub.unsubscribe();
    expect(events).toHaveLength(1);
    await kube.allow('alice');
    await until(inst, sameKeys([key(1)]), 'granted');
  }, 60_000);

  it('a kubeconfig tokenFile is read again when rotated: a revoked token gives 401, a valid one recovers', async () => {
    const d = dir();
    const tokenPath = join(d, 'token');
    writeFileSync(tokenPath, `${kube.tokens.alice}\n`);
    const kubeconfig = writeKubeconfig(d, {
      server: kube.url,
      caPem: kube.caPem,
      user: 'alice',
      tokenFile: 'token', // relative to the kubeconfig, as kubectl reads it
    });
    await putSlice(kube, NS, sliceObject('rot-a', 'rot', [ready(1)]));
    cleanups.push(() => deleteSlice(kube, NS, 'rot-a'));
    const c = await client(kubeconfig);
    // Short watches, so that new requests (with the token read again) come often.
    const inst = follow(c, 'rot', { watchTimeoutSeconds: 2 });
    await until(inst, sameKeys([key(1)]), 'first set');
    writeFileSync(tokenPath, 'not-a-valid-token');
    const unauthorized = await until(inst, (e) => e.error !== undefined, 'a 401 with the rotated bad token');
    expect(unauthorized.error!.message).toMatch(/401 Unauthorized/);
    expect(keysOf(unauthorized)).toEqual([key(1)]);
    writeFileSync(tokenPath, kube.tokens.bob!); // another user's token: used at once
    await kube.deny('bob');
    const forbidden = await until(inst, (e) => /user "bob"/.test(e.error?.message ?? ''), 'a 403 naming bob');
    expect(forbidden.error!.message).toMatch(/403 Forbidden/);
    await kube.allow('bob');
    await putSlice(kube, NS, sliceObject('rot-a', 'rot', [ready(1), ready(2)]));
    await until(inst, sameKeys([key(1), key(2)]), 'recovered with the new token');
  }, 60_000);

  it("in-cluster (client-node's loadFromCluster): the service-account token is read again when rotated", async () => {
    const root = dir();
    const sa = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), kube.tokens.alice!);
    writeFileSync(join(sa, 'ca.crt'), kube.caPem);
    writeFileSync(join(sa, 'namespace'), NS);
    const kc = new KubeConfig();
    const saved = [process.env.KUBERNETES_SERVICE_HOST, process.env.KUBERNETES_SERVICE_PORT];
    process.env.KUBERNETES_SERVICE_HOST = '127.0.0.1';
    process.env.KUBERNETES_SERVICE_PORT = String(kube.port);
    try {
      kc.loadFromCluster(root);
    } finally {
      for (const [k, v] of [
        ['KUBERNETES_SERVICE_HOST', saved[0]],
        ['KUBERNETES_SERVICE_PORT', saved[1]],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    await putSlice(kube, NS, sliceObject('pod-a', 'pod', [ready(1)]));
    cleanups.push(() => deleteSlice(kube, NS, 'pod-a'));
    const c = await client(kc);
    expect(c.namespace).toBe(NS); // the pod's namespace file
    const inst = new KubernetesInstancer(c, { service: 'pod', backoff: BACKOFF, watchTimeoutSeconds: 2 });
    cleanups.push(() => inst.stop());
    await until(inst, sameKeys([key(1)]), 'first set');
    await kube.deny('bob');
    writeFileSync(join(sa, 'token'), kube.tokens.bob!); // client-node's own provider would keep alice's for 60 s
    const forbidden = await until(
      inst,
      (e) => /user "bob"/.test(e.error?.message ?? ''),
      'bob, at the next watch',
    );
    expect(forbidden.error!.message).toMatch(/403 Forbidden/);
    writeFileSync(join(sa, 'token'), kube.tokens.alice!);
    await eventually(async () => !inst.current()?.error, 'alice again', 20_000);
  }, 60_000);

  it('createKubernetesClient: a 401 is rejected at once; a dead server after dialTimeoutMs', async () => {
    const d = dir();
    const bad = writeKubeconfig(d, { server: kube.url, caPem: kube.caPem, user: 'x', token: 'nope' }, 'bad');
    await expect(createKubernetesClient({ kubeconfig: bad })).rejects.toMatchObject({
      reason: 'unauthorized',
    });
    await kube.stop();
    const started = Date.now();
    await expect(
      createKubernetesClient({ kubeconfig: await kube.kubeconfig(), dialTimeoutMs: 1000 }),
    ).rejects.toMatchObject({ reason: 'unreachable' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  }, 60_000);
});
