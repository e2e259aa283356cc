import type { Backend } from './backend.js';
import { dnsBackend } from './dns-backend.js';
import { etcdBackend } from './etcd-backend.js';
import { kubernetesBackend } from './kubernetes-backend.js';

/**
 * The backends the CLI knows, by scheme. Each loads its package only when one of its targets is used; adding a
 * backend is one {@link Backend} and one line here.
 */
export const BACKENDS: readonly Backend[] = Object.freeze([etcdBackend, kubernetesBackend, dnsBackend]);

/** Every scheme of {@link BACKENDS}. */
export const SCHEMES: readonly string[] = Object.freeze(BACKENDS.flatMap((b) => b.schemes));

/** The backend serving `scheme` (lower case), if any. */
export function backendFor(scheme: string): Backend | undefined {
  return BACKENDS.find((b) => b.schemes.includes(scheme));
}
