/**
 * The simulated service behind the tail-latency benchmark: how one instance answers a request at a given moment.
 * Pure functions of the behaviour, the time since the scenario started and a random draw, so the server thread
 * (which applies them) and the report (which describes them) agree.
 */

/** Periodic failure: every call fails while the instance is down. */
export interface Flapping {
  /** Length of one down + up cycle, ms. */
  readonly periodMs: number;
  /** How long it is down at the start of each cycle, ms. */
  readonly downMs: number;
}

/**
 * How one instance answers. Until `badFromMs` every instance is healthy (service time `baseMs × e^(jitter × z)`
 * + `extraMs`, no failure); from then on `slowFactor`, `failProbability` and `flapping` apply.
 */
export interface InstanceBehaviour {
  /** `metadata.zone` of the instance. */
  readonly zone: string;
  /** Median service time of a call, ms. */
  readonly baseMs: number;
  /** Spread of the service time: a call takes `baseMs × slowFactor × e^(jitter × N(0, 1))` (log-normal). */
  readonly jitter: number;
  /** Added to every call's time: a network hop to another zone, ms. */
  readonly extraMs: number;
  /** Calls served at once; more wait in a FIFO queue (a worker pool), so an overloaded instance queues. */
  readonly concurrency: number;
  /** When the misbehaviour below starts, ms after the scenario's start. */
  readonly badFromMs: number;
  /** Multiplies the service time (1: not slow). */
  readonly slowFactor: number;
  /** Share of calls answered at once with a 503, in [0, 1] (1: an outage). */
  readonly failProbability: number;
  /** Down (every call answered at once with a 503) at the start of each period, from `badFromMs` on. */
  readonly flapping?: Flapping;
}

/** A healthy instance of zone `zone`: 10 ms median, log-normal spread 0.25, 4 calls at once. */
export function healthy(zone = 'a'): InstanceBehaviour {
  return {
    zone,
    baseMs: 10,
    jitter: 0.25,
    extraMs: 0,
    concurrency: 4,
    badFromMs: 0,
    slowFactor: 1,
    failProbability: 0,
  };
}

/** Whether a call arriving `atMs` after the scenario's start fails, given a uniform draw `u` in [0, 1). */
export function failsAt(b: InstanceBehaviour, atMs: number, u: number): boolean {
  if (atMs < b.badFromMs) return false;
  const f = b.flapping;
  if (f !== undefined && (atMs - b.badFromMs) % f.periodMs < f.downMs) return true;
  return u < b.failProbability;
}

/** Service time of a successful call arriving `atMs` after the scenario's start, ms, given a normal draw `z`. */
export function serviceMs(b: InstanceBehaviour, atMs: number, z: number): number {
  const factor = atMs < b.badFromMs ? 1 : b.slowFactor;
  return b.baseMs * factor * Math.exp(b.jitter * z) + b.extraMs;
}

/** mulberry32: a uniform float in [0, 1) per call, reproducible from `seed`. */
export function prng(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal draw from two uniform ones (Box–Muller). */
export function normal(uniform: () => number): number {
  const u = 1 - uniform(); // (0, 1]
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform());
}

/** Milliseconds on the process-wide monotonic clock (`process.hrtime`, the same in every thread). */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
