import type { ConnectedTarget, PreparedTarget } from './backend.js';
import type { CliIo } from './cli-io.js';
import type { CliLogger } from './cli-logger.js';
import type { CliTarget } from './parse-target.js';

/** What a command runs with: a connected target and how to talk to the user. */
export interface CommandContext {
  readonly io: CliIo;
  readonly target: CliTarget;
  readonly prepared: PreparedTarget;
  readonly connected: ConnectedTarget;
  /** `--json`. */
  readonly json: boolean;
  /** `--timeout` (ls, resolve), in ms. */
  readonly timeoutMs: number;
  readonly logger: CliLogger;
}

/** Writes `sdkit: <text>` and a newline to stderr. */
export function note(io: CliIo, text: string): void {
  io.stderr.write(`sdkit: ${text}\n`);
}

/** `ms` for messages: `10 s`, `1.5 s`, `500 ms`. */
export function formatMs(ms: number): string {
  return ms >= 1000 ? `${Number((ms / 1000).toFixed(3))} s` : `${ms} ms`;
}
