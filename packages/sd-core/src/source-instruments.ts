/**
 * sd-core's metrics: what every discovery source and registrar reports, whatever its backend (docs/telemetry.md
 * has the table). Internal: backends reach them through {@link InstanceCache}, {@link SourceTelemetry} and
 * {@link RegistrarTelemetry}.
 * @internal
 * @module
 */
import type { Attributes, Counter, ObservableResult } from '@opentelemetry/api';
import { type InstrumentationScope, MeterInstruments } from './meter-instruments.js';

/** sd-core's instrumentation scope (its package name and version). */
export const SD_CORE_SCOPE: InstrumentationScope = Object.freeze({
  name: '@sdkit/sd-core',
  version: '0.1.0',
});

/** Attribute: the kind of source (`'etcd'`, `'kubernetes'`, `'memory'`, `'fixed'`, `'dns'`…). */
export const SOURCE_NAME = 'sdkit.source.name';
/** Attribute: what the source follows (an etcd prefix, `namespace/service`…). */
export const SOURCE_TARGET = 'sdkit.source.target';
/** Attribute: OpenTelemetry's `error.type`. */
export const ERROR_TYPE = 'error.type';
/** Attribute: the state a registrar entered. */
export const REGISTRAR_STATE = 'sdkit.registrar.state';

/** The synchronous instruments of sd-core. */
export interface SourceInstruments {
  readonly errors: Counter;
  readonly resyncs: Counter;
  readonly reconnects: Counter;
  readonly registrarStateChanges: Counter;
  readonly leaseRegrants: Counter;
}

/** Something whose instance count is reported: an {@link InstanceCache} with a source name. */
export interface CountedSet {
  readonly attributes: Attributes;
  readonly size: number;
}

type Ref = { deref(): CountedSet | undefined };

/** The counted sets alive now. Weakly held where the runtime has WeakRef: an instancer dropped unstopped is not kept. */
const counted = new Set<Ref>();
/**
 * The attributes of sets closed since the last collection: reported once more as 0 (unless a live set has them),
 * since an SDK keeps exporting the last value of a series no longer observed.
 */
const retired = new Map<string, Attributes>();

const idOf = (attributes: Attributes): string =>
  `${attributes[SOURCE_NAME]}\u0000${attributes[SOURCE_TARGET] ?? ''}`;

/**
 * Reports `set`'s size as `sdkit.source.instance.count` until the returned function is called (idempotent), or
 * until `set` is garbage (where WeakRef exists).
 */
export function countInstances(set: CountedSet): () => void {
  const ref: Ref = typeof WeakRef === 'function' ? new WeakRef(set) : { deref: () => set };
  counted.add(ref);
  sourceInstruments.current(); // registers the observable on the provider of now
  return () => {
    // Without an SDK nothing is exported, so there is nothing to correct.
    if (counted.delete(ref) && sourceInstruments.current() !== undefined) {
      retired.set(idOf(set.attributes), set.attributes);
    }
  };
}

/**
 * One point per attribute set: sets with the same source and target (two instancers on one prefix) follow the same
 * instances, so the largest is reported rather than their sum. A source closed since the last collection reports 0
 * once.
 */
function observeInstances(result: ObservableResult): void {
  const largest = new Map<string, CountedSet>();
  for (const ref of counted) {
    const set = ref.deref();
    if (set === undefined) {
      counted.delete(ref);
      continue;
    }
    const id = idOf(set.attributes);
    const seen = largest.get(id);
    if (seen === undefined || set.size > seen.size) largest.set(id, set);
  }
  for (const set of largest.values()) result.observe(set.size, set.attributes);
  for (const [id, attributes] of retired) if (!largest.has(id)) result.observe(0, attributes);
  retired.clear();
}

/** sd-core's instruments on the global MeterProvider (undefined while none is registered). */
export const sourceInstruments = new MeterInstruments<SourceInstruments>(SD_CORE_SCOPE, (meter) => {
  meter
    .createObservableUpDownCounter('sdkit.source.instance.count', {
      description: 'Instances a discovery source holds now (its last known good set while it fails).',
      unit: '{instance}',
    })
    .addCallback(observeInstances);
  return {
    errors: meter.createCounter('sdkit.source.errors', {
      description: 'Errors a discovery source reported: a failure began, or its message changed.',
      unit: '{error}',
    }),
    resyncs: meter.createCounter('sdkit.source.resyncs', {
      description:
        'Full re-reads of a source after its first read (etcd compaction, a new store, Kubernetes 410 Gone).',
      unit: '{resync}',
    }),
    reconnects: meter.createCounter('sdkit.source.reconnects', {
      description: "A source's watch re-established after it failed.",
      unit: '{reconnect}',
    }),
    registrarStateChanges: meter.createCounter('sdkit.registrar.state_changes', {
      description: 'Registrar state changes, by the state entered.',
      unit: '{change}',
    }),
    leaseRegrants: meter.createCounter('sdkit.registrar.lease.regrants', {
      description: 'New leases granted after a lease was lost (the registration put again under it).',
      unit: '{lease}',
    }),
  };
});

/** The attributes of a source: its name, and its target when given. Frozen, made once per source. */
export function sourceAttributes(name: string, target: string | undefined): Attributes {
  return Object.freeze(
    target === undefined ? { [SOURCE_NAME]: name } : { [SOURCE_NAME]: name, [SOURCE_TARGET]: target },
  );
}
