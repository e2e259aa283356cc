/**
 * The errors of @sdkit/sd-kubernetes: {@link KubernetesClientError} (a client that cannot be used) and
 * {@link KubernetesWatchError} (a failing list or watch, delivered as an instancer event's `error`).
 * @module
 */

/** Why a {@link KubernetesClientError} was raised. */
export type KubernetesClientErrorReason =
  /** No usable configuration: no kubeconfig found and not in a pod, or the in-cluster files are missing. */
  | 'config'
  /** No answer from the API server within `dialTimeoutMs` (connection refused, DNS, TLS, timeouts, 5xx). */
  | 'unreachable'
  /** The API server refused the credentials (401), or they could not be obtained (exec plugin, token file). */
  | 'unauthorized'
  /** The API server does not serve `discovery.k8s.io/v1` (EndpointSlices need Kubernetes ≥ 1.21). */
  | 'unsupported'
  /** The client was closed. */
  | 'closed';

/**
 * A client that cannot be used, with a message a person can act on (it names the API server and, where it
 * matters, the kubeconfig user; never a credential). The underlying error, if any, is `cause`.
 */
export class KubernetesClientError extends Error {
  override readonly name = 'KubernetesClientError';
  constructor(
    /** What went wrong, as a discriminant (see {@link KubernetesClientErrorReason}). */
    readonly reason: KubernetesClientErrorReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A failing list or watch of a Service's EndpointSlices, as the `error` of a `KubernetesInstancer` event (which
 * then still holds the last known instances). The instancer keeps retrying; the next good answer clears it.
 * `status` is the HTTP status when the API server answered (403, 401, 500…), `reason` the Kubernetes `Status`
 * reason when it gave one (`Forbidden`, `Unauthorized`…). The underlying error, if any, is `cause`.
 */
export class KubernetesWatchError extends Error {
  override readonly name = 'KubernetesWatchError';
  /** The HTTP status of the API server's answer, when there was one. */
  readonly status: number | undefined;
  /** The `reason` of the API server's `Status` object, when it sent one. */
  readonly reason: string | undefined;
  constructor(message: string, options?: { cause?: unknown; status?: number; reason?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.status = options?.status;
    this.reason = options?.reason;
  }
}
