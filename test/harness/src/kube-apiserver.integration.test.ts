import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KubeApiServer, startKubeApiServer } from './kube-apiserver.js';

const NS = 'sdkit-test';
const SLICES = `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`;

function slice(name: string, ip: string, port = 8080): Record<string, unknown> {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    endpoints: [{ addresses: [ip], conditions: { ready: true } }],
    ports: [{ name: 'http', port, protocol: 'TCP' }],
  };
}

describe('startKubeApiServer', () => {
  let kube: KubeApiServer;

  beforeAll(async () => {
    kube = await startKubeApiServer({ users: ['alice'] });
  });
  afterAll(async () => {
    const dir = kube?.dir;
    await kube?.close();
    if (dir) expect(existsSync(dir)).toBe(false);
  });

  it('serves namespaces, services and EndpointSlices: create and read back', async () => {
    expect(kube.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(kube.caPem).toContain('BEGIN CERTIFICATE');

    const ns = await kube.request('POST', '/api/v1/namespaces', { metadata: { name: NS } });
    expect(ns.status).toBe(201);
    const svc = await kube.request('POST', `/api/v1/namespaces/${NS}/services`, {
      metadata: { name: 'web' },
      spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    });
    expect(svc.status).toBe(201);
    const created = await kube.request('POST', SLICES, slice('web-a', '127.0.0.1'));
    expect(created.status).toBe(201);

    const gotNs = await kube.request('GET', `/api/v1/namespaces/${NS}`);
    expect(gotNs.body).toMatchObject({
      kind: 'Namespace',
      metadata: { name: NS },
      status: { phase: 'Active' },
    });
    const gotSvc = await kube.request('GET', `/api/v1/namespaces/${NS}/services/web`);
    expect(gotSvc.body).toMatchObject({
      kind: 'Service',
      spec: { type: 'ClusterIP', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] },
    });
    const list = await kube.request('GET', `${SLICES}?labelSelector=kubernetes.io/service-name%3Dweb`);
    expect(list.status).toBe(200);
    expect(list.body?.kind).toBe('EndpointSliceList');
    expect(list.body?.items).toHaveLength(1);
    expect(list.body?.items?.[0]).toMatchObject({
      metadata: { name: 'web-a', namespace: NS },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    });

    // The bootstrap namespaces exist, as on a real cluster.
    expect((await kube.request('GET', '/api/v1/namespaces/default')).status).toBe(200);
    // Validation and namespace existence answer like kube-apiserver.
    const invalid = await kube.request('POST', SLICES, {
      ...slice('web-bad', '300.1.2.3'),
      addressType: 'IPv4',
    });
    expect(invalid.status).toBe(422);
    expect(invalid.body).toMatchObject({ kind: 'Status', reason: 'Invalid', code: 422 });
    const noNs = await kube.request(
      'POST',
      '/apis/discovery.k8s.io/v1/namespaces/nope/endpointslices',
      slice('x', '127.0.0.1'),
    );
    expect(noNs.status).toBe(404);
    // kubeconfig(user) points at this server, trusts its certificate and carries the user's token.
    const kubeconfig = readFileSync(await kube.kubeconfig('alice'), 'utf8');
    expect(kubeconfig).toContain(`server: "${kube.url}"`);
    expect(kubeconfig).toContain(`token: "${kube.tokens.alice}"`);
    expect(kubeconfig).toContain(
      `certificate-authority-data: "${Buffer.from(kube.caPem).toString('base64')}"`,
    );
  });

  it('watch with allowWatchBookmarks delivers ADDED then a BOOKMARK; later changes arrive as events', async () => {
    const watch = await kube.watch(
      `${SLICES}?watch=1&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan`,
    );
    try {
      expect(watch.status).toBe(200);
      const added = await watch.next();
      expect(added?.type).toBe('ADDED');
      expect(added?.object).toMatchObject({ kind: 'EndpointSlice', metadata: { name: 'web-a' } });
      const bookmark = await watch.next();
      expect(bookmark?.type).toBe('BOOKMARK');
      expect(bookmark?.object).toMatchObject({
        kind: 'EndpointSlice',
        metadata: { annotations: { 'k8s.io/initial-events-end': 'true' } },
      });

      const patched = await kube.request('PATCH', `${SLICES}/web-a`, {
        endpoints: [{ addresses: ['127.0.0.2'], conditions: { ready: false } }],
      });
      expect(patched.status).toBe(200);
      const modified = await watch.next();
      expect(modified?.type).toBe('MODIFIED');
      expect(modified?.object).toMatchObject({
        endpoints: [{ addresses: ['127.0.0.2'], conditions: { ready: false } }],
      });
    } finally {
      watch.close();
    }
  });

  it('a denied user gets 403 with a Kubernetes Status body, and 200 again after allow()', async () => {
    expect((await kube.request('GET', SLICES, undefined, 'alice')).status).toBe(200);
    await kube.deny('alice');
    const denied = await kube.request('GET', SLICES, undefined, 'alice');
    expect(denied.status).toBe(403);
    expect(denied.body).toMatchObject({
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      reason: 'Forbidden',
      code: 403,
      details: { group: 'discovery.k8s.io', kind: 'endpointslices' },
    });
    expect(denied.body?.message).toContain('User "alice" cannot list resource "endpointslices"');
    // The admin is unaffected.
    expect((await kube.request('GET', SLICES)).status).toBe(200);
    await kube.allow('alice');
    expect((await kube.request('GET', SLICES, undefined, 'alice')).status).toBe(200);

    const wrongToken = await kube.request('GET', SLICES, undefined, 'alice', {
      headers: { authorization: 'Bearer not-a-token' },
    });
    expect(wrongToken.status).toBe(401);
  });

  it('server-side apply, 409 on a stale update, continue pagination, and DELETED events', async () => {
    const apply = (ip: string) =>
      kube.request(
        'PATCH',
        `${SLICES}/web-applied?fieldManager=sdkit-test`,
        JSON.stringify(slice('web-applied', ip)),
        undefined,
        {
          contentType: 'application/apply-patch+yaml',
        },
      );
    const created = await apply('127.0.0.5');
    expect(created.status).toBe(201);
    const updated = await apply('127.0.0.6');
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ endpoints: [{ addresses: ['127.0.0.6'] }] });
    expect(updated.body?.metadata?.managedFields).toEqual([
      expect.objectContaining({ manager: 'sdkit-test', operation: 'Apply' }),
    ]);

    const stale = await kube.request('PUT', `${SLICES}/web-applied`, {
      ...slice('web-applied', '127.0.0.7'),
      metadata: { name: 'web-applied', resourceVersion: created.body?.metadata?.resourceVersion },
    });
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ kind: 'Status', reason: 'Conflict' });

    const page1 = await kube.request('GET', `${SLICES}?limit=1`);
    expect(page1.body?.items).toHaveLength(1);
    const token = page1.body?.metadata?.continue;
    expect(token).toBeTruthy();
    const page2 = await kube.request('GET', `${SLICES}?limit=1&continue=${encodeURIComponent(token ?? '')}`);
    expect(page2.body?.items).toHaveLength(1);
    expect(page2.body?.items?.[0]?.metadata?.name).not.toBe(page1.body?.items?.[0]?.metadata?.name);

    const watch = await kube.watch(
      `${SLICES}?watch=1&resourceVersion=${updated.body?.metadata?.resourceVersion}`,
    );
    try {
      expect((await kube.request('DELETE', `${SLICES}/web-applied`)).status).toBe(200);
      const deleted = await watch.next();
      expect(deleted).toMatchObject({ type: 'DELETED', object: { metadata: { name: 'web-applied' } } });
    } finally {
      watch.close();
    }
  });

  it('after compactEtcd() + restart(), a watch from an old resourceVersion gets 410 Gone', async () => {
    const list = await kube.request('GET', SLICES);
    const oldRv = list.body?.metadata?.resourceVersion;
    expect(oldRv).toMatch(/^\d+$/);
    // Move past oldRv, then compact everything up to now.
    expect((await kube.request('POST', SLICES, slice('web-b', '127.0.0.3'))).status).toBe(201);
    const compacted = await kube.compactEtcd();
    expect(compacted).toBeGreaterThan(Number(oldRv));
    const port = kube.port;
    const pid = kube.pid;
    await kube.restart();
    expect(kube.port).toBe(port);
    expect(kube.pid).not.toBe(pid);

    const watch = await kube.watch(`${SLICES}?watch=1&resourceVersion=${oldRv ?? ''}`);
    try {
      if (watch.status === 200) {
        const event = await watch.next();
        expect(event?.type).toBe('ERROR');
        expect(event?.object).toMatchObject({ kind: 'Status', code: 410, reason: 'Expired' });
      } else {
        expect(watch.status).toBe(410);
      }
    } finally {
      watch.close();
    }
    // Data survived the restart; a fresh list works.
    const after = await kube.request('GET', SLICES);
    expect((after.body?.items ?? []).map((i) => i.metadata?.name).sort()).toEqual(['web-a', 'web-b']);
  });

  it('kill() and start() bring the API server back on the same port', async () => {
    await kube.kill();
    expect(kube.pid).toBeUndefined();
    await expect(kube.request('GET', SLICES, undefined, undefined, { timeoutMs: 2000 })).rejects.toThrow();
    await kube.start();
    expect((await kube.request('GET', SLICES)).status).toBe(200);
  });
});
