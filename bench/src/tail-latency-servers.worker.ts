/**
 * Worker thread of the tail-latency benchmark: the HTTP servers (node:http on loopback), one per simulated
 * instance, so that serving does not share the client's event loop.
 *
 * Protocol: started with {@link ServersData} as `workerData`; posts {@link ServersReady} once every server
 * listens. A `{ type: 'start', t0 }` message sets the scenario's time zero (flapping and outages are timed from it);
 * `{ type: 'close' }` closes every server and posts {@link ServersClosed}. Every request is counted, as it
 * arrives, in `counts` (shared memory, one Int32 per server), which the client thread reads whenever it likes.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { failsAt, type InstanceBehaviour, normal, nowMs, prng, serviceMs } from './tail-latency-model.js';

/** What the worker serves: `sets[s][i]` is instance i of server set s; its counter is `counts[s × n + i]`. */
export interface ServersData {
  readonly sets: readonly (readonly InstanceBehaviour[])[];
  readonly counts: SharedArrayBuffer;
  readonly seed: number;
}

/** Posted once every server listens: `ports[s][i]` on 127.0.0.1. */
export interface ServersReady {
  readonly type: 'ready';
  readonly ports: number[][];
}

/** Posted after `close`: this thread's event-loop utilisation from `start` to `close`, in [0, 1]. */
export interface ServersClosed {
  readonly type: 'closed';
  readonly utilization: number;
}

/**
 * One instance: answers after its service time, at most `concurrency` calls at once, the rest in FIFO order. Two
 * random streams from `seed`: service times, and failures, drawn only from `badFromMs` on — so the k-th request
 * after the misbehaviour began fails or not alike in every server set (common random numbers: the strategies
 * are compared on the same luck).
 */
function serve(b: InstanceBehaviour, count: () => void, seed: number, t0: () => number): http.Server {
  const uniform = prng(seed);
  const failDraw = prng(seed ^ 0x5bd1e995);
  const waiting: { ms: number; res: http.ServerResponse }[] = [];
  let busy = 0;
  const answer = (res: http.ServerResponse, status: number) => {
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end(status === 200 ? 'ok' : 'no');
  };
  const start = (ms: number, res: http.ServerResponse) => {
    busy++;
    setTimeout(() => {
      busy--;
      answer(res, 200);
      const next = waiting.shift();
      if (next) start(next.ms, next.res);
    }, ms);
  };
  const server = http.createServer((req, res) => {
    count();
    req.resume();
    const at = nowMs() - t0();
    if (at >= b.badFromMs && failsAt(b, at, failDraw())) {
      answer(res, 503);
      return;
    }
    const ms = serviceMs(b, at, normal(uniform));
    if (busy < b.concurrency) start(ms, res);
    else waiting.push({ ms, res });
  });
  // Longer than any run, so that a kept-alive socket is never closed by the server while the client reuses it.
  server.keepAliveTimeout = 600_000;
  server.headersTimeout = 601_000;
  return server;
}

async function main(port: NonNullable<typeof parentPort>, data: ServersData) {
  const counts = new Int32Array(data.counts);
  let t0 = nowMs();
  const servers: http.Server[] = [];
  const ports: number[][] = [];
  const n = data.sets[0]?.length ?? 0;
  for (const [s, set] of data.sets.entries()) {
    const row: number[] = [];
    for (const [i, b] of set.entries()) {
      const slot = s * n + i;
      const server = serve(
        b,
        () => Atomics.add(counts, slot, 1),
        data.seed * 1000 + i,
        () => t0,
      );
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      row.push((server.address() as { port: number }).port);
      servers.push(server);
    }
    ports.push(row);
  }
  let elu = performance.eventLoopUtilization();
  port.on('message', (m: { type: 'start'; t0: number } | { type: 'close' }) => {
    if (m.type === 'start') {
      t0 = m.t0;
      elu = performance.eventLoopUtilization();
      return;
    }
    const utilization = performance.eventLoopUtilization(elu).utilization;
    for (const server of servers) {
      server.close();
      server.closeAllConnections();
    }
    port.postMessage({ type: 'closed', utilization } satisfies ServersClosed);
  });
  port.postMessage({ type: 'ready', ports } satisfies ServersReady);
}

if (parentPort) await main(parentPort, workerData as ServersData);
