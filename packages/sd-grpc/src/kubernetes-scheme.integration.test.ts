import { credentials, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { createKubernetesClient, type KubernetesClient } from '@sdkit/sd-kubernetes';
import { eventually, freePort, type KubeApiServer, startKubeApiServer } from '@sdkit/test-harness';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EchoClient, type EchoServer, startEchoServer, type WhoReply } from './fixtures/echo-server.mjs';
import { registerKubernetesScheme } from './kubernetes-scheme.js';
import type { SchemeRegistration } from './resolver.js';

type ServiceClient = InstanceType<typeof EchoClient>;

// A real API server (k8s.io/apiserver, test/kube-apiserver) and real grpc-js servers on loopback addresses:
// `new EchoClient('kubernetes:///svc.ns:grpc', …)` follows the Service's EndpointSlices.

const NS = 'grpc-scheme';
let kube: KubeApiServer;
let client: KubernetesClient;
let registration: SchemeRegistration;
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  kube = await startKubeApiServer();
  const created = await kube.request('POST', '/api/v1/namespaces', { metadata: { name: NS } });
  expect(created.ok, created.text).toBe(true);
  client = await createKubernetesClient({ kubeconfig: await kube.kubeconfig() });
  registration = registerKubernetesScheme(client);
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});
afterAll(async () => {
  registration?.();
  client?.close();
  await kube?.close();
});

interface Pod {
  readonly ip: string;
  ready: boolean;
  terminating?: boolean;
}

/** Writes (creates or replaces) the one EndpointSlice of `service`: the pods, one port named `grpc`. */
async function writeSlice(service: string, slice: string, port: number, pods: readonly Pod[]): Promise<void> {
  const path = `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`;
  const body = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: slice, labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    endpoints: pods.map((p) => ({
      addresses: [p.ip],
      conditions: {
        ready: p.ready,
        serving: p.ready || p.terminating === true,
        terminating: p.terminating ?? false,
      },
    })),
    ports: [{ name: 'grpc', port, protocol: 'TCP' }],
  };
  const got = await kube.request('GET', `${path}/${slice}`);
  const res =
    got.status === 404
      ? await kube.request('POST', path, body)
      : await kube.request('PUT', `${path}/${slice}`, {
          ...body,
          metadata: { ...body.metadata, resourceVersion: got.body?.metadata?.resourceVersion },
        });
  expect(res.ok, res.text).toBe(true);
}

async function server(id: string, host: string, port: number): Promise<EchoServer> {
  const s = await startEchoServer(id, { host, port });
  cleanups.push(() => s.kill());
  return s;
}

function channel(target: string): ServiceClient {
  const c = new EchoClient(target, credentials.createInsecure());
  cleanups.push(() => c.close());
  return c;
}

function who(c: ServiceClient, deadlineMs = 5000): Promise<{ reply?: WhoReply; error?: ServiceError }> {
  return new Promise((resolve) => {
    c.Who!(
      { name: 'x' },
      new Metadata(),
      { deadline: Date.now() + deadlineMs },
      (error: ServiceError | null, reply: WhoReply) => resolve(error ? { error } : { reply }),
    );
  });
}

function until(check: () => unknown, what: string, timeoutMs?: number): Promise<true> {
  return eventually(
    async () => {
      await check();
      return true as const;
    },
    what,
    timeoutMs,
  );
}

describe('kubernetes:/// targets on a real API server and real gRPC servers', () => {
  it('continuous calls through a rolling replacement: zero failed calls, every pod served', async () => {
    // Pods are loopback addresses sharing one port, as pods share a containerPort.
    const port = await freePort();
    const pods = new Map<string, Pod & { server: EchoServer }>();
    const start = async (id: string, ip: string) =>
      pods.set(id, { ip, ready: true, server: await server(id, ip, port) });
    await start('p1', '127.0.0.11');
    await start('p2', '127.0.0.12');
    const publish = () => writeSlice('roll', 'roll-abc', port, [...pods.values()]);
    await publish();

    const c = channel(`kubernetes:///roll.${NS}:grpc`);
    const recent: string[] = [];
    const counts = new Map<string, number>();
    const failures: ServiceError[] = [];
    let running = true;
    const loops = [0, 1, 2].map(async () => {
      while (running) {
        const r = await who(c);
        if (r.error) failures.push(r.error);
        else {
          counts.set(r.reply!.id, (counts.get(r.reply!.id) ?? 0) + 1);
          recent.push(r.reply!.id);
          if (recent.length > 50) recent.shift();
        }
      }
    });
    try {
      await until(() => expect(new Set(recent)).toEqual(new Set(['p1', 'p2'])), 'calls reaching p1 and p2');
      for (const [oldId, newId, newIp] of [
        ['p1', 'p3', '127.0.0.13'],
        ['p2', 'p4', '127.0.0.14'],
      ] as const) {
        // A new pod becomes ready; the old one starts terminating (not ready), drains, stops, and leaves.
        await start(newId, newIp);
        await publish();
        await until(() => expect(recent.slice(-10)).toContain(newId), `calls reaching ${newId}`);
        const old = pods.get(oldId)!;
        old.ready = false;
        old.terminating = true;
        await publish();
        recent.length = 0;
        await until(() => {
          expect(recent.length).toBe(50);
          expect(recent.slice(-30)).not.toContain(oldId);
        }, `no call reaching ${oldId}`);
        await old.server.stop();
        pods.delete(oldId);
        await publish();
      }
      recent.length = 0;
      await until(() => {
        expect(recent.length).toBe(50);
        expect(new Set(recent.slice(-20))).toEqual(new Set(['p3', 'p4']));
      }, 'calls spread over p3 and p4');
    } finally {
      running = false;
      await Promise.all(loops);
    }
    expect(failures.map((e) => `${e.code} ${e.details}`)).toEqual([]);
    for (const id of ['p1', 'p2', 'p3', 'p4']) expect(counts.get(id) ?? 0).toBeGreaterThan(0);
  });

  it('a port name the service does not have fails the calls, naming the ports it has', async () => {
    const port = await freePort();
    await server('q1', '127.0.0.21', port);
    await writeSlice('named', 'named-abc', port, [{ ip: '127.0.0.21', ready: true }]);
    const c = channel(`kubernetes:///named.${NS}:http`);
    await until(async () => {
      const r = await who(c, 2000);
      expect(r.error?.code).toBe(status.UNAVAILABLE);
      expect(r.error?.details).toMatch(/no port named "http".*"grpc"/);
    }, 'calls failing with the ports named');
    const ok = channel(`kubernetes:///named.${NS}:grpc`);
    await until(async () => expect((await who(ok)).reply?.id).toBe('q1'), 'a call on the right port name');
  });

  it('a malformed target fails its calls with UNAVAILABLE, naming the bad part', async () => {
    const c = channel('kubernetes:///Bad_Name.ns:grpc');
    const r = await who(c, 2000);
    expect(r.error?.code).toBe(status.UNAVAILABLE);
    expect(r.error?.details).toMatch(/Bad_Name/);
  });
});
