// A process that only registers and deregisters: nothing of its own holds the event loop, so every sdkit
// promise awaited here must hold it until it settles (this once exited with code 13 inside register()).
import { createEtcdClient, EtcdRegistrar } from '@sdkit/sd-etcd';

const endpoints = process.env.ETCD_ENDPOINTS.split(',');
// ETCD_TRANSPORT=http: etcd's HTTP/JSON gateway instead of gRPC (the default).
const transport = process.env.ETCD_TRANSPORT ? { transport: process.env.ETCD_TRANSPORT } : {};
const key = process.env.KEY ?? '/services/register-only/127.0.0.1:9';

const client = await createEtcdClient({ endpoints, ...transport });
const registrar = new EtcdRegistrar(client, { key, value: 'http://127.0.0.1:9', ttlSeconds: 30 });
await registrar.register();
console.log(`registered ${key} on lease ${registrar.leaseId}`);
await registrar.deregister();
console.log(`deregistered ${key}`);
client.close();
console.log('closed');
