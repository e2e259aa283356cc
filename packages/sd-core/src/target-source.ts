import type { Instancer, Logger } from './types.js';

/**
 * A target URI as gRPC names it — `scheme:[//authority/]path` — in the parsed form @grpc/grpc-js hands to a
 * resolver: `etcd:///my-service` is `{ scheme: 'etcd', path: 'my-service' }`; `kubernetes://ns/svc:80` is
 * `{ scheme: 'kubernetes', authority: 'ns', path: 'svc:80' }`. `authority` is `undefined` when there is none.
 */
export interface TargetUri {
  readonly scheme?: string | undefined;
  readonly authority?: string | undefined;
  readonly path: string;
}

/**
 * The key under which a backend's client maps a target to an {@link Instancer}: `Symbol.for(
 * 'sdkit.instancerForTarget')`, a registry symbol, so that a package that only registers schemes (the gRPC
 * resolver, the CLI) finds a backend's mapping without importing the backend.
 */
export const instancerForTarget: unique symbol = Symbol.for('sdkit.instancerForTarget') as never;

/** What a target mapping gets besides the target; each backend adds its own options. */
export interface TargetInstancerOptions {
  /** Default: the client's logger. */
  readonly logger?: Logger;
}

/**
 * A backend's client that can follow a target (`EtcdClient`, `KubernetesClient`): `[instancerForTarget](target)`
 * returns a new Instancer for it, which the caller stops when done.
 * @throws TypeError (from the method) naming the target when it is malformed for this backend.
 */
export interface TargetInstancerSource<O extends TargetInstancerOptions = TargetInstancerOptions> {
  /** A new Instancer following `target`; the caller stops it. Throws a TypeError for a malformed target. */
  [instancerForTarget](target: TargetUri, options?: O): Instancer;
}

/** Whether `value` is a {@link TargetInstancerSource}. */
export function isTargetInstancerSource(value: unknown): value is TargetInstancerSource {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Partial<TargetInstancerSource>)[instancerForTarget] === 'function'
  );
}
