import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { logTail } from './log-tail.js';
import { freePort } from './ports.js';
import { startOnFreePorts } from './start-on-free-ports.js';
import { makeTempDir, type TempDir } from './temp-dir.js';
import { TrackedProcess } from './tracked-process.js';
import { eventually } from './wait.js';

/** The etcd binary: `$ETCD_BIN`, else `etcd` on PATH. */
export function etcdBin(): string {
  return process.env.ETCD_BIN || 'etcd';
}

/** The etcdctl binary: `$ETCDCTL_BIN`, else `etcdctl` on PATH. */
export function etcdctlBin(): string {
  return process.env.ETCDCTL_BIN || 'etcdctl';
}

export interface EtcdServerOptions {
  /**
   * Serve client traffic over TLS with these PEM files (paths); `endpoints` are then `https://`. `caFile` is the
   * CA that signed `certFile`: the harness's etcdctl calls verify the server with it (without it they skip
   * verification). With `clientCertAuth` (needs `caFile`) etcd requires client certificates signed by `caFile`
   * (`--trusted-ca-file` + `--client-cert-auth`; without it etcd gets no `--trusted-ca-file`, since etcd 3.4
   * would then demand client certificates anyway), and the harness's own etcdctl calls and health probes
   * present `certFile`/`keyFile` as their client certificate — that certificate must allow client auth too (the
   * server certificate from `makeCertificates()` does). Peer traffic stays plain HTTP.
   */
  tls?: { certFile: string; keyFile: string; caFile?: string; clientCertAuth?: boolean };
  /** Extra etcd flags, appended last (so they override the harness's own). */
  extraArgs?: string[];
  /** Name for the member, logs and temp dir (letters, digits, `-`, `_`); default `etcd`. */
  name?: string;
}

/** One etcd process on loopback, with its own temp dir (data + logs), restartable on the same ports. */
export interface EtcdServer extends AsyncDisposable {
  /** Client URLs, e.g. `['http://127.0.0.1:40123']` (`https` with TLS). Stable across restarts. */
  readonly endpoints: string[];
  /** etcd's `--data-dir` (inside the server's temp dir). */
  readonly dataDir: string;
  /** Process id; undefined while stopped. */
  readonly pid: number | undefined;
  /** Member name (`--name`). */
  readonly name: string;
  /** etcd's log file (zap JSON lines); its tail is included in start-up failures. */
  readonly logFile: string;
  /** SIGTERM, then await exit (SIGKILL after 10 s). No-op when stopped. */
  stop(): Promise<void>;
  /** SIGKILL, await exit. No-op when stopped. */
  kill(): Promise<void>;
  /** (Re)starts on the same ports keeping the data; resolves when `/health` says healthy. No-op when running. */
  start(): Promise<void>;
  /**
   * stop + start. With `wipe`, the data dir is deleted in between and the server comes back as a brand-new
   * single-member cluster (new cluster id, revision 1). `wipe` is refused for cluster members.
   */
  restart(opts?: { wipe?: boolean }): Promise<void>;
  /**
   * Runs etcdctl (API v3) against this server's endpoints (TLS flags added as needed); resolves with its output,
   * rejects on non-zero exit with stderr in the message. With auth enabled pass `--user=name:password` yourself.
   */
  etcdctl(...args: string[]): Promise<{ stdout: string; stderr: string }>;
  /** The current store revision. */
  revision(): Promise<number>;
  /** Compacts at `revision` (default: the current one), physically; resolves with the revision compacted. */
  compact(revision?: number): Promise<number>;
  /** Kills the process if running and removes the temp dir. Idempotent; also `[Symbol.asyncDispose]`. */
  close(): Promise<void>;
}

/** A static cluster of etcd members on loopback. */
export interface EtcdCluster extends AsyncDisposable {
  /** The members (3 by default); each member's `endpoints` is its own client URL. */
  readonly members: EtcdServer[];
  /** All members' client URLs. */
  readonly endpoints: string[];
  /**
   * The member that is leader now. Asks every running member; if none claims leadership (an election is under
   * way), keeps asking for up to 15 s before rejecting.
   */
  leader(): Promise<EtcdServer>;
  /** Closes every member (kill + remove temp dirs). Idempotent; also `[Symbol.asyncDispose]`. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------------------

/** Bounds for start-up health. */
const START_TIMEOUT_MS = 20_000;

function uniqueToken(): string {
  return `sdkit-${process.pid}-${randomBytes(6).toString('hex')}`;
}

/** Parses etcdctl JSON output keeping 64-bit ids (member_id, leader, …) exact as strings. */
function parseEtcdctlJson(text: string): unknown {
  return JSON.parse(
    text.replace(/"(\w*id|leader|raftIndex|raft_index|raftAppliedIndex)":(\d+)/gi, '"$1":"$2"'),
  );
}

interface MemberStatus {
  memberId: string;
  leaderId: string;
  raftTerm: number;
  revision: number;
}

function redact(args: readonly string[]): string {
  return args
    .map((a) => a.replace(/^(--user=[^:]*:).*$/, '$1***').replace(/^(--password=).*$/, '$1***'))
    .join(' ');
}

interface NodeConfig {
  name: string;
  dir: TempDir;
  clientPort: number;
  peerPort: number;
  initialCluster: string;
  token: string;
  tls: EtcdServerOptions['tls'];
  extraArgs: readonly string[];
  clusterMember: boolean;
}

class EtcdNode implements EtcdServer {
  readonly endpoints: string[];
  readonly dataDir: string;
  readonly name: string;
  readonly logFile: string;
  private readonly stderrFile: string;
  private readonly scheme: 'http' | 'https';
  private readonly proc: TrackedProcess;
  private token: string;
  private closing: Promise<void> | undefined;
  private probeTls: { ca?: Buffer; cert?: Buffer; key?: Buffer } | undefined;

  constructor(private readonly config: NodeConfig) {
    this.name = config.name;
    this.token = config.token;
    this.scheme = config.tls ? 'https' : 'http';
    this.endpoints = [`${this.scheme}://127.0.0.1:${config.clientPort}`];
    this.dataDir = join(config.dir.path, 'data');
    this.logFile = join(config.dir.path, 'etcd.log');
    this.stderrFile = join(config.dir.path, 'etcd.stderr');
    this.proc = new TrackedProcess(
      `etcd ${this.name} (${this.endpoints[0]})`,
      etcdBin(),
      () => this.args(),
      this.stderrFile,
      {
        logs: async () =>
          (await Promise.all([logTail(this.logFile, 25), logTail(this.stderrFile, 15)])).join('\n'),
      },
    );
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  private args(): string[] {
    const c = this.config;
    const client = this.endpoints[0]!;
    const peer = `http://127.0.0.1:${c.peerPort}`;
    const args = [
      `--name=${c.name}`,
      `--data-dir=${this.dataDir}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=${c.initialCluster}`,
      `--initial-cluster-token=${this.token}`,
      '--initial-cluster-state=new',
      // Fast elections for tests (etcd wants election-timeout >= 5 x heartbeat).
      '--heartbeat-interval=50',
      '--election-timeout=500',
      '--logger=zap',
      `--log-outputs=${this.logFile}`,
    ];
    if (c.tls) {
      args.push(`--cert-file=${c.tls.certFile}`, `--key-file=${c.tls.keyFile}`);
      // etcd 3.4 demands client certificates whenever --trusted-ca-file is set, so pass it only with
      // clientCertAuth; otherwise caFile serves the harness's own etcdctl/health checks.
      if (c.tls.clientCertAuth) {
        if (!c.tls.caFile) throw new TypeError(`etcd ${c.name}: tls.clientCertAuth needs tls.caFile`);
        args.push(`--trusted-ca-file=${c.tls.caFile}`, '--client-cert-auth');
      }
    }
    args.push(...c.extraArgs);
    return args;
  }

  /** Spawns the process (no waiting). */
  launch(): void {
    if (this.closing) throw new Error(`etcd ${this.name} is closed`);
    this.proc.launch();
  }

  private probe(): Promise<boolean> {
    const url = `${this.endpoints[0]}/health`;
    return new Promise((resolve) => {
      const opts: https.RequestOptions = { timeout: 1000, agent: false };
      let req: http.ClientRequest;
      const onResponse = (res: http.IncomingMessage): void => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve(res.statusCode === 200 && /"health"\s*:\s*"true"/.test(body)));
        res.on('error', () => resolve(false));
      };
      if (this.scheme === 'https') {
        this.probeTls ??= this.readProbeTls();
        req = https.get(url, { ...opts, ...this.probeTls, rejectUnauthorized: false }, onResponse);
      } else {
        req = http.get(url, opts, onResponse);
      }
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
    });
  }

  private readProbeTls(): { ca?: Buffer; cert?: Buffer; key?: Buffer } {
    const tls = this.config.tls!;
    return tls.clientCertAuth ? { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) } : {};
  }

  /**
   * Resolves when /health is true; rejects early if the process exits (with a PortInUseError when its port was
   * taken), or after the start-up bound.
   */
  awaitHealthy(timeoutMs = START_TIMEOUT_MS): Promise<void> {
    return this.proc.awaitReady(() => this.probe(), timeoutMs);
  }

  async start(): Promise<void> {
    if (this.proc.running) return;
    this.launch();
    await this.awaitHealthy();
  }

  async stop(): Promise<void> {
    await this.proc.stop();
  }

  async kill(): Promise<void> {
    await this.proc.kill();
  }

  async restart(opts: { wipe?: boolean } = {}): Promise<void> {
    if (opts.wipe && this.config.clusterMember) {
      throw new Error(`restart({ wipe: true }) is not supported for cluster members (${this.name})`);
    }
    await this.stop();
    if (opts.wipe) {
      await rm(this.dataDir, { recursive: true, force: true });
      this.token = uniqueToken(); // a wiped etcd is a new cluster
    }
    await this.start();
  }

  async etcdctl(...args: string[]): Promise<{ stdout: string; stderr: string }> {
    const tlsArgs: string[] = [];
    const tls = this.config.tls;
    if (tls) {
      tlsArgs.push(tls.caFile ? `--cacert=${tls.caFile}` : '--insecure-skip-tls-verify');
      if (tls.clientCertAuth) tlsArgs.push(`--cert=${tls.certFile}`, `--key=${tls.keyFile}`);
    }
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCDCTL_')) env[k] = v;
    env.ETCDCTL_API = '3';
    const fullArgs = [`--endpoints=${this.endpoints.join(',')}`, '--dial-timeout=3s', ...tlsArgs, ...args];
    return new Promise((resolve, reject) => {
      execFile(
        etcdctlBin(),
        fullArgs,
        { env, timeout: 30_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
        (err, stdout, stderr) => {
          if (err) {
            const how = err.killed ? 'timed out' : `exit ${String(err.code ?? 'unknown')}`;
            reject(new Error(`etcdctl ${redact(args)} failed (${how}): ${stderr.trim() || err.message}`));
          } else resolve({ stdout, stderr });
        },
      );
    });
  }

  /** `etcdctl endpoint status` for this member. */
  async status(): Promise<MemberStatus> {
    const { stdout } = await this.etcdctl('endpoint', 'status', '-w', 'json');
    const parsed = parseEtcdctlJson(stdout) as Array<{
      Status: { header: { member_id: string; revision: number; raft_term: number }; leader: string };
    }>;
    const s = parsed[0]?.Status;
    if (!s) throw new Error(`unexpected etcdctl endpoint status output: ${stdout}`);
    return {
      memberId: String(s.header.member_id),
      leaderId: String(s.leader),
      raftTerm: Number(s.header.raft_term),
      revision: Number(s.header.revision),
    };
  }

  async revision(): Promise<number> {
    return (await this.status()).revision;
  }

  async compact(revision?: number): Promise<number> {
    const rev = revision ?? (await this.revision());
    if (!Number.isSafeInteger(rev) || rev < 1)
      throw new TypeError(`compact: bad revision ${String(revision)}`);
    await this.etcdctl('compact', String(rev), '--physical');
    return rev;
  }

  close(): Promise<void> {
    this.closing ??= this.kill().then(() => this.config.dir.remove());
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function checkName(name: string): string {
  if (typeof name !== 'string' || !/^[\w-]{1,40}$/.test(name)) {
    throw new TypeError(`etcd name must be 1-40 letters, digits, '-' or '_', got ${JSON.stringify(name)}`);
  }
  return name;
}

/**
 * Starts one etcd on free loopback ports in a fresh temp dir and resolves once it is healthy. Retries with new
 * ports if another process grabbed one in between. Rejects with the etcd log tail if it cannot start.
 */
export async function startEtcd(options: EtcdServerOptions = {}): Promise<EtcdServer> {
  const name = checkName(options.name ?? 'etcd');
  return startOnFreePorts(
    async () => {
      const [clientPort, peerPort] = [await freePort(), await freePort()];
      return new EtcdNode({
        name,
        dir: await makeTempDir(`etcd-${name}`),
        clientPort,
        peerPort,
        initialCluster: `${name}=http://127.0.0.1:${peerPort}`,
        token: uniqueToken(),
        tls: options.tls,
        extraArgs: options.extraArgs ?? [],
        clusterMember: false,
      });
    },
    (node) => node.start(),
  );
}

class Cluster implements EtcdCluster {
  readonly endpoints: string[];
  private closing: Promise<void> | undefined;

  constructor(readonly members: EtcdNode[]) {
    this.endpoints = members.flatMap((m) => m.endpoints);
  }

  leader(): Promise<EtcdServer> {
    return eventually(
      async () => {
        const statuses = await Promise.all(
          this.members.map(async (m) =>
            m.pid === undefined ? undefined : m.status().catch(() => undefined),
          ),
        );
        let best: { member: EtcdNode; term: number } | undefined;
        statuses.forEach((s, i) => {
          if (s && s.leaderId !== '0' && s.memberId === s.leaderId && (!best || s.raftTerm > best.term)) {
            best = { member: this.members[i]!, term: s.raftTerm };
          }
        });
        return best?.member;
      },
      'a member that is etcd leader',
      15_000,
    );
  }

  close(): Promise<void> {
    this.closing ??= Promise.all(this.members.map((m) => m.close())).then(() => {});
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Starts a static cluster of `size` (default 3) members on loopback, each in its own temp dir, and resolves when
 * every member is healthy. Members can be stopped/killed/started (without wipe) individually.
 */
export async function startEtcdCluster(size = 3): Promise<EtcdCluster> {
  if (!Number.isInteger(size) || size < 1 || size > 9) {
    throw new TypeError(`startEtcdCluster: size must be an integer 1..9, got ${String(size)}`);
  }
  return startOnFreePorts(
    async () => {
      const token = uniqueToken();
      const specs: Array<{ name: string; clientPort: number; peerPort: number }> = [];
      for (let i = 0; i < size; i++)
        specs.push({ name: `m${i}`, clientPort: await freePort(), peerPort: await freePort() });
      const initialCluster = specs.map((s) => `${s.name}=http://127.0.0.1:${s.peerPort}`).join(',');
      const members: EtcdNode[] = [];
      for (const s of specs) {
        members.push(
          new EtcdNode({
            ...s,
            dir: await makeTempDir(`etcd-${s.name}`),
            initialCluster,
            token,
            tls: undefined,
            extraArgs: [],
            clusterMember: true,
          }),
        );
      }
      return new Cluster(members);
    },
    async (cluster) => {
      for (const m of cluster.members) m.launch();
      await Promise.all(cluster.members.map((m) => m.awaitHealthy()));
    },
  );
}
