/**
 * A restartable child process tracked by the harness's safety net, with start-up readiness and graceful stop.
 * @module
 */
import type { ChildProcess } from 'node:child_process';
import { type SpawnTrackedOptions, spawnTracked } from './cleanup.js';
import { logTail } from './log-tail.js';
import { PortInUseError } from './start-on-free-ports.js';

/** Default grace period of {@link TrackedProcess.stop} before SIGKILL. */
export const STOP_GRACE_MS = 10_000;

/** Options of a {@link TrackedProcess}: where and with what environment it runs, and what failures quote. */
export interface TrackedProcessOptions extends SpawnTrackedOptions {
  /** The log section of start-up failures; default {@link logTail} of the log file (30 lines). */
  readonly logs?: () => Promise<string>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * One child process, `bin` with `args()` (asked at every launch), started through {@link spawnTracked} with its
 * stdout and stderr appended to `logFile`, and launchable again once it has exited. At most one process runs at a
 * time; `label` names it in errors.
 */
export class TrackedProcess {
  private child: ChildProcess | undefined;
  private exit: Promise<string> = Promise.resolve('');
  private lastExit = '';
  private readonly spawnOptions: SpawnTrackedOptions;
  private readonly logs: () => Promise<string>;

  constructor(
    readonly label: string,
    private readonly bin: string,
    private readonly args: () => readonly string[],
    readonly logFile: string,
    options: TrackedProcessOptions = {},
  ) {
    const { logs, ...spawnOptions } = options;
    this.spawnOptions = spawnOptions;
    this.logs = logs ?? (() => logTail(logFile));
  }

  /** Process id; undefined while not running. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Whether a launched process has not exited yet. */
  get running(): boolean {
    return this.child !== undefined;
  }

  /** How the last process ended (`code N`, `signal S` or `spawn error: …`); `''` while running or before any. */
  get exitInfo(): string {
    return this.lastExit;
  }

  /**
   * Resolves (never rejects) with {@link exitInfo} once the current process has exited and is no longer
   * {@link running}; before the first launch, at once with `''`.
   */
  get exited(): Promise<string> {
    return this.exit;
  }

  /** Spawns the process (no waiting). No-op while one is running. */
  launch(): void {
    if (this.child) return;
    const { child, exited } = spawnTracked(this.bin, this.args(), this.logFile, this.spawnOptions);
    this.child = child;
    this.lastExit = '';
    this.exit = exited.then((how) => {
      if (this.child === child) this.child = undefined;
      this.lastExit = how;
      return how;
    });
  }

  /**
   * Resolves once `probe` says yes (asked at once, then 50 ms after each no). Rejects when the process exits first
   * — with a {@link PortInUseError} when the logs say `address already in use` — or after `timeoutMs`; the
   * message has `label`, how it exited, and the logs.
   */
  async awaitReady(probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    if (!this.child) throw new Error(`${this.label} is not running`);
    let gone = false;
    const exited = this.exit.then(() => {
      gone = true;
    });
    while (Date.now() < deadline && !gone) {
      if (await probe()) return;
      await Promise.race([sleep(50), exited]);
    }
    const logs = await this.logs();
    if (gone) {
      const message = `${this.label} exited during start-up (${this.lastExit})\n${logs}`;
      if (/address already in use/i.test(logs)) throw new PortInUseError(message);
      throw new Error(message);
    }
    throw new Error(`${this.label} not ready within ${timeoutMs} ms\n${logs}`);
  }

  /**
   * Sends `sig`, then SIGKILL if it has not exited after `escalateAfterMs` (when given), and resolves with how it
   * exited once it has. When not running: at once, with how the last process exited.
   */
  async signal(sig: NodeJS.Signals, escalateAfterMs?: number): Promise<string> {
    const child = this.child;
    if (!child) return this.lastExit;
    child.ref(); // keep the loop alive while we await the exit
    child.kill(sig);
    if (escalateAfterMs !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        this.exit.then(() => false),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(true), escalateAfterMs);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) child.kill('SIGKILL');
    }
    return this.exit;
  }

  /** SIGTERM, then SIGKILL after `graceMs` (default 10 s); resolves with how it exited. No-op when not running. */
  stop(graceMs = STOP_GRACE_MS): Promise<string> {
    return this.signal('SIGTERM', graceMs);
  }

  /** SIGKILL; resolves with how it exited. No-op when not running. */
  kill(): Promise<string> {
    return this.signal('SIGKILL');
  }
}
