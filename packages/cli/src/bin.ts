/**
 * The `sdkit` command's process entry (bin/sdkit.js imports it): runs {@link runCli} on the process's
 * arguments, holding the process until it settles, and sets the exit status. Nothing else keeps the process
 * alive afterwards, so it exits by itself.
 * @module
 */
import { holdUntilSettled } from '@sdkit/sd-core';
import { runCli } from './run-cli.js';

/**
 * Process warnings a user of the command can do nothing about: grpc-js sets the TLS server name to the
 * endpoint's IP address (DEP0123), which Node only warns about.
 */
const QUIET_WARNINGS = new Set(['DEP0123']);

// Node prints warnings through its own 'warning' listener; this one prints them as sdkit's other lines, less
// the ones above.
process.removeAllListeners('warning');
process.on('warning', (warning: Error & { code?: string }) => {
  if (warning.code !== undefined && QUIET_WARNINGS.has(warning.code)) return;
  process.stderr.write(`sdkit: warning: ${warning.message}\n`);
});

process.exitCode = await holdUntilSettled(runCli(process.argv.slice(2)));
