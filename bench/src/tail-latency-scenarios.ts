/** The scenarios of the tail-latency benchmark: ten instances, one (or one zone) misbehaving, and who is compared. */
import { healthy, type InstanceBehaviour } from './tail-latency-model.js';
import { BALANCERS, MAX_ATTEMPTS, type StrategySpec } from './tail-latency-strategies.js';

export type ScenarioId = 'slow' | 'failing' | 'flapping' | 'zone' | 'outage';

/** One scenario. Times are ms after the scenario's start. */
export interface Scenario {
  readonly id: ScenarioId;
  readonly title: string;
  /** What the servers do once the lead-in is over, in words (for the report). */
  readonly description: string;
  readonly instances: readonly InstanceBehaviour[];
  /** Indices of the misbehaving instances, whose share of the requests is reported. */
  readonly bad: readonly number[];
  readonly strategies: readonly StrategySpec[];
  readonly durationMs: number;
  /**
   * A healthy lead-in: every instance behaves until then (connections are opened, the code is compiled, the
   * strategies learn a healthy set, a retry budget fills), and the misbehaviour starts at its end. Calls due in
   * it are left out of every figure.
   */
  readonly leadInMs: number;
  /** Also report the bad instances' share of the requests in the first `windowMs` after the lead-in. */
  readonly windowMs?: number;
  /** The caller's zone (zone-aware strategies prefer it). */
  readonly callerZone: string;
}

/** Instances per scenario. */
export const INSTANCES = 10;
/** The misbehaving instance of the one-instance scenarios (not the first, which round-robin picks first). */
const BAD = 3;

const alone = (extra: Partial<StrategySpec> = {}): StrategySpec[] =>
  BALANCERS.flatMap((balancer) => [
    { balancer, ...extra },
    { balancer, ejection: true, ...extra },
  ]);

/**
 * The five scenarios: a lead-in of 2 s (quick) or 5 s, then 6 s (quick) or 25 s of misbehaviour; 10 s in quick
 * mode where the figures need it (the failing instance's first 10 s, the outage's retry budget, whose window is
 * 10 s).
 */
export function scenarios(quick: boolean): Scenario[] {
  const leadInMs = quick ? 2_000 : 5_000;
  const short = leadInMs + (quick ? 6_000 : 25_000);
  const long = leadInMs + (quick ? 10_000 : 25_000);
  const ten = (change: (i: number) => Partial<InstanceBehaviour>): InstanceBehaviour[] =>
    Array.from({ length: INSTANCES }, (_, i) => ({ ...healthy(), badFromMs: leadInMs, ...change(i) }));
  const recommended: StrategySpec = { balancer: 'peakEwma', ejection: true, retry: 'budget' };
  const flapping = { periodMs: 6_000, downMs: 3_000 };
  // Zones: a = 0–3 (the caller's), b = 4–6 (slow), c = 7–9; another zone is one 1 ms network hop further.
  const zoneOf = (i: number) => (i < 4 ? 'a' : i < 7 ? 'b' : 'c');
  const common = { leadInMs, callerZone: 'a' } as const;
  return [
    {
      id: 'slow',
      title: 'One of ten instances 10× slower',
      description: `instance ${BAD} takes 10× the service time (100 ms median instead of 10 ms)`,
      instances: ten((i) => (i === BAD ? { slowFactor: 10 } : {})),
      bad: [BAD],
      strategies: alone(),
      durationMs: short,
      ...common,
    },
    {
      id: 'failing',
      title: 'One instance failing half its calls',
      description: `instance ${BAD} answers half its calls at once with a 503`,
      instances: ten((i) => (i === BAD ? { failProbability: 0.5 } : {})),
      bad: [BAD],
      strategies: [...alone(), recommended],
      durationMs: long,
      windowMs: 10_000,
      ...common,
    },
    {
      id: 'flapping',
      title: 'One instance flapping',
      description: `instance ${BAD} answers every call at once with a 503 for ${flapping.downMs / 1000} s, then normally for ${(flapping.periodMs - flapping.downMs) / 1000} s, and so on`,
      instances: ten((i) => (i === BAD ? { flapping } : {})),
      bad: [BAD],
      strategies: [...alone(), recommended],
      durationMs: long,
      ...common,
    },
    {
      id: 'zone',
      title: 'A whole zone slow',
      description:
        'zones a (instances 0–3, the caller’s), b (4–6) and c (7–9); zone b takes 5× the service time (50 ms median); calls to zones b and c always take 1 ms more (a hop to another zone)',
      instances: ten((i) => ({
        zone: zoneOf(i),
        extraMs: zoneOf(i) === 'a' ? 0 : 1,
        slowFactor: zoneOf(i) === 'b' ? 5 : 1,
      })),
      bad: [4, 5, 6],
      strategies: [
        ...alone(),
        { balancer: 'roundRobin', zoneAware: true },
        { balancer: 'peakEwma', zoneAware: true, ejection: true },
      ],
      durationMs: short,
      ...common,
    },
    {
      id: 'outage',
      title: 'Full outage, with retries',
      description: `every instance answers every call at once with a 503; retry makes up to ${MAX_ATTEMPTS} attempts per call`,
      instances: ten(() => ({ failProbability: 1 })),
      bad: [],
      // Every call fails whichever instance it picks, so the balancer matters little here; fewer strategies keep
      // the client thread (three HTTP attempts per call without a budget) from saturating.
      strategies: [
        { balancer: 'roundRobin', retry: 'plain' },
        { balancer: 'roundRobin', retry: 'budget' },
        { balancer: 'peakEwma', ejection: true, retry: 'plain' },
        { balancer: 'peakEwma', ejection: true, retry: 'budget' },
      ],
      durationMs: long,
      ...common,
    },
  ];
}
