/** The tail-latency benchmark's report: its SVG plots and its tables for latest.md. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TailLatencyResult, TailRow, TailScenarioResult } from './tail-latency.js';
import { MAX_ATTEMPTS, type StrategySpec } from './tail-latency-strategies.js';
import { type Curve, linePlot, percentilePlot, plotPercentiles, type Series } from './tail-latency-svg.js';

/** Nearest-rank percentile (p in [0, 100]) of ascending `sorted`. */
export function percentileOf(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

const COLORS: Record<string, string> = {
  roundRobin: '#1f77b4',
  random: '#ff7f0e',
  p2c: '#2ca02c',
  peakEwma: '#d62728',
  'zoneAware roundRobin': '#9467bd',
  'zoneAware peakEwma': '#8c564b',
};

function colorOf(s: StrategySpec): string {
  return COLORS[s.zoneAware ? `zoneAware ${s.balancer}` : s.balancer] ?? '#333';
}

function dashOf(s: StrategySpec): string | undefined {
  if (s.ejection) return s.retry === 'budget' ? '8 3 2 3' : '7 4';
  return s.retry === 'budget' ? '2 3' : undefined;
}

/** One line per strategy of a per-second figure. */
function overTime(rows: readonly TailRow[], figure: (r: TailRow) => readonly number[], scale = 1): Series[] {
  return rows.map((r) => {
    const dash = dashOf(r.spec);
    return {
      label: r.strategy,
      // The figure of second k is drawn at its middle.
      points: figure(r).map((v, k) => [k + 0.5, v * scale] as const),
      color: colorOf(r.spec),
      ...(dash ? { dash } : {}),
    };
  });
}

/**
 * Writes the plots of one scenario to `plotDir` and returns their file names: its latency by percentile per
 * strategy (`<id>.svg`, from `latencies[i]`, ascending, of row i); for the failing and flapping scenarios the bad
 * instance's share of the requests second by second (`<id>-share.svg`); for the outage the load amplification
 * second by second (`outage-amplification.svg`).
 */
export async function writeScenarioPlots(
  plotDir: string,
  result: TailScenarioResult,
  latencies: readonly (readonly number[])[],
  rate: number,
  quick: boolean,
): Promise<string[]> {
  const files: string[] = [];
  const plot = async (file: string, svg: string) => {
    await writeFile(join(plotDir, file), svg);
    files.push(file);
  };
  const run = `${rate} calls/s per strategy for ${result.measuredMs / 1000} s after a ${result.leadInMs / 1000} s healthy lead-in, all strategies at once${quick ? ' (quick mode)' : ''}`;
  const percentiles = plotPercentiles(Math.min(4, Math.floor(Math.log10((rate * result.measuredMs) / 1000))));
  const curves: Curve[] = result.rows.map((row, i) => {
    const dash = dashOf(row.spec);
    return {
      label: row.strategy,
      points: percentiles.map((p) => [p, percentileOf(latencies[i]!, p)] as const),
      color: colorOf(row.spec),
      ...(dash ? { dash } : {}),
    };
  });
  await plot(`${result.id}.svg`, percentilePlot(result.title, run, curves));
  if (result.id === 'failing' || result.id === 'flapping') {
    await plot(
      `${result.id}-share.svg`,
      linePlot(
        `${result.title}: its share of the requests, second by second`,
        run,
        overTime(result.rows, (r) => r.perSecond.badShare, 100),
        {
          x: 'seconds since the instance began to fail',
          y: 'share of the requests, %',
          xMax: result.measuredMs / 1000,
        },
        [{ value: 10, label: 'its fair share (1 in 10)' }],
      ),
    );
  }
  if (result.id === 'outage') {
    await plot(
      'outage-amplification.svg',
      linePlot(
        'Full outage: load amplification, second by second',
        `requests the servers received / calls due, per second; retry with maxAttempts ${MAX_ATTEMPTS}, without and with retryBudget(); ${rate} calls/s per strategy${quick ? ' (quick mode)' : ''}`,
        overTime(result.rows, (r) => r.perSecond.amplification),
        { x: 'seconds since the outage began', y: 'server requests / calls', xMax: result.measuredMs / 1000 },
        [{ value: 1.2, label: '1.2×' }],
      ),
    );
  }
  return files;
}

/** Markdown lines of the section's tables. */
export function tailLatencyTables(r: TailLatencyResult): string[] {
  const ms = (n: number) => (Number.isNaN(n) ? 'n/a' : n < 100 ? n.toFixed(1) : n.toFixed(0));
  const pc = (n: number | undefined) =>
    n === undefined || Number.isNaN(n) ? '–' : `${(100 * n).toFixed(1)}`;
  const lines = [
    `Real HTTP servers (node:http) on loopback, in one worker thread; the clients in the main thread. ${r.instances} instances per strategy (10 ms median service time, log-normal spread, 4 calls served at once per instance and the rest queued); each strategy calls its own set of servers at ${r.ratePerStrategy} calls/s (open loop), all strategies of a scenario at once. Latency from when a call was due to when it settled, failed calls included. *Load ×*: requests the servers received / calls. *Bad share*: the misbehaving instance's (or zone's) share of those requests.`,
    '',
  ];
  for (const s of r.scenarios) {
    const window = s.windowMs !== undefined;
    lines.push(
      `#### ${s.title}`,
      '',
      `After a ${(s.leadInMs / 1000).toFixed(0)} s healthy lead-in (not counted), ${s.description}; ${(s.measuredMs / 1000).toFixed(0)} s measured. Client thread busy ${(100 * s.clientBusy).toFixed(0)} % (event-loop delay p99 ${s.clientDelayP99Ms.toFixed(1)} ms, max ${s.clientDelayMaxMs.toFixed(0)} ms), server thread ${(100 * s.serverBusy).toFixed(0)} %.`,
      '',
      `| strategy | calls | p50 ms | p99 ms | p99.9 ms | max ms | errors % | load × | bad share %${window ? ` | bad share, first ${(s.windowMs! / 1000).toFixed(0)} s %` : ''} | ejections |`,
      `| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---:${window ? ' | ---:' : ''} | ---: |`,
      ...s.rows.map(
        (row) =>
          `| ${row.strategy} | ${row.calls} | ${ms(row.p50)} | ${ms(row.p99)} | ${ms(row.p999)} | ${ms(row.max)} | ${pc(row.errorRate)} | ${row.amplification.toFixed(2)} | ${pc(row.badShare)}${window ? ` | ${pc(row.badShareWindow)}` : ''} | ${row.ejections} |`,
      ),
      '',
    );
  }
  lines.push(
    '#### What the compositions cost per call (in process)',
    '',
    'Each over ten no-op endpoints in three zones (no HTTP), median of interleaved runs: the part of a call that is sdkit’s.',
    '',
    '| composition | ns / call |',
    '| --- | ---: |',
    ...r.stackCost.map((c) => `| ${c.stack} | ${c.nsPerCall.toFixed(0)} |`),
    '',
  );
  lines.push(`Plots: ${r.plots.map((p) => `\`balancing/${p}\``).join(', ')} (next to this file).`, '');
  return lines;
}
