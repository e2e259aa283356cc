import type { RegistrationOptions } from './backend.js';
import { backendFor, SCHEMES } from './backends.js';
import { CliError, EXIT_CODES, exitCodeOf, usageError } from './cli-error.js';
import { type CliIo, processIo } from './cli-io.js';
import { CliLogger } from './cli-logger.js';
import type { CommandContext } from './command-context.js';
import { helpText } from './help-text.js';
import { lsCommand } from './ls-command.js';
import { type CliFlags, type FlagName, parseCommandLine } from './parse-command-line.js';
import { parseDuration, parseTtlSeconds } from './parse-duration.js';
import { parseTarget } from './parse-target.js';
import { printable } from './printable.js';
import { registerCommand } from './register-command.js';
import { resolveCommand } from './resolve-command.js';
import { cliVersion } from './version.js';
import { watchCommand } from './watch-command.js';

/** `--timeout` when not given. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** `--ttl` when not given, in seconds. */
export const DEFAULT_TTL_SECONDS = 10;

/**
 * Runs `sdkit` with `argv` (the arguments after the script) and resolves with its exit status (see
 * {@link EXIT_CODES}); never rejects. Errors are reported on `io.stderr` as one line, `sdkit: <message>`. Everything
 * it opened is closed when it resolves, so a process whose only work this was exits by itself. The promise does
 * not hold the process by itself: the `sdkit` bin holds it (sd-core's `holdUntilSettled`).
 */
export async function runCli(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const logger = new CliLogger((line) => io.stderr.write(`${line}\n`));
  try {
    const line = parseCommandLine(argv);
    if (line.kind === 'help') {
      io.stdout.write(helpText());
      return EXIT_CODES.ok;
    }
    if (line.kind === 'version') {
      io.stdout.write(`${cliVersion()}\n`);
      return EXIT_CODES.ok;
    }
    const { command, flags } = line;
    const target = parseTarget(line.target, SCHEMES);
    const backend = backendFor(target.scheme);
    if (backend === undefined) {
      throw usageError(
        `unknown scheme ${JSON.stringify(`${target.scheme}://`)}; the schemes are ${SCHEMES.join(', ')}`,
      );
    }
    if (command === 'register' && !backend.registers) {
      throw usageError(
        `register works on etcd targets only: ${target.scheme}:// targets are read-only (their instances are managed by ${target.scheme === 'kubernetes' ? 'Kubernetes' : 'their own system'})`,
      );
    }
    checkBackendFlags(flags, backend.flags, target.scheme);
    const timeoutMs =
      typeof flags.timeout === 'string' ? parseDuration('--timeout', flags.timeout) : DEFAULT_TIMEOUT_MS;
    const dialTimeoutMs =
      typeof flags['dial-timeout'] === 'string'
        ? parseDuration('--dial-timeout', flags['dial-timeout'])
        : undefined;
    const registration = command === 'register' ? registrationOptions(flags) : undefined;

    const prepared = await backend.prepare({
      command,
      target,
      flags,
      dialTimeoutMs,
      env: io.env,
      readTextFile: io.readTextFile,
      logger,
    });
    // A failed connect is reported once, by its error; what the client logged on the way would repeat it.
    logger.mute();
    using connected = await prepared.connect().finally(() => logger.unmute());
    const context: CommandContext = {
      io,
      target,
      prepared,
      connected,
      json: flags.json === true,
      timeoutMs,
      logger,
    };
    switch (command) {
      case 'ls':
        return await lsCommand(context);
      case 'resolve':
        return await resolveCommand(context);
      case 'watch':
        return await watchCommand(context);
      case 'register':
        return await registerCommand(context, line.address!, registration!);
    }
  } catch (err) {
    return reportError(err, io);
  }
}

/** The connection flags of every backend; each backend takes its own only. */
const CONNECTION_FLAGS: readonly FlagName[] = [
  'endpoints',
  'cacert',
  'cert',
  'key',
  'user',
  'password-file',
  'kubeconfig',
  'context',
  'namespace',
];

function checkBackendFlags(flags: CliFlags, taken: readonly FlagName[], scheme: string): void {
  for (const flag of Object.keys(flags) as FlagName[]) {
    if (CONNECTION_FLAGS.includes(flag) && !taken.includes(flag)) {
      throw usageError(
        `--${flag} is not taken by ${scheme}:// targets${taken.length ? ` (they take ${taken.map((f) => `--${f}`).join(', ')})` : ''}`,
      );
    }
  }
}

function registrationOptions(flags: CliFlags): RegistrationOptions {
  const ttlSeconds = typeof flags.ttl === 'string' ? parseTtlSeconds(flags.ttl) : DEFAULT_TTL_SECONDS;
  let metadata: Record<string, unknown> | undefined;
  if (typeof flags.metadata === 'string') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(flags.metadata);
    } catch (err) {
      throw usageError(`--metadata must be a JSON object such as '{"zone":"a"}': ${(err as Error).message}`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw usageError(
        `--metadata must be a JSON object such as '{"zone":"a"}', got ${JSON.stringify(parsed)}`,
      );
    }
    metadata = parsed as Record<string, unknown>;
  }
  return { ttlSeconds, metadata };
}

function reportError(err: unknown, io: CliIo): number {
  if (err instanceof CliError) {
    io.stderr.write(`sdkit: ${printable(err.message)}\n`);
    if (err.kind === 'usage') io.stderr.write("Run 'sdkit --help' for usage.\n");
    return exitCodeOf(err.kind);
  }
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  io.stderr.write(`sdkit: unexpected error: ${printable(text)}\n`);
  return EXIT_CODES.failure;
}
