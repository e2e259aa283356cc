// go-kit's flow, as a user writes it: client, register, discover, call, deregister, close.
import { createServer } from 'node:http';
import { retry, roundRobin } from '@sdkit/lb';
import { endpointer } from '@sdkit/sd-core';
import { codecs, createEtcdClient, EtcdInstancer, EtcdRegistrar } from '@sdkit/sd-etcd';

const endpoints = process.env.ETCD_ENDPOINTS.split(',');
// ETCD_TRANSPORT=http: etcd's HTTP/JSON gateway instead of gRPC (the default).
const transport = process.env.ETCD_TRANSPORT ? { transport: process.env.ETCD_TRANSPORT } : {};
const prefix = process.env.PREFIX ?? '/services/flow/';

// The service this process offers.
const server = createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ answer: 42, path: req.url }));
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const hostPort = `127.0.0.1:${server.address().port}`;

const client = await createEtcdClient({ endpoints, ...transport });
const registrar = new EtcdRegistrar(client, {
  key: `${prefix}${hostPort}`,
  value: `http://${hostPort}`,
  ttlSeconds: 10,
});
await registrar.register();
console.log(`registered ${prefix}${hostPort}`);

// Discover it (as another service would) and call it.
const instancer = new EtcdInstancer(client, { prefix, codec: codecs.gokit });
const endpoints$ = endpointer(instancer, (instance) => ({
  endpoint: async (path, options) => {
    const res = await fetch(new URL(path, instance.address), { signal: options?.signal ?? null });
    return res.json();
  },
}));
const call = retry(roundRobin(endpoints$), { maxAttempts: 3, timeoutMs: 2_000 });
const reply = await call('/hello');
console.log(`answer ${reply.answer} from ${reply.path}`);

await endpoints$.close();
instancer.stop();
await registrar.deregister();
console.log('deregistered');
client.close();
server.close();
console.log('closed');
