import { ProxyTracerProvider, type Tracer, type TracerProvider, trace } from '@opentelemetry/api';
import { LB_SCOPE } from './lb-instruments.js';

/** The API's no-op tracer provider: what an unregistered global proxy delegates to. */
const NOOP_TRACER_PROVIDER = new ProxyTracerProvider().getDelegate();

let provider: TracerProvider | undefined;
let tracer: Tracer | undefined;

/**
 * lb's tracer from the global TracerProvider of `@opentelemetry/api`, or `undefined` while none is registered, so
 * that a call makes no span at all then (the API's no-op spans still cost a context read and an allocation).
 * Follows a provider registered or replaced later. Cost without an SDK: one global read (a few ns).
 * @internal
 */
export function lbTracer(): Tracer | undefined {
  const global = trace.getTracerProvider();
  // The API registers a ProxyTracerProvider; its delegate is the SDK's provider, or the no-op one.
  const current =
    typeof (global as Partial<ProxyTracerProvider>).getDelegate === 'function'
      ? (global as ProxyTracerProvider).getDelegate()
      : global;
  if (current === NOOP_TRACER_PROVIDER) return undefined;
  if (current !== provider) {
    provider = current;
    tracer = current.getTracer(LB_SCOPE.name, LB_SCOPE.version);
  }
  return tracer;
}
