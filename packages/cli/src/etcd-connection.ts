import { usageError } from './cli-error.js';
import type { CliFlags } from './parse-command-line.js';
import { parseDuration } from './parse-duration.js';

/** etcdctl's default endpoint, used when neither the target, `--endpoints` nor `$ETCDCTL_ENDPOINTS` name one. */
export const DEFAULT_ETCD_ENDPOINT = '127.0.0.1:2379';

/** The options of sd-etcd's `createEtcdClient` that the CLI sets (TLS files as paths). */
export interface EtcdConnection {
  readonly endpoints: readonly string[];
  readonly transport: 'grpc' | 'http';
  readonly tls?: { readonly ca?: string; readonly cert?: string; readonly key?: string };
  readonly auth?: { readonly username: string; readonly password: string };
  readonly dialTimeoutMs?: number;
}

/** What {@link etcdConnection} reads. */
export interface EtcdConnectionInput {
  readonly transport: 'grpc' | 'http';
  /** The target's authority: `''` or `HOST[:PORT][,HOST[:PORT]…]`. */
  readonly authority: string;
  readonly flags: CliFlags;
  /** `--dial-timeout`, when given (it wins over `$ETCDCTL_DIAL_TIMEOUT`). */
  readonly dialTimeoutMs?: number | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly readTextFile: (path: string) => string;
}

/**
 * How to reach etcd, as etcdctl decides it, from the target's authority, the flags and the environment (a flag
 * wins over its `$ETCDCTL_*` variable):
 * - endpoints: the target's authority (`etcd://h1:2379,h2:2379/…`, port 2379 when left out), else `--endpoints`
 *   / `$ETCDCTL_ENDPOINTS` (comma-separated, `host:port` or URLs), else `127.0.0.1:2379`; `https://` when a TLS
 *   file is given, else `http://`, unless an endpoint says which itself;
 * - TLS: `--cacert`, `--cert`, `--key` (`$ETCDCTL_CACERT`, `$ETCDCTL_CERT`, `$ETCDCTL_KEY`), file paths; gRPC only;
 * - auth: the user from `--user NAME` or `$ETCDCTL_USER` (`NAME` or etcdctl's `NAME:PASSWORD`), the password from
 *   `--password-file PATH` (its first line), else `$ETCDCTL_PASSWORD`, else `$ETCDCTL_USER`'s;
 * - the dial timeout: `input.dialTimeoutMs` (`--dial-timeout`), else `$ETCDCTL_DIAL_TIMEOUT`.
 * @throws a usage {@link CliError} for endpoints given twice or malformed, a password on the command line, a user
 *   without a password or the reverse, an unreadable or empty password file, `--cert` without `--key`, TLS files
 *   with the HTTP transport. No message repeats a password.
 */
export function etcdConnection(input: EtcdConnectionInput): EtcdConnection {
  const { flags, env } = input;
  const fromEnv = (name: string): string | undefined => {
    const value = env[`ETCDCTL_${name}`];
    return value === undefined || value === '' ? undefined : value;
  };
  const flag = (name: 'cacert' | 'cert' | 'key' | 'endpoints') => {
    const value = flags[name];
    return typeof value === 'string' ? value : undefined;
  };

  const ca = flag('cacert') ?? fromEnv('CACERT');
  const cert = flag('cert') ?? fromEnv('CERT');
  const key = flag('key') ?? fromEnv('KEY');
  const secure = ca !== undefined || cert !== undefined || key !== undefined;
  if (secure && input.transport === 'http') {
    throw usageError(
      'TLS files (--cacert, --cert, --key) are taken by etcd:// targets (gRPC) only; etcd+http:// targets with ' +
        'https:// endpoints trust the system CAs (add a private CA with $NODE_EXTRA_CA_CERTS)',
    );
  }
  if ((cert === undefined) !== (key === undefined)) {
    throw usageError('--cert and --key go together (a client certificate and its private key)');
  }

  let endpoints: string[];
  if (input.authority !== '') {
    if (flag('endpoints') !== undefined) {
      throw usageError(
        'the endpoints are given twice, in the target and with --endpoints; write etcd:///PREFIX to take them from --endpoints',
      );
    }
    endpoints = input.authority.split(',').map((e) => endpointUrl(e, secure, 'the target', false));
  } else {
    const listed = flag('endpoints') ?? fromEnv('ENDPOINTS') ?? DEFAULT_ETCD_ENDPOINT;
    const where = flag('endpoints') !== undefined ? '--endpoints' : '$ETCDCTL_ENDPOINTS';
    endpoints = listed
      .split(',')
      .map((e) => e.trim())
      .map((e) => endpointUrl(e, secure, where, true));
  }

  const auth = etcdAuth(input);
  const envDialTimeout = fromEnv('DIAL_TIMEOUT');
  const dialTimeoutMs =
    input.dialTimeoutMs ??
    (envDialTimeout === undefined ? undefined : parseDuration('$ETCDCTL_DIAL_TIMEOUT', envDialTimeout));
  return {
    endpoints,
    transport: input.transport,
    ...(secure
      ? {
          tls: {
            ...(ca !== undefined ? { ca } : {}),
            ...(cert !== undefined ? { cert } : {}),
            ...(key !== undefined ? { key } : {}),
          },
        }
      : {}),
    ...(auth ? { auth } : {}),
    ...(dialTimeoutMs !== undefined ? { dialTimeoutMs } : {}),
  };
}

const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)$/;

/** `host[:port]` (or, where URLs are allowed, `http(s)://host[:port]`) → an endpoint URL. */
function endpointUrl(text: string, secure: boolean, where: string, urlsAllowed: boolean): string {
  const bad = (why: string): never => {
    throw usageError(`etcd endpoint ${JSON.stringify(text)} in ${where} ${why}`);
  };
  let scheme = secure ? 'https' : 'http';
  let rest = text;
  const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/s.exec(text);
  if (schemeMatch) {
    if (!urlsAllowed) bad('must be HOST:PORT');
    const given = schemeMatch[1]!.toLowerCase();
    if (given !== 'http' && given !== 'https')
      bad('must be HOST:PORT, http://HOST:PORT or https://HOST:PORT');
    scheme = given;
    rest = schemeMatch[2]!.replace(/\/+$/, '');
  }
  if (rest === '') bad('is empty');
  const portMatch = /^(.*?)(?::(\d*))?$/s.exec(rest)!;
  const host = portMatch[1]!;
  const portText = portMatch[2];
  if (!HOST.test(host)) bad('must be HOST:PORT (an IPv6 address in brackets: [::1]:2379)');
  if (portText !== undefined) {
    const port = Number(portText);
    if (portText === '' || !Number.isInteger(port) || port < 1 || port > 65535)
      bad('has a port outside 1–65535');
  }
  return `${scheme}://${host}:${portText ?? '2379'}`;
}

function etcdAuth(input: EtcdConnectionInput): { username: string; password: string } | undefined {
  const { flags, env } = input;
  const userFlag = typeof flags.user === 'string' ? flags.user : undefined;
  if (userFlag?.includes(':')) {
    throw usageError(
      `--user takes only the user name (${JSON.stringify(userFlag.slice(0, userFlag.indexOf(':')))}): ${PASSWORD_ON_COMMAND_LINE}`,
    );
  }
  const envUser = env.ETCDCTL_USER || undefined;
  const [envName, envPassword] =
    envUser === undefined
      ? [undefined, undefined]
      : envUser.includes(':')
        ? [envUser.slice(0, envUser.indexOf(':')), envUser.slice(envUser.indexOf(':') + 1)]
        : [envUser, undefined];
  const username = userFlag ?? envName;
  const passwordFile = typeof flags['password-file'] === 'string' ? flags['password-file'] : undefined;
  const envPasswordVar = env.ETCDCTL_PASSWORD || undefined;
  if (username === undefined) {
    if (passwordFile !== undefined)
      throw usageError('--password-file needs a user: --user NAME (or $ETCDCTL_USER)');
    if (envPasswordVar !== undefined) {
      throw usageError('$ETCDCTL_PASSWORD is set but no user is: give --user NAME (or set $ETCDCTL_USER)');
    }
    return undefined;
  }
  if (username === '') throw usageError('the etcd user name is empty');
  let password: string | undefined;
  if (passwordFile !== undefined) {
    let text: string;
    try {
      text = input.readTextFile(passwordFile);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      throw usageError(
        `--password-file ${JSON.stringify(passwordFile)} cannot be read${typeof code === 'string' ? ` (${code})` : ''}`,
      );
    }
    password = text.replace(/\r?\n[\s\S]*$/, '');
    if (password === '')
      throw usageError(`--password-file ${JSON.stringify(passwordFile)}: its first line is empty`);
  } else {
    // $ETCDCTL_USER's password belongs to its user only.
    password = envPasswordVar ?? (userFlag === undefined || userFlag === envName ? envPassword : undefined);
  }
  if (password === undefined || password === '') {
    throw usageError(
      `etcd user ${JSON.stringify(username)} has no password: set $ETCDCTL_PASSWORD or use --password-file PATH`,
    );
  }
  return { username, password };
}

const PASSWORD_ON_COMMAND_LINE =
  'a password on the command line can be read by anyone on the machine (ps); set $ETCDCTL_PASSWORD or use --password-file PATH';
