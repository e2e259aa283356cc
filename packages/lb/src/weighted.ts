import { assertKnownOptions, type EndpointEntry, type Instance } from '@sdkit/sd-core';
import type { Balancer } from './balancer.js';
import { noEndpoints, readyOf, typeName } from './balancer.js';
import { assertEntrySource, type EntrySource } from './entry-source.js';
import { seedOf } from './seed-of.js';

/** Options of {@link weighted}. */
export interface WeightedOptions {
  /**
   * The weight of an endpoint's instance: a finite number ≥ 0 (0: never picked, unless every weight is 0). Called
   * once per entry each time the source's set changes, never per pick. A result that is not a finite number ≥ 0
   * counts as 1. Default: `instance.metadata.weight` when it is a finite number ≥ 0, else 1.
   */
  readonly weightOf?: (instance: Instance) => number;
  /**
   * Makes the start of the schedule reproducible, as `random`'s seed does: an integer in 0 … 2³²−1. Without it,
   * from `crypto.getRandomValues`.
   */
  readonly seed?: number;
}

const OPTIONS = ['weightOf', 'seed'] as const;
const HINTS = { weight: 'weightOf', weights: 'weightOf', getWeight: 'weightOf' };

/** The default weight: `metadata.weight` when it is a finite number ≥ 0, else 1. */
function metadataWeight(instance: Instance): number {
  const weight = instance.metadata?.weight;
  return typeof weight === 'number' && weight >= 0 && Number.isFinite(weight) ? weight : 1;
}

/**
 * Weighted round-robin by earliest deadline first (Envoy's EDF scheduler; the proportions of nginx's smooth
 * weighted round-robin): in each round, endpoint i's k-th pick is due at `(k + ½) / wᵢ`, and each pick takes the
 * endpoint due first, so each endpoint's picks are spread evenly over the round instead of coming in a burst.
 * Ties go to the endpoints of the weight met first in the source's order, each in the source's order.
 *
 * - Exact proportions: with integer weights (up to 2³¹−1) of total W the picks repeat with period W, so any W
 *   consecutive picks of an unchanging set hold each endpoint exactly wᵢ times (any k·W picks: k·wᵢ times). With
 *   other weights the shares converge to wᵢ / W.
 * - An endpoint of weight 0 is never picked while another weighs more. When every weight is 0, every endpoint is
 *   picked equally (as if all weighed 1): a set whose weights all say "no traffic" still serves.
 * - With all weights equal it is plain round-robin, in the source's order.
 *
 * Weights come from `weightOf`, called for each entry when the source's `entries()` array changes: O(n) then,
 * and the schedule restarts at a random point of the round (seeded), so that clients that see a change together
 * do not all start on the heaviest endpoint. A pick reads `entries()` and allocates nothing. Endpoints of equal
 * weight share one place in a binary heap, so a pick costs O(1) amortised with one weight, O(log d) with d
 * distinct weights (O(log n) at worst, when all differ).
 *
 * @throws TypeError if `endpointer` lacks `endpoints()` or `entries()`, or an option is unknown or invalid.
 */
export function weighted<Req, Res>(
  endpointer: EntrySource<Req, Res>,
  options: WeightedOptions = {},
): Balancer<Req, Res> {
  assertEntrySource(endpointer, 'weighted');
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`weighted: options must be an object, got ${typeName(options)}`);
  }
  assertKnownOptions('weighted', options, OPTIONS, HINTS);
  const { weightOf = metadataWeight } = options;
  if (typeof weightOf !== 'function') {
    throw new TypeError(`weighted: weightOf must be a function, got ${typeName(weightOf)}`);
  }
  let state = seedOf('weighted', options.seed);
  /** A uniform float in [0, 1) from the private mulberry32 (used once per change). */
  const draw = (): number => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };

  let current: readonly EndpointEntry<Req, Res>[] | undefined;
  /**
   * Endpoints of equal weight form a class: the class is due at `(k + ½) / w` and then gives one pick to each of
   * its members in turn, in the source's order — the picks plain EDF over the endpoints would make, with ties
   * broken by class, at the cost of a heap of classes (a few, in practice) instead of endpoints.
   */
  let classes = 0;
  /** Entry indices grouped by class (each class's in the source's order); class c's are `members[start[c] …]`. */
  let members = new Int32Array(0);
  let start = new Int32Array(0);
  let size = new Int32Array(0);
  let weight = new Float64Array(0);
  /** Per class: which member is next within its current deadline, and how many deadlines of the round it used. */
  let cursor = new Int32Array(0);
  let count = new Float64Array(0);
  /** Integer weights: each class's deadlines wrap after w, and all are moved back once all have wrapped. */
  let integral = true;
  let wrapped = 0;
  /** A binary min-heap of classes by (deadline, class): `heapDue[p]` is the deadline of class `heapClass[p]`. */
  let heapClass = new Int32Array(0);
  let heapDue = new Float64Array(0);

  /** Puts class `item`, due at `due`, at heap position `from` or below. */
  const siftDown = (from: number, item: number, due: number): void => {
    let pos = from;
    for (;;) {
      let child = 2 * pos + 1;
      if (child >= classes) break;
      let childDue = heapDue[child]!;
      const right = child + 1;
      if (right < classes) {
        const rightDue = heapDue[right]!;
        if (rightDue < childDue || (rightDue === childDue && heapClass[right]! < heapClass[child]!)) {
          child = right;
          childDue = rightDue;
        }
      }
      if (childDue < due || (childDue === due && heapClass[child]! < item)) {
        heapClass[pos] = heapClass[child]!;
        heapDue[pos] = childDue;
        pos = child;
      } else break;
    }
    heapClass[pos] = item;
    heapDue[pos] = due;
  };

  /**
   * Starts a new round: every class has wrapped (its count is 0), so each is due at its first deadline again,
   * `0.5 / w`, computed afresh rather than as `1 + 0.5 / w − 1`: the float error of that subtraction broke ties
   * differently from the first round (weights 3 and 9: 1/6 against 3/18), so rounds were not all alike.
   */
  const rebase = (): void => {
    for (let p = 0; p < classes; p++) {
      const c = heapClass[p]!;
      heapDue[p] = (count[c]! + 0.5) / weight[c]!;
    }
    for (let p = (classes >> 1) - 1; p >= 0; p--) siftDown(p, heapClass[p]!, heapDue[p]!);
    wrapped = 0;
  };

  /** Takes `entries` as the set. If `weightOf` throws, the error propagates and the next pick tries again. */
  const rebuild = (entries: readonly EndpointEntry<Req, Res>[]): void => {
    const n = entries.length;
    const weights = new Float64Array(n);
    let positive = 0;
    for (let i = 0; i < n; i++) {
      const w = weightOf(entries[i]!.instance);
      const valid = typeof w === 'number' && w >= 0 && Number.isFinite(w) ? w : 1;
      weights[i] = valid;
      if (valid > 0) positive++;
    }
    current = entries;
    if (positive === 0) weights.fill(1); // every weight 0: all alike
    // Classes by weight, numbered in order of first appearance.
    const classOf = new Int32Array(n);
    const byWeight = new Map<number, number>();
    const classWeights: number[] = [];
    const classSizes: number[] = [];
    integral = true;
    for (let i = 0; i < n; i++) {
      const w = weights[i]!;
      if (w === 0) {
        classOf[i] = -1;
        continue;
      }
      let c = byWeight.get(w);
      if (c === undefined) {
        c = classWeights.length;
        byWeight.set(w, c);
        classWeights.push(w);
        classSizes.push(0);
        if (!(Number.isInteger(w) && w <= 0x7fff_ffff)) integral = false;
      }
      classOf[i] = c;
      classSizes[c]!++;
    }
    const d = classWeights.length;
    classes = d;
    weight = Float64Array.from(classWeights);
    size = Int32Array.from(classSizes);
    start = new Int32Array(d);
    for (let c = 1; c < d; c++) start[c] = start[c - 1]! + size[c - 1]!;
    members = new Int32Array(positive === 0 ? n : positive);
    const fill = start.slice();
    for (let i = 0; i < n; i++) {
      const c = classOf[i]!;
      if (c >= 0) members[fill[c]!++] = i;
    }
    cursor = new Int32Array(d);
    count = new Float64Array(d);
    heapClass = new Int32Array(d);
    heapDue = new Float64Array(d);
    wrapped = 0;
    if (d === 0) return;
    // Start at a random point of the round (so that clients that see a change together spread out): skip the
    // deadlines before `phase`, and the first members of the class due first.
    const phase = draw();
    for (let c = 0; c < d; c++) {
      const w = weight[c]!;
      let k = Math.max(0, Math.ceil(phase * w - 0.5));
      let base = 0;
      if (integral && k >= w) {
        k = 0;
        base = 1;
        wrapped++;
      }
      count[c] = k;
      heapClass[c] = c;
      heapDue[c] = base + (k + 0.5) / w;
    }
    if (wrapped === d) rebase();
    for (let p = (d >> 1) - 1; p >= 0; p--) siftDown(p, heapClass[p]!, heapDue[p]!);
    const first = heapClass[0]!;
    cursor[first] = Math.floor(draw() * size[first]!);
  };

  return {
    endpoint() {
      const entries = endpointer.entries();
      if (entries !== current) rebuild(entries);
      if (classes === 0) throw noEndpoints(endpointer);
      const c = heapClass[0]!;
      const next = cursor[c]! + 1;
      const item = members[start[c]! + next - 1]!;
      if (next < size[c]!) {
        cursor[c] = next;
        return entries[item]!.endpoint;
      }
      // Every member had its pick at this deadline: the class's next deadline.
      cursor[c] = 0;
      const w = weight[c]!;
      const k = count[c]! + 1;
      if (integral && k === w) {
        // Its last deadline of this round: the next is its first of the next round.
        count[c] = 0;
        siftDown(0, c, 1 + 0.5 / w);
        if (++wrapped === classes) rebase();
      } else {
        // With integer weights the class due first is always in the current round (deadline < 1).
        count[c] = k;
        siftDown(0, c, (k + 0.5) / w);
      }
      return entries[item]!.endpoint;
    },
    ...readyOf(endpointer),
  };
}
