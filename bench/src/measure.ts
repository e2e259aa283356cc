/** Timing and allocation helpers for the benchmarks. Run node with --expose-gc for allocation figures. */

const gc = (globalThis as { gc?: () => void }).gc;

/** Whether allocation can be measured (node was started with --expose-gc). */
export const canMeasureAllocation = typeof gc === 'function';

/** Median of a list of numbers. */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** A value the optimiser cannot prove unused. */
export let sink: unknown;
export function consume(v: unknown): void {
  sink = v;
}

/**
 * Nanoseconds per operation: runs `op` `iterations` times per run, `runs` times after a warm-up, and returns the
 * median of the per-run averages.
 */
export function nsPerOp(op: () => unknown, iterations: number, runs: number): number {
  for (let i = 0; i < iterations; i++) consume(op());
  const perRun: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) consume(op());
    perRun.push(Number(process.hrtime.bigint() - t0) / iterations);
  }
  return median(perRun);
}

/** Async variant of {@link nsPerOp}: awaits each call in turn. */
export async function nsPerAsyncOp(
  op: () => Promise<unknown>,
  iterations: number,
  runs: number,
): Promise<number> {
  for (let i = 0; i < iterations; i++) consume(await op());
  const perRun: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) consume(await op());
    perRun.push(Number(process.hrtime.bigint() - t0) / iterations);
  }
  return median(perRun);
}

/**
 * Bytes allocated per operation: heap growth over `iterations` calls between two full GCs, divided by the count;
 * the smallest of `runs` measurements. Valid when no scavenge runs in between, which a large young generation
 * (--max-semi-space-size) ensures for modest counts. The minimum, because what the operation allocates shows in
 * every run, while a one-off (V8 compiling or re-optimising the loop, ≈ 250 KB once) shows in one. Returns NaN
 * without --expose-gc.
 */
export function bytesPerOp(op: () => unknown, iterations: number, runs = 3): number {
  if (!gc) return Number.NaN;
  for (let i = 0; i < 1000; i++) consume(op());
  let least = Number.POSITIVE_INFINITY;
  for (let r = 0; r < runs; r++) {
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < iterations; i++) consume(op());
    const after = process.memoryUsage().heapUsed;
    least = Math.min(least, Math.max(0, after - before) / iterations);
  }
  return least;
}
