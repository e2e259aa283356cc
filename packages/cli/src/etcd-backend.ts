import { type Instancer, instancerForTarget } from '@sdkit/sd-core';
import type * as SdEtcd from '@sdkit/sd-etcd';
import type { Backend, BackendRequest, ConnectedTarget, PreparedTarget, Registration } from './backend.js';
import { CliError, usageError } from './cli-error.js';
import { connectFailure } from './connect-failure.js';
import { type EtcdConnection, etcdConnection } from './etcd-connection.js';
import { loadBackendPackage } from './load-backend-package.js';

/** The codec names a target's `?codec=` takes, and sd-etcd's codec each one is. */
const CODECS = { auto: 'auto', naming: 'etcdNaming', gokit: 'gokit', json: 'json' } as const;
type CodecName = keyof typeof CODECS;

/** The codec `sdkit register` writes with when the target names none: etcd's gRPC naming JSON. */
const DEFAULT_WRITE_CODEC: CodecName = 'naming';

/** What an etcd target says, checked. */
export interface EtcdTargetParts {
  readonly transport: 'grpc' | 'http';
  /** The target's path, still percent-encoded: what sd-etcd's target mapping reads the prefix from. */
  readonly path: string;
  /** `?codec=`, when given. */
  readonly codec: CodecName | undefined;
}

/**
 * Checks the parts of an etcd target that sd-etcd does not: a path that names a prefix, and the query (only
 * `codec`, once, one of auto, naming, gokit, json).
 * @throws a usage {@link CliError}.
 */
export function checkEtcdTarget(request: Pick<BackendRequest, 'target'>): EtcdTargetParts {
  const { target } = request;
  const shown = JSON.stringify(target.text);
  if (target.path === undefined || /^\/*$/.test(target.path)) {
    throw usageError(
      `target ${shown} names no key prefix: write ${target.scheme}://HOST:PORT/PREFIX ` +
        `(…/my-service follows keys under "my-service/", …//services/foo keys under "/services/foo/")`,
    );
  }
  if (target.path.startsWith('//')) {
    throw usageError(
      `target ${shown}: the key prefix may start with one "/" only (${target.scheme}://HOST:PORT//services/foo follows "/services/foo/")`,
    );
  }
  try {
    decodeURIComponent(target.path);
  } catch {
    throw usageError(`target ${shown} has a malformed percent-encoding in its path`);
  }
  let codec: CodecName | undefined;
  for (const [name, value] of target.query) {
    if (name !== 'codec') {
      throw usageError(
        `target ${shown}: unknown query parameter ${JSON.stringify(name)}; the only one is codec`,
      );
    }
    if (codec !== undefined) throw usageError(`target ${shown}: codec is given twice`);
    if (!Object.hasOwn(CODECS, value)) {
      throw usageError(
        `target ${shown}: unknown codec ${JSON.stringify(value)}; the codecs are ${Object.keys(CODECS).join(', ')}`,
      );
    }
    codec = value as CodecName;
  }
  return { transport: target.scheme === 'etcd+http' ? 'http' : 'grpc', path: target.path, codec };
}

/**
 * etcd, over gRPC (`etcd://`) or the HTTP/JSON gateway (`etcd+http://`), through @sdkit/sd-etcd. The path of the
 * target is the key prefix exactly as in a gRPC `etcd:///` target (sd-etcd's `etcdPrefixForTarget`): verbatim,
 * percent-decoded, with a `/` added at the end when missing — `etcd://h:2379/my-service` follows `my-service/`,
 * `etcd://h:2379//services/foo` follows `/services/foo/`.
 */
export const etcdBackend: Backend = Object.freeze({
  schemes: Object.freeze(['etcd', 'etcd+http']),
  packageName: '@sdkit/sd-etcd',
  flags: Object.freeze(['endpoints', 'cacert', 'cert', 'key', 'user', 'password-file'] as const),
  forms: Object.freeze([
    'etcd://HOST:PORT[,HOST:PORT…]/PREFIX[?codec=auto|naming|gokit|json]',
    'etcd+http://HOST:PORT[,…]/PREFIX[?codec=…]',
    'etcd:///PREFIX  (endpoints from --endpoints, $ETCDCTL_ENDPOINTS, else 127.0.0.1:2379)',
  ]),
  registers: true,
  async prepare(request: BackendRequest): Promise<PreparedTarget> {
    const parts = checkEtcdTarget(request);
    const connection = etcdConnection({
      transport: parts.transport,
      authority: request.target.authority,
      flags: request.flags,
      dialTimeoutMs: request.dialTimeoutMs,
      env: request.env,
      readTextFile: request.readTextFile,
    });
    const sdEtcd = await loadBackendPackage(
      '@sdkit/sd-etcd',
      request.target.scheme,
      () => import('@sdkit/sd-etcd'),
    );
    let prefix: string;
    try {
      prefix = sdEtcd.etcdPrefixForTarget({ scheme: 'etcd', path: parts.path });
    } catch (err) {
      throw usageError(`target ${JSON.stringify(request.target.text)}: ${(err as Error).message}`);
    }
    const writeCodec = parts.codec ?? DEFAULT_WRITE_CODEC;
    if (request.command === 'register' && request.flags.metadata !== undefined && writeCodec === 'gokit') {
      throw usageError(
        '--metadata cannot be written with codec=gokit (the value is the address alone); use naming or json',
      );
    }
    return prepared(sdEtcd, request, connection, parts, prefix);
  },
});

function prepared(
  sdEtcd: typeof SdEtcd,
  request: BackendRequest,
  connection: EtcdConnection,
  parts: EtcdTargetParts,
  prefix: string,
): PreparedTarget {
  const { target } = request;
  const readCodec = sdEtcd.codecs[CODECS[parts.codec ?? 'auto']];
  const writeCodec = sdEtcd.codecs[CODECS[parts.codec ?? DEFAULT_WRITE_CODEC]];
  const transportName = parts.transport === 'http' ? 'HTTP/JSON' : 'gRPC';
  const alternative = prefix.startsWith('/') ? prefix.slice(1) : `/${prefix}`;
  const query = target.query.length > 0 ? `?${target.text.split('?')[1]}` : '';
  return {
    description: `etcd ${connection.endpoints.join(',')} (${transportName}), keys under ${JSON.stringify(prefix)}`,
    emptyHint: `for keys under ${JSON.stringify(alternative)} write ${target.scheme}://${target.authority}/${alternative}${query}`,
    async connect(): Promise<ConnectedTarget> {
      const { endpoints, transport, tls, auth, dialTimeoutMs } = connection;
      const common = {
        endpoints: [...endpoints],
        logger: request.logger,
        ...(auth ? { auth: { ...auth } } : {}),
        ...(dialTimeoutMs !== undefined ? { dialTimeoutMs } : {}),
      };
      let client: SdEtcd.EtcdClient;
      try {
        client =
          transport === 'http'
            ? await sdEtcd.createEtcdClient({ ...common, transport: 'http' })
            : await sdEtcd.createEtcdClient({ ...common, ...(tls ? { tls: { ...tls } } : {}) });
      } catch (err) {
        const failure = connectFailure(err);
        if ((err as { reason?: unknown }).reason === 'authentication-failed' && auth === undefined) {
          failure.message += ': give --user NAME with $ETCDCTL_PASSWORD or --password-file FILE';
        }
        throw failure;
      }
      return {
        follow: (): Instancer =>
          client[instancerForTarget](
            { scheme: 'etcd', authority: undefined, path: parts.path },
            { codec: readCodec },
          ),
        registrar(address, options): Registration {
          const key = `${prefix}${address}`;
          const instance = { key, address, ...(options.metadata ? { metadata: options.metadata } : {}) };
          try {
            const value = writeCodec.encode(instance);
            const registrar = new sdEtcd.EtcdRegistrar(client, {
              key,
              instance,
              ttlSeconds: options.ttlSeconds,
              codec: writeCodec,
            });
            return { key, value, registrar };
          } catch (err) {
            if (err instanceof TypeError) throw usageError(err.message);
            throw new CliError('failed', (err as Error).message, { cause: err });
          }
        },
        close: () => client.close(),
        [Symbol.dispose]: () => client.close(),
      };
    },
  };
}
