import {
  instancerForTarget,
  isTargetInstancerSource,
  type Logger,
  type TargetInstancerOptions,
  type TargetInstancerSource,
} from '@sdkit/sd-core';
import { describeValue } from './describe-value.js';
import { type InstancerSchemeOptions, registerInstancerScheme, type SchemeRegistration } from './resolver.js';

/**
 * Registers `options.scheme ?? defaultScheme` for a backend's client through its own target mapping
 * (`client[instancerForTarget]`), so that this package imports no backend: what {@link registerEtcdScheme} and
 * {@link registerKubernetesScheme} share. `sourceKeys` are the options handed to the mapping (with the logger);
 * `scheme`, `logger` and the rest go to {@link registerInstancerScheme}. `expected` names the client in errors.
 * @throws TypeError (naming `fn`) for a client that is not a target source — saying "did you forget `await`?"
 *   for a Promise — or options that are not an object.
 * @internal
 */
export function registerSourceScheme(
  fn: string,
  defaultScheme: string,
  expected: string,
  client: TargetInstancerSource & { readonly logger?: Logger },
  options: object & { readonly scheme?: string; readonly logger?: Logger },
  sourceKeys: readonly string[],
): SchemeRegistration {
  if (!isTargetInstancerSource(client)) {
    const got =
      typeof (client as { then?: unknown } | null)?.then === 'function'
        ? 'a Promise (did you forget `await`?)'
        : describeValue(client);
    throw new TypeError(`${fn}: client must be ${expected}, got ${got}`);
  }
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`${fn}: options must be an object, got ${describeValue(options)}`);
  }
  const { scheme = defaultScheme, logger = client.logger, ...all } = options;
  const sourceOptions: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(all)) {
    if (sourceKeys.includes(key)) sourceOptions[key] = value;
    else rest[key] = value;
  }
  if (logger !== undefined) sourceOptions.logger = logger;
  return registerInstancerScheme(
    scheme,
    (target) => client[instancerForTarget](target, sourceOptions as TargetInstancerOptions),
    { ...(rest as InstancerSchemeOptions), ...(logger !== undefined ? { logger } : {}) },
  );
}
