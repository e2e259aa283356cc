/**
 * The client side of the tail-latency benchmark: the server thread's handle, an HTTP Factory for sdkit's
 * Endpointer, and the open-loop driver that starts calls at a fixed rate whatever their latency.
 */
import http from 'node:http';
import { Worker } from 'node:worker_threads';
import type { Endpoint, Factory } from '@sdkit/sd-core';
import { type InstanceBehaviour, nowMs } from './tail-latency-model.js';
import type { ServersClosed, ServersData, ServersReady } from './tail-latency-servers.worker.js';

/** A non-200 answer. */
export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    address: string,
  ) {
    super(`HTTP ${status} from ${address}`);
    this.name = 'HttpStatusError';
  }
}

/**
 * A Factory of HTTP endpoints: `GET /` on the instance's `host:port` over a kept-alive connection pool of its own
 * (one `http.Agent` per instance, destroyed by `close`). Resolves on 200, rejects with {@link HttpStatusError}
 * otherwise, or with the socket's error; honours the call's `signal`.
 */
export function httpFactory(): Factory<void, void> {
  return (instance) => {
    const { address } = instance;
    const colon = address.lastIndexOf(':');
    const host = address.slice(0, colon);
    const port = Number(address.slice(colon + 1));
    const agent = new http.Agent({ keepAlive: true });
    const endpoint: Endpoint<void, void> = (_request, options) =>
      new Promise<void>((resolve, reject) => {
        const signal = options?.signal;
        const req = http.request(
          { host, port, path: '/', agent, ...(signal ? { signal } : {}) },
          (res: http.IncomingMessage) => {
            res.resume();
            res.on('end', () =>
              res.statusCode === 200 ? resolve() : reject(new HttpStatusError(res.statusCode ?? 0, address)),
            );
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end();
      });
    return { endpoint, close: () => agent.destroy() };
  };
}

/** The HTTP servers of one scenario, in a worker thread: `sets[s][i]` answers on `127.0.0.1:ports[s][i]`. */
export class ServerThread {
  readonly #worker: Worker;
  readonly #counts: Int32Array;
  readonly #n: number;
  readonly ports: readonly (readonly number[])[];

  private constructor(worker: Worker, counts: Int32Array, n: number, ports: number[][]) {
    this.#worker = worker;
    this.#counts = counts;
    this.#n = n;
    this.ports = ports;
  }

  /** Starts one server per instance of every set, each set behaving as `sets[s]` says. */
  static async start(sets: readonly (readonly InstanceBehaviour[])[], seed: number): Promise<ServerThread> {
    const n = sets[0]?.length ?? 0;
    const counts = new SharedArrayBuffer(4 * n * sets.length);
    const data: ServersData = { sets, counts, seed };
    const worker = new Worker(new URL('./tail-latency-servers.worker.js', import.meta.url), {
      workerData: data,
    });
    const ready = await new Promise<ServersReady>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    return new ServerThread(worker, new Int32Array(counts), n, ready.ports);
  }

  /** Sets the scenario's time zero (a {@link nowMs} reading), from which flapping and outages are timed. */
  begin(t0: number): void {
    this.#worker.postMessage({ type: 'start', t0 });
  }

  /** Requests each server of set `s` has received so far. */
  counts(s: number): number[] {
    return Array.from({ length: this.#n }, (_, i) => Atomics.load(this.#counts, s * this.#n + i));
  }

  /** Closes every server and ends the thread; resolves with its event-loop utilisation since {@link begin}. */
  async close(): Promise<number> {
    const closed = new Promise<ServersClosed>((resolve) => this.#worker.once('message', resolve));
    this.#worker.postMessage({ type: 'close' });
    const { utilization } = await closed;
    await this.#worker.terminate();
    return utilization;
  }
}

/** One settled call: when it was due (ms after time zero), its latency from then (ms), and whether it resolved. */
export interface CallRecord {
  readonly dueMs: number;
  readonly latencyMs: number;
  readonly ok: boolean;
}

/**
 * Open loop: starts calls of `callers.length` clients at `rate` calls/s each for `durationMs` from `t0` (a
 * {@link nowMs} reading), whatever their latency, so that queueing shows in the latency instead of slowing the
 * load. The clients take turns: call j of client k is due at `(j + k / K) / rate` s, so every client's calls are
 * evenly spread and none always goes first. A call's latency is counted from when it was due (a late timer or a
 * busy event loop counts, as it would for a caller), to its settling. Resolves once every call has settled,
 * with the calls of each client in the order they were due. `at` (ms after `t0` → callback) runs callbacks at
 * those times during the run, e.g. to read the servers' counters.
 */
export async function openLoop(
  callers: readonly (() => Promise<unknown>)[],
  rate: number,
  durationMs: number,
  t0: number,
  at: ReadonlyMap<number, () => void> = new Map(),
): Promise<CallRecord[][]> {
  const k = callers.length;
  const records: CallRecord[][] = callers.map(() => []);
  const slotMs = 1000 / (rate * k);
  const slots = Math.floor(durationMs / slotMs);
  const timers = [...at].map(([ms, fn]) => setTimeout(fn, Math.max(0, t0 + ms - nowMs())));
  let pending = 0;
  let drained: (() => void) | undefined;
  const settle = (records: CallRecord[], dueMs: number, ok: boolean) => {
    records.push({ dueMs, latencyMs: nowMs() - t0 - dueMs, ok });
    if (--pending === 0) drained?.();
  };
  await new Promise<void>((done) => {
    let s = 0;
    const tick = () => {
      const now = nowMs() - t0;
      for (; s < slots && s * slotMs <= now; s++) {
        const client = s % k;
        const dueMs = s * slotMs;
        const mine = records[client]!;
        pending++;
        let call: Promise<unknown>;
        try {
          call = callers[client]!();
        } catch (error) {
          call = Promise.reject(error);
        }
        call.then(
          () => settle(mine, dueMs, true),
          () => settle(mine, dueMs, false),
        );
      }
      if (s >= slots) done();
      else setTimeout(tick, Math.max(0, s * slotMs - (nowMs() - t0)));
    };
    tick();
  });
  if (pending > 0) await new Promise<void>((resolve) => (drained = resolve));
  for (const timer of timers) clearTimeout(timer);
  for (const r of records) r.sort((a, b) => a.dueMs - b.dueMs);
  return records;
}
