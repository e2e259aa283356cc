import type { Logger } from '@sdkit/sd-core';
import { printable } from './printable.js';

type Level = 'debug' | 'info' | 'warn' | 'error';

/**
 * What instancers log when their source starts failing ("sdkit: etcd watch failing; retrying", "sdkit:
 * Kubernetes list/watch failing; retrying", "sdkit: DNS lookup failing; retrying"): the same error reaches the commands as the `error` of an event, and
 * they show it, so these lines would only repeat it.
 */
const SHOWN_AS_EVENTS = / failing; retrying$/;

/**
 * The Logger the CLI hands to the backends: `warn` and `error` become one line each (`sdkit: warning: <message>
 * (<key>: <reason>)`), written to stderr, or to whatever {@link redirect} says (the live table shows them
 * itself); `debug` and `info` are dropped, and so are an instancer's "failing; retrying" warnings (the commands
 * show the error of the event). Backends never log credentials; nothing else is added here.
 */
export class CliLogger implements Logger {
  #write: (line: string) => void;
  #muted = false;
  /** Messages of the last error lines written, so a caller can tell it has been said already. */
  readonly #errors: string[] = [];

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

  /** Whether an `error` line with this message (`sdkit: ` prefix aside) was written lately. */
  said(message: string): boolean {
    return this.#errors.includes(message.replace(/^sdkit: /, ''));
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
    if (this.#muted || (level === 'warn' && msg !== undefined && SHOWN_AS_EVENTS.test(msg))) return;
    const fields = obj as { err?: unknown; key?: unknown; reason?: unknown };
    const details: string[] = [];
    if (typeof fields.key === 'string') details.push(`key ${JSON.stringify(fields.key)}`);
    if (typeof fields.reason === 'string') details.push(fields.reason);
    if (fields.err instanceof Error) details.push(fields.err.message);
    const text = (msg ?? '').replace(/^sdkit: /, '');
    if (level === 'error') {
      this.#errors.push(text);
      if (this.#errors.length > 10) this.#errors.shift();
    }
    const line = `sdkit: ${level === 'warn' ? 'warning' : 'error'}: ${text}${details.length ? ` (${details.join('; ')})` : ''}`;
    this.#write(printable(line));
  }
}
