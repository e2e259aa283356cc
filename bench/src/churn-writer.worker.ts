/**
 * Worker thread for the churn benchmark: writes the churn load with {@link LoadWriter}s, so the writer does not
 * share the instancer's event loop (and a busy instancer cannot slow the load down, or the other way round).
 *
 * Protocol: started with {@link ChurnLoad} as `workerData`; posts `'ready'` once connected, starts writing on any
 * message, and posts a {@link ChurnLoadDone} when every write is acknowledged (or `{ error }`).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type Change, LoadWriter } from './load-writer.js';
import { addressOf, bounded, keyOf } from './workload.js';

/** What to write. Change i: even → put key `instances + i/2` (new); odd → delete key `(i-1)/2` (original). */
export interface ChurnLoad {
  readonly endpoint: string;
  readonly prefix: string;
  readonly instances: number;
  readonly changes: number;
  /** Requests in flight. */
  readonly concurrency: number;
  /** Changes per request: 1 = a put or delete each; more = transactions of that many. */
  readonly batch: number;
  /** HTTP/2 connections the requests are spread over. */
  readonly connections: number;
}

/** Posted when done: `process.hrtime.bigint()` readings (one clock for every thread of the process). */
export interface ChurnLoadDone {
  readonly firstWrite: bigint;
  readonly lastAck: bigint;
}

export function churnChange(load: ChurnLoad, i: number): Change {
  const j = i >> 1;
  return i % 2 === 0
    ? { key: keyOf(load.prefix, load.instances + j), value: addressOf(load.instances + j, 1) }
    : { key: keyOf(load.prefix, j) };
}

async function main(port: NonNullable<typeof parentPort>, load: ChurnLoad) {
  const writers = Array.from({ length: load.connections }, () => new LoadWriter(load.endpoint));
  try {
    // One round trip per connection before the clock starts (connection set-up is not load).
    await Promise.all(writers.map((w) => w.apply({ key: `${load.prefix}~warm-up` })));
    await new Promise<void>((resolve) => {
      port.once('message', () => resolve());
      port.postMessage('ready');
    });
    const requests = Math.ceil(load.changes / load.batch);
    const firstWrite = process.hrtime.bigint();
    await bounded(load.concurrency, requests, (r) => {
      const writer = writers[r % writers.length]!;
      if (load.batch === 1) return writer.apply(churnChange(load, r));
      const changes: Change[] = [];
      for (let i = r * load.batch; i < Math.min(load.changes, (r + 1) * load.batch); i++) {
        changes.push(churnChange(load, i));
      }
      return writer.txn(changes);
    });
    const done: ChurnLoadDone = { firstWrite, lastAck: process.hrtime.bigint() };
    port.postMessage(done);
  } catch (err) {
    port.postMessage({ error: err instanceof Error ? err.message : String(err) });
  } finally {
    await Promise.all(writers.map((w) => w.close()));
  }
}

if (parentPort) await main(parentPort, workerData as ChurnLoad);
