/**
 * @sdkit/sd-kubernetes — Kubernetes discovery for sdkit: the endpoints of one Service through every one of its
 * `discovery.k8s.io/v1` EndpointSlices, and kuberesolver's `kubernetes:///` target forms.
 * @packageDocumentation
 */
export type { BackoffOptions } from '@sdkit/sd-core';
export {
  createKubernetesClient,
  type KubernetesClient,
  type KubernetesClientOptions,
  type KubernetesTargetOptions,
} from './client.js';
export type { EndpointMetadata } from './endpoint-slice.js';
export {
  KubernetesClientError,
  type KubernetesClientErrorReason,
  KubernetesWatchError,
} from './errors.js';
export { KubernetesInstancer, type KubernetesInstancerOptions } from './instancer.js';
export * from './target.js';
