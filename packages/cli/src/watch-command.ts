import { EXIT_CODES } from './cli-error.js';
import { type CommandContext, note } from './command-context.js';
import { eventJson } from './instance-json.js';
import { LiveTable } from './live-table.js';
import { printable } from './printable.js';

/**
 * `sdkit watch TARGET`: follows the source until SIGINT or SIGTERM (or until stdout's reader goes away), then
 * stops the instancer and exits 0.
 * - On a terminal (without `--json`): a live table, redrawn on every change, with the source's error while it
 *   fails and the backends' warnings under it.
 * - Otherwise (a pipe, a file, or `--json`): one JSON object per line per change, the first one being the
 *   current set: `{"instances":[{"key","address","metadata"?}…]}`, with `"error":{"name","message","reason"?}`
 *   while the source fails (the instances are then the last known ones). stdout stays JSON only; a human line
 *   goes to stderr when the source starts failing, when its error changes, and when it recovers.
 * Exits 1 if the source ends by itself (its client was closed).
 */
export function watchCommand(context: CommandContext): Promise<number> {
  const { io, prepared, connected, logger } = context;
  const live = io.stdout.isTTY === true && !context.json;
  const instancer = connected.follow();
  return new Promise<number>((resolve) => {
    let done = false;
    let table: LiveTable | undefined;
    let failing: string | undefined;
    const cleanups: (() => void)[] = [];
    const finish = (code: number): void => {
      if (done) return;
      done = true;
      for (const cleanup of cleanups.splice(0).reverse()) cleanup();
      resolve(code);
    };
    if (live) {
      table = new LiveTable(io.stdout, {
        title: `sdkit watch ${printable(context.target.text)}`,
        color: io.env.NO_COLOR === undefined || io.env.NO_COLOR === '',
      });
      const liveTable = table;
      logger.redirect((line) => liveTable.note(line));
      cleanups.push(() => {
        liveTable.close();
        logger.redirect((line) => io.stderr.write(`${line}\n`));
      });
      cleanups.push(io.onResize(() => liveTable.resize()));
    }
    cleanups.push(() => instancer.stop());
    const subscription = instancer.events$.subscribe({
      next(event) {
        if (table) {
          table.update(event);
          return;
        }
        io.stdout.write(`${JSON.stringify(eventJson(event))}\n`);
        const message = event.error === undefined ? undefined : printable(event.error.message);
        if (message !== undefined && message !== failing) note(io, `${prepared.description}: ${message}`);
        if (message === undefined && failing !== undefined) note(io, `${prepared.description}: recovered`);
        failing = message;
      },
      complete() {
        if (done) return;
        if (!table) note(io, `${prepared.description}: the source ended`);
        finish(EXIT_CODES.failure);
      },
    });
    cleanups.push(() => subscription.unsubscribe());
    cleanups.push(io.onSignal(() => finish(EXIT_CODES.ok)));
    cleanups.push(io.onStdoutClosed(() => finish(EXIT_CODES.ok)));
  });
}
