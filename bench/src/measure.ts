/** Timing and allocation helpers for the benchmarks. Run node with --expose-gc for allocation figures. */

const gc = (globalThis as { gc?: () => void }).gc;

/** Whether allocation can be measured (node was started with --expose-gc). */
export const canMeasureAllocation = typeof gc === 'function';

/** A full GC when node runs with --expose-gc; nothing otherwise. */
export function collectGarbage(): void {
  gc?.();
}

/** `heapUsed` in bytes after `passes` full GCs; NaN without --expose-gc. */
export function heapAfterGc(passes: number): number {
  if (!gc) return Number.NaN;
  for (let i = 0; i < passes; i++) gc();
  return process.memoryUsage().heapUsed;
}

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
 * A loop calling `target[method]()` `n` times, compiled afresh for each call of this function: its call site has
 * never seen another target, so each benchmark gets the monomorphic call an application's own call site would
 * (a loop shared by several balancers went polymorphic and measured the balancers after the first up to 3×
 * slower, e.g. random at 10 endpoints 35 ns instead of 13 ns, depending on the order they ran in).
 */
export function freshLoop(method: string): (target: object, n: number) => unknown {
  if (!/^[A-Za-z_$][\w$]*$/.test(method)) throw new TypeError(`freshLoop: not a method name: ${method}`);
  return new Function(
    'target',
    'n',
    `let last; for (let i = 0; i < n; i++) last = target.${method}(); return last;`,
  ) as (target: object, n: number) => unknown;
}

/**
 * Nanoseconds per call of `target[method]()`: `iterations` calls per run, `runs` runs after a warm-up, through a
 * {@link freshLoop}; the median of the per-run averages.
 */
export function nsPerCall(target: object, method: string, iterations: number, runs: number): number {
  const loop = freshLoop(method);
  consume(loop(target, iterations));
  const perRun: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    consume(loop(target, iterations));
    perRun.push(Number(process.hrtime.bigint() - t0) / iterations);
  }
  return median(perRun);
}

/**
 * Nanoseconds per awaited call of `op`: runs it `iterations` times per run, `runs` times after a warm-up, and
 * returns the median of the per-run averages.
 */
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
export function bytesPerCall(target: object, method: string, iterations: number, runs = 3): number {
  if (!gc) return Number.NaN;
  const loop = freshLoop(method);
  // Warm up with a full run, so V8 has compiled the loop (its code and feedback are heap objects too).
  consume(loop(target, iterations));
  let least = Number.POSITIVE_INFINITY;
  for (let r = 0; r < runs; r++) {
    gc();
    const before = process.memoryUsage().heapUsed;
    consume(loop(target, iterations));
    const after = process.memoryUsage().heapUsed;
    least = Math.min(least, Math.max(0, after - before) / iterations);
  }
  return least;
}
