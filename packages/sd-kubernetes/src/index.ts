/**
 * @sdkit/sd-kubernetes — Kubernetes discovery for sdkit: the endpoints of one Service through every one of its
 * `discovery.k8s.io/v1` EndpointSlices, and kuberesolver's `kubernetes:///` target forms.
 * @packageDocumentation
 */
export * from './target.js';
