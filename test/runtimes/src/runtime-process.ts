/**
 * A runtime process the tests started (Deno, Bun or workerd): a harness `TrackedProcess`, so the harness's safety
 * net kills it if the test process dies first.
 */
export interface RuntimeProcess extends AsyncDisposable {
  /** Its process id, as started (kept after it exited). */
  readonly pid: number | undefined;
  /** Its stdout and stderr. */
  readonly logFile: string;
  /** Resolves (never rejects) with how it exited: `code N` or `signal S`. */
  readonly exited: Promise<string>;
  /** Sends `signal` (default SIGKILL) and resolves with how it exited. */
  kill(signal?: NodeJS.Signals): Promise<string>;
  /** The last lines of its output. */
  logTail(): Promise<string>;
  /** Kills it if running. Idempotent; also `[Symbol.asyncDispose]`. */
  close(): Promise<void>;
}
