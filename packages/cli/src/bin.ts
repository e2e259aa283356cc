/**
 * The `sdkit` command's process entry (bin/sdkit.js imports it): runs {@link runCli} on the process's
 * arguments, holding the process until it settles, and sets the exit status. Nothing else keeps the process
 * alive afterwards, so it exits by itself.
 * @module
 */
import { holdUntilSettled } from '@sdkit/sd-core';
import { runCli } from './run-cli.js';

process.exitCode = await holdUntilSettled(runCli(process.argv.slice(2)));
