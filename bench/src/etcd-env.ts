/** A throw-away etcd for the benchmarks that need one, and helpers to fill it fast. */
import { createEtcdClient, type EtcdClient } from '@sdkit/sd-etcd';
import { type EtcdServer, startEtcd } from '@sdkit/test-harness';
import { Etcd3 } from 'etcd3';
import { addressOf, keyOf } from './workload.js';

/** Ops per populate transaction (etcd is started with a matching `--max-txn-ops`). */
export const TXN_OPS = 2000;

/** The bench's etcd: one server, a raw writer client, and every client made through it (closed by `close`). */
export interface BenchEtcd {
  readonly server: EtcdServer;
  /** Raw etcd3 client used to write (puts, deletes, populating) — never one of the measured watchers. */
  readonly writer: Etcd3;
  /** A new raw etcd3 client (its own gRPC connection), closed with the environment. */
  raw(): Etcd3;
  /** A new sdkit client (its own connection; gRPC unless `transport` says otherwise), closed with the environment. */
  sdkit(transport?: 'grpc' | 'http'): Promise<EtcdClient>;
  /** Closes every client, then stops etcd and removes its data. */
  close(): Promise<void>;
}

/** Starts etcd on loopback (allowing big populate transactions). */
export async function startBenchEtcd(): Promise<BenchEtcd> {
  const server = await startEtcd({
    name: 'bench',
    extraArgs: [
      `--max-txn-ops=${TXN_OPS}`,
      '--max-request-bytes=10485760',
      '--quota-backend-bytes=8589934592',
      // Keep old revisions around while benchmarking (no auto-compaction interfering with watches).
      '--auto-compaction-retention=0',
    ],
  });
  const closers: (() => unknown)[] = [];
  const raw = () => {
    // Responses up to 2^31-1 bytes, like etcd's Go client (and sdkit's client): grpc-js's 4 MiB default cannot
    // hold a re-read of 100 000 keys (the go-kit baseline) in full mode.
    const c = new Etcd3({
      hosts: server.endpoints,
      grpcOptions: { 'grpc.max_receive_message_length': 2 ** 31 - 1 },
    });
    closers.push(() => c.close());
    return c;
  };
  const writer = raw();
  return {
    server,
    writer,
    raw,
    async sdkit(transport = 'grpc') {
      const c =
        transport === 'http'
          ? await createEtcdClient({ transport: 'http', endpoints: server.endpoints })
          : await createEtcdClient({ endpoints: server.endpoints });
      closers.push(() => c.close());
      return c;
    },
    async close() {
      for (const close of closers.reverse()) await close();
      await server.close();
    },
  };
}

/**
 * Writes `count` keys `keyOf(prefix, from..from+count-1)` with go-kit values, in transactions of {@link TXN_OPS}
 * puts, a few at a time.
 */
export async function populate(client: Etcd3, prefix: string, count: number, from = 0): Promise<void> {
  const batches: [number, number][] = [];
  for (let i = from; i < from + count; i += TXN_OPS) batches.push([i, Math.min(from + count, i + TXN_OPS)]);
  let next = 0;
  const worker = async () => {
    while (next < batches.length) {
      const [a, b] = batches[next++]!;
      const ops = [];
      for (let i = a; i < b; i++) ops.push(client.put(keyOf(prefix, i)).value(addressOf(i)));
      await client
        .if(keyOf(prefix, a), 'Create', '>', -1)
        .then(...ops)
        .commit();
    }
  };
  await Promise.all([worker(), worker(), worker()]);
}

/**
 * Drops etcd's history up to now and defragments its database, so that a benchmark that wrote and deleted many
 * keys leaves the next one an etcd as fast as a fresh one. Measured: 500 000 puts and deletes left behind cut the
 * churn benchmark's rate with 100 changes per transaction from ≈ 53 000/s to ≈ 14 500/s; after this, 57 000/s.
 * Only while no watch is open (a watch behind the compacted revision would be cancelled).
 */
export async function compactHistory(client: Etcd3): Promise<void> {
  const { header } = await client.kv.range({ key: Buffer.from('\0'), limit: 1 });
  await client.kv.compact({ revision: header.revision, physical: true });
  await client.maintenance.defragment();
}

/** p-th percentile (0..100, nearest rank) of `values`. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))]!;
}

/** Milliseconds since `t0` (a `process.hrtime.bigint()` reading). */
export function msSince(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}
