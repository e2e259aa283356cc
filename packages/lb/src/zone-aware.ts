import { assertKnownOptions, type Endpoint, type EndpointEntry, type Instance } from '@sdkit/sd-core';
import { typeName } from './balancer.js';
import { assertEntrySource, type EntrySource } from './entry-source.js';
import { murmur3 } from './murmur3.js';
import { seedOf } from './seed-of.js';

/** Options of {@link zoneAware}. */
export interface ZoneAwareOptions {
  /** The caller's zone (e.g. `topology.kubernetes.io/zone` of its node, or the cloud's availability zone). */
  readonly zone: string;
  /**
   * The zone of an endpoint's instance, or undefined when it has none (it then belongs to no zone: never local,
   * and no caller is assumed there). Called once per entry each time the source's set changes. Default:
   * `metadata.zone` when it is a non-empty string (what sd-kubernetes puts there from the EndpointSlice).
   */
  readonly zoneOf?: (instance: Instance) => string | undefined;
  /**
   * The share of all calls to the service that come from the caller's zone (Envoy's share of the local cluster in
   * this zone), in (0, 1]: the caller's zone may keep its calls to itself while it holds at least this share of the
   * endpoints, and spills over in proportion below it. The other callers are assumed spread evenly over the other
   * zones. Default: 1 / the number of zones among the endpoints (callers spread like the zones).
   */
  readonly callerShare?: number;
  /**
   * Below this many (healthy) endpoints, zone-aware routing is off and every endpoint is used (Envoy's
   * `min_cluster_size`): a small set spread over zones is better used whole. An integer ≥ 0. Default 6.
   */
  readonly minEndpoints?: number;
  /**
   * Whether an endpoint counts as healthy: only healthy endpoints are counted and used, unless none is (then all
   * are used). Called once per entry each time the source's set changes. Default: unless `metadata.conditions.ready`
   * is false (sd-kubernetes' terminating endpoints kept with `servingTerminating`, which kube-proxy too uses only when
   * no ready one is left). Ejected endpoints need no predicate: put `outlierEjection` under `zoneAware`.
   */
  readonly healthy?: (instance: Instance) => boolean;
  /**
   * Use Kubernetes topology hints (`metadata.hints.forZones`, as sd-kubernetes reads them from the EndpointSlice)
   * when every healthy endpoint has some and one of them is for the caller's zone: then exactly the endpoints for
   * the caller's zone are used, as kube-proxy does. Default true.
   */
  readonly hints?: boolean;
  /**
   * Makes the choice of the endpoints that take the spill-over reproducible: an integer in 0 … 2³²−1. Without it,
   * from `crypto.getRandomValues`, so that the callers of a zone spill over to different endpoints.
   */
  readonly seed?: number;
}

/** How {@link ZoneAwareSource.endpoints} chose its endpoints. */
export interface ZoneRouting {
  /**
   * - `local`: the caller's zone holds its share of the endpoints: only its endpoints.
   * - `spill`: the caller's zone holds fewer: its endpoints and some of other zones, in proportion.
   * - `hints`: the endpoints whose Kubernetes topology hints name the caller's zone.
   * - `all`: every (healthy) endpoint; `reason` says why.
   */
  readonly mode: 'local' | 'spill' | 'hints' | 'all';
  /** Why the mode is `all`: no endpoint, none healthy, fewer than `minEndpoints`, none in the caller's zone. */
  readonly reason?: 'empty' | 'none-healthy' | 'too-few-endpoints' | 'no-local-endpoint';
  /** Endpoints of the source, and how many of them are healthy. */
  readonly total: number;
  readonly healthy: number;
  /** Healthy endpoints in the caller's zone. */
  readonly local: number;
  /**
   * The share of `endpoints()` in the caller's zone: the share of the calls that stay in the zone when a balancer
   * spreads them evenly (1 in `local`; about `local / (callerShare × healthy)` in `spill`).
   */
  readonly localShare: number;
  /** Endpoints that `endpoints()` returns. */
  readonly selected: number;
}

/**
 * An entry source restricted to the endpoints a caller in one zone should use; see {@link zoneAware}. Any
 * balancer reads it, and the hashing ones and `weighted` read its `entries()`.
 */
export interface ZoneAwareSource<Req = unknown, Res = unknown> {
  /**
   * The endpoints to use, in the source's order: a frozen array, the same one until the choice changes (a change
   * of the source's set that leaves the choice as it was keeps the array). O(1) and allocation-free when the
   * source's `entries()` array did not change; O(n log n) at the read after it did.
   */
  endpoints(): readonly Endpoint<Req, Res>[];
  /** The entries of {@link endpoints}, in the same order (`entries()[i].endpoint === endpoints()[i]`). Frozen. */
  entries(): readonly EndpointEntry<Req, Res>[];
  /** The source's `ready()`, when it has one. */
  ready?(options?: { readonly signal?: AbortSignal }): Promise<void>;
  /** The source's reason when the set is empty ('' when it cannot tell): the choice is never empty otherwise. */
  emptyReason(): string;
  /** How the current endpoints were chosen (a frozen object, the same one until the choice changes). */
  routing(): ZoneRouting;
}

const OPTIONS = ['zone', 'zoneOf', 'callerShare', 'minEndpoints', 'healthy', 'hints', 'seed'] as const;
const HINTS = {
  localZone: 'zone',
  callerZone: 'zone',
  minLocalShare: 'callerShare',
  localShare: 'callerShare',
  localPercent: 'callerShare',
  minClusterSize: 'minEndpoints',
  min_cluster_size: 'minEndpoints',
  isHealthy: 'healthy',
  useHints: 'hints',
  topologyHints: 'hints',
};
const EMPTY: readonly never[] = Object.freeze([]);

/** The default zone: `metadata.zone` when it is a non-empty string. */
function metadataZone(instance: Instance): string | undefined {
  const zone = instance.metadata?.zone;
  return typeof zone === 'string' && zone !== '' ? zone : undefined;
}

/** The default health: unless `metadata.conditions.ready` is false. */
function metadataReady(instance: Instance): boolean {
  const conditions = instance.metadata?.conditions;
  return !(
    typeof conditions === 'object' &&
    conditions !== null &&
    (conditions as { ready?: unknown }).ready === false
  );
}

/** The zones of `metadata.hints.forZones` (sd-kubernetes' shape: an array of zone names), or undefined. */
function hintedZones(instance: Instance): readonly unknown[] | undefined {
  const hints = instance.metadata?.hints;
  if (typeof hints !== 'object' || hints === null) return undefined;
  const forZones = (hints as { forZones?: unknown }).forZones;
  return Array.isArray(forZones) ? forZones : undefined;
}

/**
 * Zone-aware routing (Envoy's zone-aware routing; Kubernetes topology hints): a decorator of an entry source that
 * keeps a caller's calls in its own zone while that zone can take them, and spills the rest over to the zones that
 * have endpoints to spare. Any balancer composes with it:
 *
 * ```ts
 * const endpoints = endpointer(instancer, meter.measure(factory));
 * const balancer = roundRobin(zoneAware(outlierEjection(endpoints, { meter }), { zone: 'eu-west-1a' }));
 * ```
 *
 * The choice, made again each time the source's `entries()` array changes:
 * 1. Only healthy endpoints count (`healthy`; all of them if none is).
 * 2. Kubernetes hints: when every healthy endpoint has `metadata.hints.forZones` and some are for the caller's
 *    zone, exactly those (the EndpointSlice controller already made the proportions: kube-proxy's rule).
 * 3. Fewer than `minEndpoints` healthy endpoints, or none in the caller's zone: all of them.
 * 4. The caller's zone holds at least `callerShare` of the healthy endpoints: only its own.
 * 5. Otherwise its L endpoints and about `callerShare × n − L` endpoints of other zones, so that a balancer that
 *    spreads evenly over the result (roundRobin, random, p2c…) keeps `L / (callerShare × n)` of the calls in the
 *    zone — Envoy's proportion. The other zones give in proportion to their surplus (their endpoints beyond their
 *    own callers' share), and within a zone the endpoints are chosen by a seeded hash of their keys, so that the
 *    callers of a zone (each with its own seed) spread their spill-over over all of them, and a change of the set
 *    moves few. Fractions are rounded up or down at random (seeded), so that they hold across callers. With callers
 *    spread as assumed, every endpoint then gets about the same load.
 *
 * Unlike Envoy, the proportions come from which endpoints are in the set, not from a per-call draw: the set stays
 * one frozen array that changes only with the source, and balancers keep their cost. `routing()` tells how the
 * current set was chosen. `ready()` is the source's; there is nothing to close.
 *
 * @throws TypeError if `source` lacks `endpoints()` or `entries()`, or an option is missing, unknown or invalid.
 */
export function zoneAware<Req, Res>(
  source: EntrySource<Req, Res>,
  options: ZoneAwareOptions,
): ZoneAwareSource<Req, Res> {
  assertEntrySource(source, 'zoneAware');
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(
      `zoneAware: options must be an object with the caller's zone, got ${typeName(options)}`,
    );
  }
  assertKnownOptions('zoneAware', options, OPTIONS, HINTS);
  const {
    zone,
    zoneOf = metadataZone,
    callerShare,
    minEndpoints = 6,
    healthy = metadataReady,
    hints = true,
  } = options;
  if (typeof zone !== 'string' || zone === '') {
    throw new TypeError(
      `zoneAware: zone must be a non-empty string (the caller's zone), got ${typeName(zone)}`,
    );
  }
  if (typeof zoneOf !== 'function') {
    throw new TypeError(`zoneAware: zoneOf must be a function, got ${typeName(zoneOf)}`);
  }
  if (typeof healthy !== 'function') {
    throw new TypeError(`zoneAware: healthy must be a function, got ${typeName(healthy)}`);
  }
  if (
    callerShare !== undefined &&
    !(typeof callerShare === 'number' && callerShare > 0 && callerShare <= 1)
  ) {
    throw new TypeError(`zoneAware: callerShare must be a number in (0, 1], got ${typeName(callerShare)}`);
  }
  if (!(Number.isSafeInteger(minEndpoints) && minEndpoints >= 0)) {
    throw new TypeError(`zoneAware: minEndpoints must be an integer >= 0, got ${typeName(minEndpoints)}`);
  }
  if (typeof hints !== 'boolean') {
    throw new TypeError(`zoneAware: hints must be a boolean, got ${typeName(hints)}`);
  }
  // Draws of a private mulberry32: the offsets of the random roundings, and the seed of the endpoints' ranks.
  let state = seedOf('zoneAware', options.seed);
  const draw = (): number => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
  const settings: Settings = {
    zone,
    zoneOf,
    callerShare,
    minEndpoints,
    healthy,
    hints,
    countOffset: draw() / 4294967296,
    zoneOffset: draw() / 4294967296,
    rankSeed: draw(),
  };

  let sourceEntries: readonly EndpointEntry<Req, Res>[] | undefined;
  let viewEntries: readonly EndpointEntry<Req, Res>[] = EMPTY;
  let viewEndpoints: readonly Endpoint<Req, Res>[] = EMPTY;
  let routing: ZoneRouting = Object.freeze<ZoneRouting>({
    mode: 'all',
    reason: 'empty',
    total: 0,
    healthy: 0,
    local: 0,
    localShare: 0,
    selected: 0,
  });

  const refresh = (): void => {
    const entries = source.entries();
    if (entries === sourceEntries) return;
    const choice = choose(entries, settings); // if zoneOf or healthy throws, the next read tries again
    sourceEntries = entries;
    if (!sameEntries(choice.entries, viewEntries)) {
      viewEntries = Object.freeze(choice.entries);
      viewEndpoints = Object.freeze(choice.entries.map((entry) => entry.endpoint));
    }
    if (!sameRouting(choice.routing, routing)) routing = Object.freeze(choice.routing);
  };

  const api: ZoneAwareSource<Req, Res> = {
    endpoints() {
      refresh();
      return viewEndpoints;
    },
    entries() {
      refresh();
      return viewEntries;
    },
    emptyReason() {
      return source.emptyReason?.() ?? '';
    },
    routing() {
      refresh();
      return routing;
    },
  };
  const ready = source.ready;
  if (typeof ready === 'function') api.ready = (readyOptions) => ready.call(source, readyOptions);
  return api;
}

/** The validated settings of one {@link zoneAware} source. */
interface Settings {
  readonly zone: string;
  readonly zoneOf: (instance: Instance) => string | undefined;
  readonly callerShare: number | undefined;
  readonly minEndpoints: number;
  readonly healthy: (instance: Instance) => boolean;
  readonly hints: boolean;
  /** In [0, 1): decides whether the number of endpoints added is rounded up. */
  readonly countOffset: number;
  /** In [0, 1): the offset of the systematic rounding of each zone's part of them. */
  readonly zoneOffset: number;
  /** Seeds the hash that ranks the endpoints of a zone for the spill-over. */
  readonly rankSeed: number;
}

/** The entries a caller should use, and why (see {@link zoneAware}). O(n log n). */
function choose<E extends { readonly key: string; readonly instance: Instance }>(
  entries: readonly E[],
  settings: Settings,
): { entries: E[]; routing: ZoneRouting } {
  const total = entries.length;
  /** The endpoints that count: the healthy ones, or all when none is. */
  let pool = entries.filter((entry) => Boolean(settings.healthy(entry.instance)));
  const healthyCount = pool.length;
  if (healthyCount === 0) pool = entries.slice();
  const n = pool.length;
  const zones = pool.map((entry) => {
    const z = settings.zoneOf(entry.instance);
    return typeof z === 'string' && z !== '' ? z : undefined;
  });
  const isLocal = zones.map((z) => z === settings.zone);
  let local = 0;
  for (const l of isLocal) if (l) local++;
  /** The result: `chosen` (a mask over `pool`), or the whole pool. */
  const result = (mode: ZoneRouting['mode'], reason?: ZoneRouting['reason'], chosen?: readonly boolean[]) => {
    const list = chosen === undefined ? pool : pool.filter((_, i) => chosen[i]);
    let localChosen = 0;
    for (let i = 0; i < n; i++) if (isLocal[i] && (chosen === undefined || chosen[i])) localChosen++;
    const routing: ZoneRouting = {
      mode,
      ...(reason === undefined ? {} : { reason }),
      total,
      healthy: healthyCount,
      local,
      localShare: list.length > 0 ? localChosen / list.length : 0,
      selected: list.length,
    };
    return { entries: list, routing };
  };
  if (total === 0) return result('all', 'empty');
  if (healthyCount === 0) return result('all', 'none-healthy');

  if (settings.hints) {
    // kube-proxy's rule: hints are used when every endpoint has some and one at least is for this zone.
    let hinted = 0;
    let forLocal = 0;
    const forMe = pool.map((entry) => {
      const zonesFor = hintedZones(entry.instance);
      if (zonesFor === undefined || zonesFor.length === 0) return false;
      hinted++;
      const mine = zonesFor.includes(settings.zone);
      if (mine) forLocal++;
      return mine;
    });
    if (hinted === n && forLocal > 0) return result('hints', undefined, forMe);
  }
  if (n < settings.minEndpoints) return result('all', 'too-few-endpoints');
  if (local === 0) return result('all', 'no-local-endpoint');

  // Endpoints per named zone; the callers' shares: this zone's, and the others' spread evenly.
  const counts = new Map<string, number>();
  let unzoned = 0;
  for (const z of zones) {
    if (z === undefined) unzoned++;
    else counts.set(z, (counts.get(z) ?? 0) + 1);
  }
  const zoneCount = counts.size;
  const share = settings.callerShare ?? 1 / zoneCount;
  const target = share * n;
  if (local >= target - 1e-9) return result('local', undefined, isLocal);

  // Spill over: `deficit` more endpoints, from the other zones in proportion to their surplus (endpoints beyond
  // their own callers' share); endpoints of no zone have no callers: all surplus.
  const deficit = target - local;
  const otherShare = zoneCount > 1 ? (1 - share) / (zoneCount - 1) : 0;
  const remote: (string | undefined)[] = [...counts.keys()].filter((z) => z !== settings.zone).sort();
  const sizes = remote.map((z) => counts.get(z as string)!);
  const surplus = sizes.map((size) => Math.max(0, size - otherShare * n));
  if (unzoned > 0) {
    remote.push(undefined);
    sizes.push(unzoned);
    surplus.push(unzoned);
  }
  let surplusTotal = surplus.reduce((a, b) => a + b, 0);
  if (!(surplusTotal > 0)) {
    // Cannot happen with consistent shares; fall back to the zones' sizes.
    for (let z = 0; z < sizes.length; z++) surplus[z] = sizes[z]!;
    surplusTotal = sizes.reduce((a, b) => a + b, 0);
  }
  // How many: ⌊deficit⌋ or ⌈deficit⌉ at random, with the odds that keep the expected share of the calls leaving the
  // zone exact (deficit / target): rounding the count itself would favour the smaller set.
  const floor = Math.floor(deficit);
  const shareOf = (count: number) => count / (local + count);
  const up =
    floor === deficit ? 0 : (shareOf(deficit) - shareOf(floor)) / (shareOf(floor + 1) - shareOf(floor));
  const spill = floor + (settings.countOffset < up ? 1 : 0);
  // From where: systematic rounding with a random offset, so a zone whose part is x gives ⌊x⌋ or ⌈x⌉, x on average.
  const quota: number[] = [];
  let cumulative = 0;
  let given = 0;
  for (let z = 0; z < surplus.length; z++) {
    cumulative += (spill * surplus[z]!) / surplusTotal;
    const upTo = Math.floor(cumulative + settings.zoneOffset);
    quota.push(Math.min(sizes[z]!, upTo - given));
    given = upTo;
  }
  // A zone that had fewer endpoints than its part (possible only when all of it is surplus): others make up.
  let missing = spill - quota.reduce((a, b) => a + b, 0);
  for (let z = 0; missing > 0 && z < quota.length; z++) {
    const more = Math.min(missing, sizes[z]! - quota[z]!);
    quota[z]! += more;
    missing -= more;
  }
  // Within each zone, the endpoints of lowest rank (a seeded hash of their keys) take the spill-over.
  const zoneIndex = new Map(remote.map((z, i) => [z, i]));
  const candidates: { index: number; rank: number }[][] = quota.map(() => []);
  for (let i = 0; i < n; i++) {
    if (isLocal[i]) continue;
    const z = zoneIndex.get(zones[i])!;
    if (quota[z]! > 0) candidates[z]!.push({ index: i, rank: murmur3(pool[i]!.key, settings.rankSeed) });
  }
  const chosen = isLocal.slice();
  candidates.forEach((list, z) => {
    list.sort((a, b) => a.rank - b.rank || a.index - b.index);
    for (let k = 0; k < quota[z]! && k < list.length; k++) chosen[list[k]!.index] = true;
  });
  return result('spill', undefined, chosen);
}

function sameEntries(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameRouting(a: ZoneRouting, b: ZoneRouting): boolean {
  return (
    a.mode === b.mode &&
    a.reason === b.reason &&
    a.total === b.total &&
    a.healthy === b.healthy &&
    a.local === b.local &&
    a.localShare === b.localShare &&
    a.selected === b.selected
  );
}
