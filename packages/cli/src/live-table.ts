import type { InstancerEvent } from '@sdkit/sd-core';
import type { CliOutput } from './cli-io.js';
import { clipLine, formatTable } from './format-table.js';
import { printable } from './printable.js';

const ESC = '\u001b[';
const HIDE_CURSOR = `${ESC}?25l`;
const SHOW_CURSOR = `${ESC}?25h`;
const CLEAR_LINE = `${ESC}2K`;
const CLEAR_SCREEN = `${ESC}H${ESC}2J`;
const STYLES = { bold: '1', dim: '2', red: '31', yellow: '33' } as const;
/** Warnings kept under the table. */
const MAX_NOTES = 3;
/** Lines the source's error may take above the table. */
const MAX_ERROR_LINES = 3;

/** Options of {@link LiveTable}. */
export interface LiveTableOptions {
  /** The first line's start, e.g. `sdkit watch etcd://…`. */
  readonly title: string;
  /** Use ANSI colours (a terminal without `$NO_COLOR`). */
  readonly color: boolean;
  /** The wall clock for "updated at"; default `new Date()`. */
  readonly now?: () => Date;
}

/**
 * The terminal view of `sdkit watch`: a title line (instance count, time of the last change), the source's error
 * while it fails (then the table is the last known set), the table of instances, the last warnings, redrawn in place (plain ANSI: cursor up, erase
 * line) on every change. Lines are cut to the terminal's width and the table to its height ("… N more"), so the
 * redraw never scrolls or wraps. {@link close} leaves the last table on screen and the cursor visible.
 */
export class LiveTable implements Disposable {
  readonly #out: CliOutput;
  readonly #options: LiveTableOptions;
  #event: InstancerEvent | undefined;
  #updatedAt: Date | undefined;
  readonly #notes: string[] = [];
  #drawn = 0;
  #closed = false;
  #final = false;

  constructor(out: CliOutput, options: LiveTableOptions) {
    this.#out = out;
    this.#options = options;
    out.write(HIDE_CURSOR);
    this.#draw();
  }

  /** Shows `event` (the whole current set). */
  update(event: InstancerEvent): void {
    this.#event = event;
    this.#updatedAt = (this.#options.now ?? (() => new Date()))();
    this.#draw();
  }

  /** Adds a warning line under the table (the last few are kept). */
  note(line: string): void {
    this.#notes.push(line);
    if (this.#notes.length > MAX_NOTES) this.#notes.shift();
    this.#draw();
  }

  /** Redraws from the top of a cleared screen (after the terminal was resized, its old lines may have wrapped). */
  resize(): void {
    if (this.#closed) return;
    this.#out.write(CLEAR_SCREEN);
    this.#drawn = 0;
    this.#draw();
  }

  /** Stops redrawing; the last view stays (without the "Ctrl-C to stop" line), the cursor is shown again. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#final = true;
    this.#draw();
    this.#closed = true;
    this.#out.write(SHOW_CURSOR);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** The lines of the current view for a `width` × `height` terminal (without styles when `color` is off). */
  lines(width: number, height: number): string[] {
    const style = (name: keyof typeof STYLES, text: string) =>
      this.#options.color ? `${ESC}${STYLES[name]}m${text}${ESC}0m` : text;
    const event = this.#event;
    const lines: string[] = [];
    const count =
      event === undefined
        ? 'waiting for the first answer…'
        : `${plural(event.instances.length, 'instance')}${event.error ? ' (last known)' : ''}`;
    const at = this.#updatedAt ? ` · updated ${this.#updatedAt.toTimeString().slice(0, 8)}` : '';
    lines.push(style('bold', clipLine(`${this.#options.title} · ${count}${at}`, width)));
    if (event?.error) {
      const text = printable(`! ${event.error.name}: ${event.error.message}`);
      lines.push(...wrap(text, width, MAX_ERROR_LINES).map((l) => style('red', l)));
    }
    const footer = [
      ...this.#notes.map((n) => style('yellow', clipLine(n, width))),
      ...(this.#final ? [] : [style('dim', clipLine('Ctrl-C to stop', width))]),
    ];
    if (event !== undefined) {
      const table = formatTable(event.instances, { width });
      const room = Math.max(2, height - 1 - lines.length - footer.length);
      if (table.length <= room) lines.push(...table);
      else {
        const shown = room - 1;
        lines.push(...table.slice(0, shown), clipLine(`… ${table.length - shown} more`, width));
      }
    }
    lines.push(...footer);
    return lines;
  }

  #draw(): void {
    if (this.#closed) return;
    const width = Math.max(20, (this.#out.columns ?? 80) - 1);
    const height = Math.max(6, this.#out.rows ?? 24);
    const lines = this.lines(width, height);
    // Back to the first line of the previous view, then each line erased and written: no "clear to the end of the
    // screen", which some terminals (tmux) turn into scrolling the whole screen into their history.
    let text = `${this.#drawn > 0 ? `${ESC}${this.#drawn}A` : ''}\r`;
    for (const line of lines) text += `${CLEAR_LINE}${line}\n`;
    const left = this.#drawn - lines.length;
    if (left > 0) text += `${`${CLEAR_LINE}\n`.repeat(left)}${ESC}${left}A`;
    this.#out.write(text);
    this.#drawn = lines.length;
  }
}

/** `text` in lines of at most `width` characters (broken at spaces where possible), at most `max` of them. */
function wrap(text: string, width: number, max: number): string[] {
  const lines: string[] = [];
  let rest = text;
  while (rest !== '' && lines.length < max) {
    if (rest.length <= width) {
      lines.push(rest);
      rest = '';
      break;
    }
    const space = rest.lastIndexOf(' ', width);
    const cut = space > width / 2 ? space : width;
    lines.push(rest.slice(0, cut));
    rest = rest.slice(cut).trimStart();
  }
  if (rest !== '') lines[lines.length - 1] = clipLine(`${lines.at(-1)!} ${rest}`, width);
  return lines;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
