import type { Attributes } from '@opentelemetry/api';
import { REGISTRAR_STATE, SOURCE_NAME, sourceInstruments } from './source-instruments.js';
import type { RegistrarState } from './types.js';

/**
 * What a registrar tells OpenTelemetry: its state changes (`sdkit.registrar.state_changes`, by the state entered)
 * and the leases granted anew after one was lost (`sdkit.registrar.lease.regrants`); see docs/telemetry.md.
 * Records through `@opentelemetry/api`'s global MeterProvider: nothing but a provider check while no SDK is
 * registered.
 *
 * @throws TypeError if `source` is not a non-empty string.
 */
export class RegistrarTelemetry {
  /** `sdkit.source.name`, as recorded. */
  readonly attributes: Attributes;
  readonly #byState = new Map<RegistrarState, Attributes>();

  /** `source`: the kind of registry (`'etcd'`, `'memory'`…), recorded as `sdkit.source.name`. */
  constructor(source: string) {
    if (typeof source !== 'string' || source === '') {
      throw new TypeError(
        `RegistrarTelemetry: source must be a non-empty string naming the registry, e.g. 'etcd'`,
      );
    }
    this.attributes = Object.freeze({ [SOURCE_NAME]: source });
  }

  /** The registrar entered `state` (call it on changes only). */
  stateChanged(state: RegistrarState): void {
    const instruments = sourceInstruments.current();
    if (instruments === undefined) return;
    let attributes = this.#byState.get(state);
    if (attributes === undefined) {
      attributes = Object.freeze({ ...this.attributes, [REGISTRAR_STATE]: state });
      this.#byState.set(state, attributes);
    }
    instruments.registrarStateChanges.add(1, attributes);
  }

  /** A new lease was granted after the previous one was lost. */
  leaseRegranted(): void {
    sourceInstruments.current()?.leaseRegrants.add(1, this.attributes);
  }
}
