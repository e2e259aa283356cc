/**
 * Worker thread of the telemetry-cost benchmark: registers the OpenTelemetry SDK (a MeterProvider, a tracer provider
 * sampling every call into a BatchSpanProcessor whose exporter discards the spans, the AsyncLocalStorage context
 * manager) and times the pipelines with it. In a thread of its own because AsyncLocalStorage, once used, slows
 * every promise of its isolate for good (Node's promise hooks stay on), which would skew the benchmarks after it.
 *
 * Protocol: started with {@link TelemetryRuns} as `workerData`; posts `{ offNs, onNs }` (or `{ error }`).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { type TelemetryRuns, timeOffAndOn } from './telemetry-pipeline.js';

/** Collects only when asked (never, here): the MeterProvider is registered as an application's would be. */
class IdleReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

const discard: SpanExporter = {
  export: (_spans, done) => done({ code: 0 }),
  shutdown: async () => {},
};

async function main(port: NonNullable<typeof parentPort>, runs: TelemetryRuns): Promise<void> {
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [new IdleReader()] }));
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(discard)] }),
  );
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  port.postMessage(await timeOffAndOn(runs));
}

if (parentPort) {
  const port = parentPort;
  await main(port, workerData as TelemetryRuns).catch((err: unknown) =>
    port.postMessage({ error: err instanceof Error ? err.message : String(err) }),
  );
}
