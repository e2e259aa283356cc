import { usageError } from './cli-error.js';

/**
 * A target as `sdkit` takes it, one grammar for every backend: `SCHEME://AUTHORITY/PATH?QUERY`. What the parts
 * mean is the backend's (for etcd the authority is the endpoints and the path the key prefix; for Kubernetes,
 * kuberesolver's forms).
 */
export interface CliTarget {
  /** The target as given. Never holds credentials ({@link parseTarget} refuses user info). */
  readonly text: string;
  /** Lower-cased: `etcd`, `etcd+http`, `kubernetes`… */
  readonly scheme: string;
  /** Between `//` and the next `/`, `?` or end; `''` when empty (`etcd:///my-service`). */
  readonly authority: string;
  /**
   * After the `/` that ends the authority, up to `?`, still percent-encoded; `undefined` when no `/` follows the
   * authority (`kubernetes://svc.ns:8080`), `''` when nothing follows it.
   */
  readonly path: string | undefined;
  /** The query parameters, in order (`?codec=naming` → `[['codec', 'naming']]`), percent-decoded. */
  readonly query: readonly (readonly [string, string])[];
}

const TARGET = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(?:\/([^?#]*))?(?:\?([^#]*))?(#.*)?$/s;
const SCHEME_ONLY = /^([A-Za-z][A-Za-z0-9+.-]*):/;

/**
 * Splits a target into its parts (see {@link CliTarget}); the backend of its scheme checks them.
 * @param schemes the schemes `sdkit` knows, for the message when `text` is not a target at all.
 * @throws a usage {@link CliError} for text that is not `SCHEME://…`, a fragment, user info (credentials would be
 *   visible to anyone who can list processes: the message says where to put them instead and never repeats
 *   them), or a malformed query.
 */
export function parseTarget(text: string, schemes: readonly string[]): CliTarget {
  const example = 'e.g. etcd://127.0.0.1:2379/my-service or kubernetes:///my-service.my-namespace:8080';
  const match = TARGET.exec(text);
  if (match === null) {
    const scheme = SCHEME_ONLY.exec(text)?.[1];
    if (scheme !== undefined && !text.startsWith(`${scheme}://`)) {
      throw usageError(
        `target ${JSON.stringify(text)} must start with "${scheme}://" (${example}; etcd:///PREFIX and kubernetes:///SERVICE have three slashes)`,
      );
    }
    throw usageError(
      `target ${JSON.stringify(text)} is not a URL: write SCHEME://…, ${example}; schemes: ${schemes.join(', ')}`,
    );
  }
  const [, scheme, authority, path, query, fragment] = match;
  if (authority!.includes('@')) {
    throw usageError(
      `the target ${JSON.stringify(`${scheme}://…`)} holds credentials before "@": they are not taken from a command line, ` +
        'where anyone on the machine can read them; for etcd use --user NAME with $ETCDCTL_PASSWORD or --password-file, ' +
        'for Kubernetes a kubeconfig',
    );
  }
  if (fragment !== undefined) {
    throw usageError(
      `target ${JSON.stringify(text)} has a fragment (${JSON.stringify(fragment)}); remove it`,
    );
  }
  return Object.freeze({
    text,
    scheme: scheme!.toLowerCase(),
    authority: authority!,
    path,
    query: Object.freeze(query === undefined || query === '' ? [] : parseQuery(text, query)),
  });
}

function parseQuery(text: string, query: string): (readonly [string, string])[] {
  return query.split('&').map((pair) => {
    const eq = pair.indexOf('=');
    const [name, value] = eq === -1 ? [pair, ''] : [pair.slice(0, eq), pair.slice(eq + 1)];
    try {
      return Object.freeze([decodeURIComponent(name), decodeURIComponent(value)] as const);
    } catch {
      throw usageError(`target ${JSON.stringify(text)} has a malformed percent-encoding in its query`);
    }
  });
}
