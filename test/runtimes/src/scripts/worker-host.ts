/**
 * The workerd host of the scenarios: a module worker whose `GET /watch` and `GET /register` (the scenario's
 * parameters as JSON in `?params=`) stream the scenario's records as NDJSON for as long as the client stays. The
 * scenario runs inside the request (its timers and subrequests belong to it). A worker learns that the client went
 * away only when a write fails, so a `heartbeat` line goes out every {@link HEARTBEAT_MS}; the failed write aborts
 * the scenario (`register` then deregisters).
 * @module
 */
import { type RuntimeRecord, runScenario, type ScenarioCall, type Scenarios } from './protocol.js';

/** How often an idle stream writes a `heartbeat` line. */
export const HEARTBEAT_MS = 500;

interface ExecutionContextLike {
  waitUntil(promise: Promise<unknown>): void;
}

/** A module worker's default export. */
export interface WorkerModule {
  fetch(request: Request, env: unknown, ctx: ExecutionContextLike): Promise<Response>;
}

/** The module worker serving `scenarios`. */
export function scenarioWorker(scenarios: Scenarios): WorkerModule {
  return {
    async fetch(request, _env, ctx) {
      const url = new URL(request.url);
      const scenario = url.pathname.slice(1);
      if (request.method !== 'GET' || (scenario !== 'watch' && scenario !== 'register')) {
        return new Response('GET /watch or /register with ?params=<json>\n', { status: 404 });
      }
      let call: ScenarioCall;
      try {
        call = { scenario, params: JSON.parse(url.searchParams.get('params') ?? '') } as ScenarioCall;
      } catch (err) {
        return new Response(`bad params: ${String(err)}\n`, { status: 400 });
      }

      const controller = new AbortController();
      const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
      const writer = writable.getWriter();
      const encoder = new TextEncoder();
      let writes = Promise.resolve();
      const emit = (record: RuntimeRecord): void => {
        if (controller.signal.aborted) return;
        writes = writes
          .then(() => writer.write(encoder.encode(`${JSON.stringify(record)}\n`)))
          .catch(() => controller.abort()); // the client went away
      };
      const heartbeat = setInterval(() => emit({ type: 'heartbeat' }), HEARTBEAT_MS);

      emit({ type: 'started', runtime: 'workerd' });
      const run = (async () => {
        try {
          await runScenario(scenarios, call, emit, controller.signal);
          if (!controller.signal.aborted) {
            emit({ type: 'failed', message: `${scenarios.name}: scenario ${scenario} ended by itself` });
          }
        } catch (err) {
          emit({
            type: 'failed',
            message: `${scenarios.name}: ${err instanceof Error ? err.stack : String(err)}`,
          });
        } finally {
          clearInterval(heartbeat);
          await writes;
          await writer.close().catch(() => {});
        }
      })();
      ctx.waitUntil(run);
      return new Response(readable, { headers: { 'content-type': 'application/x-ndjson' } });
    },
  };
}
