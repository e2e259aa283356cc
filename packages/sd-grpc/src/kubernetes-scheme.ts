import type { Logger, TargetInstancerOptions, TargetInstancerSource } from '@sdkit/sd-core';
import type { InstancerSchemeOptions, SchemeRegistration } from './resolver.js';
import { registerSourceScheme } from './source-scheme.js';

/** Options of {@link registerKubernetesScheme}. */
export interface KubernetesSchemeOptions extends Omit<InstancerSchemeOptions, 'logger'> {
  /** Also serve endpoints that are `serving` and `terminating` (while a rollout drains). Default false. */
  readonly servingTerminating?: boolean;
  /** The URI scheme to claim. Default `kubernetes`. */
  readonly scheme?: string;
  /** For the resolver and the instancers. Default: the client's logger. */
  readonly logger?: Logger;
}

/**
 * Makes `new Client('kubernetes:///my-service.my-namespace:grpc', credentials)` follow a Service's EndpointSlices,
 * in every target form kuberesolver (seed 003) accepts: registers (via {@link registerInstancerScheme}) a resolver
 * for `scheme` whose channels follow the target with a `KubernetesInstancer` on `client` — through the client's
 * own target mapping (`client[instancerForTarget]`, see @sdkit/sd-kubernetes' `kubernetesTargetInstancer`): this
 * package imports no backend. A target without a namespace uses the client's (the pod's own namespace
 * in-cluster). Resolution semantics (empty set, errors, bad addresses) are those of `registerInstancerScheme`;
 * a malformed target fails the channel's calls with `UNAVAILABLE` and a message naming the bad part.
 *
 * ```ts
 * const kube = await createKubernetesClient(); // in-cluster, or the kubeconfig
 * registerKubernetesScheme(kube);
 * const client = new Greeter('kubernetes:///greeter.apps:grpc', credentials.createInsecure());
 * ```
 * @throws TypeError for a client that is not a `KubernetesClient` (or a Promise of one) or invalid options.
 */
export function registerKubernetesScheme(
  client: TargetInstancerSource<TargetInstancerOptions & { readonly servingTerminating?: boolean }> & {
    readonly logger?: Logger;
  },
  options: KubernetesSchemeOptions = {},
): SchemeRegistration {
  return registerSourceScheme(
    'registerKubernetesScheme',
    'kubernetes',
    'a KubernetesClient from `await createKubernetesClient(…)`',
    client,
    options,
    ['servingTerminating'],
  );
}
