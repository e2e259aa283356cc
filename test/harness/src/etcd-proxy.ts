/**
 * etcd's own proxies in front of an etcd started by the harness: the L4 TCP gateway (`etcd gateway start`) and the
 * L7 gRPC proxy (`etcd grpc-proxy start`), each one child process on a free loopback port with its own temp dir
 * (log file), restartable on the same port; plus a tracked plain-`node` child for the processes that talk
 * through them.
 * @module
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import http from 'node:http';
import { join } from 'node:path';
import { trackChild } from './cleanup.js';
import { etcdBin, etcdctlBin } from './etcd.js';
import { logTail } from './log-tail.js';
import { freePort } from './ports.js';
import { startOnFreePorts } from './start-on-free-ports.js';
import { makeTempDir, type TempDir } from './temp-dir.js';
import { TrackedProcess } from './tracked-process.js';

/** Which of etcd's proxies. */
export type EtcdProxyKind = 'gateway' | 'grpc-proxy';

/** Options common to {@link startEtcdGateway} and {@link startEtcdGrpcProxy}. */
export interface EtcdProxyOptions {
  /**
   * The etcd client URLs to forward to, e.g. an `EtcdServer`'s `endpoints`: non-empty, each `http://host:port`
   * (plain HTTP only). The proxies are given them as `host:port`.
   */
  endpoints: readonly string[];
  /** Name for the log and the temp dir (letters, digits, `-`, `_`); default the kind. */
  name?: string;
  /** Extra flags, appended last (so they override the harness's own). */
  extraArgs?: string[];
}

/** Options of {@link startEtcdGateway}. */
export interface EtcdGatewayOptions extends EtcdProxyOptions {
  /**
   * `--retry-delay`, in ms: how long the gateway leaves an etcd endpoint alone after a failed dial (it then sends
   * nothing there, and with a single endpoint it refuses every connection meanwhile). Default: etcd's own (1 min).
   */
  retryDelayMs?: number;
}

/** Options of {@link startEtcdGrpcProxy}. */
export interface EtcdGrpcProxyOptions extends EtcdProxyOptions {
  /**
   * `--namespace`: the proxy prepends it to every key of every request and strips it from every key it returns,
   * by plain string concatenation (`/ns/` + `/a` is stored as `/ns//a`). Default none.
   */
  namespace?: string;
}

/** One etcd proxy process on loopback, with its own temp dir (log), restartable on the same port. */
export interface EtcdProxy extends AsyncDisposable {
  readonly kind: EtcdProxyKind;
  /** The proxy's client URL, `['http://127.0.0.1:PORT']`: give it to clients instead of etcd's. Stable across restarts. */
  readonly endpoints: string[];
  /** The etcd endpoints it forwards to, as `host:port`. */
  readonly targets: readonly string[];
  /** The gRPC proxy's `--namespace`; `''` without one (and always for the gateway). */
  readonly namespace: string;
  /** Process id; undefined while stopped. */
  readonly pid: number | undefined;
  /** The proxy's log (its stdout and stderr); its tail is included in start-up failures. */
  readonly logFile: string;
  /** SIGTERM, then await exit (SIGKILL after 10 s). No-op when stopped. */
  stop(): Promise<void>;
  /** SIGKILL, await exit. No-op when stopped. */
  kill(): Promise<void>;
  /**
   * (Re)starts on the same port; resolves once an etcd round-trip through the proxy succeeds (gateway: a
   * `POST /v3/kv/range` through its port, answered by etcd; gRPC proxy: its `/health`, which reads a key from
   * etcd, then an `etcdctl get` through its gRPC port). Rejects with the log tail if the process exits or is not
   * ready within 20 s. No-op when running.
   */
  start(): Promise<void>;
  /**
   * Runs etcdctl (API v3) against the proxy's endpoint; resolves with its output, rejects on non-zero exit with
   * stderr in the message. Through the gRPC proxy, keys are relative to its namespace.
   */
  etcdctl(...args: string[]): Promise<{ stdout: string; stderr: string }>;
  /** Kills the process if running and removes the temp dir. Idempotent; also `[Symbol.asyncDispose]`. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------------------

const START_TIMEOUT_MS = 20_000;
const PROBE_TIMEOUT_MS = 2_000;

function etcdctlEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCDCTL_')) env[k] = v;
  env.ETCDCTL_API = '3';
  return env;
}

function runEtcdctl(
  endpoints: readonly string[],
  args: readonly string[],
): Promise<{ stdout: string; stderr: string }> {
  const fullArgs = [
    `--endpoints=${endpoints.join(',')}`,
    '--dial-timeout=2s',
    '--command-timeout=5s',
    ...args,
  ];
  return new Promise((resolve, reject) => {
    execFile(
      etcdctlBin(),
      fullArgs,
      { env: etcdctlEnv(), timeout: 30_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) {
          const how = err.killed ? 'timed out' : `exit ${String(err.code ?? 'unknown')}`;
          reject(new Error(`etcdctl ${args.join(' ')} failed (${how}): ${stderr.trim() || err.message}`));
        } else resolve({ stdout, stderr });
      },
    );
  });
}

/** One HTTP request; resolves with the status and body, or undefined on any failure or after the probe bound. */
function request(
  url: string,
  method: 'GET' | 'POST',
  body?: string,
): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const req = http.request(
      url,
      {
        method,
        agent: false,
        timeout: PROBE_TIMEOUT_MS,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', () => resolve(undefined));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end(body);
  });
}

function hostPorts(endpoints: readonly string[], fn: string): string[] {
  if (!Array.isArray(endpoints) || endpoints.length === 0) {
    throw new TypeError(`${fn}: endpoints must be a non-empty array of http:// URLs`);
  }
  return endpoints.map((e) => {
    let url: URL;
    try {
      url = new URL(e);
    } catch {
      throw new TypeError(`${fn}: endpoint ${JSON.stringify(e)} is not a URL`);
    }
    if (url.protocol !== 'http:' || !url.port) {
      throw new TypeError(`${fn}: endpoint ${JSON.stringify(e)} must be http://host:port (plain HTTP only)`);
    }
    return url.host;
  });
}

function checkName(name: string): string {
  if (typeof name !== 'string' || !/^[\w-]{1,40}$/.test(name)) {
    throw new TypeError(
      `etcd proxy name must be 1-40 letters, digits, '-' or '_', got ${JSON.stringify(name)}`,
    );
  }
  return name;
}

interface ProxyConfig {
  kind: EtcdProxyKind;
  name: string;
  dir: TempDir;
  port: number;
  targets: string[];
  namespace: string;
  retryDelayMs: number | undefined;
  extraArgs: readonly string[];
}

class ProxyProcess implements EtcdProxy {
  readonly kind: EtcdProxyKind;
  readonly endpoints: string[];
  readonly targets: readonly string[];
  readonly namespace: string;
  readonly logFile: string;
  private readonly proc: TrackedProcess;
  private closing: Promise<void> | undefined;

  constructor(private readonly config: ProxyConfig) {
    this.kind = config.kind;
    this.endpoints = [`http://127.0.0.1:${config.port}`];
    this.targets = config.targets;
    this.namespace = config.namespace;
    this.logFile = join(config.dir.path, `${config.kind}.log`);
    this.proc = new TrackedProcess(
      `etcd ${this.kind} ${config.name} (${this.endpoints[0]} → ${this.targets.join(',')})`,
      etcdBin(),
      () => this.args(),
      this.logFile,
      { logs: () => logTail(this.logFile, 25) },
    );
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  private args(): string[] {
    const c = this.config;
    const common = [`--listen-addr=127.0.0.1:${c.port}`, `--endpoints=${c.targets.join(',')}`];
    if (c.kind === 'gateway') {
      const args = ['gateway', 'start', ...common];
      if (c.retryDelayMs !== undefined) args.push(`--retry-delay=${c.retryDelayMs}ms`);
      return [...args, ...c.extraArgs];
    }
    // --data-dir is only written with --auto-tls; pointing it into the temp dir keeps the cwd clean regardless.
    const args = ['grpc-proxy', 'start', ...common, `--data-dir=${join(c.dir.path, 'data')}`];
    if (c.namespace !== '') args.push(`--namespace=${c.namespace}`);
    return [...args, ...c.extraArgs];
  }

  /** One readiness check: a real etcd round-trip through the proxy. */
  private async ready(): Promise<boolean> {
    const base = this.endpoints[0]!;
    if (this.kind === 'gateway') {
      // The gateway copies bytes; etcd's own HTTP/JSON gateway answers behind it.
      const res = await request(
        `${base}/v3/kv/range`,
        'POST',
        JSON.stringify({ key: Buffer.from('sdkit-proxy-ready').toString('base64') }),
      );
      return res?.status === 200 && /"header"/.test(res.body);
    }
    const health = await request(`${base}/health`, 'GET');
    if (!(health?.status === 200 && /"health"\s*:\s*"true"/.test(health.body))) return false;
    return runEtcdctl(this.endpoints, ['get', 'sdkit-proxy-ready']).then(
      () => true,
      () => false,
    );
  }

  async start(): Promise<void> {
    if (this.closing) throw new Error(`etcd ${this.kind} ${this.config.name} is closed`);
    if (this.proc.running) return;
    this.proc.launch();
    await this.proc.awaitReady(() => this.ready(), START_TIMEOUT_MS);
  }

  async stop(): Promise<void> {
    await this.proc.stop();
  }

  async kill(): Promise<void> {
    await this.proc.kill();
  }

  etcdctl(...args: string[]): Promise<{ stdout: string; stderr: string }> {
    return runEtcdctl(this.endpoints, args);
  }

  close(): Promise<void> {
    this.closing ??= this.kill().then(() => this.config.dir.remove());
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

async function startProxy(
  kind: EtcdProxyKind,
  options: EtcdProxyOptions,
  namespace: string,
  retryDelayMs: number | undefined,
  fn: string,
): Promise<EtcdProxy> {
  const targets = hostPorts(options.endpoints, fn);
  const name = checkName(options.name ?? kind);
  return startOnFreePorts(
    async () =>
      new ProxyProcess({
        kind,
        name,
        dir: await makeTempDir(`etcd-${name}`),
        port: await freePort(),
        targets,
        namespace,
        retryDelayMs,
        extraArgs: options.extraArgs ?? [],
      }),
    (proxy) => proxy.start(),
  );
}

/**
 * Starts `etcd gateway start` (etcd's L4 TCP proxy: it copies bytes, round-robin over `endpoints`) on a free
 * loopback port and resolves once an etcd round-trip through it succeeds. Clients use it exactly like etcd (gRPC
 * and etcd's HTTP/JSON gateway alike). Retries with a new port if another process grabbed it in between.
 */
export function startEtcdGateway(options: EtcdGatewayOptions): Promise<EtcdProxy> {
  const { retryDelayMs } = options;
  if (retryDelayMs !== undefined && !(Number.isInteger(retryDelayMs) && retryDelayMs > 0)) {
    throw new TypeError(
      `startEtcdGateway: retryDelayMs must be a positive integer, got ${String(retryDelayMs)}`,
    );
  }
  return startProxy('gateway', options, '', retryDelayMs, 'startEtcdGateway');
}

/**
 * Starts `etcd grpc-proxy start` (etcd's L7 gRPC proxy; it serves the etcd gRPC API, `/health` and `/metrics`,
 * but not etcd's HTTP/JSON gateway) on a free loopback port, with `--namespace` if given, and resolves once an
 * etcd round-trip through it succeeds. Retries with a new port if another process grabbed it in between.
 */
export function startEtcdGrpcProxy(options: EtcdGrpcProxyOptions): Promise<EtcdProxy> {
  const namespace = options.namespace ?? '';
  if (typeof namespace !== 'string') {
    throw new TypeError(`startEtcdGrpcProxy: namespace must be a string, got ${String(namespace)}`);
  }
  return startProxy('grpc-proxy', options, namespace, undefined, 'startEtcdGrpcProxy');
}

// ---------------------------------------------------------------------------------------------------------------

/** How a {@link NodeScript} ended. */
export interface NodeScriptExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A plain `node` child process started by {@link startNodeScript}. */
export interface NodeScript extends AsyncDisposable {
  readonly child: ChildProcess;
  /** Resolves once the process has exited. Never rejects. */
  readonly exited: Promise<NodeScriptExit>;
  /** Everything it printed so far (stdout, then stderr). */
  output(): string;
  /**
   * Resolves with the first stdout line matching `pattern` (already printed or still to come); rejects if the
   * process exits first or after `timeoutMs` (default 30 s), with its output in the message.
   */
  line(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Sends `signal` (default SIGKILL) if it is still running and resolves once it has exited. */
  kill(signal?: NodeJS.Signals): Promise<NodeScriptExit>;
}

/**
 * Runs `node <file> ...args` — plain Node, without the test runner's loaders or conditions (`NODE_OPTIONS` is
 * cleared), so packages resolve to their built `dist` as in a user's process — with `env` added. The process is
 * tracked by the harness's safety net (killed when the test process exits, however it exits); disposing kills it.
 */
export function startNodeScript(
  file: string,
  args: readonly string[] = [],
  options: { env?: Record<string, string>; cwd?: string } = {},
): NodeScript {
  const child = spawn(process.execPath, [file, ...args], {
    cwd: options.cwd ?? process.cwd(),
    env: { ...process.env, NODE_OPTIONS: '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  trackChild(child);
  let stdout = '';
  let stderr = '';
  const exited = new Promise<NodeScriptExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => {
      if (child.pid === undefined) resolve({ code: null, signal: null });
    });
  });
  const closed = new Promise<void>((resolve) => {
    child.once('close', () => resolve());
    child.once('error', () => {
      if (child.pid === undefined) resolve();
    });
  });
  const watchers = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    for (const w of [...watchers]) w();
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const output = () => `${stdout}${stderr ? `\n[stderr]\n${stderr}` : ''}`;
  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<NodeScriptExit> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  return {
    child,
    exited,
    output,
    line(pattern, timeoutMs = 30_000) {
      return new Promise<string>((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        const check = (): void => {
          const found = stdout.split('\n').find((l) => pattern.test(l));
          if (found === undefined) return;
          watchers.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        watchers.add(check);
        timer = setTimeout(() => {
          watchers.delete(check);
          reject(
            new Error(`${file}: no line matching ${pattern} within ${timeoutMs} ms; output:\n${output()}`),
          );
        }, timeoutMs);
        check();
        // 'close' comes after the last output was read (unlike 'exit').
        void closed.then(() => {
          if (!watchers.has(check)) return;
          check();
          if (!watchers.has(check)) return;
          watchers.delete(check);
          clearTimeout(timer);
          void exited.then((how) =>
            reject(
              new Error(
                `${file} exited (code ${how.code}, signal ${how.signal}) before printing ${pattern}; output:\n${output()}`,
              ),
            ),
          );
        });
      });
    },
    kill,
    [Symbol.asyncDispose]: async () => {
      await kill('SIGKILL');
    },
  };
}
