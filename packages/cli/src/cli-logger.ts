import type { Logger } from '@sdkit/sd-core';
import { printable } from './printable.js';

type Level = 'debug' | 'info' | 'warn' | 'error';

/**
 * The Logger the CLI hands to the backends: `warn` and `error` become one line each (`sdkit: warning: <message>
 * (<key>: <reason>)`), written to stderr, or to whatever {@link redirect} says (the live table shows them
 * itself); `debug` and `info` are dropped. Backends never log credentials; nothing else is added here.
 */
export class CliLogger implements Logger {
  #write: (line: string) => void;
  #muted = false;

  constructor(write: (line: string) => void) {
    this.#write = write;
  }

  /** Sends later lines to `write` instead. */
  redirect(write: (line: string) => void): void {
    this.#write = write;
  }

  /** Drops lines until {@link unmute}. */
  mute(): void {
    this.#muted = true;
  }

  /** Writes lines again. */
  unmute(): void {
    this.#muted = false;
  }

  debug(): void {}
  info(): void {}
  warn(obj: object, msg?: string): void {
    this.#log('warn', obj, msg);
  }
  error(obj: object, msg?: string): void {
    this.#log('error', obj, msg);
  }

  #log(level: Level, obj: object, msg: string | undefined): void {
    if (this.#muted) return;
    const fields = obj as { err?: unknown; key?: unknown; reason?: unknown };
    const details: string[] = [];
    if (typeof fields.key === 'string') details.push(`key ${JSON.stringify(fields.key)}`);
    if (typeof fields.reason === 'string') details.push(fields.reason);
    if (fields.err instanceof Error) details.push(fields.err.message);
    const text = (msg ?? '').replace(/^sdkit: /, '');
    const line = `sdkit: ${level === 'warn' ? 'warning' : 'error'}: ${text}${details.length ? ` (${details.join('; ')})` : ''}`;
    this.#write(printable(line));
  }
}
