import type { TargetUri } from '@sdkit/sd-core';

/**
 * The etcd key prefix a target follows, in etcd's gRPC-naming layout: the target's path plus `/`.
 * `etcd:///my-service` → `my-service/`; `etcd:////services/foo` → `/services/foo/` (a path that already ends in
 * `/` is kept as is: `etcd:///my-service/` → `my-service/`). The path is percent-decoded, as grpc-go reads it:
 * `etcd:///my%20service` → `my service/`.
 *
 * Refused, with a `TypeError` whose message names the target and says what to write instead:
 * - a target with an authority (`etcd://host/my-service`): the etcd client decides which cluster is asked;
 * - a service in the authority's place (`etcd://my-service`, two slashes; grpc-js hands that over as the path
 *   `//my-service`, no authority): write `etcd:///my-service`;
 * - an empty path (`etcd:///`), or a malformed `%` escape.
 * @throws TypeError as above.
 */
export function etcdPrefixForTarget(target: TargetUri): string {
  const scheme = target.scheme ?? 'etcd';
  const text = `${target.scheme ?? ''}:${target.authority !== undefined ? `//${target.authority}/` : ''}${target.path}`;
  if (target.authority) {
    throw new TypeError(
      `etcd target ${JSON.stringify(text)} has an authority; write ${scheme}:///<service> (the etcd client decides which cluster is asked)`,
    );
  }
  // grpc-js splits off an authority only when a "/" follows it: "etcd://my-service" arrives as the path
  // "//my-service", which would otherwise be followed as the prefix "//my-service/".
  if (target.authority === undefined && target.path.startsWith('//')) {
    const service = target.path.replace(/^\/+|\/+$/g, '');
    if (service !== '') {
      throw new TypeError(
        `etcd target ${JSON.stringify(text)} puts the service where the authority goes (two slashes); write ${scheme}:///${service} (three slashes)`,
      );
    }
  }
  let path: string;
  try {
    // grpc-go (and etcd's Go resolver) read the target's path percent-decoded: etcd:///my%20svc is "my svc".
    path = decodeURIComponent(target.path);
  } catch {
    throw new TypeError(`etcd target ${JSON.stringify(text)} has a malformed percent-encoding in its path`);
  }
  if (path === '' || /^\/*$/.test(path)) {
    throw new TypeError(`etcd target ${JSON.stringify(text)} names no service; write ${scheme}:///<service>`);
  }
  return path.endsWith('/') ? path : `${path}/`;
}
