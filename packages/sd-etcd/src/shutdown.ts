import { constants } from 'node:os';
import { type Clock, type Logger, type Registrar, silentLogger, systemClock } from '@sdkit/sd-core';

/**
 * The part of Node's `process` that {@link deregisterOnSignals} uses; `process` itself by default. Injectable so
 * the shutdown sequence can be tested without real signals.
 */
export interface SignalProcess {
  readonly pid: number;
  exitCode?: number | string | null | undefined;
  /** Adds a listener for `event`, as `process.on`. */
  on(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  /** Removes a listener added with {@link on}, as `process.off`. */
  off(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  /** How many listeners `event` has, as `process.listenerCount`. */
  listenerCount(event: NodeJS.Signals): number;
  /** Sends `signal` to process `pid`, as `process.kill` (to die by the signal once deregistered). */
  kill(pid: number, signal: NodeJS.Signals): unknown;
}

/** Options of {@link deregisterOnSignals}. */
export interface DeregisterOnSignalsOptions {
  /** Signals to handle. Default `['SIGTERM', 'SIGINT']`. Non-empty; each a signal name Node knows. */
  readonly signals?: readonly NodeJS.Signals[];
  /**
   * After deregistering (and `drain`), end the process the way the signal would have: the handlers are removed
   * and the signal is raised again, so the default action kills the process (exit status 128 + signal number,
   * "killed by SIGTERM" to a parent) — unless other code listens for that signal too, in which case it is left
   * to that code to exit, with `process.exitCode` set to 128 + signal number if it was unset. Default `true`.
   * With `false`, only deregisters (the handlers stay installed until disposed; later signals do nothing more).
   */
  readonly exit?: boolean;
  /**
   * Bound, in ms, for deregistering and `drain` together; when it passes, the process exits anyway (a warning is
   * logged; keys not deleted expire with their lease TTL). Default 5000.
   */
  readonly timeoutMs?: number;
  /**
   * Runs after every registrar is deregistered and before the exit: the place to stop taking work and finish
   * in-flight requests (e.g. `() => server.close()`, or a short sleep so clients notice the deregistration).
   * Errors are logged. Counted in `timeoutMs`.
   */
  readonly drain?: (signal: NodeJS.Signals) => void | Promise<void>;
  /** Default silent. */
  readonly logger?: Logger;
  /** For the timeout. Default `systemClock`. */
  readonly clock?: Clock;
  /** Default the global `process`. For tests. */
  readonly process?: SignalProcess;
}

/** Removes the handlers {@link deregisterOnSignals} installed. Idempotent. Also `[Symbol.dispose]`. */
export type SignalHandlersDisposer = (() => void) & Disposable;

/**
 * Graceful shutdown for services that announce themselves: on the first of `signals`, deregisters every
 * registrar at once (in parallel), runs `drain`, then exits as the signal would have (see
 * {@link DeregisterOnSignalsOptions.exit}). A second signal while this runs exits at once (with `exit`).
 *
 * Deregistration failures are logged, never thrown; the exit happens anyway (a key that could not be deleted
 * expires with its lease). Returns a disposer that removes the handlers (and cancels a pending exit).
 *
 * ```ts
 * const registrar = new EtcdRegistrar(client, { key, value });
 * await registrar.register();
 * deregisterOnSignals(registrar, { drain: () => new Promise((r) => server.close(() => r())), logger });
 * ```
 *
 * @throws TypeError for a registrar without `deregister`, an empty or unknown signal list, or a bad timeout.
 */
export function deregisterOnSignals(
  registrars: Registrar | readonly Registrar[],
  options: DeregisterOnSignalsOptions = {},
): SignalHandlersDisposer {
  const list: readonly Registrar[] = Array.isArray(registrars) ? registrars : [registrars as Registrar];
  list.forEach((r, i) => {
    if (r === null || typeof r !== 'object' || typeof r.deregister !== 'function') {
      throw new TypeError(`deregisterOnSignals: registrars[${i}] is not a Registrar (no deregister())`);
    }
  });
  const signals = options.signals ?? (['SIGTERM', 'SIGINT'] as const);
  if (!Array.isArray(signals) || signals.length === 0) {
    throw new TypeError(`deregisterOnSignals: signals must be a non-empty array, got ${String(signals)}`);
  }
  for (const s of signals) {
    if (typeof s !== 'string' || !(s in constants.signals)) {
      throw new TypeError(`deregisterOnSignals: unknown signal ${JSON.stringify(s)}`);
    }
  }
  const timeoutMs = options.timeoutMs ?? 5000;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) {
    throw new TypeError(
      `deregisterOnSignals: timeoutMs must be a finite number >= 0, got ${String(timeoutMs)}`,
    );
  }
  if (options.drain !== undefined && typeof options.drain !== 'function') {
    throw new TypeError('deregisterOnSignals: drain must be a function');
  }
  const exit = options.exit ?? true;
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? systemClock;
  const proc: SignalProcess = options.process ?? process;
  const unique = [...new Set(signals)];

  let installed = true;
  let running = false;
  let setExitCode: number | undefined;

  const remove = (): void => {
    if (!installed) return;
    installed = false;
    for (const s of unique) proc.off(s, onSignal);
  };

  const terminate = (signal: NodeJS.Signals): void => {
    remove();
    if (proc.listenerCount(signal) === 0) {
      logger.debug({ signal }, 'sdkit: re-raising the signal');
      proc.kill(proc.pid, signal);
    } else {
      logger.debug({ signal }, 'sdkit: other handlers listen for the signal; leaving the exit to them');
    }
  };

  const shutdown = async (signal: NodeJS.Signals): Promise<void> => {
    let cancelTimer: (() => void) | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      cancelTimer = clock.setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const work = (async () => {
      const results = await Promise.allSettled(list.map((r) => r.deregister()));
      results.forEach((r, i) => {
        if (r.status === 'rejected') {
          logger.warn({ err: r.reason, registrar: i }, 'sdkit: deregistration failed during shutdown');
        }
      });
      if (options.drain) {
        try {
          await options.drain(signal);
        } catch (err) {
          logger.warn({ err }, 'sdkit: drain failed during shutdown');
        }
      }
      return 'done' as const;
    })();
    const outcome = await Promise.race([work, timedOut]);
    cancelTimer?.();
    if (outcome === 'timeout') {
      logger.warn({ signal, timeoutMs }, 'sdkit: shutdown timed out; exiting anyway');
    } else {
      logger.info({ signal }, 'sdkit: deregistered; shutting down');
    }
    if (exit && installed) terminate(signal);
  };

  function onSignal(signal: NodeJS.Signals): void {
    if (running) {
      if (exit) {
        logger.warn({ signal }, 'sdkit: second signal during shutdown; exiting now');
        terminate(signal);
      }
      return;
    }
    running = true;
    logger.info({ signal, registrars: list.length }, 'sdkit: signal received; deregistering');
    if (exit && (proc.exitCode === undefined || proc.exitCode === null)) {
      // If the process ends by itself before we re-raise, it still reports the signal.
      setExitCode = 128 + (constants.signals[signal] ?? 0);
      proc.exitCode = setExitCode;
    }
    void shutdown(signal);
  }

  for (const s of unique) proc.on(s, onSignal);
  const dispose = (): void => {
    if (!installed) return;
    remove();
    // Cancelled during a shutdown: undo the exit code we set.
    if (running && setExitCode !== undefined && proc.exitCode === setExitCode) proc.exitCode = undefined;
  };
  return Object.assign(dispose, { [Symbol.dispose]: dispose });
}
