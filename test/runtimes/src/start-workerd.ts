/**
 * workerd started from a generated config for one module worker on loopback, with NDJSON streams read from it.
 * @module
 */
import { copyFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { basename, join, relative } from 'node:path';
import { freePort, logTail, startOnFreePorts, TrackedProcess, tailLines } from '@sdkit/test-harness';
import { openRecordStream, type RecordStream } from './open-record-stream.js';
import { runtimeBinary } from './runtime-binary.js';
import type { RuntimeProcess } from './runtime-process.js';
import { WORKERD_NO_NODE_FLAGS, workerdConfig } from './workerd-config.js';
import { workspaceRoot } from './workspace-root.js';

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

/**
 * A workerd process serving one worker on loopback. Its log (`--verbose`) has the worker's console and uncaught
 * errors; `close()` also closes the streams opened on it.
 */
export interface WorkerdProcess extends RuntimeProcess {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly configFile: string;
  /** `GET <path>?params=<json>` on the worker, read as NDJSON records; resolves once the headers arrived. */
  openStream(path: string, params: unknown): Promise<RecordStream>;
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

/** Bound for workerd to answer HTTP after its launch. */
const START_TIMEOUT_MS = 20_000;

/** One workerd on its port, its config written; started by {@link startWorkerd}. */
class WorkerdServer implements WorkerdProcess {
  readonly url: string;
  private readonly proc: TrackedProcess;
  private readonly streams = new Set<RecordStream>();
  private startedPid: number | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    bin: string,
    dir: string,
    port: number,
    readonly configFile: string,
    readonly logFile: string,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.proc = new TrackedProcess(
      `workerd (${relative(workspaceRoot, configFile)})`,
      bin,
      () => ['serve', basename(configFile), '--verbose'],
      logFile,
      { cwd: dir, env: { ...process.env, PWD: dir } },
    );
  }

  get pid(): number | undefined {
    return this.startedPid;
  }

  get exited(): Promise<string> {
    return this.proc.exited;
  }

  /** Launches workerd and resolves once it answers HTTP (see `TrackedProcess.awaitReady`). */
  async start(): Promise<void> {
    this.proc.launch();
    this.startedPid = this.proc.pid;
    await this.proc.awaitReady(() => answersHttp(this.url), START_TIMEOUT_MS);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<string> {
    return this.proc.signal(signal);
  }

  logTail(): Promise<string> {
    return tailLines(this.logFile);
  }

  async openStream(path: string, params: unknown): Promise<RecordStream> {
    const stream = await openRecordStream(
      `${this.url}${path}?params=${encodeURIComponent(JSON.stringify(params))}`,
      `workerd (pid ${this.pid ?? '?'}) ${path}`,
      () => logTail(this.logFile),
    );
    this.streams.add(stream);
    return stream;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.streams].map((s) => s.close()));
      await this.kill('SIGKILL');
    })();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
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
  const configFile = join(options.dir, `${name}.capnp`);
  const logFile = join(options.dir, `${name}.log`);
  return startOnFreePorts(
    async () => {
      const port = await freePort();
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
      return new WorkerdServer(bin, options.dir, port, configFile, logFile);
    },
    (workerd) => workerd.start(),
  );
}
