/** The performance goals, each checked against the measured figures (reported as met/missed, never asserted). */
import type { ChurnResult } from './churn.js';
import type { KubeMemoryResult } from './kube-memory.js';
import type { KubePropagationResult } from './kube-propagation.js';
import type { MemoryResult } from './memory.js';
import type { PerChangeResult } from './per-change.js';
import type { PickResult, PipelineResult } from './picks.js';
import type { PropagationResult } from './propagation.js';
import type { TailLatencyResult } from './tail-latency.js';
import type { TelemetryCostResult } from './telemetry-cost.js';

/** One goal and how the run did against it. */
export interface Goal {
  readonly goal: string;
  readonly measured: string;
  /** `true` met, `false` missed, `null` not measured in this run. */
  readonly met: boolean | null;
}

interface Figures {
  readonly picks: readonly PickResult[];
  readonly pipeline: PipelineResult;
  readonly telemetry: TelemetryCostResult;
  readonly perChange: readonly PerChangeResult[];
  readonly propagation: readonly PropagationResult[];
  readonly churn: readonly ChurnResult[];
  readonly memory: MemoryResult;
  readonly kubePropagation: readonly KubePropagationResult[];
  readonly kubeMemory: KubeMemoryResult;
  /** Absent when the tail-latency section did not run. */
  readonly tailLatency?: TailLatencyResult;
}

/** Bytes per pick below which a pick counts as allocation-free (measurement noise over 100 000 picks). */
const NO_ALLOCATION_BYTES = 0.5;

export function evaluateGoals(f: Figures): Goal[] {
  const goals: Goal[] = [];
  const x = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');

  const small = f.perChange[0];
  const large = f.perChange.at(-1);
  goals.push({
    goal: 'work per change does not grow with the set (instancer + endpointer; ≤ 3× at 10 000× the instances)',
    measured:
      small && large
        ? `${x(small.endpointerUs)} µs at ${small.instances}, ${x(large.endpointerUs)} µs at ${large.instances}`
        : 'n/a',
    met: small && large ? large.endpointerUs <= 3 * small.endpointerUs : null,
  });
  const worst = f.propagation.reduce<PropagationResult | undefined>(
    (w, p) => (!w || p.sdkitOverFloor > w.sdkitOverFloor ? p : w),
    undefined,
  );
  goals.push({
    goal: 'propagation p50 ≤ 1.2× floor (every size)',
    measured: f.propagation.map((p) => `${x(p.sdkitOverFloor)}× at ${p.instances}`).join(', '),
    met: worst ? worst.sdkitOverFloor <= 1.2 : null,
  });
  const at100k = f.propagation.find((p) => p.instances === 100_000);
  goals.push({
    goal: 'propagation through instancer → endpointer → roundRobin p50 ≤ 1.2× floor at 100 000 (issue 14)',
    measured: f.propagation.map((p) => `${x(p.pipelineOverFloor)}× at ${p.instances}`).join(', '),
    met: at100k ? at100k.pipelineOverFloor <= 1.2 : null,
  });
  const httpSizes = f.propagation.filter((p) => p.instances === 100 || p.instances === 10_000);
  goals.push({
    goal: 'propagation over HTTP/JSON p50 ≤ 1.3× the (gRPC) floor at 100 and 10 000',
    measured: httpSizes.map((p) => `${x(p.httpOverFloor)}× at ${p.instances}`).join(', ') || 'n/a',
    met: httpSizes.length > 0 ? httpSizes.every((p) => p.httpOverFloor <= 1.3) : null,
  });
  const at10k = f.propagation.find((p) => p.instances === 10_000);
  goals.push({
    goal: 'propagation ≥ 20× faster than the re-read baseline at 10 000 (p50)',
    measured: at10k ? `${x(at10k.baselineOverSdkit, 1)}×` : 'n/a',
    met: at10k ? at10k.baselineOverSdkit >= 20 : null,
  });
  for (const c of f.churn.filter((r) => r.follower === 'sdkit')) {
    goals.push({
      goal: `churn ≥ 5 000 changes/s at ${c.instances} instances, exact convergence (${c.batch === 1 ? 'one change per request' : `${c.batch} changes per txn`})`,
      measured: `${x(c.changesPerSec, 0)} changes/s (etcd took ${x(c.writesPerSec, 0)}/s), converged: ${c.converged}`,
      met: c.changesPerSec >= 5000 && c.converged,
    });
  }
  for (const [balancer, limit] of [
    ['roundRobin', 15],
    ['random', 25],
    ['random (unseeded)', 25],
    ['p2c', 50],
    ['peakEwma', 150],
    ['weighted', 50],
    ['ringHash', 200],
    ['maglev', 200],
    ['roundRobin(zoneAware)', 25],
  ] as const) {
    const p = f.picks.find((r) => r.balancer === balancer && r.endpoints === 1_000);
    goals.push({
      goal: `${balancer} ≤ ${limit} ns / pick at 1 000 endpoints, no allocation`,
      measured: p ? `${x(p.nsPerPick, 1)} ns, ${x(p.bytesPerPick)} B / pick` : 'n/a',
      met:
        p && Number.isFinite(p.bytesPerPick)
          ? p.nsPerPick <= limit && p.bytesPerPick < NO_ALLOCATION_BYTES
          : null,
    });
  }
  goals.push({
    goal: 'pipeline overhead ≤ 1 µs / call (retry(roundRobin(endpointer)))',
    measured: `${x(f.pipeline.overheadNs / 1000)} µs`,
    met: f.pipeline.overheadNs <= 1000,
  });
  goals.push({
    goal: 'telemetry costs a call through retry ≤ 5 % while no OpenTelemetry SDK is registered',
    measured: `${x(f.telemetry.noSdkExtra * 100, 1)} % (${x(f.telemetry.offNs, 1)} → ${x(f.telemetry.noSdkNs, 1)} ns)`,
    met: f.telemetry.noSdkExtra <= 0.05,
  });
  goals.push({
    goal: '≤ 1 KiB per instance held (instancer + endpointer + roundRobin)',
    measured: `${x(f.memory.totalBytesPerInstance, 0)} B at ${f.memory.instances}`,
    met: Number.isFinite(f.memory.totalBytesPerInstance) ? f.memory.totalBytesPerInstance <= 1024 : null,
  });
  const kubeWorst = f.kubePropagation.reduce<KubePropagationResult | undefined>(
    (w, p) => (!w || p.sdkitOverFloor > w.sdkitOverFloor ? p : w),
    undefined,
  );
  goals.push({
    goal: 'Kubernetes propagation (EndpointSlice write → a pick can return it) p50 ≤ 1.2× a bare watch (every size)',
    measured: f.kubePropagation.map((p) => `${x(p.sdkitOverFloor)}× at ${p.endpoints}`).join(', ') || 'n/a',
    met: kubeWorst ? kubeWorst.sdkitOverFloor <= 1.2 : null,
  });
  // What a long-running client holds: the larger of the two (every slice rewritten is the steady state).
  const kubeHeld = Math.max(f.kubeMemory.totalBytesPerEndpoint, f.kubeMemory.rewrittenBytesPerEndpoint);
  goals.push({
    goal: 'Kubernetes: ≤ 1 KiB per endpoint held (KubernetesInstancer + endpointer + roundRobin)',
    measured: `${x(f.kubeMemory.totalBytesPerEndpoint, 0)} B just listed, ${x(f.kubeMemory.rewrittenBytesPerEndpoint, 0)} B once every slice was rewritten, at ${f.kubeMemory.endpoints}`,
    met: Number.isFinite(kubeHeld) ? kubeHeld <= 1024 : null,
  });
  goals.push(...tailLatencyGoals(f.tailLatency));
  return goals;
}

/** The goals of issue 14's tail-latency benchmark (real HTTP servers; see tail-latency.ts). */
function tailLatencyGoals(t: TailLatencyResult | undefined): Goal[] {
  const x = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
  const rows = (id: string) => t?.scenarios.find((s) => s.id === id)?.rows ?? [];
  const plain = (balancer: string) =>
    rows('slow').find(
      (r) => r.spec.balancer === balancer && !r.spec.ejection && !r.spec.zoneAware && !r.spec.retry,
    );
  const ewma = plain('peakEwma');
  const rr = plain('roundRobin');
  const ejecting = rows('failing').filter((r) => r.spec.ejection && r.badShareWindow !== undefined);
  const outage = rows('outage');
  const budgeted = outage.filter((r) => r.spec.retry === 'budget');
  const unbudgeted = outage.filter((r) => r.spec.retry === 'plain');
  return [
    {
      goal: "tail latency, one of ten instances 10× slower: peakEwma's p99 ≤ ⅓ of roundRobin's",
      measured: ewma && rr ? `${x(ewma.p99, 1)} ms vs ${x(rr.p99, 1)} ms (${x(ewma.p99 / rr.p99)}×)` : 'n/a',
      met: ewma && rr ? ewma.p99 <= rr.p99 / 3 : null,
    },
    {
      goal: 'tail latency, one instance failing half its calls: with outlierEjection it gets ≤ 5 % of the requests in the first 10 s (every balancer)',
      measured: ejecting.map((r) => `${r.strategy} ${x(100 * r.badShareWindow!, 1)} %`).join(', ') || 'n/a',
      met: ejecting.length > 0 ? ejecting.every((r) => r.badShareWindow! <= 0.05) : null,
    },
    {
      goal: 'tail latency, full outage: retry with a retryBudget keeps load amplification ≤ 1.2× (plain retry: up to maxAttempts×)',
      measured:
        budgeted.length > 0
          ? `with budget ${budgeted.map((r) => `${x(r.amplification)}×`).join(', ')}; plain ${unbudgeted.map((r) => `${x(r.amplification)}×`).join(', ')}`
          : 'n/a',
      met: budgeted.length > 0 ? budgeted.every((r) => r.amplification <= 1.2) : null,
    },
  ];
}

/** Markdown table lines for {@link evaluateGoals}' result. */
export function goalsTable(goals: readonly Goal[]): string[] {
  return [
    '| goal | measured | status |',
    '| --- | --- | --- |',
    ...goals.map(
      (g) => `| ${g.goal} | ${g.measured} | ${g.met === null ? 'n/a' : g.met ? 'met' : 'missed'} |`,
    ),
  ];
}
