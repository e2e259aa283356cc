/**
 * Unit tests of createKubernetesClient and the target mapping, against the fake API server (over HTTP and over
 * TLS with the harness's test CA).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { type InstancerEvent, instancerForTarget } from '@sdkit/sd-core';
import { FakeClock, processHolds, recordingLogger } from '@sdkit/sd-core/testing';
import { type Certificates, eventually, makeCertificates, waitFor } from '@sdkit/test-harness';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createKubernetesClient, type KubernetesClient } from './client.js';
import { KubernetesClientError } from './errors.js';
import { endpoint, FakeApiServer, slice } from './fixtures/fake-api-server.js';
import { tempDir, writeKubeconfig } from './fixtures/kubeconfig.js';
import { KubernetesInstancer } from './instancer.js';
import { kubernetesTargetInstancer } from './target.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function dir(): string {
  const t = tempDir();
  cleanups.push(t.cleanup);
  return t.dir;
}

async function fakeServer(options?: Parameters<typeof FakeApiServer.start>[0]): Promise<FakeApiServer> {
  const server = await FakeApiServer.start(options);
  cleanups.push(() => server.close());
  return server;
}

function track(client: KubernetesClient): KubernetesClient {
  cleanups.push(() => client.close());
  return client;
}

async function rejection(promise: Promise<unknown>): Promise<KubernetesClientError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KubernetesClientError);
  return err as KubernetesClientError;
}

let certs: Certificates;
beforeAll(async () => {
  certs = await makeCertificates();
});
afterAll(async () => {
  await certs?.close();
});
const pem = (path: string) => readFileSync(path, 'utf8');

describe('createKubernetesClient', () => {
  it('resolves once the API server answered; names server, context, user and namespace', async () => {
    const server = await fakeServer();
    const logger = recordingLogger();
    const kubeconfig = writeKubeconfig(dir(), {
      server: server.url,
      namespace: 'shop',
      user: 'alice',
      token: 't',
    });
    const client = track(await createKubernetesClient({ kubeconfig, logger }));
    expect(client).toMatchObject({
      server: server.url,
      namespace: 'shop',
      context: 'test',
      user: 'alice',
      closed: false,
      dialTimeoutMs: 5000,
      requestTimeoutMs: 30_000,
    });
    expect(client.kubeConfig.getCurrentContext()).toBe('test');
    expect(server.requests.map((r) => r.path)).toEqual(['/apis/discovery.k8s.io/v1']);
    expect(server.requests[0]!.authorization).toBe('Bearer t');
    expect(JSON.stringify(logger.records)).not.toContain('"t"');
  });

  it('holds the process until it settles', async () => {
    const server = await fakeServer();
    const kubeconfig = writeKubeconfig(dir(), { server: server.url });
    const before = processHolds();
    const pending = createKubernetesClient({ kubeconfig });
    expect(processHolds()).toBeGreaterThan(before);
    track(await pending);
    await eventually(async () => processHolds() === before, 'the hold released');
  });

  it('validates options with TypeErrors naming the mistake', async () => {
    await expect(createKubernetesClient({ kubeConfig: 'x' } as never)).rejects.toThrow(
      /unknown option "kubeConfig" \(did you mean "kubeconfig"\?\)/,
    );
    await expect(createKubernetesClient({ dialTimeoutMs: -1 })).rejects.toThrow(
      /dialTimeoutMs must be a positive/,
    );
    await expect(createKubernetesClient({ kubeconfig: '/nonexistent/kubeconfig' })).rejects.toThrow(
      TypeError,
    );
    await expect(createKubernetesClient(null as never)).rejects.toThrow(/options must be an object/);
  });

  it("rejects 'unreachable' after dialTimeoutMs, naming the server and the last error", async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const kubeconfig = writeKubeconfig(dir(), { server: `http://127.0.0.1:${port}` });
    const started = Date.now();
    const err = await rejection(createKubernetesClient({ kubeconfig, dialTimeoutMs: 300 }));
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(err.reason).toBe('unreachable');
    expect(err.message).toMatch(
      new RegExp(
        `could not reach the Kubernetes API server at http://127.0.0.1:${port} .* within 300 ms: .*ECONNREFUSED`,
      ),
    );
  });

  it('between round-trips that meet a 5xx it waits 50 ms doubling to 1000 ms, exactly, on the injected clock', async () => {
    const clock = new FakeClock();
    const probes: number[] = [];
    const unavailable = createServer((_req, res) => {
      probes.push(clock.now());
      res.writeHead(503, { 'Content-Type': 'application/json' });
      res.end('{"kind":"Status","code":503}');
    });
    await new Promise<void>((r) => unavailable.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => unavailable.close(r)));
    const port = (unavailable.address() as AddressInfo).port;
    const kubeconfig = writeKubeconfig(dir(), { server: `http://127.0.0.1:${port}` });
    const pending = rejection(createKubernetesClient({ kubeconfig, clock, dialTimeoutMs: 3000 }));
    // Each round-trip is real I/O: once it has been answered and the retry is set (the only timer due before the
    // dial timeout; the request's own timeout is due with it), the clock moves on to the retry.
    for (let answered = 1; answered <= 6; answered++) {
      await eventually(
        async () => probes.length >= answered && clock.nextTimerAt! < 3000,
        `the retry after probe ${answered}`,
      );
      clock.advance(clock.nextTimerAt! - clock.now());
    }
    await eventually(async () => probes.length >= 7, 'probe 7');
    clock.advance(3000 - clock.now());
    expect((await pending).reason).toBe('unreachable');
    // Waits of 50, 100, 200, 400, 800, then 1000.
    expect(probes).toEqual([0, 50, 150, 350, 750, 1550, 2550]);
  });

  it("rejects 'unauthorized' at once on a 401, and accepts a 403 (authenticated, RBAC reported later)", async () => {
    const server = await fakeServer();
    server.tokens = new Map([['good', 'alice']]);
    const bad = writeKubeconfig(dir(), { server: server.url, user: 'alice', token: 'bad' });
    const err = await rejection(createKubernetesClient({ kubeconfig: bad, clock: new FakeClock() }));
    expect(err.reason).toBe('unauthorized');
    expect(err.message).toMatch(/rejected the credentials of kubeconfig user "alice" \(401 Unauthorized\)/);
    expect(err.message).not.toContain('bad');
    const plain = createServer((_req, res) => {
      res.writeHead(403, { 'Content-Type': 'application/json' });
      res.end('{"kind":"Status","code":403}');
    });
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => plain.close(r)));
    const url = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
    track(await createKubernetesClient({ kubeconfig: writeKubeconfig(dir(), { server: url }) }));
  });

  it("rejects 'unsupported' when the API server does not serve discovery.k8s.io/v1", async () => {
    const plain = createServer((_req, res) => {
      res.writeHead(404);
      res.end();
    });
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => plain.close(r)));
    const url = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
    const err = await rejection(
      createKubernetesClient({ kubeconfig: writeKubeconfig(dir(), { server: url }) }),
    );
    expect(err.reason).toBe('unsupported');
    expect(err.message).toMatch(/Kubernetes 1\.21 or later/);
  });

  it("rejects 'config' when nothing is configured", async () => {
    const saved = {
      KUBECONFIG: process.env.KUBECONFIG,
      HOME: process.env.HOME,
      HOST: process.env.KUBERNETES_SERVICE_HOST,
    };
    process.env.KUBECONFIG = '';
    process.env.HOME = dir();
    delete process.env.KUBERNETES_SERVICE_HOST;
    try {
      const err = await rejection(createKubernetesClient());
      expect(err.reason).toBe('config');
      expect(err.message).toMatch(/no Kubernetes configuration found/);
    } finally {
      for (const [k, v] of Object.entries({
        KUBECONFIG: saved.KUBECONFIG,
        HOME: saved.HOME,
        KUBERNETES_SERVICE_HOST: saved.HOST,
      })) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('speaks TLS with the kubeconfig CA and client certificate (through client-node)', async () => {
    const server = await fakeServer({
      tls: {
        key: readFileSync(certs.serverKeyFile),
        cert: readFileSync(certs.serverCertFile),
        ca: readFileSync(certs.caFile),
      },
    });
    server.put('shop', slice('cart-a', 'cart', [endpoint('10.0.0.1')]));
    const kubeconfig = writeKubeconfig(dir(), {
      server: server.url,
      caPem: pem(certs.caFile),
      clientCertPem: pem(certs.clientCertFile),
      clientKeyPem: pem(certs.clientKeyFile),
      namespace: 'shop',
    });
    const client = track(await createKubernetesClient({ kubeconfig }));
    const instancer = new KubernetesInstancer(client, { service: 'cart' });
    cleanups.push(() => instancer.stop());
    await waitFor(instancer.events$, (e: InstancerEvent) => e.instances.length === 1, 'the set over TLS');
    expect(server.requests.every((r) => r.user === 'root')).toBe(true); // the client certificate's CN
  });

  it('gets a token from an exec credential plugin (through client-node)', async () => {
    const server = await fakeServer();
    server.tokens = new Map([['exec-token', 'exec-user']]);
    const d = dir();
    const plugin = join(d, 'plugin.mjs');
    writeFileSync(
      plugin,
      `console.log(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'exec-token' } }));\n`,
    );
    const kubeconfig = join(d, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: server.url, 'insecure-skip-tls-verify': true } }],
        users: [
          {
            name: 'u',
            user: {
              exec: {
                apiVersion: 'client.authentication.k8s.io/v1',
                command: process.execPath,
                args: [plugin],
                interactiveMode: 'Never',
              },
            },
          },
        ],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'x',
      }),
    );
    track(await createKubernetesClient({ kubeconfig }));
    expect(server.requests[0]!.user).toBe('exec-user');
  });

  it("rejects 'unreachable' at once when the server's certificate is not signed by the kubeconfig's CA", async () => {
    const server = await fakeServer({
      tls: { key: readFileSync(certs.serverKeyFile), cert: readFileSync(certs.serverCertFile) },
    });
    const kubeconfig = writeKubeconfig(dir(), { server: server.url, caPem: pem(certs.otherCaFile) });
    const started = Date.now();
    const err = await rejection(createKubernetesClient({ kubeconfig, dialTimeoutMs: 10_000 }));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(err.reason).toBe('unreachable');
    expect(err.message).toMatch(/not signed by the kubeconfig's certificate-authority/);
  });

  it("in-cluster (client-node's loadFromCluster): the rotated service-account token is used at once", async () => {
    const server = await fakeServer({
      tls: { key: readFileSync(certs.serverKeyFile), cert: readFileSync(certs.serverCertFile) },
    });
    server.tokens = new Map([
      ['sa-token-1', 'system:serviceaccount:apps:web'],
      ['sa-token-2', 'system:serviceaccount:apps:web'],
    ]);
    const root = dir();
    const sa = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), 'sa-token-1');
    writeFileSync(join(sa, 'ca.crt'), readFileSync(certs.caFile));
    writeFileSync(join(sa, 'namespace'), 'apps');
    const kc = new KubeConfig();
    const saved = [process.env.KUBERNETES_SERVICE_HOST, process.env.KUBERNETES_SERVICE_PORT];
    process.env.KUBERNETES_SERVICE_HOST = '127.0.0.1';
    process.env.KUBERNETES_SERVICE_PORT = new URL(server.url).port;
    try {
      kc.loadFromCluster(root);
    } finally {
      if (saved[0] === undefined) delete process.env.KUBERNETES_SERVICE_HOST;
      else process.env.KUBERNETES_SERVICE_HOST = saved[0];
      if (saved[1] === undefined) delete process.env.KUBERNETES_SERVICE_PORT;
      else process.env.KUBERNETES_SERVICE_PORT = saved[1];
    }
    const client = track(await createKubernetesClient({ kubeconfig: kc }));
    expect(client.namespace).toBe('apps');
    server.put('apps', slice('web-a', 'web', [endpoint('10.0.0.1')]));
    const instancer = new KubernetesInstancer(client, { service: 'web' });
    cleanups.push(() => instancer.stop());
    await waitFor(instancer.events$, (e: InstancerEvent) => e.instances.length === 1, 'the set');
    await eventually(async () => server.watchCount === 1, 'the watch');
    writeFileSync(join(sa, 'token'), 'sa-token-2'); // client-node's own auth provider would keep the old one for 60 s
    server.tokens.delete('sa-token-1');
    server.bookmark();
    server.endWatches();
    await eventually(async () => server.watchCount === 1 && server.requests.length >= 4, 'a new watch');
    expect(server.requests.map((r) => r.authorization)).toEqual([
      'Bearer sa-token-1',
      'Bearer sa-token-1',
      'Bearer sa-token-1',
      'Bearer sa-token-2',
    ]);
    expect(instancer.current()?.error).toBeUndefined();
  });
});

describe('KubernetesClient', () => {
  it("close() rejects a pending ready() with 'closed', and later calls too; it is idempotent", async () => {
    const server = await fakeServer();
    const kubeconfig = writeKubeconfig(dir(), { server: server.url });
    const client = track(await createKubernetesClient({ kubeconfig }));
    server.intercepts.length = 0;
    await server.close();
    const pending = client.ready();
    client.close();
    client.close();
    expect((await rejection(pending)).reason).toBe('closed');
    expect((await rejection(client.ready())).reason).toBe('closed');
    await client[Symbol.asyncDispose]();
    expect(client.closed).toBe(true);
  });

  it('maps kuberesolver targets to instancers: namespace defaults to the client’s, port from the target', async () => {
    const server = await fakeServer();
    const kubeconfig = writeKubeconfig(dir(), { server: server.url, namespace: 'shop' });
    const client = track(await createKubernetesClient({ kubeconfig }));
    server.put(
      'shop',
      slice('cart-a', 'cart', [endpoint('10.0.0.1')], {
        ports: [
          { name: 'http', port: 8080, protocol: 'TCP' },
          { name: 'grpc', port: 9000, protocol: 'TCP' },
        ],
      }),
    );
    server.put('apps', slice('cart-b', 'cart', [endpoint('10.0.0.2')]));
    const forTarget = kubernetesTargetInstancer(client, { servingTerminating: true });
    const cases: [
      string | { path: string; authority?: string },
      string,
      string | number | undefined,
      string,
    ][] = [
      ['kubernetes:///cart:grpc', 'shop', 'grpc', '10.0.0.1:9000'],
      ['kubernetes:///cart.apps:7000', 'apps', 7000, '10.0.0.2:7000'],
      ['kubernetes://apps/cart', 'apps', undefined, '10.0.0.2:8080'],
      [{ authority: 'cart.shop:8080', path: '' }, 'shop', 8080, '10.0.0.1:8080'],
    ];
    for (const [target, namespace, port, key] of cases) {
      const instancer = forTarget(target);
      cleanups.push(() => instancer.stop());
      expect(instancer).toMatchObject({ service: 'cart', namespace, port, servingTerminating: true });
      await waitFor(
        instancer.events$,
        (e: InstancerEvent) => e.instances[0]?.key === key,
        `${JSON.stringify(target)} → ${key}`,
      );
    }
    const viaSymbol = client[instancerForTarget]({ scheme: 'kubernetes', path: 'cart:grpc' });
    cleanups.push(() => viaSymbol.stop());
    await waitFor(
      viaSymbol.events$,
      (e: InstancerEvent) => e.instances[0]?.key === '10.0.0.1:9000',
      'through instancerForTarget',
    );
    expect(() => forTarget('kubernetes:///Cart')).toThrow(
      /Invalid Kubernetes target "kubernetes:\/\/\/Cart"/,
    );
    expect(() => kubernetesTargetInstancer(client, { service: 'x' } as never)).toThrow(
      /comes from each target/,
    );
    expect(() => kubernetesTargetInstancer({} as never)).toThrow(/client must be a KubernetesClient/);
  });
});
