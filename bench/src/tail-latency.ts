/**
 * Tail latency through each balancing strategy, over real HTTP servers on loopback (issue 14).
 *
 * Per scenario (see tail-latency-scenarios.ts): ten instances, one (or one zone) slow, failing, flapping, or all of
 * them failing. Every strategy gets its own ten servers, identical in behaviour, in one worker thread, and its own
 * client — instancer → `endpointer(…, meter.measure(httpFactory()))` → strategy — in this thread. All strategies
 * of a scenario run at once, at the same fixed rate (open loop), for the same time: machine noise hits them
 * alike, and each one's time-based state (latency averages decaying over 10 s, ejections lasting 30 s, the retry
 * budget's 10 s window) runs as it would in a client of its own, which rotating blocks would freeze or cut.
 */
import { mkdir } from 'node:fs/promises';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { openLoop, ServerThread } from './tail-latency-client.js';
import { nowMs } from './tail-latency-model.js';
import { percentileOf, writeScenarioPlots } from './tail-latency-report.js';
import { INSTANCES, type Scenario, type ScenarioId, scenarios } from './tail-latency-scenarios.js';
import { benchStackCost, type StackCost } from './tail-latency-stack-cost.js';
import { type StrategySpec, strategyClient, strategyName } from './tail-latency-strategies.js';

/** Calls per second each strategy makes (all strategies of a scenario at once). */
export const RATE_PER_STRATEGY = 200;

/** One strategy in one scenario. Latencies in ms, over every call due after the lead-in (failed ones too). */
export interface TailRow {
  readonly strategy: string;
  readonly spec: StrategySpec;
  /** Calls due after the lead-in. */
  readonly calls: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  /** Share of calls that rejected, in [0, 1]. */
  readonly errorRate: number;
  /** Requests the servers received / calls (1 without retries). */
  readonly amplification: number;
  /** The misbehaving instances' share of the requests the servers received, in [0, 1]; NaN if none. */
  readonly badShare: number;
  /** The same over the first `windowMs` after the lead-in, when the scenario has a window. */
  readonly badShareWindow?: number;
  /** Ejections made by the outlier ejector (0 without one). */
  readonly ejections: number;
  /** Second by second after the lead-in: load amplification and bad share (NaN if none) of that second. */
  readonly perSecond: { readonly amplification: readonly number[]; readonly badShare: readonly number[] };
}

/** One scenario's figures. */
export interface TailScenarioResult {
  readonly id: ScenarioId;
  readonly title: string;
  readonly description: string;
  /** Length of the measured part, ms. */
  readonly measuredMs: number;
  /** The healthy lead-in, left out of the figures, ms. */
  readonly leadInMs: number;
  readonly windowMs?: number;
  readonly rows: readonly TailRow[];
  /** This thread's (the clients') and the server thread's event-loop utilisation over the run, in [0, 1]. */
  readonly clientBusy: number;
  readonly serverBusy: number;
  /** This thread's event-loop delay over the run (how late a timer or an I/O callback ran), ms. */
  readonly clientDelayP99Ms: number;
  readonly clientDelayMaxMs: number;
}

/** The section's figures. */
export interface TailLatencyResult {
  readonly ratePerStrategy: number;
  readonly instances: number;
  readonly scenarios: readonly TailScenarioResult[];
  /** What the compositions cost per call themselves (in process, no-op endpoints). */
  readonly stackCost: readonly StackCost[];
  /** Plot files written, relative to the plot directory. */
  readonly plots: readonly string[];
  readonly elapsedMs: number;
}

const sum = (v: readonly number[]) => v.reduce((a, b) => a + b, 0);

/** Runs one scenario; returns its figures and each strategy's latencies (ms, ascending). */
async function runScenario(
  scenario: Scenario,
  rate: number,
  seed: number,
): Promise<{ result: TailScenarioResult; latencies: number[][] }> {
  const specs = scenario.strategies;
  const servers = await ServerThread.start(
    specs.map(() => scenario.instances),
    seed,
  );
  const clients = await Promise.all(
    specs.map((spec, s) =>
      strategyClient(
        spec,
        scenario.instances.map((b, i) => ({
          key: `instance-${i}`,
          address: `127.0.0.1:${servers.ports[s]![i]}`,
          metadata: { zone: b.zone },
        })),
        seed + s,
        scenario.callerZone,
      ),
    ),
  );
  const counts = () => specs.map((_, s) => servers.counts(s));
  // The servers' counters at the end of the lead-in and every second after it.
  const seconds = Math.floor((scenario.durationMs - scenario.leadInMs) / 1000);
  const snaps: number[][][] = [];
  const at = new Map<number, () => void>();
  for (let k = 0; k < seconds; k++) at.set(scenario.leadInMs + 1000 * k, () => (snaps[k] = counts()));
  const t0 = nowMs() + 50;
  servers.begin(t0);
  const elu = performance.eventLoopUtilization();
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  const records = await openLoop(
    clients.map((c) => () => c.call()),
    rate,
    scenario.durationMs,
    t0,
    at,
  );
  delay.disable();
  const clientBusy = performance.eventLoopUtilization(elu).utilization;
  snaps[seconds] = counts();
  const serverBusy = await servers.close();
  await Promise.all(clients.map((c) => c.close()));

  const measuredMs = scenario.durationMs - scenario.leadInMs;
  const latencies: number[][] = [];
  const rows = specs.map((spec, s): TailRow => {
    const measured = records[s]!.filter((r) => r.dueMs >= scenario.leadInMs);
    const sorted = measured.map((r) => r.latencyMs).sort((a, b) => a - b);
    latencies.push(sorted);
    const between = (from: number, to: number) => snaps[to]![s]!.map((n, i) => n - snaps[from]![s]![i]!);
    const bad = (v: readonly number[]) => sum(scenario.bad.map((i) => v[i]!));
    const share = (v: readonly number[]) => (scenario.bad.length > 0 ? bad(v) / sum(v) : Number.NaN);
    const served = between(0, seconds);
    const windowSeconds =
      scenario.windowMs === undefined ? undefined : Math.min(seconds, scenario.windowMs / 1000);
    const due = Array.from({ length: seconds }, () => 0);
    for (const r of measured) {
      const k = Math.floor((r.dueMs - scenario.leadInMs) / 1000);
      if (k < seconds) due[k]!++;
    }
    const perSecond = Array.from({ length: seconds }, (_, k) => between(k, k + 1));
    return {
      strategy: strategyName(spec),
      spec,
      calls: measured.length,
      p50: percentileOf(sorted, 50),
      p99: percentileOf(sorted, 99),
      p999: percentileOf(sorted, 99.9),
      max: sorted.at(-1) ?? Number.NaN,
      errorRate: measured.filter((r) => !r.ok).length / measured.length,
      amplification: sum(served) / measured.length,
      badShare: share(served),
      ...(windowSeconds !== undefined ? { badShareWindow: share(between(0, windowSeconds)) } : {}),
      ejections: clients[s]!.ejections(),
      perSecond: {
        amplification: perSecond.map((v, k) => sum(v) / due[k]!),
        badShare: perSecond.map(share),
      },
    };
  });
  const result: TailScenarioResult = {
    id: scenario.id,
    title: scenario.title,
    description: scenario.description,
    measuredMs,
    leadInMs: scenario.leadInMs,
    ...(scenario.windowMs !== undefined ? { windowMs: scenario.windowMs } : {}),
    rows,
    clientBusy,
    serverBusy,
    clientDelayP99Ms: delay.percentile(99) / 1e6,
    clientDelayMaxMs: delay.max / 1e6,
  };
  return { result, latencies };
}

/** Runs every scenario, writes its plots to `plotDir` (see {@link writeScenarioPlots}), returns the figures. */
export async function benchTailLatency(
  quick: boolean,
  plotDir: string,
  say: (line: string) => void,
): Promise<TailLatencyResult> {
  const started = nowMs();
  const rate = RATE_PER_STRATEGY;
  const out: TailScenarioResult[] = [];
  const plots: string[] = [];
  await mkdir(plotDir, { recursive: true });
  const stackCost = await benchStackCost(quick);
  for (const [n, scenario] of scenarios(quick).entries()) {
    const { result, latencies } = await runScenario(scenario, rate, 1_000 + 100 * n);
    out.push(result);
    plots.push(...(await writeScenarioPlots(plotDir, result, latencies, rate, quick)));
    say(
      `  tail latency: ${scenario.id} (${result.rows.length} strategies; client thread busy ${(100 * result.clientBusy).toFixed(0)} %, event-loop delay max ${result.clientDelayMaxMs.toFixed(0)} ms; server thread busy ${(100 * result.serverBusy).toFixed(0)} %)`,
    );
  }
  return {
    ratePerStrategy: rate,
    instances: INSTANCES,
    scenarios: out,
    stackCost,
    plots,
    elapsedMs: nowMs() - started,
  };
}
