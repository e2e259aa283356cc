/**
 * @sdkit/cli — the `sdkit` command: list, watch, resolve and register service instances in etcd, Kubernetes and
 * DNS from a shell (see `sdkit --help` and docs/cli.md). The package entry exports what the command is made of, for
 * embedding it and for tests; backends are loaded with a dynamic `import()` only when a target needs them.
 * @packageDocumentation
 */
export type {
  Backend,
  BackendRequest,
  ConnectedTarget,
  PreparedTarget,
  Registration,
  RegistrationOptions,
} from './backend.js';
export { BACKENDS, backendFor, SCHEMES } from './backends.js';
export { CliError, type CliErrorKind, EXIT_CODES, exitCodeOf } from './cli-error.js';
export { type CliIo, type CliOutput, processIo, type StopSignal } from './cli-io.js';
export type { CliFlags, CommandName, FlagName } from './parse-command-line.js';
export { type CliTarget, parseTarget } from './parse-target.js';
export { DEFAULT_TIMEOUT_MS, DEFAULT_TTL_SECONDS, runCli } from './run-cli.js';
