// A service that deregisters on SIGTERM: prints "ready", then serves until the signal; deregisterOnSignals
// deletes its key at once, closes the server and ends the process as the signal would have.
import { createServer } from 'node:http';
import { createEtcdClient, deregisterOnSignals, EtcdRegistrar } from '@sdkit/sd-etcd';

const endpoints = process.env.ETCD_ENDPOINTS.split(',');
const server = createServer((_req, res) => res.end('ok'));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const hostPort = `127.0.0.1:${server.address().port}`;
const key = `/services/sigterm/${hostPort}`;

const client = await createEtcdClient({ endpoints });
const registrar = new EtcdRegistrar(client, { key, value: `http://${hostPort}`, ttlSeconds: 60 });
await registrar.register();
deregisterOnSignals(registrar, {
  drain: () =>
    new Promise((resolve) => {
      client.close();
      server.close(() => resolve());
    }),
});
console.log(`ready ${key}`);
