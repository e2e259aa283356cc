import type { Attributes } from '@opentelemetry/api';
import { sourceAttributes, sourceInstruments } from './source-instruments.js';

/** Names a discovery source in telemetry; see {@link SourceTelemetry}. */
export interface SourceTelemetryOptions {
  /**
   * The kind of source, recorded as `sdkit.source.name`: a short constant such as `'etcd'`, `'kubernetes'`,
   * `'dns'`. A non-empty string.
   */
  readonly source: string;
  /**
   * What it follows, recorded as `sdkit.source.target`: an etcd prefix, `namespace/service`, a DNS name. Keep it
   * to what the application configures (one value per instancer), never per instance. Default: none.
   */
  readonly target?: string;
}

/**
 * What a discovery backend tells OpenTelemetry beyond its instances (which {@link InstanceCache} reports by
 * itself when given the same names): full re-reads and watch reconnects, as `sdkit.source.resyncs` and
 * `sdkit.source.reconnects` (see docs/telemetry.md). Records through `@opentelemetry/api`'s global
 * MeterProvider: nothing but a provider check while no SDK is registered.
 *
 * @throws TypeError if `source` is not a non-empty string or `target` is not a string.
 */
export class SourceTelemetry {
  /** `sdkit.source.name` and `sdkit.source.target`, as recorded. */
  readonly attributes: Attributes;

  constructor(options: SourceTelemetryOptions) {
    this.attributes = telemetryAttributes('SourceTelemetry', options);
  }

  /** The source read its whole set again after its first read (etcd compaction, Kubernetes 410 Gone…). */
  resynced(): void {
    sourceInstruments.current()?.resyncs.add(1, this.attributes);
  }

  /** The source's watch was re-established after it failed. */
  reconnected(): void {
    sourceInstruments.current()?.reconnects.add(1, this.attributes);
  }
}

/** Validates `options` ({@link SourceTelemetryOptions}) for `owner` and returns their attributes. */
export function telemetryAttributes(owner: string, options: SourceTelemetryOptions): Attributes {
  const { source, target } = options;
  if (typeof source !== 'string' || source === '') {
    throw new TypeError(`${owner}: source must be a non-empty string naming the kind of source, e.g. 'etcd'`);
  }
  if (target !== undefined && typeof target !== 'string') {
    throw new TypeError(
      `${owner}: target must be a string (an etcd prefix, namespace/service…), got ${typeof target}`,
    );
  }
  return sourceAttributes(source, target);
}
