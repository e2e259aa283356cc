/**
 * The real OpenTelemetry SDK, registered globally for a test: a MeterProvider with a reader that collects on demand,
 * a tracer provider that keeps finished spans in memory, and the AsyncLocalStorage context manager — what an
 * application would register, minus the exporters. Import it as `@sdkit/test-harness/telemetry`.
 * @module
 */
import { type Attributes, context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { type DataPoint, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';

/** One data point of a metric, as a test compares it. */
export interface MetricPoint {
  readonly attributes: Attributes;
  /** A counter's or gauge's number (a histogram's point is its `{ count, sum, … }` object). */
  readonly value: unknown;
}

/** What {@link startTestTelemetry} registered. */
export interface TestTelemetry {
  /** Collects now and returns every point of metric `name` (sorted by their attributes' JSON), `[]` if none. */
  points(name: string): Promise<MetricPoint[]>;
  /** Collects now: the value of the one point of `name` whose attributes include `attributes`, or undefined. */
  value(name: string, attributes?: Attributes): Promise<unknown>;
  /** The names of every metric with points now. */
  names(): Promise<string[]>;
  /** The spans ended so far, in order. */
  spans(): readonly ReadableSpan[];
  /** Unregisters everything from `@opentelemetry/api`'s globals and shuts the providers down. */
  stop(): Promise<void>;
}

/** A reader that collects only when asked. */
class OnDemandReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

/**
 * Registers the SDK as an application would (`metrics.setGlobalMeterProvider`, `trace.setGlobalTracerProvider`,
 * `context.setGlobalContextManager`), with `traces: false` or `metrics: false` to leave one out. Call
 * {@link TestTelemetry.stop} after the test (registering twice fails: the API keeps the first).
 */
export function startTestTelemetry(options: { metrics?: boolean; traces?: boolean } = {}): TestTelemetry {
  const reader = new OnDemandReader();
  const meterProvider = options.metrics === false ? undefined : new MeterProvider({ readers: [reader] });
  const exporter = new InMemorySpanExporter();
  const tracerProvider =
    options.traces === false
      ? undefined
      : new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const contextManager =
    options.traces === false ? undefined : new AsyncLocalStorageContextManager().enable();
  if (meterProvider && !metrics.setGlobalMeterProvider(meterProvider)) {
    throw new Error('startTestTelemetry: a MeterProvider is registered already (stop() the previous one)');
  }
  if (tracerProvider && !trace.setGlobalTracerProvider(tracerProvider)) {
    throw new Error('startTestTelemetry: a TracerProvider is registered already (stop() the previous one)');
  }
  if (contextManager) context.setGlobalContextManager(contextManager);

  const collect = async (): Promise<Map<string, MetricPoint[]>> => {
    const byName = new Map<string, MetricPoint[]>();
    if (!meterProvider) return byName;
    const { resourceMetrics, errors } = await reader.collect();
    if (errors.length > 0) throw new AggregateError(errors, 'startTestTelemetry: collection failed');
    for (const scope of resourceMetrics.scopeMetrics) {
      for (const metric of scope.metrics) {
        const points = byName.get(metric.descriptor.name) ?? [];
        for (const point of metric.dataPoints as DataPoint<unknown>[]) {
          points.push({ attributes: point.attributes, value: point.value });
        }
        byName.set(metric.descriptor.name, points);
      }
    }
    for (const points of byName.values()) {
      points.sort((a, b) => JSON.stringify(a.attributes).localeCompare(JSON.stringify(b.attributes)));
    }
    return byName;
  };

  return {
    points: async (name) => (await collect()).get(name) ?? [],
    value: async (name, attributes = {}) => {
      const matching = ((await collect()).get(name) ?? []).filter((point) =>
        Object.entries(attributes).every(([key, value]) => point.attributes[key] === value),
      );
      if (matching.length > 1) {
        throw new Error(
          `startTestTelemetry: ${matching.length} points of ${name} match ${JSON.stringify(attributes)}`,
        );
      }
      return matching[0]?.value;
    },
    names: async () =>
      [...(await collect()).entries()]
        .filter(([, points]) => points.length > 0)
        .map(([name]) => name)
        .sort(),
    spans: () => exporter.getFinishedSpans(),
    stop: async () => {
      if (meterProvider) metrics.disable();
      if (tracerProvider) trace.disable();
      if (contextManager) {
        context.disable();
        contextManager.disable();
      }
      await Promise.all([meterProvider?.shutdown(), tracerProvider?.shutdown()]);
    },
  };
}
