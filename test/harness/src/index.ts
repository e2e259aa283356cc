/**
 * @sdkit/test-harness — real etcd processes and clusters on loopback (start/stop/kill/restart/wipe/compact), a
 * real DNS server (BIND, records changed live with nsupdate), TLS material, free ports, tracked child processes
 * and bounded waiting helpers for integration tests. Everything it starts is killed and every temp dir removed on
 * close, and as a safety net when the test process exits.
 * @packageDocumentation
 */
import { fileURLToPath } from 'node:url';

export { type SpawnTrackedOptions, spawnTracked, trackDir, untrackDir } from './cleanup.js';
export {
  type DnsServer,
  type DnsServerOptions,
  namedBin,
  nsupdateBin,
  startDnsServer,
} from './dns-server.js';
export {
  type EtcdCluster,
  type EtcdServer,
  type EtcdServerOptions,
  etcdBin,
  etcdctlBin,
  startEtcd,
  startEtcdCluster,
} from './etcd.js';
export {
  type EtcdGatewayOptions,
  type EtcdGrpcProxyOptions,
  type EtcdProxy,
  type EtcdProxyKind,
  type EtcdProxyOptions,
  type NodeScript,
  type NodeScriptExit,
  startEtcdGateway,
  startEtcdGrpcProxy,
  startNodeScript,
} from './etcd-proxy.js';
export {
  KUBE_ADMIN_USER,
  type KubeApiServer,
  type KubeApiServerOptions,
  type KubeObject,
  type KubeRequestOptions,
  type KubeResponse,
  type KubeWatch,
  type KubeWatchEvent,
  kubeApiServerBinDir,
  startKubeApiServer,
} from './kube-apiserver.js';
export { logTail, tailLines } from './log-tail.js';
export { freePort } from './ports.js';
export { PortInUseError, startOnFreePorts } from './start-on-free-ports.js';
export { type ProxyMode, TcpProxy } from './tcp-proxy.js';
export { makeTempDir, type TempDir } from './temp-dir.js';
export { type Certificates, makeCertificates } from './tls.js';
export { startTlsEtcdPair, type TlsEtcdPair } from './tls-etcd-pair.js';
export { STOP_GRACE_MS, TrackedProcess, type TrackedProcessOptions } from './tracked-process.js';
export { DEFAULT_WAIT_MS, describeValue, eventually, type SubscribableLike, waitFor } from './wait.js';
/**
 * Path of a module to pass to `node --import` so that a child process runs the workspace's TypeScript sources
 * (module hooks that resolve the `@sdkit/source` condition and strip types), for tests that run a real child.
 */
export const registerTsHooks: string = fileURLToPath(new URL('../ts-hooks/register-ts.mjs', import.meta.url));
