/**
 * `node dist/main.js [--kubeconfig <path>] [--host <ip>]` — sdkit on a Kubernetes Service's EndpointSlices.
 *
 * The API server is the kubeconfig's (`--kubeconfig`, else KUBECONFIG, else ~/.kube/config; in a pod, its service
 * account). The servers run on this machine, on `--host` (default 127.0.0.1). The repository's test API server
 * accepts loopback addresses in EndpointSlices; kube-apiserver refuses them (422), so against a real cluster pass
 * a non-loopback IP of this machine. The user needs to create namespaces, Services and EndpointSlices. Steps:
 *   1. as an admin: namespace "sdkit-example", Service "hello", two HTTP servers, one EndpointSlice for each;
 *   2. KubernetesInstancer → endpointer → roundRobin → retry; calls alternate between the servers;
 *   3. under continuous calls: one server's endpoint turns terminating (its slice rewritten) and leaves the set,
 *      a third server joins in a new slice, the old slice is deleted and its server stopped; no call fails;
 *   4. cleanup: everything it created is deleted, everything it opened is closed; the process then exits by
 *      itself.
 * Exits 0 when every step behaved as described.
 */
import { isIP, isIPv6 } from 'node:net';
import { parseArgs } from 'node:util';
import { retry, roundRobin } from '@sdkit/lb';
import { type Endpoint, endpointer, type InstancerEvent } from '@sdkit/sd-core';
import {
  createKubernetesClient,
  type EndpointMetadata,
  type KubernetesClient,
  KubernetesInstancer,
} from '@sdkit/sd-kubernetes';
import { filter, firstValueFrom, timeout } from 'rxjs';
import { Admin, describeApiError } from './admin.js';
import { type HelloServer, helloFactory, startHelloServer } from './hello.js';

const NAMESPACE = 'sdkit-example';
const SERVICE = 'hello';
const say = (line: string) => process.stdout.write(`${line}\n`);

function check(ok: boolean, what: string): void {
  say(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) process.exitCode = 1;
}

/** `127.0.0.1:41234 (pod hello-a, zone-1), …`, by pod name. */
function describeSet(event: InstancerEvent): string {
  if (event.instances.length === 0) return 'no endpoints';
  return event.instances
    .map((i) => {
      const m = i.metadata as EndpointMetadata | undefined;
      return { pod: m?.targetRef?.name ?? '?', text: `${i.address} (pod ${m?.targetRef?.name}, ${m?.zone})` };
    })
    .sort((x, y) => x.pod.localeCompare(y.pod))
    .map((x) => x.text)
    .join(', ');
}

/** Two callers calling in a loop, counting answers by server, until stopped. */
function startLoad(call: Endpoint<void, string>) {
  const served = new Map<string, number>();
  const failures: string[] = [];
  let calls = 0;
  let running = true;
  const caller = async () => {
    while (running) {
      try {
        const who = await call();
        served.set(who, (served.get(who) ?? 0) + 1);
      } catch (err) {
        failures.push((err as Error).message);
      }
      calls++;
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const callers = [caller(), caller()];
  return {
    served: (name: string) => served.get(name) ?? 0,
    /** Waits (at most 10 s) until `predicate` holds. */
    async until(predicate: () => boolean, what: string): Promise<void> {
      for (const end = Date.now() + 10_000; !predicate(); ) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async stop() {
      running = false;
      await Promise.all(callers);
      return { calls, failures, served };
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { kubeconfig: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } },
  });
  const host = values.host;
  if (!isIP(host)) {
    say(`--host must be an IP address of this machine, got ${JSON.stringify(host)}`);
    process.exitCode = 1;
    return;
  }
  const hostPort = (port: number) => (isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`);
  let kube: KubernetesClient;
  try {
    kube = await createKubernetesClient(
      values.kubeconfig === undefined ? {} : { kubeconfig: values.kubeconfig },
    );
  } catch (err) {
    say(`cannot use the Kubernetes API server: ${describeApiError(err)}`);
    process.exitCode = 1;
    return;
  }
  const where = kube.context === undefined ? 'in-cluster' : `context "${kube.context}", user "${kube.user}"`;
  say(`sdkit Kubernetes example — API server ${kube.server} (${where})\n`);

  const admin = new Admin(kube.kubeConfig, NAMESPACE, SERVICE);
  const servers = new Map<string, HelloServer>();
  const up = async (name: string, zone: string): Promise<HelloServer> => {
    const server = await startHelloServer(name, host);
    servers.set(name, server);
    await admin.putSlice(`hello-${name}`, server.port, [
      { ip: host, pod: `hello-${name}`, zone, ready: true },
    ]);
    return server;
  };
  let instancer: KubernetesInstancer | undefined;
  let endpoints: ReturnType<typeof endpointer<void, string>> | undefined;
  let load: ReturnType<typeof startLoad> | undefined;
  try {
    say(`1. as an admin: namespace ${NAMESPACE}, Service ${SERVICE}, one EndpointSlice per server`);
    say(`  ${await admin.setUp()}`);
    const a = await up('a', 'zone-1');
    say(`  + server a on ${hostPort(a.port)} → EndpointSlice hello-a (port "http" = ${a.port})`);
    const b = await up('b', 'zone-2');
    say(`  + server b on ${hostPort(b.port)} → EndpointSlice hello-b (port "http" = ${b.port})`);

    say('2. KubernetesInstancer → endpointer → roundRobin → retry');
    const inst = new KubernetesInstancer(kube, { service: SERVICE, namespace: NAMESPACE, port: 'http' });
    instancer = inst;
    inst.events$.subscribe(({ error }) => {
      if (error) check(false, `instancer error: ${error.message}`);
    });
    const seen = (pods: string[]) =>
      firstValueFrom(
        inst.events$.pipe(
          filter((e) => {
            const names = e.instances.map((i) => (i.metadata as EndpointMetadata).targetRef?.name).sort();
            return names.join() === pods.map((p) => `hello-${p}`).join();
          }),
          timeout({
            first: 10_000,
            with: () => Promise.reject(new Error(`the instancer never saw ${pods}`)),
          }),
        ),
      );
    say(`  instancer: ${describeSet(await seen(['a', 'b']))}`);
    endpoints = endpointer(inst, helloFactory);
    let retries = 0;
    const call = retry(roundRobin(endpoints), {
      maxAttempts: 3,
      timeoutMs: 2_000,
      perAttemptTimeoutMs: 500,
      onRetry: () => {
        retries++;
      },
    });
    const answers: string[] = [];
    for (let i = 0; i < 6; i++) answers.push(await call());
    check(
      answers.filter((x) => x === 'a').length === 3 && answers.filter((x) => x === 'b').length === 3,
      `6 calls, round robin over both slices: ${answers.join(' ')}`,
    );

    say('3. scaling under continuous calls');
    const running = startLoad(call);
    load = running;
    await running.until(() => running.served('a') >= 20 && running.served('b') >= 20, 'calls to a and b');
    await admin.putSlice('hello-b', b.port, [{ ip: host, pod: 'hello-b', zone: 'zone-2', ready: false }]);
    say(
      `  ~ hello-b rewritten: pod hello-b terminating (ready: false) → instancer: ${describeSet(await seen(['a']))}`,
    );
    const c = await up('c', 'zone-3');
    say(`  + server c on ${hostPort(c.port)} → EndpointSlice hello-c (port "http" = ${c.port})`);
    say(`    instancer: ${describeSet(await seen(['a', 'c']))}`);
    const cBefore = running.served('c');
    await running.until(() => running.served('c') >= cBefore + 20, 'calls to c');
    await admin.deleteSlice('hello-b');
    await b.stop();
    servers.delete('b');
    say('  - EndpointSlice hello-b deleted, server b stopped');
    const aNow = running.served('a');
    const cNow = running.served('c');
    await running.until(() => running.served('a') >= aNow + 20 && running.served('c') >= cNow + 20, 'calls');
    load = undefined;
    const result = await running.stop();
    const counts = ['a', 'b', 'c'].map((n) => `${n} ${result.served.get(n) ?? 0}`).join(', ');
    check(
      result.failures.length === 0,
      `${result.calls} calls while scaling, ${result.failures.length} failed, ${retries} retried (answered: ${counts})`,
    );
    for (const failure of result.failures.slice(0, 3)) say(`    failure: ${failure}`);
  } catch (err) {
    check(false, describeApiError(err));
  } finally {
    say('4. cleanup');
    await load?.stop();
    await endpoints?.close();
    instancer?.stop();
    try {
      say(`  deleted ${await admin.tearDown()}`);
    } catch (err) {
      check(false, `cleanup: ${describeApiError(err)}`);
    }
    kube.close();
    for (const server of servers.values()) await server.stop();
    say('  closed the endpoints, the instancer and the Kubernetes client; stopped the servers');
  }
}

const deadline = setTimeout(() => {
  say('gave up after 60 s (a step never happened)');
  process.exit(1);
}, 60_000);
deadline.unref();
await main();
say(process.exitCode ? '\nFAILED' : '\nok');
