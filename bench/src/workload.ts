/**
 * The etcd workloads' keys and values, a concurrency limiter and a promise with its resolver (no etcd client:
 * worker threads load it).
 */

/** A go-kit style value (the instance address) for instance `i`. */
export function addressOf(i: number, salt = 0): string {
  return `http://10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:${8080 + salt}`;
}

/** Key of instance `i` under `prefix` (fixed width so keys sort like numbers). */
export function keyOf(prefix: string, i: number): string {
  return `${prefix}${String(i).padStart(7, '0')}`;
}

/** Runs `tasks` with at most `limit` in flight. */
export async function bounded(limit: number, count: number, task: (i: number) => Promise<unknown>) {
  let next = 0;
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
}

/** A promise with its resolver (Node 20 has no `Promise.withResolvers`). */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
