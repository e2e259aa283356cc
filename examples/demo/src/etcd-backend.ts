import { type Logger, silentLogger } from '@sdkit/sd-core';
import { codecs, createEtcdClient, EtcdInstancer, EtcdRegistrar } from '@sdkit/sd-etcd';
import { DEMO_PREFIX, type DemoBackend } from './backend.js';

/**
 * The demo on a real etcd at `endpoints`. Each service gets a client of its own, as a separate process would, so
 * that "crashing" one (closing its client without deregistering) leaves its key to expire with its lease, exactly
 * as after a SIGKILL. `transport`: gRPC (default) or etcd's HTTP/JSON gateway.
 */
export async function etcdBackend(
  endpoints: readonly string[],
  where: string,
  logger: Logger,
  onClose: () => Promise<void> = async () => {},
  ttlSeconds = 2,
  transport: 'grpc' | 'http' = 'grpc',
): Promise<DemoBackend> {
  const connect = (log: Logger) =>
    transport === 'http'
      ? createEtcdClient({ transport: 'http', endpoints, logger: log, dialTimeoutMs: 3_000 })
      : createEtcdClient({ endpoints, logger: log, dialTimeoutMs: 3_000 });
  const client = await connect(logger);
  const serviceClients = new Set<{ close(): void }>();
  return {
    description: `etcd at ${endpoints.join(',')} over ${transport === 'http' ? 'HTTP/JSON' : 'gRPC'} (${where})`,
    ttlSeconds,
    async announce(name, address) {
      // A crashed process logs nothing: the service side stays silent, so that only the client's view is shown.
      const own = await connect(silentLogger);
      serviceClients.add(own);
      const registrar = new EtcdRegistrar(own, {
        key: DEMO_PREFIX + name,
        value: `http://${address}`,
        ttlSeconds,
        lease: 'exclusive',
      });
      await registrar.register();
      return {
        async crash() {
          // No revoke, no delete: the lease simply stops being kept alive.
          own.close();
          serviceClients.delete(own);
        },
        async deregister() {
          await registrar.deregister();
          own.close();
          serviceClients.delete(own);
        },
      };
    },
    instancer: () => new EtcdInstancer(client, { prefix: DEMO_PREFIX, codec: codecs.gokit }),
    async close() {
      for (const c of serviceClients) c.close();
      client.close();
      await onClose();
    },
  };
}
