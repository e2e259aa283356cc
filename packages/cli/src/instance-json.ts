import type { Instance, InstancerEvent } from '@sdkit/sd-core';

/** An instance as `sdkit … --json` prints it. */
export interface InstanceJson {
  readonly key: string;
  readonly address: string;
  readonly metadata?: Readonly<Record<string, unknown>>;
}

/** A source's error as `sdkit … --json` prints it: the error's `name` and `message`, and its `reason` if any. */
export interface ErrorJson {
  readonly name: string;
  readonly message: string;
  readonly reason?: string;
}

/** An event as `sdkit watch` prints it, one per line: `{"instances":[…]}`, with `"error"` while the source fails. */
export interface EventJson {
  readonly instances: readonly InstanceJson[];
  readonly error?: ErrorJson;
}

/** `instance` as {@link InstanceJson} (`metadata` only when there is some). */
export function instanceJson(instance: Instance): InstanceJson {
  const { key, address, metadata } = instance;
  return metadata !== undefined && Object.keys(metadata).length > 0
    ? { key, address, metadata }
    : { key, address };
}

/** `error` as {@link ErrorJson}. */
export function errorJson(error: Error): ErrorJson {
  const reason = (error as { reason?: unknown }).reason;
  return {
    name: error.name,
    message: error.message,
    ...(typeof reason === 'string' ? { reason } : {}),
  };
}

/** `event` as {@link EventJson}. */
export function eventJson(event: InstancerEvent): EventJson {
  const instances = event.instances.map(instanceJson);
  return event.error ? { instances, error: errorJson(event.error) } : { instances };
}
