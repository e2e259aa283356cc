/**
 * Cold start: time from `new EtcdInstancer(...)` to its first event, with N instances already under the prefix.
 * The instancer reads the prefix in pages of 5 000 at one revision, decodes every value, builds the sorted frozen
 * set and starts the watch. The floor is one bare etcd3 ranged read of the whole prefix (`getAll().prefix(p)`,
 * unpaged, values as strings, nothing decoded). Median of `runs` runs; each uses a fresh instancer on an already
 * connected client (the shared watch ends between runs).
 */
import type { InstancerEvent } from '@sdkit/sd-core';
import { EtcdInstancer } from '@sdkit/sd-etcd';
import { type BenchEtcd, msSince } from './etcd-env.js';
import { collectGarbage, median } from './measure.js';

/** Result of the cold-start benchmark. */
export interface ColdStartResult {
  readonly instances: number;
  readonly runs: number;
  /** Median ms to the first event. */
  readonly firstEventMs: number;
  /** Median ms of one bare ranged read of the prefix. */
  readonly rangedReadMs: number;
  readonly ratio: number;
}

export async function benchColdStart(
  env: BenchEtcd,
  prefix: string,
  instances: number,
  runs: number,
): Promise<ColdStartResult> {
  const client = await env.sdkit();
  const raw = env.raw();
  await raw.get('warm-up').string();
  const sdkit: number[] = [];
  const floor: number[] = [];
  for (let r = 0; r < runs; r++) {
    collectGarbage();
    const t0 = process.hrtime.bigint();
    const all = await raw.getAll().prefix(prefix).strings();
    floor.push(msSince(t0));
    if (Object.keys(all).length !== instances) {
      throw new Error(`cold start: ${Object.keys(all).length} keys under ${prefix}, expected ${instances}`);
    }
    collectGarbage(); // the read's garbage is not the instancer's to collect
    const t1 = process.hrtime.bigint();
    const instancer = new EtcdInstancer(client, { prefix });
    const first = await new Promise<InstancerEvent>((resolve) => {
      const sub = instancer.events$.subscribe((e) => {
        resolve(e);
        queueMicrotask(() => sub.unsubscribe());
      });
    });
    sdkit.push(msSince(t1));
    instancer.stop();
    if (first.error || first.instances.length !== instances) {
      throw new Error(`cold start: first event has ${first.instances.length} instances (${first.error})`);
    }
  }
  const firstEventMs = median(sdkit);
  const rangedReadMs = median(floor);
  return { instances, runs, firstEventMs, rangedReadMs, ratio: firstEventMs / rangedReadMs };
}
