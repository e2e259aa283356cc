/**
 * workerd configs (capnp text) for one module worker on loopback.
 * @module
 */

/** The compatibility date of generated workerd configs (the installed workerd supports dates up to its own). */
export const WORKERD_COMPATIBILITY_DATE = '2026-11-01';

/**
 * Compatibility flags that turn off Node.js compatibility, which recent compatibility dates turn on by default:
 * with them `Buffer`, `process` and `node:*` modules do not exist, so a bundle that needs them fails in workerd.
 */
export const WORKERD_NO_NODE_FLAGS: readonly string[] = ['no_nodejs_compat', 'no_nodejs_compat_v2'];

/** A capnp text literal for `value` (printable ASCII only, which is all a config here needs). */
export function capnpString(value: string): string {
  if (!/^[\x20-\x7e]*$/.test(value)) {
    throw new TypeError(`capnpString: only printable ASCII is supported, got ${JSON.stringify(value)}`);
  }
  return JSON.stringify(value);
}

/** What {@link workerdConfig} writes. */
export interface WorkerdConfigOptions {
  /** The loopback port workerd serves the worker on (`127.0.0.1:<port>`). */
  readonly port: number;
  /** The module worker's file name, next to the config file (capnp `embed` paths are relative to the config). */
  readonly moduleFile: string;
  /** Text bindings (`env.NAME`). */
  readonly bindings?: Readonly<Record<string, string>>;
  readonly compatibilityDate?: string;
  readonly compatibilityFlags?: readonly string[];
}

/**
 * A workerd config: one module worker served on `127.0.0.1:<port>`, whose `fetch()` may reach loopback addresses
 * only (its `globalOutbound` is a network service allowing `local`; workerd's default `internet` service allows
 * `public` addresses only, so `fetch('http://127.0.0.1:…')` would be refused).
 */
export function workerdConfig(options: WorkerdConfigOptions): string {
  const bindings = Object.entries(options.bindings ?? {})
    .map(([name, value]) => `    (name = ${capnpString(name)}, text = ${capnpString(value)}),`)
    .join('\n');
  const flags = (options.compatibilityFlags ?? []).map(capnpString).join(', ');
  return `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .mainWorker),
    (name = "loopback", network = (allow = ["local"])),
  ],
  sockets = [
    (name = "http", address = ${capnpString(`127.0.0.1:${options.port}`)}, http = (), service = "main"),
  ],
);

const mainWorker :Workerd.Worker = (
  modules = [
    (name = ${capnpString(options.moduleFile)}, esModule = embed ${capnpString(options.moduleFile)}),
  ],
  compatibilityDate = ${capnpString(options.compatibilityDate ?? WORKERD_COMPATIBILITY_DATE)},
  compatibilityFlags = [${flags}],
  bindings = [
${bindings}
  ],
  globalOutbound = "loopback",
);
`;
}
