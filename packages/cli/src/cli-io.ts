import { readFileSync } from 'node:fs';
import { type Clock, systemClock } from '@sdkit/sd-core';

/** Where `sdkit` writes: `process.stdout` / `process.stderr`, or a fake in tests. */
export interface CliOutput {
  /** Writes `text` as it is (no newline added); the result is ignored. */
  write(text: string): unknown;
  /** Whether this is a terminal (the live table of `watch` and colours need one). */
  readonly isTTY?: boolean | undefined;
  /** The terminal's width, when it is one. */
  readonly columns?: number | undefined;
  /** The terminal's height, when it is one. */
  readonly rows?: number | undefined;
}

/** A signal that asks `sdkit` to stop. */
export type StopSignal = 'SIGINT' | 'SIGTERM';

/**
 * Everything `sdkit` touches of its process, injectable so commands can be tested in-process. {@link processIo}
 * is the real one.
 */
export interface CliIo {
  readonly stdout: CliOutput;
  readonly stderr: CliOutput;
  /** The environment (`ETCDCTL_*`, `KUBECONFIG`, `NO_COLOR`…). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** For `--timeout`; its timers must not hold the process (sd-core's `systemClock`). */
  readonly clock: Clock;
  /** Calls `listener` on every SIGINT and SIGTERM until the returned function is called (idempotent). */
  onSignal(listener: (signal: StopSignal) => void): () => void;
  /** Calls `listener` when the terminal is resized, until the returned function is called (idempotent). */
  onResize(listener: () => void): () => void;
  /**
   * Calls `listener` once stdout's reader has gone away (EPIPE: `sdkit watch … | head -3` after `head` exited),
   * until the returned function is called (idempotent).
   */
  onStdoutClosed(listener: () => void): () => void;
  /** Reads a whole text file (`--password-file`). @throws the file system's error. */
  readTextFile(path: string): string;
}

let stdoutClosed = false;
const stdoutClosedListeners = new Set<() => void>();

/**
 * The real process: `process.stdout`/`stderr`/`env`, `systemClock`, SIGINT/SIGTERM and SIGWINCH listeners that
 * are removed when their caller is done (so they never keep the process alive). A broken stdout pipe (EPIPE) is
 * not an error: listeners of {@link CliIo.onStdoutClosed} are told and later writes are dropped.
 */
export function processIo(): CliIo {
  if (process.stdout.listenerCount('error') === 0) {
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      if (stdoutClosed) return;
      stdoutClosed = true;
      for (const listener of [...stdoutClosedListeners]) listener();
    });
  }
  const stdout: CliOutput = {
    write: (text) => (stdoutClosed ? false : process.stdout.write(text)),
    get isTTY() {
      return process.stdout.isTTY === true;
    },
    get columns() {
      return process.stdout.columns;
    },
    get rows() {
      return process.stdout.rows;
    },
  };
  const stderr: CliOutput = {
    write: (text) => process.stderr.write(text),
    get isTTY() {
      return process.stderr.isTTY === true;
    },
  };
  return {
    stdout,
    stderr,
    env: process.env,
    clock: systemClock,
    onSignal(listener) {
      const onInt = () => listener('SIGINT');
      const onTerm = () => listener('SIGTERM');
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
      return () => {
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
      };
    },
    onResize(listener) {
      process.stdout.on('resize', listener);
      return () => {
        process.stdout.off('resize', listener);
      };
    },
    onStdoutClosed(listener) {
      if (stdoutClosed) {
        queueMicrotask(listener);
        return () => {};
      }
      stdoutClosedListeners.add(listener);
      return () => {
        stdoutClosedListeners.delete(listener);
      };
    },
    readTextFile: (path) => readFileSync(path, 'utf8'),
  };
}
