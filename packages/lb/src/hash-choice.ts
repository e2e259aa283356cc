import { typeName } from './balancer.js';

/**
 * @internal Which of a key's choices attempt `attempt` takes among `n` endpoints: 0 for the first attempt, k − 1
 * for attempt k, wrapping around after n.
 * @throws TypeError naming `fn` if `attempt` is not a positive integer.
 */
export function choiceOf(attempt: number, n: number, fn: string): number {
  if (!(Number.isInteger(attempt) && attempt >= 1)) {
    throw new TypeError(`${fn}: context.attempt must be a positive integer, got ${typeName(attempt)}`);
  }
  return (attempt - 1) % n;
}

/**
 * @internal The owner reached after `skip` distinct owners, reading `owners` cyclically from `start` (a ring's
 * points in order, or a Maglev table): `skip` 0 is the owner at `start`. `skip` must be less than the number of
 * distinct owners in `owners`. Reads O(slots up to the answer).
 */
export function nthDistinct(owners: Int32Array, start: number, skip: number): number {
  const first = owners[start]!;
  if (skip === 0) return first;
  const seen: number[] = [first];
  const length = owners.length;
  for (let at = start + 1; ; at++) {
    if (at === length) at = 0;
    const owner = owners[at]!;
    if (seen.includes(owner)) continue;
    if (seen.length === skip) return owner;
    seen.push(owner);
  }
}
