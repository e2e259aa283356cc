/**
 * Where a {@link KubernetesClient} gets its API server, credentials and default namespace: a kubeconfig file (or
 * the `KUBECONFIG` list, or `~/.kube/config`), a `KubeConfig` built by the caller, or the pod's service account.
 * TLS, client certificates, static tokens, exec plugins and auth providers are `@kubernetes/client-node`'s; token
 * files are read here, again whenever they change (see {@link TokenFile}).
 * @internal
 * @module
 */
import { accessSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
// Pinned to ~1.4.0 in package.json: 2.0.1 crashes on Node 20 (undici's decompress.js: "Cannot read properties of
// undefined (reading 'bind')").
import { KubeConfig } from '@kubernetes/client-node';
import yaml from 'js-yaml';
import { describeValue, errorText } from './describe-value.js';
import { KubernetesClientError } from './errors.js';
import { DEFAULT_KUBERNETES_NAMESPACE } from './target.js';
import { TokenFile } from './token-file.js';

/** Where a pod's service account is mounted (token, CA, namespace), as client-go and client-node read it. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The configuration options of `createKubernetesClient`. */
export interface KubeConfigOptions {
  readonly kubeconfig?: string | KubeConfig | undefined;
  readonly context?: string | undefined;
  readonly inCluster?: boolean | undefined;
}

/** A configuration resolved for one client. */
export interface ResolvedKubeConfig {
  /** The configuration as loaded (a caller's own `KubeConfig` is kept as given). */
  readonly kubeConfig: KubeConfig;
  /**
   * What requests are made with: {@link kubeConfig}, or a copy of it whose current user has its token file
   * removed, when {@link tokenFile} takes its place.
   */
  readonly requestConfig: KubeConfig;
  /** The current user's token file, read per request; `undefined` when the user has none. */
  readonly tokenFile: TokenFile | undefined;
  /** The API server URL, e.g. `https://10.96.0.1:443`. */
  readonly server: string;
  /** The default namespace: the pod's own in-cluster, else the context's, else `default`. */
  readonly namespace: string;
  /** The kubeconfig context in use (`undefined` in-cluster). */
  readonly context: string | undefined;
  /** The kubeconfig user name of that context (`undefined` when none); for messages, never a credential. */
  readonly user: string | undefined;
  /** Where the configuration came from, for messages: `kubeconfig "/path"`, `in-cluster`… */
  readonly source: string;
}

/** A user's token file: kubectl's key, and the one client-node 1.4 reads. */
const TOKEN_FILE_KEYS = ['tokenFile', 'token-file'] as const;

function fail(message: string): never {
  throw new TypeError(`createKubernetesClient: ${message}`);
}

/**
 * Resolves the configuration from the options, in this order: `kubeconfig` (a path or a `KubeConfig`);
 * `inCluster: true`; else, like client-node's `loadFromDefault` and kubectl, the files in `KUBECONFIG`, then
 * `~/.kube/config`, then the pod's service account when running in a pod.
 *
 * Kubeconfig files are read as kubectl reads them: relative paths (CA, client certificate and key, `tokenFile`)
 * relative to the file; with several `KUBECONFIG` files the first to name a context, cluster or user wins, and the
 * first `current-context`. `env` and `serviceAccountDir` are injectable for tests.
 * @throws TypeError for bad options (both `kubeconfig` and `inCluster`, an unreadable or invalid file given as
 *   `kubeconfig`, an unknown `context`); {@link KubernetesClientError} (`'config'`) when no configuration is found,
 *   or the one found names no usable context or cluster.
 */
export function resolveKubeConfig(
  options: KubeConfigOptions,
  env: NodeJS.ProcessEnv = process.env,
  serviceAccountDir: string = SERVICE_ACCOUNT_DIR,
): ResolvedKubeConfig {
  const { kubeconfig, context, inCluster } = options;
  if (inCluster !== undefined && typeof inCluster !== 'boolean') {
    fail(`inCluster must be a boolean, got ${describeValue(inCluster)}`);
  }
  if (context !== undefined && (typeof context !== 'string' || context === '')) {
    fail(`context must be a non-empty string, got ${describeValue(context)}`);
  }
  if (inCluster === true && kubeconfig !== undefined) {
    fail('give either kubeconfig or inCluster: true, not both');
  }
  if (inCluster === true && context !== undefined) {
    fail('context is a kubeconfig context; it cannot be used with inCluster: true');
  }
  if (kubeconfig instanceof KubeConfig || isKubeConfigLike(kubeconfig)) {
    if (context !== undefined) {
      fail(
        'context cannot be combined with a KubeConfig object: call kubeConfig.setCurrentContext(…) on it instead',
      );
    }
    return fromKubeConfigObject(kubeconfig as KubeConfig);
  }
  if (kubeconfig !== undefined) {
    if (typeof kubeconfig !== 'string' || kubeconfig === '') {
      fail(
        `kubeconfig must be a path to a kubeconfig file or a KubeConfig from @kubernetes/client-node, got ${describeValue(kubeconfig)}`,
      );
    }
    const path = resolve(kubeconfig);
    return fromFiles([readKubeconfigFile(path, true)!], context, `kubeconfig ${JSON.stringify(path)}`);
  }
  if (inCluster === true) return fromServiceAccount(env, serviceAccountDir);

  const list = env.KUBECONFIG;
  if (list !== undefined && list !== '') {
    const paths = list.split(delimiter).filter((p) => p !== '');
    const files = paths.map((p) => readKubeconfigFile(resolve(p), false)).filter((f) => f !== undefined);
    if (files.length === 0) {
      throw new KubernetesClientError(
        'config',
        `none of the files in KUBECONFIG exists (${paths.map((p) => JSON.stringify(p)).join(', ')})`,
      );
    }
    return fromFiles(files, context, `KUBECONFIG ${files.map((f) => JSON.stringify(f.path)).join(', ')}`);
  }
  const home = env.HOME || homedir();
  const defaultPath = home ? join(home, '.kube', 'config') : undefined;
  if (defaultPath !== undefined && exists(defaultPath)) {
    return fromFiles(
      [readKubeconfigFile(defaultPath, true)!],
      context,
      `kubeconfig ${JSON.stringify(defaultPath)}`,
    );
  }
  if (context !== undefined) {
    fail(
      `context ${JSON.stringify(context)} was given, but no kubeconfig was found (KUBECONFIG is not set and ${defaultPath ?? '~/.kube/config'} does not exist)`,
    );
  }
  if (env.KUBERNETES_SERVICE_HOST) return fromServiceAccount(env, serviceAccountDir);
  throw new KubernetesClientError(
    'config',
    `no Kubernetes configuration found: KUBECONFIG is not set, ${defaultPath ?? '~/.kube/config'} does not exist, ` +
      'and this is not a pod (KUBERNETES_SERVICE_HOST is not set); pass { kubeconfig: path } or { inCluster: true }',
  );
}

/** The parts of a client-node `KubeConfig` used here (duck-typed, so that another copy of client-node works). */
function isKubeConfigLike(value: unknown): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as KubeConfig).applyToHTTPSOptions === 'function' &&
    typeof (value as KubeConfig).getCurrentCluster === 'function' &&
    typeof (value as KubeConfig).getCurrentUser === 'function'
  );
}

function exists(path: string): boolean {
  try {
    accessSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A kubeconfig file as parsed, its relative paths made absolute. */
interface KubeconfigFile {
  readonly path: string;
  readonly doc: RawKubeconfig;
}

interface Named {
  name?: unknown;
  [key: string]: unknown;
}

interface RawKubeconfig {
  clusters?: Named[];
  contexts?: Named[];
  users?: Named[];
  'current-context'?: unknown;
  [key: string]: unknown;
}

/**
 * Reads and parses one kubeconfig file. A missing file: `undefined` unless `required` (then TypeError, like any
 * other read or parse failure, which always throws).
 */
function readKubeconfigFile(path: string, required: boolean): KubeconfigFile | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (!required && (err as { code?: unknown }).code === 'ENOENT') return undefined;
    fail(`cannot read kubeconfig ${JSON.stringify(path)}: ${errorText(err)}`);
  }
  let doc: unknown;
  try {
    doc = yaml.load(text);
  } catch (err) {
    fail(`kubeconfig ${JSON.stringify(path)} is not valid YAML: ${errorText(err)}`);
  }
  if (doc === null || doc === undefined) doc = {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    fail(
      `kubeconfig ${JSON.stringify(path)} is not a kubeconfig (a YAML mapping with clusters, contexts, users)`,
    );
  }
  const raw = doc as RawKubeconfig;
  const dir = dirname(path);
  const absolute = (value: unknown): unknown =>
    typeof value === 'string' && value !== '' && !isAbsolute(value) ? join(dir, value) : value;
  for (const field of ['clusters', 'contexts', 'users'] as const) {
    const list = raw[field];
    if (list !== undefined && list !== null && !Array.isArray(list)) {
      fail(`kubeconfig ${JSON.stringify(path)}: ${field} must be a list`);
    }
  }
  for (const entry of raw.clusters ?? []) {
    const cluster = entry?.cluster as Record<string, unknown> | undefined;
    if (cluster && typeof cluster === 'object') {
      cluster['certificate-authority'] = absolute(cluster['certificate-authority']);
    }
  }
  for (const entry of raw.users ?? []) {
    const user = entry?.user as Record<string, unknown> | undefined;
    if (user && typeof user === 'object') {
      for (const key of ['client-certificate', 'client-key', ...TOKEN_FILE_KEYS]) {
        if (user[key] !== undefined) user[key] = absolute(user[key]);
      }
    }
  }
  return { path, doc: raw };
}

/** Merges kubeconfig files as kubectl does: the first file to name an entry wins, and the first current-context. */
function merge(files: readonly KubeconfigFile[]): RawKubeconfig {
  const out: { clusters: Named[]; contexts: Named[]; users: Named[]; 'current-context'?: unknown } = {
    clusters: [],
    contexts: [],
    users: [],
  };
  for (const field of ['clusters', 'contexts', 'users'] as const) {
    const seen = new Set<unknown>();
    for (const file of files) {
      for (const entry of file.doc[field] ?? []) {
        if (entry === null || typeof entry !== 'object' || seen.has(entry.name)) continue;
        seen.add(entry.name);
        out[field].push(entry);
      }
    }
  }
  for (const file of files) {
    const current = file.doc['current-context'];
    if (typeof current === 'string' && current !== '') {
      out['current-context'] = current;
      break;
    }
  }
  return out;
}

function fromFiles(
  files: readonly KubeconfigFile[],
  context: string | undefined,
  source: string,
): ResolvedKubeConfig {
  const doc = merge(files);
  const contextName = context ?? (doc['current-context'] as string | undefined);
  const contexts = doc.contexts ?? [];
  const contextNames = contexts.map((c) => String(c.name));
  if (contextName === undefined) {
    throw new KubernetesClientError(
      'config',
      `${source} has no current-context; pass { context } (its contexts: ${listOrNone(contextNames)})`,
    );
  }
  const ctxEntry = contexts.find((c) => c.name === contextName);
  if (!ctxEntry) {
    const message = `${source} has no context ${JSON.stringify(contextName)} (its contexts: ${listOrNone(contextNames)})`;
    if (context !== undefined) fail(message);
    throw new KubernetesClientError('config', message);
  }
  const ctx = (ctxEntry.context ?? {}) as Record<string, unknown>;
  const userName = typeof ctx.user === 'string' && ctx.user !== '' ? ctx.user : undefined;

  // kubectl's `tokenFile` is unknown to client-node 1.4, which reads a `token-file` instead, once, when loading,
  // relative to the working directory: take both out, and read the current user's here (again when it changes).
  let tokenFile: TokenFile | undefined;
  const users = (doc.users ?? []).map((entry) => {
    const user = entry?.user as Record<string, unknown> | undefined;
    if (!user || typeof user !== 'object' || !TOKEN_FILE_KEYS.some((key) => user[key] !== undefined)) {
      return entry;
    }
    const { tokenFile: kubectlPath, 'token-file': clientNodePath, ...rest } = user;
    const path = kubectlPath ?? clientNodePath;
    if (entry.name === userName && (rest.token === undefined || rest.token === '')) {
      if (typeof path !== 'string' || path === '') {
        fail(`${source}: user ${JSON.stringify(userName)} has a tokenFile that is not a path`);
      }
      tokenFile = new TokenFile(path);
    }
    return { ...entry, user: rest };
  });
  const kc = new KubeConfig();
  try {
    // JSON is YAML: client-node parses it with its own loader. Broken entries other than the current ones are
    // left out (kubectl ignores them too); a broken current one is reported below.
    kc.loadFromString(JSON.stringify({ ...doc, users, 'current-context': contextName }), {
      onInvalidEntry: 'filter',
    });
  } catch (err) {
    fail(`${source} cannot be loaded: ${errorText(err)}`);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server) {
    throw new KubernetesClientError(
      'config',
      `${source}: context ${JSON.stringify(contextName)} names cluster ${JSON.stringify(ctx.cluster)}, which is missing or has no server`,
    );
  }
  const namespace =
    typeof ctx.namespace === 'string' && ctx.namespace !== '' ? ctx.namespace : DEFAULT_KUBERNETES_NAMESPACE;
  return {
    kubeConfig: kc,
    requestConfig: kc,
    tokenFile,
    server: cluster.server,
    namespace,
    context: contextName,
    user: userName,
    source: `${source}, context ${JSON.stringify(contextName)}`,
  };
}

function fromKubeConfigObject(kc: KubeConfig): ResolvedKubeConfig {
  const cluster = kc.getCurrentCluster();
  const contextName = kc.getCurrentContext();
  if (!cluster?.server) {
    throw new KubernetesClientError(
      'config',
      `the KubeConfig given has no current cluster with a server (current context: ${JSON.stringify(contextName ?? null)})`,
    );
  }
  const ctx = kc.getContextObject(contextName);
  const user = kc.getCurrentUser();
  let tokenFile: TokenFile | undefined;
  let requestConfig = kc;
  const path = (user?.authProvider as { config?: { tokenFile?: unknown } } | undefined)?.config?.tokenFile;
  if (user && typeof path === 'string' && path !== '' && !user.token) {
    // client-node's in-cluster user (loadFromCluster): its tokenFile auth provider caches the token for a minute.
    tokenFile = new TokenFile(resolve(path));
    requestConfig = new KubeConfig();
    requestConfig.loadFromOptions({
      clusters: kc.getClusters(),
      contexts: kc.getContexts(),
      users: kc.getUsers().map((u) => (u.name === user.name ? { ...u, authProvider: undefined } : u)),
      currentContext: contextName,
    });
  }
  const namespace = ctx?.namespace?.trim() || DEFAULT_KUBERNETES_NAMESPACE;
  return {
    kubeConfig: kc,
    requestConfig,
    tokenFile,
    server: cluster.server,
    namespace,
    context: contextName,
    user: user?.name,
    source: `the KubeConfig given, context ${JSON.stringify(contextName)}`,
  };
}

/**
 * In-cluster, as client-go's `InClusterConfig`: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`, the
 * service account's CA, its token (a {@link TokenFile}: the kubelet rotates it) and its namespace.
 */
function fromServiceAccount(env: NodeJS.ProcessEnv, dir: string): ResolvedKubeConfig {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new KubernetesClientError(
      'config',
      'inCluster: this does not look like a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set',
    );
  }
  const tokenPath = join(dir, 'token');
  const caPath = join(dir, 'ca.crt');
  for (const path of [tokenPath, caPath]) {
    if (!exists(path)) {
      throw new KubernetesClientError(
        'config',
        `inCluster: ${path} does not exist (is a service account token mounted? automountServiceAccountToken may be false)`,
      );
    }
  }
  let namespace = DEFAULT_KUBERNETES_NAMESPACE;
  try {
    namespace = readFileSync(join(dir, 'namespace'), 'utf8').trim() || namespace;
  } catch {
    // kuberesolver's fallback: "default".
  }
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'inCluster', server, caFile: caPath, skipTLSVerify: false }],
    users: [{ name: 'inClusterUser' }],
    contexts: [{ name: 'inClusterContext', cluster: 'inCluster', user: 'inClusterUser', namespace }],
    currentContext: 'inClusterContext',
  });
  return {
    kubeConfig: kc,
    requestConfig: kc,
    tokenFile: new TokenFile(tokenPath),
    server,
    namespace,
    context: undefined,
    user: undefined,
    source: `in-cluster (${server}, service account in ${dir})`,
  };
}

function listOrNone(names: readonly string[]): string {
  return names.length === 0 ? 'none' : names.map((n) => JSON.stringify(n)).join(', ');
}
