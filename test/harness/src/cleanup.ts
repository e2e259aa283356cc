/**
 * The harness's safety net for what it starts: every child process and temp dir is registered with (a) a process
 * 'exit' hook and (b) one tiny detached awk watchdog reading a pipe from this process; when this process dies in
 * any way (even SIGKILL) the pipe closes and the watchdog kills the remaining children and removes the temp dirs.
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, rmSync } from 'node:fs';

const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let watchdog: ChildProcess | undefined;
let exitHookInstalled = false;

const WATCHDOG_SCRIPT = `
/^P\\+/ { p[substr($0, 3)] = 1; next }
/^P-/ { delete p[substr($0, 3)]; next }
/^D\\+/ { d[substr($0, 3)] = 1; next }
/^D-/ { delete d[substr($0, 3)]; next }
END {
  for (k in p) system("kill -9 " k " 2>/dev/null")
  for (k in d) system("sleep 0.2; rm -rf '" k "'")
}`;

function tellWatchdog(line: string): void {
  if (!watchdog) {
    try {
      watchdog = spawn('awk', [WATCHDOG_SCRIPT], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
      watchdog.on('error', () => {}); // no awk: the 'exit' hook still works
      watchdog.stdin?.on('error', () => {});
      watchdog.unref();
      (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    } catch {
      return;
    }
  }
  watchdog.stdin?.write(`${line}\n`);
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of liveChildren) {
      try {
        child.kill('SIGKILL');
      } catch {}
    }
    for (const dir of liveDirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {}
    }
  });
}

/** Kills `child` when this process exits, however it exits (unless it exited first). */
export function trackChild(child: ChildProcess): void {
  installExitHook();
  liveChildren.add(child);
  if (child.pid !== undefined) tellWatchdog(`P+${child.pid}`);
  child.once('exit', () => {
    liveChildren.delete(child);
    if (child.pid !== undefined) tellWatchdog(`P-${child.pid}`);
  });
}

/** Removes `dir` when this process exits, however it exits (unless untracked first). */
export function trackDir(dir: string): void {
  installExitHook();
  liveDirs.add(dir);
  if (/^[\w/.-]+$/.test(dir)) tellWatchdog(`D+${dir}`);
}

/** `dir` was removed (or is kept on purpose): forget it. */
export function untrackDir(dir: string): void {
  liveDirs.delete(dir);
  if (/^[\w/.-]+$/.test(dir)) tellWatchdog(`D-${dir}`);
}

/** Where and with what environment {@link spawnTracked} starts a process. */
export interface SpawnTrackedOptions {
  /** Working directory; default: this process's. */
  readonly cwd?: string;
  /** The child's whole environment; default: this process's. */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Starts `bin` with its stdout and stderr appended to `logFile`, tracked by the safety net and unref'd. `exited`
 * resolves (never rejects) once it is gone, with how: `code N`, `signal S`, or `spawn error: …` (no binary).
 */
export function spawnTracked(
  bin: string,
  args: readonly string[],
  logFile: string,
  options: SpawnTrackedOptions = {},
): { child: ChildProcess; exited: Promise<string> } {
  const out = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(bin, args, { stdio: ['ignore', out, out], cwd: options.cwd, env: options.env });
  } finally {
    closeSync(out);
  }
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ? `signal ${signal}` : `code ${code}`));
    child.once('error', (err) => {
      // spawn failure (e.g. ENOENT): no 'exit' follows.
      if (child.pid === undefined) resolve(`spawn error: ${err.message}`);
    });
  });
  trackChild(child);
  child.unref();
  return { child, exited };
}
