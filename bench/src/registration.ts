/**
 * Registration scale: K `EtcdRegistrar`s on one client with the default shared lease. Measures the time from the
 * first `register()` until an `EtcdInstancer` (on another client) sees all K, the number of leases etcd holds
 * (`etcdctl lease list`), the keep-alive traffic (etcd's `/metrics`: `etcd_debugging_lease_renewed_total` and
 * `grpc_server_msg_received_total{grpc_method="LeaseKeepAlive"}`) over a window, and the time to deregister all.
 */
import type { InstancerEvent } from '@sdkit/sd-core';
import { EtcdInstancer, EtcdRegistrar } from '@sdkit/sd-etcd';
import { type BenchEtcd, msSince } from './etcd-env.js';
import { addressOf, deferred, keyOf } from './workload.js';

/** Result of the registration benchmark. */
export interface RegistrationResult {
  readonly registrars: number;
  readonly ttlSeconds: number;
  /** ms from the first register() until every register() resolved. */
  readonly allRegisteredMs: number;
  /** ms from the first register() until the instancer's set held all K. */
  readonly allVisibleMs: number;
  /** Leases etcd holds while all K are registered. */
  readonly leases: number;
  /** Lease renewals/s etcd counted over the window (NaN when the metric is absent). */
  readonly renewalsPerSec: number;
  /** LeaseKeepAlive stream messages/s etcd received over the window (NaN when the metric is absent). */
  readonly keepAliveMsgsPerSec: number;
  readonly windowSec: number;
  /** ms to deregister all K (until every deregister() settled). */
  readonly deregisterAllMs: number;
  /** deregister() calls that rejected (etcd refused or timed out past the registrar's retries). */
  readonly deregisterFailures: number;
  /** The first such rejection's message. */
  readonly firstDeregisterError?: string;
  /** Keys left under the prefix once every deregister() settled (0: all deleted). */
  readonly leftAfterDeregister: number;
}

/** Sums every sample of `metric` whose labels contain `labelFilter` in a Prometheus text page. */
function metricSum(page: string, metric: string, labelFilter = ''): number {
  let sum = 0;
  let found = false;
  for (const line of page.split('\n')) {
    if (!line.startsWith(metric) || (line[metric.length] !== ' ' && line[metric.length] !== '{')) continue;
    if (labelFilter && !line.includes(labelFilter)) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) {
      sum += v;
      found = true;
    }
  }
  return found ? sum : Number.NaN;
}

async function metrics(endpoint: string) {
  const page = await (await fetch(`${endpoint}/metrics`)).text();
  return {
    renewed: metricSum(page, 'etcd_debugging_lease_renewed_total'),
    keepAliveMsgs: metricSum(page, 'grpc_server_msg_received_total', 'grpc_method="LeaseKeepAlive"'),
  };
}

export async function benchRegistration(
  env: BenchEtcd,
  count: number,
  windowSec: number,
): Promise<RegistrationResult> {
  const prefix = '/bench/registration/';
  const ttlSeconds = 10;
  const watchClient = await env.sdkit();
  const instancer = new EtcdInstancer(watchClient, { prefix });
  const allVisible = deferred<bigint>();
  const sub = instancer.events$.subscribe((e: InstancerEvent) => {
    if (e.instances.length >= count) allVisible.resolve(process.hrtime.bigint());
  });
  const leasesBefore = await leaseCount(env);

  const client = await env.sdkit();
  const registrars = Array.from(
    { length: count },
    (_, i) => new EtcdRegistrar(client, { key: keyOf(prefix, i), value: addressOf(i), ttlSeconds }),
  );
  const t0 = process.hrtime.bigint();
  await Promise.all(registrars.map((r) => r.register()));
  const allRegisteredMs = msSince(t0);
  const allVisibleMs = Number((await allVisible.promise) - t0) / 1e6;
  const leases = (await leaseCount(env)) - leasesBefore;

  const endpoint = env.server.endpoints[0]!;
  const m0 = await metrics(endpoint);
  const w0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, windowSec * 1000));
  const m1 = await metrics(endpoint);
  const elapsedSec = msSince(w0) / 1000;

  const t1 = process.hrtime.bigint();
  const deregistered = await Promise.allSettled(registrars.map((r) => r.deregister()));
  const deregisterAllMs = msSince(t1);
  const deregisterFailures = deregistered.filter((d) => d.status === 'rejected');
  const leftAfterDeregister = (await env.writer.getAll().prefix(prefix).keys()).length;
  sub.unsubscribe();
  instancer.stop();
  return {
    registrars: count,
    ttlSeconds,
    allRegisteredMs,
    allVisibleMs,
    leases,
    renewalsPerSec: (m1.renewed - m0.renewed) / elapsedSec,
    keepAliveMsgsPerSec: (m1.keepAliveMsgs - m0.keepAliveMsgs) / elapsedSec,
    windowSec: elapsedSec,
    deregisterAllMs,
    deregisterFailures: deregisterFailures.length,
    ...(deregisterFailures[0]
      ? { firstDeregisterError: String((deregisterFailures[0] as PromiseRejectedResult).reason) }
      : {}),
    leftAfterDeregister,
  };
}

async function leaseCount(env: BenchEtcd): Promise<number> {
  const { stdout } = await env.server.etcdctl('lease', 'list');
  // "found N leases" followed by one id per line.
  const m = /found (\d+) leases/.exec(stdout);
  return m ? Number(m[1]) : stdout.split('\n').filter((l) => /^[0-9a-f]+$/.test(l.trim())).length;
}
