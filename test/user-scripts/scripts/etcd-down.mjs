// etcd is down at start: createEtcdClient must reject within its dial timeout with a message that says so
// (this once exited with code 13 after 0.8 s, the error never seen).
import { createEtcdClient, EtcdClientError } from '@sdkit/sd-etcd';

const endpoints = process.env.ETCD_ENDPOINTS.split(',');
// ETCD_TRANSPORT=http: etcd's HTTP/JSON gateway instead of gRPC (the default).
const transport = process.env.ETCD_TRANSPORT ? { transport: process.env.ETCD_TRANSPORT } : {};
const started = performance.now();
try {
  const client = await createEtcdClient({ endpoints, ...transport, dialTimeoutMs: 1_000 });
  client.close();
  console.log('unexpected: connected');
  process.exitCode = 1;
} catch (err) {
  if (!(err instanceof EtcdClientError)) throw err;
  console.log(
    `${err.name} (${err.reason}) after ${Math.round(performance.now() - started)} ms: ${err.message}`,
  );
}
