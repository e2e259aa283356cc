import { CliError, EXIT_CODES } from './cli-error.js';
import { type CommandContext, formatMs } from './command-context.js';
import { printable } from './printable.js';
import { waitForEvent } from './wait-for-event.js';

/**
 * `sdkit resolve TARGET`: waits until the source answers without error with at least one instance, then prints
 * their addresses, one per line in key order (`--json`: a JSON array of them) — for scripts:
 * `curl "http://$(sdkit resolve … | head -1)/"`.
 * @throws a `'timeout'` CliError when that has not happened within `--timeout`, saying what was seen instead (the
 *   source's error, or an empty set).
 */
export async function resolveCommand(context: CommandContext): Promise<number> {
  const { io, prepared, connected } = context;
  const instancer = connected.follow();
  try {
    const { accepted, last } = await waitForEvent(
      instancer,
      (e) => e.error === undefined && e.instances.length > 0,
      io.clock,
      context.timeoutMs,
    );
    if (accepted === undefined) {
      const seen =
        last === undefined
          ? 'no answer from the source'
          : last.error
            ? `the source fails: ${printable(last.error.message)}`
            : `the source has none${prepared.emptyHint ? ` (${prepared.emptyHint})` : ''}`;
      throw new CliError(
        'timeout',
        `no instances within ${formatMs(context.timeoutMs)} from ${prepared.description}; ${seen}`,
      );
    }
    const addresses = accepted.instances.map((i) => i.address);
    io.stdout.write(
      context.json ? `${JSON.stringify(addresses)}\n` : `${addresses.map(printable).join('\n')}\n`,
    );
    return EXIT_CODES.ok;
  } finally {
    instancer.stop();
  }
}
