import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';
import { startOnFreePorts } from './start-on-free-ports.js';
import { makeTempDir, type TempDir } from './temp-dir.js';
import { TrackedProcess } from './tracked-process.js';

// A real Kubernetes API server for integration tests: test/kube-apiserver/server (built on the k8s.io/apiserver
// library by test/kube-apiserver/build.mjs) on its own etcd 3.5, both on free loopback ports in a temp dir.

/** The user that always exists, in group system:masters (never subject to deny()). */
export const KUBE_ADMIN_USER = 'admin';

export interface KubeApiServerOptions {
  /** Extra users, each with its own random bearer token (no groups besides system:authenticated). */
  users?: string[];
  /** Users denied from the start (see {@link KubeApiServer.deny}). */
  denied?: string[];
  /** etcd key prefix for the API server (`--etcd-prefix`); default `/registry`. */
  etcdPrefix?: string;
  /** Extra flags for the API server, appended last (e.g. `--etcd-compaction-interval=0`, `-v=4`). */
  extraArgs?: string[];
  /** Name for the temp dir; letters, digits, `-`, `_`. Default `kube`. */
  name?: string;
  /** Bound for each start (etcd, then the API server until /readyz says ok); default 30 s. */
  startTimeoutMs?: number;
}

/** Loosely typed JSON of a Kubernetes object, list or Status, for tests. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    continue?: string;
    [key: string]: unknown;
  };
  /** Lists. */
  items?: KubeObject[];
  /** Status objects. */
  status?: unknown;
  message?: string;
  reason?: string;
  code?: number;
  details?: Record<string, unknown>;
  [key: string]: unknown;
}

/** A response from {@link KubeApiServer.request}. */
export interface KubeResponse<T = KubeObject> {
  status: number;
  ok: boolean;
  headers: http.IncomingHttpHeaders;
  /** The body parsed as JSON; undefined when empty or not JSON. */
  body: T | undefined;
  text: string;
}

/** One watch event as the API server sends it (`{"type":"ADDED","object":{…}}`). */
export interface KubeWatchEvent<T = KubeObject> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

/** An open watch stream from {@link KubeApiServer.watch}. */
export interface KubeWatch extends AsyncDisposable {
  /** HTTP status of the watch response (200 when the stream opened). */
  readonly status: number;
  /** The response body when the status is not 200 (a Status object), else undefined. */
  readonly errorBody: unknown;
  /**
   * The next event; rejects after `timeoutMs` (default 10 s) with the events seen so far in the message.
   * Resolves undefined when the stream has ended.
   */
  next(timeoutMs?: number): Promise<KubeWatchEvent | undefined>;
  /** Every event received so far, in order. */
  readonly received: readonly KubeWatchEvent[];
  /** Ends the stream. Idempotent. */
  close(): void;
}

/** Options of {@link KubeApiServer.request}. */
export interface KubeRequestOptions {
  /** Content-Type of the body (default `application/json`, or `application/merge-patch+json` for PATCH). */
  contentType?: string | undefined;
  /** Extra headers; an `authorization` here replaces the user's token. */
  headers?: Record<string, string> | undefined;
  /** Bound for the whole request; default 30 s. */
  timeoutMs?: number | undefined;
}

export interface KubeApiServer extends AsyncDisposable {
  /** `https://127.0.0.1:PORT`; stable across restart(). */
  readonly url: string;
  readonly port: number;
  /** The serving certificate chain (PEM) to trust; stable across restart(). */
  readonly caPem: string;
  /** Bearer token per user: `admin` plus the users asked for. */
  readonly tokens: Readonly<Record<string, string>>;
  /** etcd's client URL (`http://127.0.0.1:PORT`). */
  readonly etcdEndpoint: string;
  /** The temp dir (etcd data, certs, token file, logs, kubeconfigs). */
  readonly dir: string;
  /** The API server's log (klog) file; its tail is part of start-up errors. */
  readonly logFile: string;
  /** The API server's process id; undefined while stopped. */
  readonly pid: number | undefined;
  /** How long the last start of the API server took until /readyz said ok, in ms. */
  readonly lastStartMs: number;
  /** Writes a kubeconfig (cluster with certificate-authority-data, user with token, context) and returns its path. */
  kubeconfig(user?: string): Promise<string>;
  /** From the next request on, `user` gets 403 Forbidden on every resource request (open watches go on). */
  deny(user: string): Promise<void>;
  /** Undoes deny(). */
  allow(user: string): Promise<void>;
  /**
   * One HTTPS request as `user` (default admin). Objects are sent as JSON; a PATCH body defaults to
   * `application/merge-patch+json` (pass `contentType` for `application/apply-patch+yaml`,
   * `application/json-patch+json` or `application/strategic-merge-patch+json`). Never throws on HTTP errors.
   */
  request<T = KubeObject>(
    method: string,
    path: string,
    body?: unknown,
    user?: string,
    options?: KubeRequestOptions,
  ): Promise<KubeResponse<T>>;
  /** Opens a watch (`path` must ask for one, e.g. `…/endpointslices?watch=1`) as `user` (default admin). */
  watch(path: string, user?: string): Promise<KubeWatch>;
  /** The etcd store's current revision. */
  etcdRevision(): Promise<number>;
  /**
   * Compacts etcd at its current revision (physically) and resolves with that revision: older resourceVersions
   * are gone from etcd. The API server's watch cache may still serve them until restart().
   */
  compactEtcd(): Promise<number>;
  /** SIGTERM to the API server, await its exit (SIGKILL after 10 s). etcd keeps running. No-op when stopped. */
  stop(): Promise<void>;
  /** SIGKILL to the API server, await its exit. No-op when stopped. */
  kill(): Promise<void>;
  /** Starts the API server again on the same port with the same certificate and tokens; resolves when ready. */
  start(): Promise<void>;
  /** stop() + start(): a fresh watch cache, same port, same etcd. */
  restart(): Promise<void>;
  /** Kills both processes and removes the temp dir. Idempotent; also `[Symbol.asyncDispose]`. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------------------
// Binaries

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BUILD_SCRIPT = join(REPO_ROOT, 'test', 'kube-apiserver', 'build.mjs');
const BUILD_HINT = 'node test/kube-apiserver/build.mjs';
let binDirCache: string | undefined;

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The directory with `sdkit-kube-apiserver` and `etcd`: `$SDKIT_KUBE_BIN_DIR` when set, else the build cache
 * entry for the current sources and packages.lock (asked of build.mjs, so the key logic lives in one place).
 * Throws, saying how to build them, when they are missing.
 */
export function kubeApiServerBinDir(): string {
  if (binDirCache) return binDirCache;
  const fromEnv = process.env.SDKIT_KUBE_BIN_DIR;
  let dir: string;
  if (fromEnv) {
    dir = fromEnv;
  } else {
    const r = spawnSync(process.execPath, [BUILD_SCRIPT, '--print-path'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    dir = r.stdout.trim();
    if (r.status !== 0 || !dir) {
      throw new Error(
        `The test Kubernetes API server is not built${dir ? ` (expected in ${dir})` : ''}: ${r.stderr.trim() || r.error?.message || `exit ${r.status}`}\n` +
          `Build it (a few minutes the first time; needs apt-get and network access to Debian's archive): ${BUILD_HINT}`,
      );
    }
  }
  for (const bin of ['sdkit-kube-apiserver', 'etcd']) {
    if (!executable(join(dir, bin))) {
      throw new Error(
        `${join(dir, bin)} is missing or not executable${fromEnv ? ' (from SDKIT_KUBE_BIN_DIR)' : ''}.\nBuild it: ${BUILD_HINT}`,
      );
    }
  }
  binDirCache = dir;
  return dir;
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP helpers

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

function httpRequest(
  url: string,
  init: {
    method: string;
    headers?: Record<string, string> | undefined;
    body?: string | undefined;
    ca?: string | undefined;
    timeoutMs?: number | undefined;
    insecure?: boolean | undefined;
  },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const options: https.RequestOptions = {
      method: init.method,
      headers: init.headers,
      agent: false,
      timeout: init.timeoutMs ?? 30_000,
    };
    const onResponse = (res: http.IncomingMessage): void => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      res.on('error', reject);
    };
    const req =
      u.protocol === 'https:'
        ? https.request(u, { ...options, ca: init.ca, rejectUnauthorized: !init.insecure }, onResponse)
        : http.request(u, options, onResponse);
    req.on('timeout', () => req.destroy(new Error(`${init.method} ${url} timed out`)));
    req.on('error', reject);
    if (init.body !== undefined) req.write(init.body);
    req.end();
  });
}

function parseJson(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function checkUserName(user: string): string {
  if (typeof user !== 'string' || !/^[A-Za-z0-9][\w.@:-]{0,62}$/.test(user)) {
    throw new TypeError(`user names must match /^[A-Za-z0-9][\\w.@:-]{0,62}$/, got ${JSON.stringify(user)}`);
  }
  return user;
}

function yamlScalar(s: string): string {
  return JSON.stringify(s); // a JSON string is a YAML double-quoted scalar
}

// ---------------------------------------------------------------------------------------------------------------

class Watch implements KubeWatch {
  readonly received: KubeWatchEvent[] = [];
  private readonly queue: KubeWatchEvent[] = [];
  private waiters: Array<(e: KubeWatchEvent | undefined) => void> = [];
  private ended = false;
  private buffer = '';

  constructor(
    readonly status: number,
    readonly errorBody: unknown,
    private readonly req: http.ClientRequest | undefined,
    res: http.IncomingMessage | undefined,
  ) {
    if (!res) {
      this.ended = true;
      return;
    }
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl = this.buffer.indexOf('\n');
      while (nl >= 0) {
        const line = this.buffer.slice(0, nl).trim();
        this.buffer = this.buffer.slice(nl + 1);
        if (line) {
          let event: KubeWatchEvent;
          try {
            event = JSON.parse(line) as KubeWatchEvent;
          } catch {
            event = { type: 'ERROR', object: { kind: 'Status', message: `unparseable watch line: ${line}` } };
          }
          this.push(event);
        }
        nl = this.buffer.indexOf('\n');
      }
    });
    const end = (): void => {
      this.ended = true;
      for (const w of this.waiters.splice(0)) w(undefined);
    };
    res.on('end', end);
    res.on('error', end);
    res.on('close', end);
  }

  private push(event: KubeWatchEvent): void {
    this.received.push(event);
    const waiter = this.waiters.shift();
    if (waiter) waiter(event);
    else this.queue.push(event);
  }

  next(timeoutMs = 10_000): Promise<KubeWatchEvent | undefined> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const waiter = (e: KubeWatchEvent | undefined): void => {
        clearTimeout(timer);
        resolve(e);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        const seen = this.received.map((e) => e.type).join(', ') || 'none';
        reject(new Error(`no watch event within ${timeoutMs} ms (events so far: ${seen})`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  close(): void {
    this.req?.destroy();
    this.ended = true;
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}

class KubeApiServerImpl implements KubeApiServer {
  readonly url: string;
  readonly etcdEndpoint: string;
  readonly logFile: string;
  readonly dir: string;
  caPem = '';
  lastStartMs = 0;
  private readonly denied = new Set<string>();
  private readonly apiserver: TrackedProcess;
  private readonly etcd: TrackedProcess;
  private readonly deniedFile: string;
  private readonly tokenFile: string;
  private readonly certDir: string;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly tempDir: TempDir,
    readonly port: number,
    etcdPorts: { client: number; peer: number },
    readonly tokens: Readonly<Record<string, string>>,
    private readonly options: KubeApiServerOptions,
    binDir: string,
  ) {
    const dir = tempDir.path;
    this.dir = dir;
    this.url = `https://127.0.0.1:${port}`;
    this.etcdEndpoint = `http://127.0.0.1:${etcdPorts.client}`;
    this.logFile = join(dir, 'kube-apiserver.log');
    this.deniedFile = join(dir, 'denied-users');
    this.tokenFile = join(dir, 'tokens.csv');
    this.certDir = join(dir, 'certs');
    for (const u of options.denied ?? []) this.denied.add(checkUserName(u));
    const peer = `http://127.0.0.1:${etcdPorts.peer}`;
    this.etcd = new TrackedProcess(
      'etcd',
      join(binDir, 'etcd'),
      () => [
        '--name=kube-etcd',
        `--data-dir=${join(dir, 'etcd-data')}`,
        `--listen-client-urls=${this.etcdEndpoint}`,
        `--advertise-client-urls=${this.etcdEndpoint}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=kube-etcd=${peer}`,
        `--initial-cluster-token=sdkit-kube-${randomBytes(4).toString('hex')}`,
        '--initial-cluster-state=new',
        '--heartbeat-interval=50',
        '--election-timeout=500',
        '--logger=zap',
        '--log-outputs=stderr',
      ],
      join(dir, 'etcd.log'),
    );
    this.apiserver = new TrackedProcess(
      `sdkit-kube-apiserver (${this.url})`,
      join(binDir, 'sdkit-kube-apiserver'),
      () => [
        `--etcd-servers=${this.etcdEndpoint}`,
        `--etcd-prefix=${options.etcdPrefix ?? '/registry'}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${port}`,
        `--cert-dir=${this.certDir}`,
        `--token-auth-file=${this.tokenFile}`,
        `--denied-users-file=${this.deniedFile}`,
        ...(options.extraArgs ?? []),
      ],
      this.logFile,
    );
  }

  get pid(): number | undefined {
    return this.apiserver.pid;
  }

  private get timeoutMs(): number {
    return this.options.startTimeoutMs ?? 30_000;
  }

  async writeFiles(): Promise<void> {
    await mkdir(this.certDir, { recursive: true });
    const lines = Object.entries(this.tokens).map(([user, token]) =>
      user === KUBE_ADMIN_USER
        ? `${token},${user},${user}-uid,"system:masters"`
        : `${token},${user},${user}-uid`,
    );
    await writeFile(this.tokenFile, `${lines.join('\n')}\n`, { mode: 0o600 });
    await this.writeDenied();
  }

  private async writeDenied(): Promise<void> {
    const tmp = `${this.deniedFile}.tmp-${randomBytes(4).toString('hex')}`;
    await writeFile(tmp, [...this.denied].map((u) => `${u}\n`).join(''));
    await rename(tmp, this.deniedFile);
  }

  async startEtcd(): Promise<void> {
    this.etcd.launch();
    await this.etcd.awaitReady(async () => {
      try {
        const r = await httpRequest(`${this.etcdEndpoint}/health`, { method: 'GET', timeoutMs: 1000 });
        return r.status === 200 && /"health"\s*:\s*"true"/.test(r.text);
      } catch {
        return false;
      }
    }, this.timeoutMs);
  }

  async start(): Promise<void> {
    if (this.closing) throw new Error('this KubeApiServer is closed');
    if (this.apiserver.running) return;
    const started = Date.now();
    this.apiserver.launch();
    const auth = { authorization: `Bearer ${this.tokens[KUBE_ADMIN_USER]}` };
    await this.apiserver.awaitReady(async () => {
      try {
        const r = await httpRequest(`${this.url}/readyz`, {
          method: 'GET',
          headers: auth,
          timeoutMs: 2000,
          ...(this.caPem ? { ca: this.caPem } : { insecure: true }),
        });
        return r.status === 200 && r.text.trim() === 'ok';
      } catch {
        return false;
      }
    }, this.timeoutMs);
    this.lastStartMs = Date.now() - started;
    if (!this.caPem) this.caPem = await readFile(join(this.certDir, 'apiserver.crt'), 'utf8');
  }

  async stop(): Promise<void> {
    await this.apiserver.stop();
  }

  async kill(): Promise<void> {
    await this.apiserver.kill();
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async kubeconfig(user: string = KUBE_ADMIN_USER): Promise<string> {
    const token = this.tokenFor(user);
    const file = join(this.dir, `kubeconfig-${user}.yaml`);
    const ca = Buffer.from(this.caPem).toString('base64');
    const text = [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: sdkit-test',
      '  cluster:',
      `    server: ${yamlScalar(this.url)}`,
      `    certificate-authority-data: ${yamlScalar(ca)}`,
      'users:',
      `- name: ${yamlScalar(user)}`,
      '  user:',
      `    token: ${yamlScalar(token)}`,
      'contexts:',
      `- name: ${yamlScalar(`${user}@sdkit-test`)}`,
      '  context:',
      '    cluster: sdkit-test',
      `    user: ${yamlScalar(user)}`,
      '    namespace: default',
      `current-context: ${yamlScalar(`${user}@sdkit-test`)}`,
      'preferences: {}',
      '',
    ].join('\n');
    await writeFile(file, text, { mode: 0o600 });
    return file;
  }

  async deny(user: string): Promise<void> {
    this.denied.add(checkUserName(user));
    await this.writeDenied();
  }

  async allow(user: string): Promise<void> {
    this.denied.delete(checkUserName(user));
    await this.writeDenied();
  }

  private tokenFor(user: string): string {
    const token = this.tokens[user];
    if (!token) {
      throw new Error(
        `unknown user ${JSON.stringify(user)}: known users are ${Object.keys(this.tokens).join(', ')}`,
      );
    }
    return token;
  }

  private headersFor(user: string, extra?: Record<string, string>): Record<string, string> {
    return { authorization: `Bearer ${this.tokenFor(user)}`, accept: 'application/json', ...extra };
  }

  async request<T = KubeObject>(
    method: string,
    path: string,
    body?: unknown,
    user: string = KUBE_ADMIN_USER,
    options: KubeRequestOptions = {},
  ): Promise<KubeResponse<T>> {
    const m = method.toUpperCase();
    const headers = this.headersFor(user, options.headers);
    let payload: string | undefined;
    if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body);
      headers['content-type'] =
        options.contentType ?? (m === 'PATCH' ? 'application/merge-patch+json' : 'application/json');
    }
    const r = await httpRequest(new URL(path, this.url).toString(), {
      method: m,
      headers,
      body: payload,
      ca: this.caPem,
      timeoutMs: options.timeoutMs,
    });
    return {
      status: r.status,
      ok: r.status >= 200 && r.status < 300,
      headers: r.headers,
      body: parseJson(r.text) as T | undefined,
      text: r.text,
    };
  }

  watch(path: string, user: string = KUBE_ADMIN_USER): Promise<KubeWatch> {
    const url = new URL(path, this.url);
    return new Promise((resolve, reject) => {
      const req = https.request(
        url,
        { method: 'GET', headers: this.headersFor(user), ca: this.caPem, agent: false },
        (res) => {
          if (res.statusCode === 200) {
            resolve(new Watch(200, undefined, req, res));
            return;
          }
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            text += c;
          });
          res.on('end', () =>
            resolve(new Watch(res.statusCode ?? 0, parseJson(text) ?? text, undefined, undefined)),
          );
          res.on('error', reject);
        },
      );
      req.setTimeout(30_000, () => req.destroy(new Error(`watch ${path}: no response within 30 s`)));
      req.on('error', (err) => reject(err));
      req.end();
    });
  }

  private async etcdPost(path: string, body: unknown): Promise<{ header?: { revision?: string | number } }> {
    const r = await httpRequest(`${this.etcdEndpoint}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      timeoutMs: 30_000,
    });
    if (r.status !== 200) throw new Error(`etcd ${path} answered ${r.status}: ${r.text}`);
    return JSON.parse(r.text);
  }

  async etcdRevision(): Promise<number> {
    // A range read of one (absent) key; the response header carries the store's revision.
    const res = await this.etcdPost('/v3/kv/range', { key: Buffer.from('\0').toString('base64') });
    const rev = Number(res?.header?.revision);
    if (!Number.isSafeInteger(rev) || rev < 1)
      throw new Error(`unexpected etcd range response: ${JSON.stringify(res)}`);
    return rev;
  }

  async compactEtcd(): Promise<number> {
    const rev = await this.etcdRevision();
    await this.etcdPost('/v3/kv/compaction', { revision: String(rev), physical: true });
    return rev;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.apiserver.kill();
      await this.etcd.kill();
      await this.tempDir.remove();
    })();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Starts etcd 3.5 and the test Kubernetes API server (both built by `node test/kube-apiserver/build.mjs`; throws
 * saying so when they are missing) on free loopback ports in a fresh temp dir, and resolves once `/readyz` says ok.
 * The namespaces `default`, `kube-system`, `kube-public` and `kube-node-lease` exist from the start.
 */
export async function startKubeApiServer(options: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  const binDir = kubeApiServerBinDir();
  const name = options.name ?? 'kube';
  if (!/^[\w-]{1,40}$/.test(name))
    throw new TypeError(`name must be 1-40 letters, digits, '-' or '_', got ${JSON.stringify(name)}`);
  const tokens: Record<string, string> = { [KUBE_ADMIN_USER]: randomBytes(24).toString('hex') };
  for (const user of options.users ?? []) {
    if (checkUserName(user) === KUBE_ADMIN_USER) continue;
    tokens[user] = randomBytes(24).toString('hex');
  }
  return startOnFreePorts(
    async () => {
      return new KubeApiServerImpl(
        await makeTempDir(name),
        await freePort(),
        { client: await freePort(), peer: await freePort() },
        tokens,
        options,
        binDir,
      );
    },
    async (server) => {
      await server.writeFiles();
      await server.startEtcd();
      await server.start();
    },
  );
}
