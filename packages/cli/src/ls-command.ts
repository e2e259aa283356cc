import { CliError, EXIT_CODES } from './cli-error.js';
import { type CommandContext, formatMs, note } from './command-context.js';
import { formatTable } from './format-table.js';
import { instanceJson } from './instance-json.js';
import { printable } from './printable.js';
import { waitForEvent } from './wait-for-event.js';

/**
 * `sdkit ls TARGET`: prints what the source has now — its first answer (sorted by key) — as a table, or with
 * `--json` as a JSON array of `{key, address, metadata?}`; an empty set is a valid answer. When that answer is an
 * error (the source fails: a read refused, a watch broken) the last known set (usually empty) is printed all
 * the same and the error goes to stderr; exit status 1.
 * @throws a `'timeout'` CliError when the source has not answered within `--timeout`.
 */
export async function lsCommand(context: CommandContext): Promise<number> {
  const { io, prepared, connected } = context;
  const instancer = connected.follow();
  try {
    const { accepted: event } = await waitForEvent(instancer, () => true, io.clock, context.timeoutMs);
    if (event === undefined) {
      throw new CliError(
        'timeout',
        `no answer from ${prepared.description} within ${formatMs(context.timeoutMs)}`,
      );
    }
    if (context.json) io.stdout.write(`${JSON.stringify(event.instances.map(instanceJson))}\n`);
    else io.stdout.write(`${formatTable(event.instances).join('\n')}\n`);
    if (event.error) {
      note(io, `${prepared.description}: ${printable(event.error.message)}`);
      return EXIT_CODES.failure;
    }
    if (event.instances.length === 0) {
      note(
        io,
        `no instances: ${prepared.description}${prepared.emptyHint ? ` (${prepared.emptyHint})` : ''}`,
      );
    }
    return EXIT_CODES.ok;
  } finally {
    instancer.stop();
  }
}
