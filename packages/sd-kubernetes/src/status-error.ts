/**
 * The failures of a Service's EndpointSlice list or watch as {@link KubernetesWatchError}s a person can act on:
 * how their messages read, what the API server's status code (or `Status` object) means — a 403 names the
 * permission missing, the namespace, the user and the `kubectl` commands that grant it — and the `Retry-After`
 * the API server asked for.
 * @internal
 * @module
 */
import type { IncomingMessage } from 'node:http';
import { errorText } from './describe-value.js';
import { KubernetesWatchError } from './errors.js';
import { parseJson } from './parse-json.js';

/** A Kubernetes `Status` object, as in error bodies and watch ERROR events. */
export interface KubeStatus {
  readonly kind?: string;
  readonly code?: number;
  readonly reason?: string;
  readonly message?: string;
}

/** Which request failed: the list or the watch. */
export type SliceRequest = 'list' | 'watch';

/** Whose list or watch failed, as the messages name it. */
export interface FailureSubject {
  /** The Service as messages name it: `service "<namespace>/<name>"`. */
  readonly where: string;
  /** The Service's namespace: where a 403's Role and RoleBinding go. */
  readonly namespace: string;
  /** The client's kubeconfig user, if it has one. */
  readonly user: string | undefined;
}

/** The message of every list or watch failure: `Kubernetes <list|watch> of the EndpointSlices of … failed: …`. */
export function failureMessage(where: string, during: SliceRequest, what: string): string {
  return `Kubernetes ${during} of the EndpointSlices of ${where} failed: ${what}`;
}

/**
 * The error for an HTTP status (or a watch ERROR event's Status) other than success and 410. Its `Retry-After`
 * (the response's header, at most 600 s) is remembered for {@link retryAfterMs}.
 */
export function statusError(
  subject: FailureSubject,
  during: SliceRequest,
  code: number,
  status: KubeStatus | undefined,
  res: IncomingMessage | undefined,
): KubernetesWatchError {
  const said = status?.message ? `; the API server said: ${errorText(status.message)}` : '';
  const { namespace } = subject;
  let what: string;
  if (code === 403) {
    const user = /\bUser "([^"]*)"/.exec(status?.message ?? '')?.[1];
    const who =
      user !== undefined
        ? `user ${JSON.stringify(user)}`
        : subject.user !== undefined
          ? `kubeconfig user ${JSON.stringify(subject.user)}`
          : 'the client’s user';
    what =
      `403 Forbidden: needs list and watch on endpointslices.discovery.k8s.io in namespace ` +
      `${JSON.stringify(namespace)} (${who}); grant them with a Role and a RoleBinding, e.g. ` +
      `\`kubectl create role endpointslice-reader -n ${namespace} --verb=list,watch ` +
      `--resource=endpointslices.discovery.k8s.io\` and \`kubectl create rolebinding endpointslice-reader ` +
      `-n ${namespace} --role=endpointslice-reader ${bindingSubject(user)}\`${said}`;
  } else if (code === 401) {
    const who = subject.user === undefined ? '' : ` of kubeconfig user ${JSON.stringify(subject.user)}`;
    what = `401 Unauthorized: the API server rejected the credentials${who} (expired or revoked token?)${said}`;
  } else if (code === 404) {
    what = `404 Not Found: the API server does not serve discovery.k8s.io/v1 EndpointSlices (Kubernetes 1.21 or later needed)${said}`;
  } else {
    const reason = status?.reason ? ` ${status.reason}` : '';
    what = `${code === 0 ? 'error' : `HTTP ${code}`}${reason}${said}`;
  }
  const error = new KubernetesWatchError(failureMessage(subject.where, during, what), {
    status: code,
    ...(status?.reason === undefined ? {} : { reason: status.reason }),
  });
  const retryAfter = Number(res?.headers['retry-after']);
  if (Number.isFinite(retryAfter) && retryAfter > 0) retryAfters.set(error, Math.min(retryAfter, 600) * 1000);
  return error;
}

/** `Retry-After` of the responses behind errors, in ms. */
const retryAfters = new WeakMap<object, number>();

/** The `Retry-After` of the response behind `err` (one of {@link statusError}'s), in ms; 0 without one. */
export function retryAfterMs(err: unknown): number {
  return (typeof err === 'object' && err !== null && retryAfters.get(err)) || 0;
}

/** The subject for `kubectl create rolebinding`: `--serviceaccount=ns:name` for a service account. */
function bindingSubject(user: string | undefined): string {
  const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(user ?? '');
  if (sa) return `--serviceaccount=${sa[1]}:${sa[2]}`;
  return `--user=${user ?? '<user>'}`;
}

/** Whether a `Status` says `410 Gone`: the resourceVersion asked for is no longer in the server's history. */
export function isGone(status: KubeStatus | undefined): boolean {
  return status?.code === 410 || status?.reason === 'Expired' || status?.reason === 'Gone';
}

/** The `Status` object of an error body, if it is a JSON object. */
export function parseStatus(body: Buffer): KubeStatus | undefined {
  const status = parseJson(body);
  return status !== null && typeof status === 'object' ? (status as KubeStatus) : undefined;
}
