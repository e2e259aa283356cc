/**
 * Real Deno, Bun and workerd processes for tests: where their binaries are (the npm packages `deno`, `bun` and
 * `workerd`, through their per-platform packages, so no install script has to run), one-file ESM bundles of the
 * runtime-side scripts (esbuild, for all three runtimes), a script run in Deno or Bun with its JSON lines followed,
 * and workerd started from a generated capnp config, with NDJSON streams read from its worker. Every process is
 * started through the harness's `spawnTracked()` and every directory is tracked, so nothing outlives the tests.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { type FSWatcher, statSync, watch, writeFileSync } from 'node:fs';
import { copyFile, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';
import {
  DEFAULT_WAIT_MS,
  describeValue,
  eventually,
  freePort,
  type SubscribableLike,
  spawnTracked,
  trackDir,
  untrackDir,
  waitFor,
} from '@sdkit/test-harness';
import { buildSync } from 'esbuild';
import type { RuntimeRecord, ScenarioCall } from './scripts/protocol.js';

export type { RuntimeRecord, ScenarioCall } from './scripts/protocol.js';

/** The runtimes this package runs. */
export type RuntimeName = 'deno' | 'bun' | 'workerd';

/** The workspace's root directory. */
export const workspaceRoot: string = fileURLToPath(new URL('../../../', import.meta.url));
const scriptsDir = fileURLToPath(new URL('./scripts/', import.meta.url));
const require = createRequire(import.meta.url);

// ---------------------------------------------------------------------------------------------------------------
// Binaries

interface BinarySpec {
  readonly title: string;
  readonly envVar: string;
  /** The npm package (a devDependency of this package) whose optional dependencies carry the binaries. */
  readonly npmPackage: string;
  /** `platform-arch` → [platform package, binary path inside it]. */
  readonly platforms: Readonly<Record<string, readonly [string, string]>>;
}

const BINARIES: Readonly<Record<RuntimeName, BinarySpec>> = {
  deno: {
    title: 'Deno',
    envVar: 'DENO_BIN',
    npmPackage: 'deno',
    platforms: {
      'linux-x64': ['@deno/linux-x64-glibc', 'deno'],
      'linux-arm64': ['@deno/linux-arm64-glibc', 'deno'],
      'darwin-x64': ['@deno/darwin-x64', 'deno'],
      'darwin-arm64': ['@deno/darwin-arm64', 'deno'],
    },
  },
  bun: {
    title: 'Bun',
    envVar: 'BUN_BIN',
    npmPackage: 'bun',
    platforms: {
      'linux-x64': ['@oven/bun-linux-x64', 'bin/bun'],
      'linux-arm64': ['@oven/bun-linux-aarch64', 'bin/bun'],
      'darwin-x64': ['@oven/bun-darwin-x64', 'bin/bun'],
      'darwin-arm64': ['@oven/bun-darwin-aarch64', 'bin/bun'],
    },
  },
  workerd: {
    title: 'workerd',
    envVar: 'WORKERD_BIN',
    npmPackage: 'workerd',
    platforms: {
      'linux-x64': ['@cloudflare/workerd-linux-64', 'bin/workerd'],
      'linux-arm64': ['@cloudflare/workerd-linux-arm64', 'bin/workerd'],
      'darwin-x64': ['@cloudflare/workerd-darwin-64', 'bin/workerd'],
      'darwin-arm64': ['@cloudflare/workerd-darwin-arm64', 'bin/workerd'],
    },
  },
};

/** A runtime binary that answered `--version`. */
export interface RuntimeBinary {
  readonly runtime: RuntimeName;
  readonly path: string;
  /** First line of `--version`. */
  readonly version: string;
}

const found = new Map<RuntimeName, RuntimeBinary>();

function howToGet(spec: BinarySpec, platformPackage: string | undefined): string {
  const carrier = platformPackage
    ? `its platform package ${platformPackage} carries the binary`
    : `it has no binary for ${process.platform}-${process.arch} here`;
  return (
    `Get it with \`pnpm install\` at the workspace root: @sdkit/test-runtimes depends on the npm package ` +
    `\`${spec.npmPackage}\`, and ${carrier} (no install script needs to run). ` +
    `Or point ${spec.envVar} at a ${spec.title} binary.`
  );
}

/**
 * The binary of `runtime`: `$DENO_BIN` / `$BUN_BIN` / `$WORKERD_BIN` if set, else the one in the npm package's
 * per-platform package (resolved from this package, bypassing the npm package's `bin` wrapper, so the process
 * tests start and kill is the runtime itself). Throws, saying how to get it, when there is none or it does not
 * run. Checked once per process.
 */
export function runtimeBinary(runtime: RuntimeName): RuntimeBinary {
  const cached = found.get(runtime);
  if (cached) return cached;
  const spec = BINARIES[runtime];
  const platformKey = `${process.platform}-${process.arch}`;
  const platformPackage = spec.platforms[platformKey]?.[0];
  let path = process.env[spec.envVar];
  if (!path) {
    const entry = spec.platforms[platformKey];
    if (!entry) {
      throw new Error(`${spec.title} is needed by the runtime tests. ${howToGet(spec, undefined)}`);
    }
    try {
      const npmPackageJson = require.resolve(`${spec.npmPackage}/package.json`);
      const platformJson = createRequire(npmPackageJson).resolve(`${entry[0]}/package.json`);
      path = join(dirname(platformJson), entry[1]);
    } catch (err) {
      throw new Error(
        `${spec.title} is needed by the runtime tests, but ${entry[0]} is not installed ` +
          `(${err instanceof Error ? err.message.split('\n')[0] : String(err)}). ${howToGet(spec, platformPackage)}`,
      );
    }
  }
  let version: string;
  try {
    version = execFileSync(path, ['--version'], { encoding: 'utf8', timeout: 20_000, stdio: 'pipe' }).split(
      '\n',
    )[0]!;
  } catch (err) {
    throw new Error(
      `${spec.title} is needed by the runtime tests, but ${path} --version failed: ` +
        `${err instanceof Error ? err.message.split('\n')[0] : String(err)}. ${howToGet(spec, platformPackage)}`,
    );
  }
  const binary = { runtime, path, version: version.trim() };
  found.set(runtime, binary);
  return binary;
}

// ---------------------------------------------------------------------------------------------------------------
// Temp dirs

/** A temp dir, tracked by the harness's safety net until `remove()`. */
export interface TempDir extends AsyncDisposable {
  readonly path: string;
  remove(): Promise<void>;
}

/** Makes a tracked temp dir named `sdkit-<name>-…`. */
export async function makeTempDir(name: string): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), `sdkit-${name}-`));
  trackDir(path);
  let removing: Promise<void> | undefined;
  const remove = (): Promise<void> => {
    removing ??= rm(path, { recursive: true, force: true }).then(() => untrackDir(path));
    return removing;
  };
  return { path, remove, [Symbol.asyncDispose]: remove };
}

// ---------------------------------------------------------------------------------------------------------------
// Bundles

/** Which scenarios a bundle runs: the plain-`fetch` stand-in, or sdkit's `@sdkit/sd-etcd/http`. */
export type Implementation = 'standin' | 'sdkit';

/** Where a bundle runs: a command line (Deno, Bun) or a module worker (workerd). */
export type BundleHost = 'cli' | 'worker';

const IMPLEMENTATION_MODULES: Readonly<Record<Implementation, string>> = {
  standin: './standin.ts',
  sdkit: './sdkit.ts',
};

function bundleEntry(implementation: Implementation, host: BundleHost): string {
  const scenarios = `import { ${implementation} as scenarios } from '${IMPLEMENTATION_MODULES[implementation]}';`;
  return host === 'cli'
    ? `import { runCli } from './cli-host.ts';\n${scenarios}\nvoid runCli(scenarios);\n`
    : `import { scenarioWorker } from './worker-host.ts';\n${scenarios}\nexport default scenarioWorker(scenarios);\n`;
}

/**
 * Throws when a workspace package's `dist` file in the bundle is older than its source: the bundle would test
 * stale code.
 */
function checkFresh(inputs: readonly string[]): void {
  const stale: string[] = [];
  for (const input of inputs) {
    const m = /^(packages\/[^/]+)\/dist\/(.+)\.js$/.exec(input);
    if (!m) continue;
    const source = join(workspaceRoot, m[1]!, 'src', `${m[2]}.ts`);
    try {
      if (statSync(source).mtimeMs > statSync(join(workspaceRoot, input)).mtimeMs) stale.push(input);
    } catch {}
  }
  if (stale.length > 0) {
    throw new Error(
      `the runtime tests bundle the built packages, and these are older than their sources: ${stale.join(', ')}. ` +
        'Run `pnpm turbo run build --filter=@sdkit/test-runtimes...` (or `pnpm build`) first.',
    );
  }
}

/**
 * Bundles the scenarios of `implementation` for `host` into one ESM file `outfile` (esbuild, platform `neutral`:
 * a Node built-in anywhere in the graph fails the build). Workspace packages resolve to their built `dist`, as a
 * user's bundler would see them; a missing or stale `dist` throws, saying to build. Returns `outfile`.
 */
export function bundleScenarios(implementation: Implementation, host: BundleHost, outfile: string): string {
  let result: ReturnType<typeof buildSync<{ metafile: true }>>;
  try {
    result = buildSync({
      stdin: {
        contents: bundleEntry(implementation, host),
        resolveDir: scriptsDir,
        sourcefile: `${implementation}-${host}-entry.ts`,
        loader: 'ts',
      },
      absWorkingDir: workspaceRoot,
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      mainFields: ['module', 'main'],
      conditions: ['workerd', 'worker', 'browser'],
      target: 'es2022',
      outfile,
      metafile: true,
      logLevel: 'silent',
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const hint = /Could not resolve "@sdkit\//.test(message)
      ? '\nThe runtime tests bundle the built packages: run `pnpm turbo run build --filter=@sdkit/test-runtimes...` (or `pnpm build`) first.'
      : '';
    throw new Error(`bundling the ${implementation} scenarios for ${host} failed: ${message}${hint}`);
  }
  checkFresh(Object.keys(result.metafile.inputs));
  return outfile;
}

// ---------------------------------------------------------------------------------------------------------------
// Records

/**
 * The records a scenario reported, in order. `from(i)` replays the records from index `i` and then follows new
 * ones, so a test can take `count` before it acts and wait for the reaction without a race.
 */
export class RecordLog {
  private readonly list: RuntimeRecord[] = [];
  private readonly listeners = new Set<{ next: (r: RuntimeRecord) => void; complete: () => void }>();
  private endedWith: string | undefined;

  constructor(
    /** What produced the records, for messages. */
    readonly source: string,
    /** Context appended to a failed wait (e.g. a log tail). */
    private readonly context: () => Promise<string> = async () => '',
  ) {}

  /** Number of records so far. */
  get count(): number {
    return this.list.length;
  }

  /** Every record so far. */
  all(): readonly RuntimeRecord[] {
    return this.list;
  }

  /** Why the source ended, if it did. */
  get ended(): string | undefined {
    return this.endedWith;
  }

  push(record: RuntimeRecord): void {
    if (this.endedWith !== undefined) return;
    this.list.push(record);
    for (const l of [...this.listeners]) l.next(record);
  }

  end(reason: string): void {
    if (this.endedWith !== undefined) return;
    this.endedWith = reason;
    for (const l of [...this.listeners]) l.complete();
    this.listeners.clear();
  }

  /** Records from index `from` on, then new ones; completes when the source ends. */
  from(from = 0): SubscribableLike<RuntimeRecord> {
    return {
      subscribe: (observer) => {
        let closed = false;
        const listener = {
          next: (r: RuntimeRecord) => {
            if (!closed) observer.next(r);
          },
          complete: () => {
            if (!closed) observer.complete();
          },
        };
        for (const r of this.list.slice(from)) {
          if (closed) break;
          listener.next(r);
        }
        if (this.endedWith !== undefined) listener.complete();
        else this.listeners.add(listener);
        return {
          unsubscribe: () => {
            closed = true;
            this.listeners.delete(listener);
          },
        };
      },
    };
  }

  /**
   * The first record at index `from` or later that matches; rejects after `timeoutMs`, or when the source ends or
   * reports `failed` first, with the records seen and the source's context (log tail) in the message.
   */
  async waitFor<R extends RuntimeRecord>(
    predicate: (r: RuntimeRecord) => r is R,
    what: string,
    options?: { from?: number; timeoutMs?: number },
  ): Promise<R>;
  async waitFor(
    predicate: (r: RuntimeRecord) => boolean,
    what: string,
    options?: { from?: number; timeoutMs?: number },
  ): Promise<RuntimeRecord>;
  async waitFor(
    predicate: (r: RuntimeRecord) => boolean,
    what: string,
    options: { from?: number; timeoutMs?: number } = {},
  ): Promise<RuntimeRecord> {
    const from = options.from ?? 0;
    try {
      const record = await waitFor(
        this.from(from),
        (r) => r.type === 'failed' || predicate(r),
        `${what} from ${this.source}`,
        options.timeoutMs ?? DEFAULT_WAIT_MS,
      );
      if (record.type === 'failed' && !predicate(record)) {
        throw new Error(`${this.source} failed while waiting for ${what}: ${record.message}`);
      }
      return record;
    } catch (err) {
      const seen = this.list
        .slice(from)
        .slice(-12)
        .map((r) => JSON.stringify(r))
        .join('\n');
      const ended = this.endedWith !== undefined ? `\n${this.source} ended: ${this.endedWith}` : '';
      throw new Error(
        `${err instanceof Error ? err.message : String(err)}${ended}\n--- records since index ${from} (last 12) ---\n` +
          `${seen || '(none)'}\n${await this.context()}`,
        { cause: err },
      );
    }
  }

  /** The next `instances` record (from `from`) whose keys are exactly `keys` (sorted). */
  waitForInstances(
    keys: readonly string[],
    options: { from?: number; timeoutMs?: number } = {},
  ): Promise<Extract<RuntimeRecord, { type: 'instances' }>> {
    const want = [...keys].sort();
    return this.waitFor(
      (r): r is Extract<RuntimeRecord, { type: 'instances' }> =>
        r.type === 'instances' && r.keys.length === want.length && r.keys.every((k, i) => k === want[i]),
      `an instancer event with keys ${describeValue(want)}`,
      options,
    );
  }

  /** The next `state` record `state` (from `from`). */
  waitForState(state: string, options: { from?: number; timeoutMs?: number } = {}): Promise<RuntimeRecord> {
    return this.waitFor(
      (r) => r.type === 'state' && r.state === state,
      `registrar state '${state}'`,
      options,
    );
  }
}

/** Parses one output line into a record, or undefined when it is not one (a runtime's own log line). */
function parseRecord(line: string): RuntimeRecord | undefined {
  const text = line.trim();
  if (!text.startsWith('{')) return undefined;
  try {
    const value = JSON.parse(text) as { type?: unknown };
    return typeof value === 'object' && value !== null && typeof value.type === 'string'
      ? (value as RuntimeRecord)
      : undefined;
  } catch {
    return undefined;
  }
}

async function tail(file: string, lines = 30): Promise<string> {
  try {
    const text = (await readFile(file, 'utf8')).trimEnd();
    return text
      .split('\n')
      .slice(-lines)
      .map((l) => (l.length > 400 ? `${l.slice(0, 400)}…` : l))
      .join('\n');
  } catch {
    return '';
  }
}

/**
 * Feeds the records a process appends to `file` into `log`: reads on every change the kernel reports (fs.watch),
 * with a slow backstop read in case a notification is missed, and a last read on `stop()`.
 */
class LogFollower {
  private offset = 0;
  private partial = '';
  private readonly decoder = new StringDecoder('utf8');
  private reading: Promise<void> = Promise.resolve();
  private readonly watcher: FSWatcher;
  private readonly backstop: NodeJS.Timeout;

  constructor(
    private readonly file: string,
    private readonly log: RecordLog,
  ) {
    this.watcher = watch(file, () => this.read());
    this.watcher.on('error', () => {});
    this.watcher.unref();
    this.backstop = setInterval(() => this.read(), 250);
    this.backstop.unref();
  }

  read(): Promise<void> {
    this.reading = this.reading.then(() => this.readNew()).catch(() => {}); // a vanished file: nothing more to read
    return this.reading;
  }

  private async readNew(): Promise<void> {
    const handle = await open(this.file, 'r');
    try {
      const buffer = Buffer.alloc(64 * 1024);
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, this.offset);
        if (bytesRead === 0) break;
        this.offset += bytesRead;
        this.partial += this.decoder.write(buffer.subarray(0, bytesRead));
      }
    } finally {
      await handle.close();
    }
    const lines = this.partial.split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      const record = parseRecord(line);
      if (record) this.log.push(record);
    }
  }

  async stop(): Promise<void> {
    this.watcher.close();
    clearInterval(this.backstop);
    await this.read();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Deno and Bun

/** A Deno or Bun process running a bundled scenario. */
export interface ScriptProcess extends AsyncDisposable {
  readonly runtime: 'deno' | 'bun';
  readonly pid: number | undefined;
  /** The process's stdout and stderr. */
  readonly logFile: string;
  /** The JSON lines it printed. Ends when the process exits. */
  readonly records: RecordLog;
  /** Resolves (never rejects) with how it exited: `code N` or `signal S`. */
  readonly exited: Promise<string>;
  /** Sends `signal` (default SIGKILL) and resolves with how it exited. */
  kill(signal?: NodeJS.Signals): Promise<string>;
  /** The last lines of its output. */
  logTail(): Promise<string>;
  /** Kills it if running. Idempotent; also `[Symbol.asyncDispose]`. */
  close(): Promise<void>;
}

/** Options of {@link runScript}. */
export interface RunScriptOptions {
  /** A directory for the process's log (and Deno's cache dir): the caller's tracked temp dir. */
  readonly dir: string;
  /** `host:port`s the script may connect to (Deno's `--allow-net`; Bun has no permissions). */
  readonly allowNet: readonly string[];
  /** Name for the log file; default: the runtime and the scenario. */
  readonly name?: string;
}

let scriptCounter = 0;

/**
 * Runs the bundled CLI scenario script `bundle` in Deno (`deno run --no-config --no-prompt --allow-net=<hosts>`)
 * or Bun (`bun --no-install`), with `call` as its argument and the runtime binary itself as the tracked child.
 * Returns once it is spawned; its records arrive in `records`.
 */
export function runScript(
  runtime: 'deno' | 'bun',
  bundle: string,
  call: ScenarioCall,
  options: RunScriptOptions,
): ScriptProcess {
  const bin = runtimeBinary(runtime).path;
  const name = options.name ?? `${runtime}-${call.scenario}-${++scriptCounter}`;
  const logFile = join(options.dir, `${name}.log`);
  const env: NodeJS.ProcessEnv = { ...process.env, PWD: options.dir, NO_COLOR: '1', NODE_OPTIONS: '' };
  let args: string[];
  if (runtime === 'deno') {
    env.DENO_DIR = join(options.dir, 'deno-dir');
    env.DENO_NO_UPDATE_CHECK = '1';
    args = ['run', '--no-config', '--no-prompt', `--allow-net=${options.allowNet.join(',')}`, bundle];
  } else {
    env.BUN_RUNTIME_TRANSPILER_CACHE_PATH = '0';
    env.DO_NOT_TRACK = '1';
    args = ['--no-install', bundle];
  }
  args.push(JSON.stringify(call));
  writeFileSync(logFile, ''); // exists before the follower watches it
  const { child, exited } = spawnTracked(bin, args, logFile, { cwd: options.dir, env });
  const logTail = () => tail(logFile);
  const records = new RecordLog(`${runtime} (pid ${child.pid ?? '?'}, ${call.scenario})`, async () => {
    return `--- ${logFile} (tail) ---\n${(await logTail()) || '(empty)'}`;
  });
  const follower = new LogFollower(logFile, records);
  const done = exited.then(async (how) => {
    await follower.stop();
    records.end(`exited (${how})`);
    return how;
  });
  let closing: Promise<void> | undefined;
  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<string> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return done;
  };
  const close = (): Promise<void> => {
    closing ??= kill('SIGKILL').then(() => {});
    return closing;
  };
  return {
    runtime,
    pid: child.pid,
    logFile,
    records,
    exited: done,
    kill,
    logTail,
    close,
    [Symbol.asyncDispose]: close,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// workerd

/** The compatibility date of generated workerd configs (the installed workerd supports dates up to its own). */
export const WORKERD_COMPATIBILITY_DATE = '2026-11-01';

/**
 * Compatibility flags that turn off Node.js compatibility, which recent compatibility dates turn on by default:
 * with them `Buffer`, `process` and `node:*` modules do not exist, so a bundle that needs them fails in workerd.
 */
export const WORKERD_NO_NODE_FLAGS: readonly string[] = ['no_nodejs_compat', 'no_nodejs_compat_v2'];

/** A capnp text literal for `value` (printable ASCII only, which is all a config here needs). */
export function capnpString(value: string): string {
  if (!/^[\x20-\x7e]*$/.test(value)) {
    throw new TypeError(`capnpString: only printable ASCII is supported, got ${JSON.stringify(value)}`);
  }
  return JSON.stringify(value);
}

/** What {@link workerdConfig} writes. */
export interface WorkerdConfigOptions {
  /** The loopback port workerd serves the worker on (`127.0.0.1:<port>`). */
  readonly port: number;
  /** The module worker's file name, next to the config file (capnp `embed` paths are relative to the config). */
  readonly moduleFile: string;
  /** Text bindings (`env.NAME`). */
  readonly bindings?: Readonly<Record<string, string>>;
  readonly compatibilityDate?: string;
  readonly compatibilityFlags?: readonly string[];
}

/**
 * A workerd config: one module worker served on `127.0.0.1:<port>`, whose `fetch()` may reach loopback addresses
 * only (its `globalOutbound` is a network service allowing `local`; workerd's default `internet` service allows
 * `public` addresses only, so `fetch('http://127.0.0.1:…')` would be refused).
 */
export function workerdConfig(options: WorkerdConfigOptions): string {
  const bindings = Object.entries(options.bindings ?? {})
    .map(([name, value]) => `    (name = ${capnpString(name)}, text = ${capnpString(value)}),`)
    .join('\n');
  const flags = (options.compatibilityFlags ?? []).map(capnpString).join(', ');
  return `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .mainWorker),
    (name = "loopback", network = (allow = ["local"])),
  ],
  sockets = [
    (name = "http", address = ${capnpString(`127.0.0.1:${options.port}`)}, http = (), service = "main"),
  ],
);

const mainWorker :Workerd.Worker = (
  modules = [
    (name = ${capnpString(options.moduleFile)}, esModule = embed ${capnpString(options.moduleFile)}),
  ],
  compatibilityDate = ${capnpString(options.compatibilityDate ?? WORKERD_COMPATIBILITY_DATE)},
  compatibilityFlags = [${flags}],
  bindings = [
${bindings}
  ],
  globalOutbound = "loopback",
);
`;
}

/** Options of {@link startWorkerd}. */
export interface StartWorkerdOptions {
  /** The module worker (a one-file ESM bundle); copied next to the generated config. */
  readonly script: string;
  /** A directory for the config, the worker's copy and the log: the caller's tracked temp dir. */
  readonly dir: string;
  /** Text bindings (`env.NAME`). */
  readonly bindings?: Readonly<Record<string, string>>;
  /** Default {@link WORKERD_NO_NODE_FLAGS}. */
  readonly compatibilityFlags?: readonly string[];
  /** Names the files in `dir`; default `workerd-<n>`. */
  readonly name?: string;
}

/** An NDJSON response being read from a worker. */
export interface RecordStream extends AsyncDisposable {
  /** Its records (heartbeats left out). Ends when the response ends or the connection breaks. */
  readonly records: RecordLog;
  /** Closes the connection (the worker notices at its next write). Idempotent; also `[Symbol.asyncDispose]`. */
  close(): Promise<void>;
}

/** A workerd process serving one worker on loopback. */
export interface WorkerdProcess extends AsyncDisposable {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly pid: number | undefined;
  readonly configFile: string;
  /** workerd's stdout and stderr (`--verbose`: the worker's console and uncaught errors). */
  readonly logFile: string;
  /** Resolves (never rejects) with how it exited. */
  readonly exited: Promise<string>;
  /** Sends `signal` (default SIGKILL) and resolves with how it exited. */
  kill(signal?: NodeJS.Signals): Promise<string>;
  logTail(): Promise<string>;
  /** `GET <path>?params=<json>` on the worker, read as NDJSON records; resolves once the headers arrived. */
  openStream(path: string, params: unknown): Promise<RecordStream>;
  /** Kills it if running and closes its streams. Idempotent; also `[Symbol.asyncDispose]`. */
  close(): Promise<void>;
}

let workerdCounter = 0;

/** Resolves whether anything answers HTTP on `url`. */
function answersHttp(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: 1000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(true));
      res.on('error', () => resolve(true));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/**
 * Starts `workerd serve <config> --verbose` for the worker `script` on a free loopback port and resolves once it
 * answers HTTP. Retries with a new port if the port was taken in between; rejects with the log tail if workerd
 * exits or does not answer within 20 s.
 */
export async function startWorkerd(options: StartWorkerdOptions): Promise<WorkerdProcess> {
  const bin = runtimeBinary('workerd').path;
  const name = options.name ?? `workerd-${++workerdCounter}`;
  const moduleFile = `${name}.mjs`;
  await copyFile(options.script, join(options.dir, moduleFile));
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const configFile = join(options.dir, `${name}.capnp`);
    const logFile = join(options.dir, `${name}.log`);
    await writeFile(
      configFile,
      workerdConfig({
        port,
        moduleFile,
        compatibilityFlags: options.compatibilityFlags ?? WORKERD_NO_NODE_FLAGS,
        ...(options.bindings ? { bindings: options.bindings } : {}),
      }),
    );
    await writeFile(logFile, '');
    const { child, exited } = spawnTracked(bin, ['serve', basename(configFile), '--verbose'], logFile, {
      cwd: options.dir,
      env: { ...process.env, PWD: options.dir },
    });
    const url = `http://127.0.0.1:${port}`;
    let exitInfo: string | undefined;
    const gone = exited.then((how) => {
      exitInfo = how;
      return false as const;
    });
    const ready = await Promise.race([
      eventually(() => answersHttp(url), `workerd answering on ${url}`, 20_000).catch(() => false as const),
      gone,
    ]);
    const logTail = () => tail(logFile);
    if (!ready) {
      if (exitInfo === undefined) {
        child.kill('SIGKILL');
        await exited;
      }
      const log = await logTail();
      if (exitInfo !== undefined && /address already in use/i.test(log) && attempt < 4) continue;
      throw new Error(
        `workerd (${relative(workspaceRoot, configFile)}) ${exitInfo ? `exited during start-up (${exitInfo})` : 'did not answer within 20 s'}\n` +
          `--- ${logFile} (tail) ---\n${log || '(empty)'}`,
      );
    }
    const streams = new Set<RecordStream>();
    let closing: Promise<void> | undefined;
    const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<string> => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    };
    const close = (): Promise<void> => {
      closing ??= (async () => {
        await Promise.all([...streams].map((s) => s.close()));
        await kill('SIGKILL');
      })();
      return closing;
    };
    const context = async () => `--- ${logFile} (tail) ---\n${(await logTail()) || '(empty)'}`;
    return {
      url,
      pid: child.pid,
      configFile,
      logFile,
      exited,
      kill,
      logTail,
      close,
      [Symbol.asyncDispose]: close,
      async openStream(path, params) {
        const stream = await openRecordStream(
          `${url}${path}?params=${encodeURIComponent(JSON.stringify(params))}`,
          `workerd (pid ${child.pid ?? '?'}) ${path}`,
          context,
        );
        streams.add(stream);
        return stream;
      },
    };
  }
}

/** Reads `GET url` as NDJSON records (heartbeats left out); resolves once a 200 response's headers arrived. */
export function openRecordStream(
  url: string,
  source: string,
  context: () => Promise<string> = async () => '',
): Promise<RecordStream> {
  return new Promise((resolve, reject) => {
    const records = new RecordLog(source, context);
    const req = http.get(url, { agent: false }, (res) => {
      if (res.statusCode !== 200) {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', async () =>
          reject(new Error(`${source}: HTTP ${res.statusCode}: ${body.slice(0, 500)}\n${await context()}`)),
        );
        return;
      }
      let partial = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          const record = parseRecord(line);
          if (record && record.type !== 'heartbeat') records.push(record);
        }
      });
      res.on('end', () => records.end('the response ended'));
      res.on('error', (err) => records.end(`the response broke: ${err.message}`));
      res.on('close', () => records.end('the connection closed'));
      let closing: Promise<void> | undefined;
      const close = (): Promise<void> => {
        closing ??= new Promise<void>((done) => {
          if (req.destroyed && res.destroyed) done();
          else {
            res.once('close', () => done());
            req.destroy();
          }
        });
        return closing;
      };
      resolve({ records, close, [Symbol.asyncDispose]: close });
    });
    req.on('error', async (err) =>
      reject(new Error(`${source}: ${err.message}\n${await context()}`, { cause: err })),
    );
  });
}
