/**
 * `node dist/main.js` — gRPC over sdkit discovery.
 *
 * With ETCD_ENDPOINTS (e.g. `http://127.0.0.1:2379`), servers register in etcd with etcd's gRPC-naming format and
 * the client dials `etcd:///greeter`. Without it, the same happens over an in-process MemoryRegistry and a custom
 * `memory:///greeter` scheme (registerInstancerScheme). Then:
 *   1. two servers, calls balanced by grpc-js round robin;
 *   2. rolling replacement: a third server joins, the first leaves;
 *   3. scale to zero: calls fail fast with UNAVAILABLE; one server comes back and calls succeed again;
 *   4. the same servers through grpcFactory → endpointer → roundRobin → retry.
 * Exits 0 when every step behaved as described.
 */
import { type Client, credentials, type ServiceError, status } from '@grpc/grpc-js';
import { retry, roundRobin } from '@sdkit/lb';
import { endpointer, type Instancer, MemoryRegistry, type Registrar } from '@sdkit/sd-core';
import { codecs, createEtcdClient, type EtcdClient, EtcdInstancer, EtcdRegistrar } from '@sdkit/sd-etcd';
import {
  grpcFactory,
  registerEtcdScheme,
  registerInstancerScheme,
  type SchemeRegistration,
} from '@sdkit/sd-grpc';
import {
  GreeterClient,
  type GreeterServer,
  type HelloReply,
  type HelloRequest,
  sayHello,
  startGreeter,
} from './greeter.js';

const say = (line: string) => process.stdout.write(`${line}\n`);
const SERVICE = 'greeter';

interface Backend {
  readonly name: string;
  readonly target: string;
  register(server: GreeterServer): Promise<Registrar>;
  instancer(): Instancer;
  close(): Promise<void>;
}

async function etcdBackend(endpoints: string[]): Promise<Backend> {
  const client: EtcdClient = await createEtcdClient({ endpoints });
  const scheme: SchemeRegistration = registerEtcdScheme(client); // etcd:///greeter → keys under greeter/
  return {
    name: `etcd at ${endpoints.join(', ')}`,
    target: `etcd:///${SERVICE}`,
    async register(server) {
      const r = new EtcdRegistrar(client, {
        key: `${SERVICE}/${server.address}`,
        instance: { address: server.address },
        codec: codecs.etcdNaming, // {"Op":0,"Addr":"127.0.0.1:PORT","Metadata":null}
        ttlSeconds: 5,
      });
      await r.register();
      return r;
    },
    instancer: () => new EtcdInstancer(client, { prefix: `${SERVICE}/`, codec: codecs.etcdNaming }),
    async close() {
      scheme();
      await client.close();
    },
  };
}

function memoryBackend(): Backend {
  const registry = new MemoryRegistry();
  // Any Instancer can back a scheme: memory:///greeter follows the registry's keys under greeter/.
  const scheme = registerInstancerScheme('memory', (target) => registry.instancer(`${target.path}/`));
  return {
    name: 'in-process MemoryRegistry (set ETCD_ENDPOINTS to use etcd)',
    target: `memory:///${SERVICE}`,
    async register(server) {
      const r = registry.registrar({ key: `${SERVICE}/${server.address}`, address: server.address });
      await r.register();
      return r;
    },
    instancer: () => registry.instancer(`${SERVICE}/`),
    async close() {
      scheme();
      registry.close();
    },
  };
}

function check(ok: boolean, what: string): void {
  say(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) process.exitCode = 1;
}

/** Calls until `predicate` holds for the last `window` replies (bounded); returns the replies' servers. */
async function callUntil(
  client: Client,
  predicate: (servers: string[]) => boolean,
  window = 6,
): Promise<string[]> {
  const seen: string[] = [];
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    try {
      seen.push((await sayHello(client, 'sdkit')).server);
      if (seen.length >= window && predicate(seen.slice(-window))) return seen.slice(-window);
    } catch (err) {
      say(`  call failed: ${(err as ServiceError).details ?? err}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return seen.slice(-window);
}

const envEndpoints = process.env.ETCD_ENDPOINTS?.split(',').filter(Boolean);
const backend = envEndpoints?.length ? await etcdBackend(envEndpoints) : memoryBackend();
say(`sdkit gRPC example — ${backend.name}; client target ${backend.target}\n`);

const servers = new Map<string, GreeterServer>();
const registrars = new Map<string, Registrar>();
async function up(id: string): Promise<void> {
  const s = await startGreeter(id);
  servers.set(id, s);
  registrars.set(id, await backend.register(s));
  say(`  + ${id} on ${s.address}`);
}
async function down(id: string): Promise<void> {
  await registrars.get(id)?.deregister();
  await servers.get(id)?.stop();
  registrars.delete(id);
  servers.delete(id);
  say(`  - ${id}`);
}

const client = new GreeterClient(backend.target, credentials.createInsecure());
try {
  say('1. two servers');
  await up('s1');
  await up('s2');
  let last = await callUntil(client, (s) => s.includes('s1') && s.includes('s2'));
  check(last.includes('s1') && last.includes('s2'), `calls balanced over s1 and s2: ${last.join(' ')}`);

  say('2. rolling replacement');
  await up('s3');
  await down('s1');
  last = await callUntil(client, (s) => !s.includes('s1') && s.includes('s2') && s.includes('s3'));
  check(!last.includes('s1') && last.includes('s3'), `calls now on s2 and s3: ${last.join(' ')}`);

  say('3. scale to zero and back');
  await down('s2');
  await down('s3');
  let failure: ServiceError | undefined;
  let elapsed = 0;
  for (let i = 0; i < 200 && failure?.code !== status.UNAVAILABLE; i++) {
    const started = performance.now();
    failure = await sayHello(client, 'nobody', 5000).then(
      () => undefined,
      (e: ServiceError) => e,
    );
    elapsed = performance.now() - started;
  }
  check(
    failure?.code === status.UNAVAILABLE && elapsed < 1000,
    `no server: UNAVAILABLE after ${elapsed.toFixed(1)} ms ("${failure?.details}")`,
  );
  await up('s4');
  last = await callUntil(client, (s) => s.every((id) => id === 's4'), 3);
  check(last.length === 3 && last.every((id) => id === 's4'), 'calls succeed again on s4');

  say('4. grpcFactory → endpointer → roundRobin → retry');
  await up('s5');
  const instancer = backend.instancer();
  const ep = endpointer(
    instancer,
    grpcFactory<HelloRequest, HelloReply>(GreeterClient, 'SayHello', { timeoutMs: 2000 }),
  );
  const call = retry(roundRobin(ep), { maxAttempts: 3, timeoutMs: 5000 });
  const replies: string[] = [];
  const until = Date.now() + 10_000;
  while (Date.now() < until && !(replies.includes('s4') && replies.includes('s5'))) {
    try {
      replies.push((await call({ name: 'factory' })).server);
    } catch {
      await new Promise((r) => setTimeout(r, 50)); // the instancer's first event is still on its way
    }
  }
  check(
    replies.includes('s4') && replies.includes('s5'),
    `endpoint calls reached s4 and s5: ${replies.slice(-6).join(' ')}`,
  );
  await ep.close();
  instancer.stop();
} finally {
  client.close();
  for (const id of [...servers.keys()]) await down(id);
  await backend.close();
}
say(process.exitCode ? '\nFAILED' : '\nok');
