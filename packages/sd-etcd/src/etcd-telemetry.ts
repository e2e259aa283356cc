/**
 * sd-etcd's telemetry: through sd-core's, under `sdkit.source.name` = 'etcd' (docs/telemetry.md).
 * @internal
 * @module
 */
import { RegistrarTelemetry } from '@sdkit/sd-core';

/** The kind of source etcd's instancers, watches and registrars report as. */
export const ETCD_SOURCE = 'etcd';

/** Every etcd registrar's and lease keeper's telemetry. */
export const registrarTelemetry = new RegistrarTelemetry(ETCD_SOURCE);

/** The `sdkit.source.target` of a prefix: as etcd sees it, the client's namespace (if any) included. */
export function etcdTarget(namespace: unknown, prefix: string): string {
  return typeof namespace === 'string' ? namespace + prefix : prefix;
}
