/**
 * A bundled scenario script run in Deno or Bun, with the JSON lines it prints followed as records.
 * @module
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { logTail, TrackedProcess, tailLines } from '@sdkit/test-harness';
import { LogFollower } from './log-follower.js';
import { RecordLog } from './record-log.js';
import { runtimeBinary } from './runtime-binary.js';
import type { RuntimeProcess } from './runtime-process.js';
import type { ScenarioCall } from './scripts/protocol.js';

/** A Deno or Bun process running a bundled scenario; `exited` resolves once its last records are in. */
export interface ScriptProcess extends RuntimeProcess {
  readonly runtime: 'deno' | 'bun';
  /** The JSON lines it printed. Ends when the process exits. */
  readonly records: RecordLog;
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
  const proc = new TrackedProcess(`${runtime} (${call.scenario})`, bin, () => args, logFile, {
    cwd: options.dir,
    env,
  });
  proc.launch();
  const pid = proc.pid;
  const records = new RecordLog(`${runtime} (pid ${pid ?? '?'}, ${call.scenario})`, () => logTail(logFile));
  const follower = new LogFollower(logFile, records);
  const done = proc.exited.then(async (how) => {
    await follower.stop();
    records.end(`exited (${how})`);
    return how;
  });
  let closing: Promise<void> | undefined;
  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<string> => {
    await proc.signal(signal);
    return done;
  };
  const close = (): Promise<void> => {
    closing ??= kill('SIGKILL').then(() => {});
    return closing;
  };
  return {
    runtime,
    pid,
    logFile,
    records,
    exited: done,
    kill,
    logTail: () => tailLines(logFile),
    close,
    [Symbol.asyncDispose]: close,
  };
}
