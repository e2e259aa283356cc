// close() of a client stops everything on it at once: an instancer on it reports the close and completes, a
// registrar on it stops keeping its lease alive (the key then expires within its TTL, as after a crash), and the
// process exits by itself right after (this once stayed alive ~10 s, the lease refreshed for 25 s).
import { endpointer } from '@sdkit/sd-core';
import { createEtcdClient, EtcdInstancer, EtcdRegistrar } from '@sdkit/sd-etcd';

const endpoints = process.env.ETCD_ENDPOINTS.split(',');
// ETCD_TRANSPORT=http: etcd's HTTP/JSON gateway instead of gRPC (the default).
const transport = process.env.ETCD_TRANSPORT ? { transport: process.env.ETCD_TRANSPORT } : {};
const key = process.env.KEY;
const ttlSeconds = Number(process.env.TTL_SECONDS ?? 3);

const client = await createEtcdClient({ endpoints, ...transport });
const registrar = new EtcdRegistrar(client, { key, value: 'http://127.0.0.1:9', ttlSeconds });
await registrar.register();
const instancer = new EtcdInstancer(client, { prefix: key.slice(0, key.lastIndexOf('/') + 1) });
const endpoints$ = endpointer(instancer, (instance) => ({ endpoint: async () => instance.address }));
await endpoints$.ready();
if (endpoints$.endpoints().length !== 1) throw new Error('the instancer does not see the registration');
const states = [];
registrar.state$.subscribe({ next: (s) => states.push(s), complete: () => states.push('(complete)') });
const events = [];
instancer.events$.subscribe({
  next: (e) => events.push(e.error ? `error: ${e.error.name} ${e.error.reason}` : `${e.instances.length}`),
  complete: () => events.push('(complete)'),
});
console.log(`registered ${key}; instancer sees it`);
client.close();
console.log(`closed; registrar: ${states.join(' → ')}; instancer: ${events.join(' → ')}`);
try {
  await registrar.register();
} catch (err) {
  console.log(`register() after close: ${err.name} (${err.reason})`);
}

await endpoints$.close();
