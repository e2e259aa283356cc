/**
 * `sdkit` against a real Kubernetes API server (k8s.io/apiserver on etcd, started by test/harness), as a plain
 * child process: a Service's EndpointSlices listed, resolved and watched through kubectl's flags and $KUBECONFIG.
 */
import { type KubeApiServer, type KubeObject, startKubeApiServer } from '@sdkit/test-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectExit, sdkit, startSdkit } from './fixtures/sdkit-process.js';

const NS = 'shop';
let kube: KubeApiServer;
let kubeconfig: string;

const slicesPath = (ns: string) => `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`;

/** Creates or replaces an EndpointSlice of `service` with ready endpoints at `addresses`, port `http` 8080. */
async function putSlice(name: string, service: string, addresses: string[], ns = NS): Promise<void> {
  const slice: KubeObject = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true }, zone: 'zone-a' })),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
  const got = await kube.request('GET', `${slicesPath(ns)}/${name}`);
  const res =
    got.status === 404
      ? await kube.request('POST', slicesPath(ns), slice)
      : await kube.request('PUT', `${slicesPath(ns)}/${name}`, {
          ...slice,
          metadata: { ...slice.metadata, resourceVersion: got.body?.metadata?.resourceVersion },
        });
  if (!res.ok) throw new Error(`writing slice ${name}: ${res.status} ${res.text}`);
}

beforeAll(async () => {
  kube = await startKubeApiServer({ name: 'cli', users: ['viewer'] });
  for (const ns of [NS, 'default']) {
    const res = await kube.request('POST', '/api/v1/namespaces', { metadata: { name: ns } });
    if (!res.ok && res.status !== 409) throw new Error(`namespace ${ns}: ${res.status} ${res.text}`);
  }
  kubeconfig = await kube.kubeconfig();
  await putSlice('cart-a', 'cart', ['10.1.0.2', '10.1.0.1']);
});
afterAll(() => kube?.close());

describe('sdkit on kubernetes:// targets', () => {
  it("ls lists a Service's ready endpoints, in kuberesolver's forms, with --kubeconfig, -n or $KUBECONFIG", async () => {
    const expected = [
      {
        key: expect.stringContaining('10.1.0.1'),
        address: '10.1.0.1:8080',
        metadata: expect.objectContaining({ zone: 'zone-a' }),
      },
      {
        key: expect.stringContaining('10.1.0.2'),
        address: '10.1.0.2:8080',
        metadata: expect.objectContaining({ zone: 'zone-a' }),
      },
    ];
    for (const [args, env] of [
      [['kubernetes:///cart.shop:http', '--kubeconfig', kubeconfig], {}],
      [['kubernetes://shop/cart:8080', '--kubeconfig', kubeconfig], {}],
      [['kubernetes:///cart:http', '-n', NS], { KUBECONFIG: kubeconfig }],
    ] as const) {
      const done = expectExit(await sdkit(['ls', ...args, '--json'], env), 0);
      expect(JSON.parse(done.stdout)).toEqual(expected);
    }
    const table = expectExit(
      await sdkit(['ls', 'kubernetes:///cart.shop:http', '--kubeconfig', kubeconfig]),
      0,
    );
    expect(table.stdout).toMatch(/^KEY\s+ADDRESS\s+METADATA\n.*10\.1\.0\.1:8080\s+\{.*"zone":"zone-a"/);
  });

  it("a target without a namespace uses the context's (default): none there", async () => {
    const done = expectExit(await sdkit(['ls', 'kubernetes:///cart:http', '--kubeconfig', kubeconfig]), 0);
    expect(done.stdout).toMatch(/^KEY\s+ADDRESS\s+METADATA\n$/);
    expect(done.stderr).toMatch(
      /^sdkit: no instances: Kubernetes Service "cart" in the context's namespace, port "http"\n$/,
    );
  });

  it('resolve waits for the Service to have endpoints; watch prints each change; SIGINT ends it with 0', async () => {
    const resolve = startSdkit([
      'resolve',
      'kubernetes:///late.shop:http',
      '--kubeconfig',
      kubeconfig,
      '--timeout',
      '30s',
    ]);
    const watch = startSdkit(['watch', 'kubernetes:///late.shop:http', '--kubeconfig', kubeconfig]);
    await watch.line(/^\{"instances":\[\]\}$/);
    await putSlice('late-a', 'late', ['10.2.0.1']);
    const resolved = expectExit(await resolve.exited, 0);
    expect(resolved.stdout).toBe('10.2.0.1:8080\n');
    await watch.line(/"10\.2\.0\.1:8080"/);
    await putSlice('late-a', 'late', ['10.2.0.1', '10.2.0.2']);
    await watch.line(/"10\.2\.0\.2:8080"/);
    const done = expectExit(await watch.stop('SIGINT'), 0);
    const events = done.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { instances: { address: string }[] });
    expect(events.map((e) => e.instances.map((i) => i.address))).toEqual([
      [],
      ['10.2.0.1:8080'],
      ['10.2.0.1:8080', '10.2.0.2:8080'],
    ]);
    expect(done.stderr).toBe('');
  });

  it('ls prints an error answer (RBAC: 403) on stderr and exits 1', async () => {
    await kube.deny('viewer');
    try {
      const done = expectExit(
        await sdkit(['ls', 'kubernetes:///cart.shop:http', '--kubeconfig', await kube.kubeconfig('viewer')]),
        1,
      );
      expect(done.stdout).toMatch(/^KEY\s+ADDRESS\s+METADATA\n$/);
      expect(done.stderr).toMatch(
        /^sdkit: Kubernetes Service "cart" in namespace "shop", port "http": .*403 Forbidden/,
      );
      expect(done.stderr.trimEnd().split('\n')).toHaveLength(1);
    } finally {
      await kube.allow('viewer');
    }
  });

  it('register is refused (exit 2); a context that does not exist is a usage error (exit 2)', async () => {
    const reg = expectExit(await sdkit(['register', 'kubernetes:///cart.shop:http', '10.0.0.1:80']), 2);
    expect(reg.stderr).toMatch(/^sdkit: register works on etcd targets only/);
    const ctx = expectExit(
      await sdkit(['ls', 'kubernetes:///cart.shop', '--kubeconfig', kubeconfig, '--context', 'nope']),
      2,
    );
    expect(ctx.stderr).toMatch(/^sdkit: .*"nope"/);
  });

  it('says how to name a kubeconfig when none is found (exit 2)', async () => {
    const done = expectExit(
      await sdkit(['ls', 'kubernetes:///cart.shop'], {
        HOME: '/nonexistent-home',
        KUBERNETES_SERVICE_HOST: '',
      }),
      2,
    );
    expect(done.stderr).toMatch(
      /^sdkit: no Kubernetes configuration found: .*\(on the command line: --kubeconfig FILE, or set \$KUBECONFIG\)\n/,
    );
  });

  it('exits 1 when the API server is unreachable (within --dial-timeout)', async () => {
    await kube.stop();
    try {
      const done = expectExit(
        await sdkit(['ls', 'kubernetes:///cart.shop', '--kubeconfig', kubeconfig, '--dial-timeout', '500ms']),
        1,
      );
      expect(done.stdout).toBe('');
      expect(done.stderr).toMatch(/^sdkit: .*(unreachable|could not reach|did not answer)/i);
    } finally {
      await kube.start();
    }
  });
});
