/**
 * `pnpm bench [--quick]` — runs sdkit's benchmarks and writes bench/results/latest.json and latest.md.
 * These are measurements, never test assertions; compare ratios across runs, machines are noisy.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchChurn, type ChurnFollower } from './churn.js';
import { benchColdStart } from './cold-start.js';
import { populate, startBenchEtcd } from './etcd-env.js';
import { evaluateGoals, goalsTable } from './goals.js';
import { ENDPOINTS_PER_SLICE, requireKubeApiServer } from './kube-env.js';
import { canMeasureAllocation } from './measure.js';
import { benchMemory } from './memory.js';
import { benchPerChange } from './per-change.js';
import { benchPicks, benchPipeline } from './picks.js';
import { benchPropagation, propagationPrefix } from './propagation.js';
import { benchRegistration } from './registration.js';
import { benchTailLatency } from './tail-latency.js';
import { tailLatencyTables } from './tail-latency-report.js';
import { benchTelemetryCost } from './telemetry-cost.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const quick = values.quick ?? false;
const resultsDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');
const say = (line: string) => process.stdout.write(`${line}\n`);

if (!canMeasureAllocation) say('note: run node with --expose-gc to measure allocation');
// The Kubernetes benchmarks run last: fail now, saying to run `node test/kube-apiserver/build.mjs`, if the test
// API server is not built, rather than after minutes of the others.
requireKubeApiServer();
say(`sdkit benchmarks${quick ? ' (quick)' : ''} — node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'}`);

const started = process.hrtime.bigint();
const elapsed = () => `${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(1)} s`;
const picks = await benchPicks([10, 1_000, 10_000], quick);
say(`picks done (${elapsed()})`);
const pipeline = await benchPipeline(quick);
say(`pipeline done (${elapsed()})`);
const telemetry = await benchTelemetryCost(quick);
say(`telemetry cost done (${elapsed()})`);
const memory = await benchMemory(quick ? 10_000 : 100_000);
say(`memory done (${elapsed()})`);
const perChange = benchPerChange([10, 1_000, 10_000, 100_000], quick);
say(`work per change done (${elapsed()})`);
// Before etcd starts: the HTTP servers and clients have the two cores to themselves. The plots go next to
// latest.md (docs/balancing/ holds the copies docs/balancing.md shows).
const tailLatency = await benchTailLatency(quick, join(resultsDir, 'balancing'), say);
say(`tail latency done (${elapsed()})`);

const env = await startBenchEtcd();
let etcd: Awaited<ReturnType<typeof runEtcdBenches>>;
let etcdVersion = 'unknown';
try {
  // etcd's own answer (e.g. {"etcdserver":"3.4.23","etcdcluster":"3.4.0"}).
  const version = (await (await fetch(`${env.server.endpoints[0]}/version`)).json()) as {
    etcdserver?: string;
  };
  etcdVersion = version.etcdserver ?? etcdVersion;
  say(`etcd ${etcdVersion}`);
  etcd = await runEtcdBenches();
} finally {
  await env.close();
}
const { propagation, coldStart, churn, registration } = etcd;

// Imported only now: it loads @kubernetes/client-node, whose heap the benchmarks above must not carry.
const { benchKubernetes } = await import('./kube-section.js');
const kubernetes = await benchKubernetes(quick, say, (what) => say(`${what} done (${elapsed()})`));

async function sequential<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (const item of items) out.push(await fn(item));
  return out;
}

async function runEtcdBenches() {
  const sizes = quick ? [100, 10_000] : [100, 10_000, 100_000];
  const propagation = await benchPropagation(env, sizes, () => 200, say);
  say(`propagation done (${elapsed()})`);
  const coldN = quick ? 10_000 : 100_000;
  const coldStart = await benchColdStart(env, propagationPrefix(coldN), coldN, quick ? 5 : 7);
  say(`cold start done (${elapsed()})`);
  const churnChanges = quick ? 10_000 : 20_000;
  // Each run gets a freshly populated prefix of its own (a run deletes half of the keys it starts with).
  const churnRun = async (
    n: number,
    changes: number,
    inFlight: number,
    batch: number,
    follower: ChurnFollower,
  ) => {
    const prefix = `/bench/churn-${follower}-${n}-${batch}/`;
    await populate(env.writer, prefix, n);
    const row = await benchChurn(env, prefix, n, changes, inFlight, batch, follower);
    say(
      `  churn ${follower} n=${n} batch=${batch}: ${row.changesPerSec.toFixed(0)} changes/s ` +
        `(etcd took ${row.writesPerSec.toFixed(0)}/s), converged ${row.converged}`,
    );
    return row;
  };
  const churn = [
    // One change per request at every size: if sdkit's work per change grew with the set, the applied rate
    // would fall with it.
    ...(await sequential(sizes, (n) => churnRun(n, churnChanges, 256, 1, 'sdkit'))),
    // The floor under the same load: a bare etcd3 watch into a Map.
    await churnRun(10_000, churnChanges, 256, 1, 'floor'),
    // 100 changes per transaction: etcd's per-request cost amortised, so the instancer (not etcd or the
    // writer) is what is measured.
    await churnRun(10_000, churnChanges * 5, 8, 100, 'sdkit'),
  ];
  say(`churn done (${elapsed()})`);
  const registration = await benchRegistration(env, quick ? 1_000 : 10_000, quick ? 4 : 12);
  say(`registration done (${elapsed()})`);
  return { propagation, coldStart, churn, registration };
}

const machine = {
  date: new Date().toISOString(),
  node: process.version,
  etcd: etcdVersion,
  kubeApiServer: kubernetes.apiServer,
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cores: os.cpus().length,
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  quick,
};
const goals = evaluateGoals({
  picks,
  pipeline,
  telemetry,
  perChange,
  propagation,
  churn,
  memory,
  kubePropagation: kubernetes.propagation,
  kubeMemory: kubernetes.memory,
  tailLatency,
});
const results = {
  machine,
  goals,
  picks,
  pipeline,
  telemetry,
  perChange,
  propagation,
  churn,
  registration,
  memory,
  coldStart,
  kubernetes,
  tailLatency,
};

const fmt = (n: number, d = 1) => (Number.isNaN(n) ? 'n/a' : n.toFixed(d));
const md = [
  `Measured ${machine.date.slice(0, 10)} on ${machine.cpu} (${machine.cores} cores, ${machine.memoryGiB} GiB), Node ${machine.node}, etcd ${machine.etcd}, Kubernetes API server ${machine.kubeApiServer}${quick ? ', quick mode' : ''}.`,
  '',
  '### Goals',
  '',
  ...goalsTable(goals),
  '',
  '### Pick cost',
  '',
  '| balancer | endpoints | ns / pick | bytes / pick |',
  '| --- | ---: | ---: | ---: |',
  ...picks.map((p) => `| ${p.balancer} | ${p.endpoints} | ${fmt(p.nsPerPick)} | ${fmt(p.bytesPerPick, 2)} |`),
  '',
  '### Pipeline overhead',
  '',
  '| call | ns / call |',
  '| --- | ---: |',
  `| no-op endpoint, direct | ${fmt(pipeline.directNs)} |`,
  `| retry(roundRobin(endpointer)) | ${fmt(pipeline.pipelineNs)} |`,
  `| overhead | ${fmt(pipeline.overheadNs)} (${fmt(pipeline.pipelineNs / pipeline.directNs, 2)}×) |`,
  '',
  '### Telemetry cost of a call through retry',
  '',
  'retry(roundRobin(10 no-op endpoints)), telemetry off and on interleaved; the SDK rows in a worker thread.',
  '',
  '| telemetry | ns / call |',
  '| --- | ---: |',
  `| off (\`telemetry: false\`), no SDK | ${fmt(telemetry.offNs)} |`,
  `| on, @opentelemetry/api without an SDK | ${fmt(telemetry.noSdkNs)} (${fmt(telemetry.noSdkExtra * 100)} % extra) |`,
  `| off, SDK registered (AsyncLocalStorage context manager) | ${fmt(telemetry.sdkOffNs)} |`,
  `| on, SDK registered (a sampled span per call, batched and discarded) | ${fmt(telemetry.sdkNs)} |`,
  '',
  '### Tail latency through each balancing strategy (real HTTP servers on loopback)',
  '',
  ...tailLatencyTables(tailLatency),
  '### Work per change (in process, no etcd)',
  '',
  'One put or delete per event into a set of N instances. µs per change, median of runs.',
  '',
  '| instances | instancer | + endpointer | + one pick after each change |',
  '| ---: | ---: | ---: | ---: |',
  ...perChange.map(
    (c) =>
      `| ${c.instances} | ${fmt(c.instancerUs, 2)} | ${fmt(c.endpointerUs, 2)} | ${fmt(c.withPickUs, 2)} |`,
  ),
  '',
  '### Discovery propagation (real etcd, put start → watcher has the key)',
  '',
  `${propagation[0]?.changes ?? 0} sequential changes per watcher and size. The first five watchers each follow a prefix of their own (n keys), all open at once, measured change by change in a shuffled order (a change reaches one watcher, so none waits behind another); the baseline runs afterwards on its own.`,
  '',
  '| instances | watcher | p50 ms | p99 ms | max ms |',
  '| ---: | --- | ---: | ---: | ---: |',
  ...propagation.flatMap((p) =>
    (['sdkit', 'pipeline', 'http', 'floor', 'httpFloor', 'baseline'] as const).map(
      (w) =>
        `| ${p.instances} | ${
          {
            sdkit: 'sdkit EtcdInstancer',
            pipeline: 'sdkit EtcdInstancer → endpointer → roundRobin',
            http: 'sdkit EtcdInstancer, HTTP/JSON',
            floor: 'floor (bare etcd3 watch)',
            httpFloor: 'bare watch on the HTTP/JSON gateway',
            baseline: 'baseline (go-kit re-read)',
          }[w]
        } | ${fmt(p[w].p50, 2)} | ${fmt(p[w].p99, 2)} | ${fmt(p[w].max, 2)} |`,
    ),
  ),
  '',
  '| instances | sdkit / floor (p50) | pipeline / floor (p50) | HTTP / floor (p50) | HTTP / bare HTTP watch (p50) | baseline / sdkit (p50) |',
  '| ---: | ---: | ---: | ---: | ---: | ---: |',
  ...propagation.map(
    (p) =>
      `| ${p.instances} | ${fmt(p.sdkitOverFloor, 2)}× | ${fmt(p.pipelineOverFloor, 2)}× | ${fmt(p.httpOverFloor, 2)}× | ${fmt(p.httpOverHttpFloor, 2)}× | ${fmt(p.baselineOverSdkit, 1)}× |`,
  ),
  '',
  '### Churn (real etcd)',
  '',
  "Writes from a worker thread (lean HTTP/2 writer); *follower busy* is the follower thread's event-loop active time",
  '(watch decoding included) per change, and its share of the run.',
  '',
  '| follower | instances | changes | requests in flight | changes / request | changes/s applied | etcd writes/s | lag after last ack ms | events | follower busy µs / change | follower busy % | converged | heap retained MiB |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |',
  ...churn.map(
    (c) =>
      `| ${c.follower === 'sdkit' ? 'sdkit EtcdInstancer' : 'floor (bare etcd3 watch + Map)'} | ${c.instances} | ${c.changes} | ${c.concurrency} | ${c.batch} | ${fmt(c.changesPerSec, 0)} | ${fmt(c.writesPerSec, 0)} | ${fmt(c.lagAfterLastAckMs, 1)} | ${c.events} | ${fmt(c.busyUsPerChange, 1)} | ${fmt(c.utilization * 100, 0)} | ${c.converged} | ${fmt(c.retainedHeapMiB, 0)} |`,
  ),
  '',
  '### Registration scale (real etcd, shared lease)',
  '',
  '| registrars | all registered ms | all visible ms | leases | lease renewals/s | keep-alive msgs/s | deregister all ms | deregister failures | keys left |',
  '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  `| ${registration.registrars} | ${fmt(registration.allRegisteredMs, 0)} | ${fmt(registration.allVisibleMs, 0)} | ${registration.leases} | ${fmt(registration.renewalsPerSec, 2)} | ${fmt(registration.keepAliveMsgsPerSec, 2)} | ${fmt(registration.deregisterAllMs, 0)} | ${registration.deregisterFailures} | ${registration.leftAfterDeregister} |`,
  '',
  `TTL ${registration.ttlSeconds} s; keep-alive traffic measured over ${fmt(registration.windowSec, 1)} s from etcd's /metrics.`,
  '',
  '### Memory per instance held',
  '',
  `Source: ${memory.source}; ${memory.instances} instances.`,
  '',
  '| part | bytes / instance |',
  '| --- | ---: |',
  `| instancer (instances, cache, event) | ${fmt(memory.instancerBytesPerInstance, 0)} |`,
  `| endpointer + roundRobin | ${fmt(memory.endpointerBytesPerInstance, 0)} |`,
  `| total | ${fmt(memory.totalBytesPerInstance, 0)} |`,
  '',
  '### Cold start (real etcd)',
  '',
  '| instances | first event ms (median) | bare ranged read ms | ratio |',
  '| ---: | ---: | ---: | ---: |',
  `| ${coldStart.instances} | ${fmt(coldStart.firstEventMs, 1)} | ${fmt(coldStart.rangedReadMs, 1)} | ${fmt(coldStart.ratio, 2)}× |`,
  '',
  '### Kubernetes propagation (real API server, EndpointSlice write start → a pick can return the new endpoint)',
  '',
  `${kubernetes.propagation[0]?.changes ?? 0} sequential writes per watcher and size (an admin JSON patch adding one endpoint to one slice, rotating over the slices, each removed again unmeasured), 100 endpoints per slice, measured in 4 interleaved blocks per watcher; one watcher follows the Service at a time. *Process busy*: this process's event-loop active time from the write's start to the detection (the writer's request and the watch event's handling).`,
  '',
  '| endpoints | slices | watcher | p50 ms | p90 ms | max ms | process busy µs (median) |',
  '| ---: | ---: | --- | ---: | ---: | ---: | ---: |',
  ...kubernetes.propagation.flatMap((p) =>
    (['sdkit', 'floor'] as const).map(
      (w) =>
        `| ${p.endpoints} | ${p.slices} | ${w === 'floor' ? 'floor (bare watch)' : 'sdkit instancer → endpointer → roundRobin'} | ${fmt(p[w].p50, 2)} | ${fmt(p[w].p90, 2)} | ${fmt(p[w].max, 2)} | ${fmt(p[w].busyUs, 0)} |`,
    ),
  ),
  '',
  '| endpoints | sdkit / floor (p50) | sdkit / floor (p90) |',
  '| ---: | ---: | ---: |',
  ...kubernetes.propagation.map(
    (p) => `| ${p.endpoints} | ${fmt(p.sdkitOverFloor, 2)}× | ${fmt(p.sdkitOverFloorP90, 2)}× |`,
  ),
  '',
  '### Kubernetes memory per endpoint held (real API server)',
  '',
  `${kubernetes.memory.endpoints} endpoints in ${Math.ceil(kubernetes.memory.endpoints / ENDPOINTS_PER_SLICE)} EndpointSlices, each with the controller's metadata (conditions, node, zone, Pod); just after the list, and once every slice has been rewritten (an endpoint added to it and removed, the others unchanged).`,
  '',
  '| part | bytes / endpoint |',
  '| --- | ---: |',
  `| KubernetesInstancer (instances with metadata, slice union, cache, event, watch) | ${fmt(kubernetes.memory.instancerBytesPerEndpoint, 0)} |`,
  `| endpointer + roundRobin | ${fmt(kubernetes.memory.endpointerBytesPerEndpoint, 0)} |`,
  `| total, just listed | ${fmt(kubernetes.memory.totalBytesPerEndpoint, 0)} |`,
  `| total, every slice rewritten once | ${fmt(kubernetes.memory.rewrittenBytesPerEndpoint, 0)} |`,
  '',
].join('\n');

await mkdir(resultsDir, { recursive: true });
await writeFile(join(resultsDir, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
await writeFile(join(resultsDir, 'latest.md'), md);
say(md);
say(`wrote ${join(resultsDir, 'latest.json')} and latest.md (${elapsed()})`);
