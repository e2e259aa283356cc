/**
 * @sdkit/sd-core — the types every sdkit package shares, the Endpointer, and the sources that need no server:
 * FixedInstancer and the embedded MemoryRegistry. Test doubles live in `@sdkit/sd-core/testing`.
 * @packageDocumentation
 */

export {
  type Backoff,
  type BackoffDefaults,
  type BackoffOptions,
  createBackoff,
  DEFAULT_BACKOFF,
  type RetryWithinOptions,
  retryWithin,
} from './backoff.js';
export { notifyClosed, onClosed } from './close-listeners.js';
export { endpointEntryOf } from './endpoint-entries.js';
export { DEFAULT_CLOSE_TIMEOUT_MS, type EndpointerOptions, endpointer } from './endpointer.js';
export { errorType } from './error-type.js';
export { FixedInstancer } from './fixed-instancer.js';
export { holdProcess, holdUntilSettled } from './hold-process.js';
export {
  byKey,
  InstanceCache,
  type InstanceCacheOptions,
  type InstanceUpdate,
  sameInstance,
} from './instance-cache.js';
export { assertKnownOptions } from './known-options.js';
export {
  type MemoryRegistrar,
  type MemoryRegistrarOptions,
  MemoryRegistry,
  type MemoryRegistryOptions,
} from './memory-registry.js';
export { type InstrumentationScope, MeterInstruments } from './meter-instruments.js';
export { RegistrarTelemetry } from './registrar-telemetry.js';
export { SourceTelemetry, type SourceTelemetryOptions } from './source-telemetry.js';
export {
  instancerForTarget,
  isTargetInstancerSource,
  type TargetInstancerOptions,
  type TargetInstancerSource,
  type TargetUri,
} from './target-source.js';
export type {
  Clock,
  Endpoint,
  EndpointEntry,
  Endpointer,
  EndpointOptions,
  EndpointSnapshot,
  Factory,
  FactoryResult,
  Instance,
  InstanceChanges,
  Instancer,
  InstancerEvent,
  Logger,
  Registrar,
  RegistrarState,
} from './types.js';
export { silentLogger, systemClock } from './types.js';
