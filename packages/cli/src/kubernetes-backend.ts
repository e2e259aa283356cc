import { type Instancer, instancerForTarget } from '@sdkit/sd-core';
import type * as SdKubernetes from '@sdkit/sd-kubernetes';
import type { Backend, BackendRequest, ConnectedTarget, PreparedTarget } from './backend.js';
import { usageError } from './cli-error.js';
import { connectFailure } from './connect-failure.js';
import { loadBackendPackage } from './load-backend-package.js';

const CANONICAL_PREFIX = 'kubernetes:///';

/**
 * A Service's EndpointSlices, through @sdkit/sd-kubernetes: every target form of kuberesolver
 * (`kubernetes:///svc.ns:port`, `kubernetes://ns/svc:port`, …; sd-kubernetes' `parseKubernetesTarget`), with
 * kubectl's `--kubeconfig` (else `$KUBECONFIG`, `~/.kube/config`, in-cluster), `--context` and `--namespace` (for
 * a target that names no namespace; else the context's). Read-only: `register` is refused.
 */
export const kubernetesBackend: Backend = Object.freeze({
  schemes: Object.freeze(['kubernetes']),
  packageName: '@sdkit/sd-kubernetes',
  flags: Object.freeze(['kubeconfig', 'context', 'namespace'] as const),
  forms: Object.freeze(['kubernetes:///SERVICE[.NAMESPACE][:PORT|:PORTNAME]  (and every kuberesolver form)']),
  registers: false,
  async prepare(request: BackendRequest): Promise<PreparedTarget> {
    const sdKubernetes = await loadBackendPackage(
      '@sdkit/sd-kubernetes',
      request.target.scheme,
      () => import('@sdkit/sd-kubernetes'),
    );
    const { flags, target } = request;
    let parsed: SdKubernetes.KubernetesTarget;
    try {
      parsed = sdKubernetes.parseKubernetesTarget(target.text);
    } catch (err) {
      throw usageError((err as Error).message);
    }
    const namespace = typeof flags.namespace === 'string' ? flags.namespace : undefined;
    if (namespace !== undefined && parsed.namespace !== undefined && namespace !== parsed.namespace) {
      throw usageError(
        `the namespace is given twice: ${JSON.stringify(parsed.namespace)} in the target and ${JSON.stringify(namespace)} with --namespace`,
      );
    }
    let canonical: string;
    try {
      canonical = sdKubernetes.formatKubernetesTarget(
        parsed.namespace === undefined && namespace !== undefined ? { ...parsed, namespace } : parsed,
      );
    } catch (err) {
      throw usageError(`--namespace: ${(err as Error).message}`);
    }
    const path = canonical.slice(CANONICAL_PREFIX.length);
    const port =
      parsed.port === undefined
        ? 'its first port'
        : `port ${parsed.port.kind === 'number' ? parsed.port.number : JSON.stringify(parsed.port.name)}`;
    const where =
      (namespace ?? parsed.namespace) === undefined
        ? "the context's namespace"
        : `namespace ${JSON.stringify(namespace ?? parsed.namespace)}`;
    return {
      description: `Kubernetes Service ${JSON.stringify(parsed.service)} in ${where}, ${port}`,
      emptyHint: undefined,
      connect: () => connect(sdKubernetes, request, path),
    };
  },
});

async function connect(
  sdKubernetes: typeof SdKubernetes,
  request: BackendRequest,
  path: string,
): Promise<ConnectedTarget> {
  const { flags } = request;
  let client: SdKubernetes.KubernetesClient;
  try {
    client = await sdKubernetes.createKubernetesClient({
      ...(typeof flags.kubeconfig === 'string' ? { kubeconfig: flags.kubeconfig } : {}),
      ...(typeof flags.context === 'string' ? { context: flags.context } : {}),
      ...(request.dialTimeoutMs !== undefined ? { dialTimeoutMs: request.dialTimeoutMs } : {}),
      logger: request.logger,
    });
  } catch (err) {
    const failure = connectFailure(err);
    // The message speaks of createKubernetesClient's options; say what they are on the command line.
    if ((err as { reason?: unknown }).reason === 'config') {
      failure.message += ' (on the command line: --kubeconfig FILE, or set $KUBECONFIG)';
    }
    throw failure;
  }
  return {
    follow: (): Instancer => client[instancerForTarget]({ scheme: 'kubernetes', authority: undefined, path }),
    close: () => client.close(),
    [Symbol.dispose]: () => client.close(),
  };
}
