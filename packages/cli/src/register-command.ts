import type { RegistrarState } from '@sdkit/sd-core';
import type { RegistrationOptions } from './backend.js';
import { EXIT_CODES } from './cli-error.js';
import { type CommandContext, formatMs, note } from './command-context.js';
import { printable } from './printable.js';

/** How long `sdkit register` waits for the deregistration after a signal before leaving the key to its lease. */
export const DEREGISTER_TIMEOUT_MS = 5_000;

/**
 * `sdkit register TARGET ADDRESS`: announces ADDRESS under the target (etcd: the key `<prefix><ADDRESS>` on a
 * lease of `--ttl` seconds, kept alive; re-granted and put again if it is lost) until SIGINT or SIGTERM, then
 * deletes the key and exits 0. Prints `registered <key> …` once the key is written, `deregistered <key>` at the
 * end (with `--json`: one JSON object per state, `{"state","key","value"?,"ttlSeconds"?}`); losses and
 * re-registrations go to stderr too.
 *
 * Exit status 1 when the registration is refused (etcd permission denied; also later, when a lost lease cannot
 * be replaced for that reason: the registrar gives up) or the deregistration fails or takes
 * longer than {@link DEREGISTER_TIMEOUT_MS} (the key then expires with its lease); a second signal while
 * deregistering gives up at once (130), leaving the key to expire with its lease.
 */
export function registerCommand(
  context: CommandContext,
  address: string,
  options: RegistrationOptions,
): Promise<number> {
  const { io, connected } = context;
  const { registrar, key, value } = connected.registrar!(address, options);
  const shownKey = printable(key);
  const report = (state: RegistrarState, human: string): void => {
    io.stdout.write(
      context.json
        ? `${JSON.stringify(state === 'deregistered' ? { state, key } : { state, key, value, ttlSeconds: options.ttlSeconds })}\n`
        : `${human}\n`,
    );
  };
  return new Promise<number>((resolve) => {
    let stopping = false;
    let done = false;
    let registered = false;
    const cleanups: (() => void)[] = [];
    const finish = (code: number): void => {
      if (done) return;
      done = true;
      for (const cleanup of cleanups.splice(0).reverse()) cleanup();
      resolve(code);
    };
    const subscription = registrar.state$.subscribe((state) => {
      if (done || stopping) return;
      if (state === 'registered') {
        if (!registered) {
          registered = true;
          report(
            state,
            `registered ${shownKey} = ${printable(value)} (lease TTL ${options.ttlSeconds} s); Ctrl-C deregisters`,
          );
        } else {
          note(io, `registered ${shownKey} again`);
          if (context.json) report(state, '');
        }
      } else if (state === 'lost') {
        note(io, `the lease of ${shownKey} was lost; registering it again`);
        if (context.json) report(state, '');
      } else if (state === 'deregistered' && registered) {
        // The registrar gave up (etcd denied it after a loss); it logged why. Before the first registration,
        // register() rejects instead (below).
        note(io, `${shownKey} is not registered any more: the registrar gave up`);
        finish(EXIT_CODES.failure);
      }
    });
    cleanups.push(() => subscription.unsubscribe());
    registrar.register().catch((err: unknown) => {
      if (stopping || done) return;
      const message = (err as Error).message;
      // The registrar logs a refusal itself, with the key and etcd's answer: say it once.
      if (!context.logger.said(message)) note(io, `could not register ${shownKey}: ${printable(message)}`);
      finish(EXIT_CODES.failure);
    });
    cleanups.push(
      io.onSignal(() => {
        if (stopping) {
          note(
            io,
            `interrupted again: ${shownKey} is left to expire with its lease (${options.ttlSeconds} s)`,
          );
          finish(EXIT_CODES.interrupted);
          return;
        }
        stopping = true;
        let cancelTimer = (): void => {};
        const timedOut = new Promise<'timeout'>((r) => {
          cancelTimer = io.clock.setTimeout(() => r('timeout'), DEREGISTER_TIMEOUT_MS);
        });
        cleanups.push(() => cancelTimer());
        Promise.race([registrar.deregister().then(() => 'done' as const), timedOut]).then(
          (outcome) => {
            if (outcome === 'done') {
              report('deregistered', `deregistered ${shownKey}`);
              finish(EXIT_CODES.ok);
            } else {
              note(
                io,
                `could not deregister ${shownKey} within ${formatMs(DEREGISTER_TIMEOUT_MS)}; it expires with its lease (${options.ttlSeconds} s)`,
              );
              finish(EXIT_CODES.failure);
            }
          },
          (err: unknown) => {
            note(
              io,
              `could not deregister ${shownKey}: ${printable((err as Error).message)}; it expires with its lease (${options.ttlSeconds} s)`,
            );
            finish(EXIT_CODES.failure);
          },
        );
      }),
    );
  });
}
