/**
 * Parsing of `kubernetes://` gRPC targets in the forms that sercand/kuberesolver (the Go gRPC resolver for
 * Kubernetes) accepts, so that the same target string works for Go and Node clients, and their mapping to
 * instancers ({@link kubernetesTargetInstancer}).
 *
 * @module
 */
import { type KubernetesClient, transportOf } from './client.js';
import { KubernetesInstancer, type KubernetesInstancerOptions } from './instancer.js';

/**
 * The port part of a Kubernetes target: either a port number (dialled as given) or the name of a port of the
 * Service (looked up among the EndpointSlice ports, e.g. `grpc`).
 */
export type KubernetesTargetPort =
  | { readonly kind: 'number'; readonly number: number }
  | { readonly kind: 'name'; readonly name: string };

/**
 * A parsed Kubernetes target: which Service to follow, in which namespace, on which port.
 */
export interface KubernetesTarget {
  /** The Service name, a lowercase RFC 1123 label (e.g. `my-service`). Never empty. */
  readonly service: string;
  /**
   * The namespace, a lowercase RFC 1123 label. Absent when the target names none; the resolver then picks one.
   * kuberesolver uses the pod's own namespace (read from
   * {@link KUBERNETES_POD_NAMESPACE_FILE}) and falls back to {@link DEFAULT_KUBERNETES_NAMESPACE}.
   */
  readonly namespace?: string;
  /** The port. Absent when the target names none; kuberesolver then uses the first port of the EndpointSlice. */
  readonly port?: KubernetesTargetPort;
}

/**
 * A gRPC target as @grpc/grpc-js parses it (structurally its `GrpcUri`, exported as
 * `experimental.GrpcUri`): what a grpc-js resolver receives. `authority` is `undefined` when the target had no
 * `//authority/` part — note that grpc-js leaves `kubernetes://svc.ns:8080` (no slash after the authority) as
 * `{ path: '//svc.ns:8080' }`, which this module understands.
 */
export interface KubernetesTargetUri {
  readonly scheme?: string | undefined;
  readonly authority?: string | undefined;
  readonly path: string;
}

/** The namespace kuberesolver uses when the target names none and the pod's namespace file cannot be read. */
export const DEFAULT_KUBERNETES_NAMESPACE = 'default';

/** Where a pod finds its own namespace (mounted with the service account); kuberesolver's first choice. */
export const KUBERNETES_POD_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

const LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const DIGITS = /^[0-9]+$/;
const DOMAIN_LABEL = /^[A-Za-z0-9_-]+$/;
const STRING_TARGET = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/s;

/**
 * Parses a Kubernetes gRPC target, with the same meaning as sercand/kuberesolver (v5, `parseResolverTarget`).
 * The scheme is not checked (kuberesolver can be registered under any scheme), only the rest. Accepted forms,
 * where `:port` is optional everywhere and is a number (`8080`) or a port name (`grpc`):
 *
 * ```
 * kubernetes:///service-name:8080                           → service-name, namespace absent, port 8080
 * kubernetes:///service-name:portname                       → port by name
 * kubernetes:///service-name.namespace:8080
 * kubernetes:///service-name.namespace.svc.cluster_name     → the `.svc.<cluster domain>` suffix is ignored
 * kubernetes:///service-name.namespace.svc.cluster_name:8080
 * kubernetes://namespace/service-name:8080                  → namespace in the authority
 * kubernetes://service-name:8080/                           → service in the authority (numeric port only)
 * kubernetes://service-name.namespace:8080/
 * kubernetes://service-name.namespace.svc.cluster_name
 * kubernetes://service-name.namespace.svc.cluster_name:8080
 * ```
 *
 * Like kuberesolver: a missing namespace stays absent (the resolver defaults it, see
 * {@link KubernetesTarget.namespace}), a missing port stays absent (first port of the Service), a port made of
 * digits is a number and anything else a port name, and only the first two dot-separated parts of a name count.
 *
 * Stricter than kuberesolver, which accepts any non-empty service and dials whatever it parsed: this throws
 * where kuberesolver would silently follow a Service that cannot exist. It rejects service, namespace and port
 * names that are not lowercase RFC 1123 labels (at most 63 of `a-z0-9-`, alphanumeric at both ends), port
 * numbers outside 1–65535 or with a sign, an empty port after `:`, a third name part other than `svc` or an
 * empty cluster-domain label, a namespace given twice (`kubernetes://ns/svc.other`), a path after an authority
 * that holds the service (`kubernetes://svc:80/extra`), a port name in the authority (Go's URL parser rejects
 * `kubernetes://svc:grpc/` too; write `kubernetes:///svc:grpc`), queries, fragments and user info.
 *
 * @param target a target string `<scheme>://…` (the `//` is required), or grpc-js's parsed form of one
 *   ({@link KubernetesTargetUri}, e.g. the `target` a grpc-js resolver is constructed with).
 * @returns the service, and the namespace and port when the target names them.
 * @throws TypeError naming the target and the bad part when the target is malformed or not a string/URI.
 */
export function parseKubernetesTarget(target: string | KubernetesTargetUri): KubernetesTarget {
  let authority: string | undefined;
  let path: string;
  let shown: string;
  if (typeof target === 'string') {
    shown = target;
    const match = STRING_TARGET.exec(target);
    if (match === null) {
      throw new TypeError(
        `Invalid Kubernetes target ${JSON.stringify(target)}: expected "<scheme>://…", e.g. "kubernetes:///my-service.my-namespace:8080"`,
      );
    }
    const rest = match[2]!;
    const slash = rest.indexOf('/');
    authority = slash === -1 ? rest : rest.slice(0, slash);
    path = slash === -1 ? '' : rest.slice(slash + 1);
  } else if (
    typeof target === 'object' &&
    target !== null &&
    typeof target.path === 'string' &&
    (target.authority === undefined || typeof target.authority === 'string')
  ) {
    shown = uriToString(target);
    authority = target.authority;
    path = target.path;
    if (authority === undefined && path.startsWith('//')) {
      // grpc-js only recognises an authority that is followed by '/' and something more.
      const rest = path.slice(2);
      const slash = rest.indexOf('/');
      authority = slash === -1 ? rest : rest.slice(0, slash);
      path = slash === -1 ? '' : rest.slice(slash + 1);
    }
  } else {
    throw new TypeError(
      `Invalid Kubernetes target ${describe(target)}: expected a string or a grpc-js URI { scheme?, authority?, path }`,
    );
  }

  const fail = (why: string): never => {
    throw new TypeError(`Invalid Kubernetes target ${JSON.stringify(shown)}: ${why}`);
  };

  if (authority === undefined || authority === '') {
    // kubernetes:///service.namespace:port (and grpc-js's "kubernetes:service", Go's opaque form)
    return parseName(path, true, fail);
  }
  if (authority.includes('@')) fail(`user info ${JSON.stringify(authority)} is not allowed`);
  if (!authority.includes(':') && path !== '') {
    // kubernetes://namespace/service:port
    const namespace = checkLabel(authority, 'namespace', fail);
    const parsed = parseName(path, true, fail);
    if (parsed.namespace !== undefined) {
      fail(
        `the namespace is given twice, as ${JSON.stringify(namespace)} and in ${JSON.stringify(path)}; ` +
          `write "//${namespace}/${parsed.service}" or "///${parsed.service}.${parsed.namespace}"`,
      );
    }
    return withNamespace(parsed, namespace);
  }
  // kubernetes://service.namespace:port/
  if (path !== '') {
    fail(`nothing may follow "/" when the authority ${JSON.stringify(authority)} names the service`);
  }
  return parseName(authority, false, fail);
}

/**
 * Formats a {@link KubernetesTarget} in the canonical form `<scheme>:///service[.namespace][:port]`, which
 * {@link parseKubernetesTarget} (and kuberesolver) read back as the same target.
 *
 * @param options.scheme the scheme to use; default `kubernetes`.
 * @throws TypeError when a part is not valid (the same rules as {@link parseKubernetesTarget}).
 */
export function formatKubernetesTarget(target: KubernetesTarget, options: { scheme?: string } = {}): string {
  const scheme = options.scheme ?? 'kubernetes';
  if (!/^[A-Za-z][A-Za-z0-9+.-]*$/.test(scheme)) {
    throw new TypeError(
      `Invalid scheme ${JSON.stringify(scheme)}: expected a URI scheme such as "kubernetes"`,
    );
  }
  const fail = (why: string): never => {
    throw new TypeError(`Invalid Kubernetes target ${describe(target)}: ${why}`);
  };
  let name = checkLabel(target.service, 'service', fail);
  if (target.namespace !== undefined) name += `.${checkLabel(target.namespace, 'namespace', fail)}`;
  const port = target.port;
  if (port !== undefined) {
    if (port.kind === 'number') {
      if (!Number.isInteger(port.number) || port.number < 1 || port.number > 65535) {
        fail(`port ${String(port.number)} must be an integer from 1 to 65535`);
      }
      name += `:${port.number}`;
    } else {
      const checked = checkPortName(port.name, fail);
      name += `:${checked}`;
    }
  }
  return `${scheme}:///${name}`;
}

/** Parses `service[.namespace[.svc[.cluster.domain]]][:port]`. */
function parseName(text: string, portNameAllowed: boolean, fail: (why: string) => never): KubernetesTarget {
  if (/[?#]/.test(text)) fail('queries and fragments are not allowed');
  let host = text;
  let portText: string | undefined;
  const colon = text.lastIndexOf(':');
  if (colon !== -1) {
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
  }
  if (host === '') fail('no service name');
  const parts = host.split('.');
  const service = checkLabel(parts[0]!, 'service', fail);
  const namespace = parts.length >= 2 ? checkLabel(parts[1]!, 'namespace', fail) : undefined;
  if (parts.length >= 3) {
    if (parts[2] !== 'svc') {
      fail(
        `${JSON.stringify(host)} has too many dots: expected "service", "service.namespace" or "service.namespace.svc[.cluster-domain]"`,
      );
    }
    for (const label of parts.slice(3)) {
      if (!DOMAIN_LABEL.test(label)) fail(`invalid cluster domain in ${JSON.stringify(host)}`);
    }
  }
  let result: KubernetesTarget = { service };
  if (namespace !== undefined) result = withNamespace(result, namespace);
  if (portText !== undefined) {
    if (portText === '') fail('empty port after ":"');
    let port: KubernetesTargetPort;
    if (DIGITS.test(portText)) {
      const number = Number(portText);
      if (number < 1 || number > 65535) fail(`port ${portText} must be from 1 to 65535`);
      port = { kind: 'number', number };
    } else {
      if (!portNameAllowed) {
        fail(
          `port ${JSON.stringify(portText)} in the authority must be a number; put a port name in the path, e.g. "kubernetes:///${host}:${portText}"`,
        );
      }
      port = { kind: 'name', name: checkPortName(portText, fail) };
    }
    result = { ...result, port };
  }
  return result;
}

function withNamespace(target: KubernetesTarget, namespace: string): KubernetesTarget {
  return { service: target.service, namespace, ...(target.port === undefined ? {} : { port: target.port }) };
}

function checkLabel(value: unknown, what: string, fail: (why: string) => never): string {
  if (typeof value !== 'string' || !LABEL.test(value)) {
    fail(
      `${what} ${describe(value)} must be a lowercase RFC 1123 label (1-63 of a-z, 0-9, "-"; alphanumeric at both ends)`,
    );
  }
  return value as string;
}

function checkPortName(value: unknown, fail: (why: string) => never): string {
  if (typeof value !== 'string' || !LABEL.test(value) || DIGITS.test(value)) {
    fail(
      `port ${describe(value)} must be a number or a port name (a lowercase RFC 1123 label, not all digits)`,
    );
  }
  return value as string;
}

function uriToString(uri: KubernetesTargetUri): string {
  return `${uri.scheme === undefined ? '' : `${uri.scheme}:`}${uri.authority === undefined ? '' : `//${uri.authority}/`}${uri.path}`;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Options of {@link kubernetesTargetInstancer}: those of `KubernetesInstancer` that a target does not give. */
export type KubernetesTargetInstancerOptions = Omit<
  KubernetesInstancerOptions,
  'service' | 'namespace' | 'port'
>;

/**
 * Maps kuberesolver targets to instancers on `client`: the returned function parses a target (a string such as
 * `kubernetes:///my-service.my-namespace:grpc`, or grpc-js's parsed form; see {@link parseKubernetesTarget}) and
 * returns a new `KubernetesInstancer` following it, which the caller stops. A target without a namespace uses the
 * client's (`client.namespace`: the pod's own in-cluster, else the kubeconfig context's, else `default`, as
 * kuberesolver does); without a port, each EndpointSlice's first port; a port number is dialled as given, a port
 * name looked up in the slices.
 *
 * ```ts
 * const forTarget = kubernetesTargetInstancer(client, { servingTerminating: true });
 * const instancer = forTarget('kubernetes:///greeter.apps:grpc');
 * ```
 * @throws TypeError (from the returned function) naming the target when it is malformed, and (from either) for
 *   bad options or a client that is not a `KubernetesClient`.
 */
export function kubernetesTargetInstancer(
  client: KubernetesClient,
  options: KubernetesTargetInstancerOptions = {},
): (target: string | KubernetesTargetUri) => KubernetesInstancer {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`kubernetesTargetInstancer: options must be an object, got ${describe(options)}`);
  }
  for (const key of ['service', 'namespace', 'port']) {
    if (Object.hasOwn(options, key)) {
      throw new TypeError(
        `kubernetesTargetInstancer: ${key} comes from each target (e.g. "kubernetes:///service.namespace:port"), not from the options`,
      );
    }
  }
  transportOf(client, 'kubernetesTargetInstancer');
  return (target) => {
    const parsed = parseKubernetesTarget(target);
    const port = parsed.port;
    return new KubernetesInstancer(client, {
      ...options,
      service: parsed.service,
      namespace: parsed.namespace ?? client.namespace,
      ...(port === undefined ? {} : { port: port.kind === 'number' ? port.number : port.name }),
    });
  };
}
