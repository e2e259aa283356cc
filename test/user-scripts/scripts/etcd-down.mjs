// etcd is down at start: createEtcdClient must reject within its dial timeout with a message that says so
// (this once exited with code 13 after 0.8 s, the error never seen).
import { createEtcdClient, EtcdClientError } from '@sdkit/sd-etcd';

const endpoints = process.env.ETCD_ENDPOINTS.split(',');
const started = performance.now();
try {
  const client = await createEtcdClient({ endpoints, dialTimeoutMs: 1_000 });
  client.close();
  console.log('unexpected: connected');
  process.exitCode = 1;
} catch (err) {
  if (!(err instanceof EtcdClientError)) throw err;
  console.log(
    `${err.name} (${err.reason}) after ${Math.round(performance.now() - started)} ms: ${err.message}`,
  );
}
