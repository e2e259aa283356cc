import { parseArgs } from 'node:util';
import { usageError } from './cli-error.js';

/** The commands of `sdkit`. */
export type CommandName = 'ls' | 'watch' | 'resolve' | 'register';

/** The commands, in the order `--help` lists them. */
export const COMMANDS: readonly CommandName[] = Object.freeze(['ls', 'watch', 'resolve', 'register']);

/** A flag `sdkit` takes (long name, without `--`). */
export type FlagName =
  | 'json'
  | 'timeout'
  | 'dial-timeout'
  | 'ttl'
  | 'metadata'
  | 'endpoints'
  | 'cacert'
  | 'cert'
  | 'key'
  | 'user'
  | 'password-file'
  | 'kubeconfig'
  | 'context'
  | 'namespace'
  | 'help'
  | 'version';

/** The flags given: long name → its value, or `true` for a switch. */
export type CliFlags = Readonly<Partial<Record<FlagName, string | true>>>;

interface FlagSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  /** The commands that take it; every command when absent. */
  readonly commands?: readonly CommandName[];
}

/**
 * Every flag, with the commands that take it. Which backend takes which connection flag is the backend's
 * (`Backend.flags`); the etcd and Kubernetes flags keep etcdctl's and kubectl's names.
 */
const FLAGS = {
  json: { type: 'boolean' },
  timeout: { type: 'string', commands: ['ls', 'resolve'] },
  'dial-timeout': { type: 'string' },
  ttl: { type: 'string', commands: ['register'] },
  metadata: { type: 'string', commands: ['register'] },
  endpoints: { type: 'string' },
  cacert: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  user: { type: 'string' },
  'password-file': { type: 'string' },
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const satisfies Record<FlagName, FlagSpec>;

// Every FlagName has a spec (above), and every spec a FlagName (here).
const _everyFlagNamed: FlagName = '' as keyof typeof FLAGS;

const PASSWORD_ADVICE =
  'a password on the command line can be read by anyone on the machine (ps); set $ETCDCTL_PASSWORD or use --password-file PATH';

/** What people type instead of sdkit's flags (etcdctl's, kubectl's and others'), and what to say. */
const FLAG_HINTS: Readonly<Record<string, string>> = {
  password: `--password is not taken: ${PASSWORD_ADVICE}`,
  'insecure-skip-tls-verify':
    '--insecure-skip-tls-verify is not supported: give the CA that signed etcd’s certificate with --cacert',
  'insecure-transport':
    '--insecure-transport is not needed: TLS is used when --cacert, --cert or --key is given',
  'insecure-discovery': '--insecure-discovery is not supported (DNS discovery of etcd endpoints is not)',
  'discovery-srv': '--discovery-srv is not supported: give the endpoints in the target or with --endpoints',
  'write-out': 'unknown flag --write-out: use --json',
  w: 'unknown flag -w: use --json',
  output: 'unknown flag --output: use --json',
  o: 'unknown flag -o: use --json',
  endpoint: 'unknown flag --endpoint: did you mean --endpoints?',
  ca: 'unknown flag --ca: did you mean --cacert?',
  'ca-file': 'unknown flag --ca-file: did you mean --cacert?',
  'trusted-ca-file': 'unknown flag --trusted-ca-file: did you mean --cacert?',
  'cert-file': 'unknown flag --cert-file: did you mean --cert?',
  'key-file': 'unknown flag --key-file: did you mean --key?',
  username: 'unknown flag --username: did you mean --user?',
  'kube-config': 'unknown flag --kube-config: did you mean --kubeconfig?',
  ns: 'unknown flag --ns: did you mean --namespace (-n)?',
  lease: 'unknown flag --lease: the lease is granted by sdkit; its TTL is --ttl SECONDS',
  codec:
    'unknown flag --codec: the codec is part of the target, e.g. etcd://127.0.0.1:2379/my-service?codec=naming',
  prefix:
    'unknown flag --prefix: the key prefix is the path of the target, e.g. etcd://127.0.0.1:2379/my-service',
  v: 'unknown flag -v: did you mean --version?',
};

const COMMAND_HINTS: Readonly<Record<string, string>> = {
  list: 'ls',
  get: 'ls',
  show: 'ls',
  follow: 'watch',
  put: 'register',
  announce: 'register',
  lookup: 'resolve',
};

/** What the command line asks for. */
export type CommandLine =
  | { readonly kind: 'help' }
  | { readonly kind: 'version' }
  | {
      readonly kind: 'run';
      readonly command: CommandName;
      readonly target: string;
      /** `register`'s ADDRESS. */
      readonly address?: string;
      readonly flags: CliFlags;
    };

/**
 * Reads `sdkit`'s arguments (without `node` and the script) with `node:util`'s `parseArgs`: `COMMAND TARGET
 * [ADDRESS] [flags]`, flags anywhere, `--flag value` or `--flag=value`, `--` ends the flags. `--help` / `-h` /
 * `help` anywhere asks for help, `--version` for the version.
 * @throws a usage {@link CliError} for a missing or unknown command, a missing or extra argument, an unknown flag
 *   (with the right name when it is a known mistake, e.g. etcdctl's `--password`), a flag without its value or a
 *   switch with one, or a flag the command does not take. Messages never repeat a flag's value.
 */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  const { tokens } = parseArgs({
    args: [...argv],
    options: FLAGS,
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  const positionals: string[] = [];
  const flags: Partial<Record<FlagName, string | true>> = {};
  for (const token of tokens) {
    if (token.kind === 'positional') positionals.push(token.value);
    if (token.kind !== 'option') continue;
    // parseArgs names a known short flag by its long name (-n → namespace), an unknown one by its letter.
    const name = Object.hasOwn(FLAGS, token.name) ? (token.name as FlagName) : undefined;
    if (name === undefined) {
      const hint = FLAG_HINTS[token.name];
      // rawName never holds a value: "--password=secret" has the rawName "--password".
      throw usageError(hint ?? `unknown flag ${token.rawName}`);
    }
    const spec: FlagSpec = FLAGS[name];
    if (spec.type === 'string') {
      if (token.value === undefined || (!token.inlineValue && token.value.startsWith('-'))) {
        throw usageError(`${token.rawName} needs a value (${token.rawName} VALUE or --${name}=VALUE)`);
      }
      flags[name] = token.value;
    } else {
      if (token.inlineValue) throw usageError(`${token.rawName} takes no value`);
      flags[name] = true;
    }
  }
  if (flags.help || positionals[0] === 'help') return { kind: 'help' };
  if (flags.version) return { kind: 'version' };

  const [command, target, address, ...extra] = positionals;
  if (command === undefined) throw usageError(`no command given; the commands are ${COMMANDS.join(', ')}`);
  if (!(COMMANDS as readonly string[]).includes(command)) {
    const hint = COMMAND_HINTS[command];
    throw usageError(
      `unknown command ${JSON.stringify(command)}${hint ? ` (did you mean ${hint}?)` : ''}; the commands are ${COMMANDS.join(', ')}`,
    );
  }
  const name = command as CommandName;
  if (target === undefined) {
    throw usageError(
      `sdkit ${name} needs a TARGET, e.g. sdkit ${name} etcd://127.0.0.1:2379/my-service${name === 'register' ? ' 10.0.0.5:8080' : ''}`,
    );
  }
  if (name === 'register' && address === undefined) {
    throw usageError('sdkit register needs the ADDRESS to announce after the TARGET, e.g. 10.0.0.5:8080');
  }
  const unexpected = name === 'register' ? extra : [address, ...extra].filter((a) => a !== undefined);
  if (unexpected.length > 0) {
    throw usageError(
      `unexpected argument ${JSON.stringify(unexpected[0])}: sdkit ${name} takes ${usage(name)}`,
    );
  }
  for (const flag of Object.keys(flags) as FlagName[]) {
    const commands: readonly CommandName[] | undefined = (FLAGS[flag] as FlagSpec).commands;
    if (commands !== undefined && !commands.includes(name)) {
      throw usageError(
        `--${flag} is not taken by sdkit ${name} (only by ${commands.map((c) => `sdkit ${c}`).join(', ')})`,
      );
    }
  }
  return name === 'register'
    ? { kind: 'run', command: name, target, address: address!, flags }
    : { kind: 'run', command: name, target, flags };
}

function usage(command: CommandName): string {
  return command === 'register' ? 'TARGET ADDRESS' : 'one TARGET';
}
