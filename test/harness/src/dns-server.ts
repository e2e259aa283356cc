/**
 * A real DNS server for integration tests: BIND 9 (`named`, Debian's `bind9`) serving one zone on a free loopback
 * port (UDP and TCP, 127.0.0.1 and ::1), with dynamic updates through `nsupdate` (Debian's `bind9-dnsutils`), so
 * records change live and carry real TTLs. `node test/harness/ensure-tools.mjs dns` installs both.
 * @module
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { accessSync, constants } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { logTail } from './log-tail.js';
import { freePort } from './ports.js';
import { PortInUseError, startOnFreePorts } from './start-on-free-ports.js';
import { makeTempDir, type TempDir } from './temp-dir.js';
import { TrackedProcess } from './tracked-process.js';

/** Where `name` is: `$envVar` (a path or a name on PATH), else on PATH, else in /usr/sbin and /usr/bin. */
function findBinary(envVar: string, name: string): string | undefined {
  const wanted = process.env[envVar] || name;
  const dirs = wanted.includes('/')
    ? ['']
    : [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/bin'];
  for (const dir of dirs) {
    const candidate = dir === '' ? wanted : join(dir, wanted);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

const INSTRUCTIONS =
  'DNS integration tests need BIND 9 (named) and nsupdate. Debian/Ubuntu: sudo apt-get install -y bind9 ' +
  'bind9-dnsutils, or run: node test/harness/ensure-tools.mjs dns (as root); or set NAMED_BIN / NSUPDATE_BIN.';

/** The `named` binary: `$NAMED_BIN`, else `named` on PATH or in /usr/sbin. @throws Error saying how to get it. */
export function namedBin(): string {
  const bin = findBinary('NAMED_BIN', 'named');
  if (bin === undefined) throw new Error(`named not found. ${INSTRUCTIONS}`);
  return bin;
}

/** The `nsupdate` binary: `$NSUPDATE_BIN`, else `nsupdate` on PATH. @throws Error saying how to get it. */
export function nsupdateBin(): string {
  const bin = findBinary('NSUPDATE_BIN', 'nsupdate');
  if (bin === undefined) throw new Error(`nsupdate not found. ${INSTRUCTIONS}`);
  return bin;
}

/** Options of {@link startDnsServer}. */
export interface DnsServerOptions {
  /** The zone served, absolute; default `sdkit.test.`. */
  zone?: string;
  /**
   * Records the zone starts with, as zone-file lines (names relative to the zone, or absolute with a trailing
   * dot), e.g. `'_http._tcp 5 IN SRV 10 5 8080 a'`, `'a 5 IN A 127.0.0.1'`. The SOA and NS records are added.
   */
  records?: string[];
  /** The SOA's `minimum` (the negative-caching TTL of NXDOMAIN/NODATA answers), in seconds; default 1. */
  negativeTtlSeconds?: number;
  /** Name for the temp dir and messages (letters, digits, `-`, `_`); default `dns`. */
  name?: string;
}

/** One BIND process serving {@link zone} on loopback, restartable on the same port. */
export interface DnsServer extends AsyncDisposable {
  /** The zone served, absolute (`sdkit.test.`). */
  readonly zone: string;
  /** The port, on UDP and TCP, on 127.0.0.1 and ::1. Stable across restarts. */
  readonly port: number;
  /** `127.0.0.1:<port>`. */
  readonly server: string;
  /** `[::1]:<port>`. */
  readonly server6: string;
  /** Process id; undefined while stopped. */
  readonly pid: number | undefined;
  /** named's log (its stderr), the tail of which start-up failures quote. */
  readonly logFile: string;
  /**
   * Applies one dynamic update (RFC 2136) with nsupdate: `commands` are nsupdate lines such as
   * `'update add _http._tcp.sdkit.test. 2 IN SRV 10 5 8080 a.sdkit.test.'` or `'update delete a.sdkit.test. A'`,
   * sent as one transaction. Resolves once the server has applied it.
   */
  update(...commands: string[]): Promise<void>;
  /**
   * Whether the zone loads: `false` restarts the server with the zone's file missing, so every name in it is
   * answered SERVFAIL; `true` restarts it with the zone (and its dynamic updates) back. Resolves once it answers.
   */
  setZoneLoads(loads: boolean): Promise<void>;
  /** SIGSTOPs the process: it keeps its sockets but answers nothing (queries time out) until {@link resume}. */
  pause(): void;
  /** SIGCONTs a {@link pause}d process. */
  resume(): void;
  /** SIGTERM, await exit (SIGKILL after 10 s). No-op when stopped. */
  stop(): Promise<void>;
  /** SIGKILL, await exit. No-op when stopped. */
  kill(): Promise<void>;
  /** (Re)starts on the same port with the zone and its updates; resolves once it answers. No-op when running. */
  start(): Promise<void>;
  /** Kills the process if running and removes the temp dir. Idempotent; also `[Symbol.asyncDispose]`. */
  close(): Promise<void>;
}

const START_TIMEOUT_MS = 20_000;
const TOKEN_NAME = '_sdkit-token';

class BindServer implements DnsServer {
  readonly zone: string;
  readonly server: string;
  readonly server6: string;
  readonly logFile: string;
  private readonly proc: TrackedProcess;
  private readonly token = randomBytes(8).toString('hex');
  private zoneLoads = true;
  private paused = false;
  /** Size of the log before the current run: what the probe reads starts here. */
  private logOffset = 0;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly dir: TempDir,
    readonly port: number,
    zone: string,
    private readonly records: readonly string[],
    private readonly negativeTtlSeconds: number,
    label: string,
  ) {
    this.zone = zone;
    this.server = `127.0.0.1:${port}`;
    this.server6 = `[::1]:${port}`;
    this.logFile = join(dir.path, 'named.log');
    this.proc = new TrackedProcess(
      `named ${label} (${this.server})`,
      namedBin(),
      // -g: foreground, log to stderr; -n 1: one worker thread (tests share two cores).
      () => ['-g', '-n', '1', '-c', join(dir.path, 'named.conf')],
      this.logFile,
      { logs: () => logTail(this.logFile, 30) },
    );
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** Writes the zone file (only at first start: later the zone lives on in named's journal). */
  async writeZone(): Promise<void> {
    const zone = this.zone;
    const lines = [
      `$ORIGIN ${zone}`,
      '$TTL 5',
      `@ IN SOA ns.${zone} admin.${zone} 1 60 60 600 ${this.negativeTtlSeconds}`,
      `@ IN NS ns.${zone}`,
      'ns IN A 127.0.0.1',
      `${TOKEN_NAME} IN TXT "${this.token}"`,
      ...this.records,
      '',
    ];
    await writeFile(join(this.dir.path, 'zone.db'), lines.join('\n'));
  }

  private async writeConfig(): Promise<void> {
    const dir = this.dir.path;
    const conf = `options {
  directory "${dir}";
  pid-file none;
  listen-on port ${this.port} { 127.0.0.1; };
  listen-on-v6 port ${this.port} { ::1; };
  recursion no;
  dnssec-validation no;
  session-keyfile none;
  managed-keys-directory "${dir}";
  notify no;
  // Another named on this port must fail ("address in use"), not share it silently.
  reuseport no;
};
controls { };
zone "${this.zone}" {
  type primary;
  file "${this.zoneLoads ? 'zone.db' : 'missing-zone.db'}";
  allow-update { 127.0.0.1; ::1; };
};
`;
    await writeFile(join(dir, 'named.conf'), conf);
  }

  /**
   * Whether it answers on 127.0.0.1 and ::1: this server's token when the zone loads, SERVFAIL when it does not.
   * @throws PortInUseError when this run's log says the port is taken.
   */
  private async probe(): Promise<boolean> {
    const log = (await readFile(this.logFile).catch(() => Buffer.alloc(0)))
      .subarray(this.logOffset)
      .toString();
    if (/address in use/i.test(log)) {
      throw new PortInUseError(`named on port ${this.port}: address in use\n${await logTail(this.logFile)}`);
    }
    const answers = await Promise.all(
      [this.server, this.server6].map(async (server) => {
        const resolver = new Resolver({ timeout: 500, tries: 1 });
        resolver.setServers([server]);
        try {
          return (await resolver.resolveTxt(`${TOKEN_NAME}.${this.zone}`)).flat().join('');
        } catch (error) {
          return String((error as { code?: unknown }).code);
        }
      }),
    );
    return answers.every((a) => a === (this.zoneLoads ? this.token : 'ESERVFAIL'));
  }

  async start(): Promise<void> {
    if (this.proc.running) return;
    if (this.closing) throw new Error(`${this.proc.label} is closed`);
    await this.writeConfig();
    this.paused = false;
    this.logOffset = (await stat(this.logFile).catch(() => ({ size: 0 }))).size;
    this.proc.launch();
    await this.proc.awaitReady(() => this.probe(), START_TIMEOUT_MS);
  }

  async setZoneLoads(loads: boolean): Promise<void> {
    await this.stop();
    this.zoneLoads = loads;
    await this.start();
  }

  pause(): void {
    const pid = this.proc.pid;
    if (pid === undefined) throw new Error(`${this.proc.label} is not running`);
    process.kill(pid, 'SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    const pid = this.proc.pid;
    if (pid !== undefined && this.paused) process.kill(pid, 'SIGCONT');
    this.paused = false;
  }

  async stop(): Promise<void> {
    this.resume();
    await this.proc.stop();
  }

  async kill(): Promise<void> {
    await this.proc.kill();
    this.paused = false;
  }

  update(...commands: string[]): Promise<void> {
    const script = [`server 127.0.0.1 ${this.port}`, `zone ${this.zone}`, ...commands, 'send', ''].join('\n');
    return new Promise((resolve, reject) => {
      const child = spawn(nsupdateBin(), ['-t', '5'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      child.stderr.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      child.on('error', reject);
      child.on('exit', (code, signal) => {
        if (code === 0) resolve();
        else {
          reject(
            new Error(`nsupdate failed (${signal ?? `exit ${code}`}): ${output.trim()}\nscript:\n${script}`),
          );
        }
      });
      child.stdin.end(script);
    });
  }

  close(): Promise<void> {
    this.closing ??= this.kill().then(() => this.dir.remove());
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Starts BIND serving `options.zone` (default `sdkit.test.`) on a free loopback port in a fresh temp dir, and
 * resolves once it answers on 127.0.0.1 and ::1. Retries with a new port if another process took it. Rejects
 * with the log tail if it cannot start, and with instructions if named or nsupdate is missing.
 */
export async function startDnsServer(options: DnsServerOptions = {}): Promise<DnsServer> {
  const label = options.name ?? 'dns';
  if (!/^[\w-]{1,40}$/.test(label)) {
    throw new TypeError(
      `startDnsServer: name must be 1-40 letters, digits, '-' or '_', got ${JSON.stringify(label)}`,
    );
  }
  const zone = options.zone ?? 'sdkit.test.';
  if (!/^([A-Za-z0-9_-]+\.)+$/.test(zone)) {
    throw new TypeError(
      `startDnsServer: zone must be an absolute name such as "sdkit.test.", got ${JSON.stringify(zone)}`,
    );
  }
  nsupdateBin();
  return startOnFreePorts(
    async () => {
      const server = new BindServer(
        await makeTempDir(`dns-${label}`),
        await freePort(),
        zone,
        options.records ?? [],
        options.negativeTtlSeconds ?? 1,
        label,
      );
      await server.writeZone();
      return server;
    },
    (server) => server.start(),
  );
}
