/**
 * EtcdInstancer against real etcd processes: the seed flows (etcd naming via etcdctl, go-kit values), transactions,
 * outages, restarts with and without data, compaction while disconnected (through a pausable TCP proxy), a leader
 * kill in a 3-member cluster, malformed values, watch sharing (counted by etcd's own metrics) and a 10 000-instance
 * prefix. Convergence is always checked against a fresh ranged read.
 */
import http from 'node:http';
import type { Instance, InstancerEvent } from '@sdkit/sd-core';
import { recordingLogger } from '@sdkit/sd-core/testing';
import {
  type EtcdServer,
  eventually,
  startEtcd,
  startEtcdCluster,
  TcpProxy,
  waitFor,
} from '@sdkit/test-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createEtcdClient,
  type EtcdClient,
  type EtcdClientBaseOptions,
  type EtcdGrpcClient,
} from './client.js';
import { type Codec, codecs, decodeEntry } from './codecs.js';
import { EtcdInstancer } from './instancer.js';

const WAIT = 20_000;

/** Every test runs with the instancer's client on each transport; fresh reads and writes always use gRPC. */
const TRANSPORTS = [{ transport: 'grpc' as const }, { transport: 'http' as const }];

/** A client for the instancer under test, over `transport`. */
function clientFor(
  transport: 'grpc' | 'http',
  endpoints: readonly string[],
  extra: Partial<EtcdClientBaseOptions> = {},
): Promise<EtcdClient> {
  return transport === 'http'
    ? createEtcdClient({ transport: 'http', endpoints, ...extra })
    : createEtcdClient({ endpoints, ...extra });
}

// ---------------------------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------------------------

function canonical(instances: readonly Instance[]): string {
  return JSON.stringify(instances.map((i) => [i.key, i.address, i.metadata ?? null]));
}

/** What an instancer on `prefix` must converge to: a fresh ranged read, decoded with the same codec. */
async function freshRead(client: EtcdGrpcClient, prefix: string, codec: Codec): Promise<string> {
  const res = await client.etcd.getAll().prefix(prefix).exec();
  const out: Instance[] = [];
  for (const kv of res.kvs) {
    const decoded = decodeEntry(codec, kv.key.toString(), kv.value);
    if (decoded.ok) out.push(decoded.instance);
  }
  out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return canonical(out);
}

async function converged(
  instancer: EtcdInstancer,
  client: EtcdGrpcClient,
  what: string,
): Promise<InstancerEvent> {
  const expected = await freshRead(client, instancer.prefix, instancer.codec);
  return waitFor<InstancerEvent>(
    instancer.events$,
    (e) => !e.error && canonical(e.instances) === expected,
    `${what}: instancer equal to a fresh read ${expected.slice(0, 200)}`,
    WAIT,
  );
}

function record(instancer: EtcdInstancer): InstancerEvent[] {
  const events: InstancerEvent[] = [];
  instancer.events$.subscribe((e) => events.push(e));
  return events;
}

/** GET `<endpoint>/metrics` and read one metric line (sum over label sets matching `labels`). */
function metric(endpoint: string, name: string, labels = ''): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${endpoint}/metrics`, { agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        let sum = 0;
        for (const line of body.split('\n')) {
          if (!line.startsWith(name)) continue;
          const rest = line.slice(name.length);
          if (!(rest.startsWith(' ') || rest.startsWith('{'))) continue;
          if (labels && !rest.includes(labels)) continue;
          sum += Number(line.slice(line.lastIndexOf(' ') + 1));
        }
        resolve(sum);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** Runs etcdctl on `server`, retrying while the cluster has no leader (an election after a kill). */
function etcdctlRetry(server: EtcdServer, ...args: string[]): Promise<unknown> {
  return eventually(
    () =>
      server.etcdctl(...args).then(
        () => true,
        () => false,
      ),
    `etcdctl ${args.join(' ')}`,
    WAIT,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// one etcd for the non-destructive tests
// ---------------------------------------------------------------------------------------------------------------

describe.each(TRANSPORTS)('EtcdInstancer on a real etcd ($transport)', ({ transport }) => {
  let etcd: EtcdServer;
  let client: EtcdGrpcClient;
  let watcher: EtcdClient;

  beforeAll(async () => {
    etcd = await startEtcd({ name: 'instancer' });
    client = await createEtcdClient({ endpoints: etcd.endpoints });
    watcher = await clientFor(transport, etcd.endpoints);
  });

  afterAll(async () => {
    watcher?.close();
    client?.close();
    await etcd?.close();
  });

  it('follows the etcd docs naming flow: etcdctl put appears, etcdctl del removes it', async () => {
    const instancer = new EtcdInstancer(watcher, { prefix: 'my-service/', codec: codecs.etcdNaming });
    try {
      await waitFor<InstancerEvent>(
        instancer.events$,
        (e) => e.instances.length === 0 && !e.error,
        'empty first event',
        WAIT,
      );
      await etcd.etcdctl('put', 'my-service/1.2.3.4', '{"Addr":"1.2.3.4","Metadata":"..."}');
      const added = await waitFor<InstancerEvent>(
        instancer.events$,
        (e) => e.instances.length === 1,
        'the etcdctl put',
        WAIT,
      );
      expect(added.instances).toEqual([
        { key: 'my-service/1.2.3.4', address: '1.2.3.4', metadata: { metadata: '...' } },
      ]);
      // what our encoder writes, Go's GRPCResolver would write and read back
      const value = codecs.etcdNaming.encode({ key: 'my-service/5.6.7.8:50051', address: '5.6.7.8:50051' });
      expect(value).toBe('{"Op":0,"Addr":"5.6.7.8:50051","Metadata":null}');
      await etcd.etcdctl('put', 'my-service/5.6.7.8:50051', value);
      await waitFor<InstancerEvent>(
        instancer.events$,
        (e) => e.instances.length === 2,
        'the second endpoint',
        WAIT,
      );
      await etcd.etcdctl('del', 'my-service/1.2.3.4');
      const removed = await waitFor<InstancerEvent>(
        instancer.events$,
        (e) => !e.instances.some((i) => i.key === 'my-service/1.2.3.4'),
        'the etcdctl del',
        WAIT,
      );
      expect(removed.instances.map((i) => i.address)).toEqual(['5.6.7.8:50051']);
      await converged(instancer, client, 'naming');
    } finally {
      instancer.stop();
    }
  });

  it('reads go-kit registrations (value = instance string) under a go-kit prefix', async () => {
    await etcd.etcdctl('put', '/services/foosvc/1.2.3.4:8080', 'http://1.2.3.4:8080');
    const instancer = new EtcdInstancer(watcher, { prefix: '/services/foosvc/', codec: codecs.gokit });
    try {
      const first = await waitFor<InstancerEvent>(
        instancer.events$,
        (e) => e.instances.length === 1,
        'the go-kit instance',
        WAIT,
      );
      expect(first.instances).toEqual([
        { key: '/services/foosvc/1.2.3.4:8080', address: 'http://1.2.3.4:8080' },
      ]);
      await etcd.etcdctl('put', '/services/foosvc/1.2.3.5:8080', 'http://1.2.3.5:8080');
      await converged(instancer, client, 'go-kit');
      expect(instancer.current()!.instances).toHaveLength(2);
    } finally {
      instancer.stop();
    }
  });

  it('turns one transaction with several puts into one event', async () => {
    const prefix = 'txn-svc/';
    const instancer = new EtcdInstancer(watcher, { prefix });
    const events = record(instancer);
    try {
      await waitFor<InstancerEvent>(instancer.events$, (e) => !e.error, 'first read', WAIT);
      await client.etcd
        .if(`${prefix}guard`, 'Version', '==', 0)
        .then(
          client.etcd.put(`${prefix}a`).value('http://a:1'),
          client.etcd.put(`${prefix}b`).value('http://b:1'),
          client.etcd.put(`${prefix}c`).value('http://c:1'),
        )
        .commit();
      await converged(instancer, client, 'txn');
      const withAny = events.filter((e) => e.instances.length > 0);
      expect(withAny[0]!.instances.map((i) => i.address)).toEqual(['http://a:1', 'http://b:1', 'http://c:1']);
      expect(withAny[0]!.changes?.added).toHaveLength(3);
    } finally {
      instancer.stop();
    }
  });

  it('skips malformed values with a warning naming the key, keeps the others', async () => {
    const prefix = 'mixed-svc/';
    const logger = recordingLogger();
    await etcd.etcdctl('put', `${prefix}good-gokit`, 'http://g:1');
    await etcd.etcdctl(
      'put',
      `${prefix}good-naming`,
      '{"Op":0,"Addr":"10.0.0.1:50051","Metadata":{"zone":"a"}}',
    );
    await etcd.etcdctl('put', `${prefix}bad-json`, '{"Addr":');
    await etcd.etcdctl('put', `${prefix}bad-shape`, '{"host":"x"}');
    const instancer = new EtcdInstancer(watcher, { prefix, logger });
    try {
      const first = await waitFor<InstancerEvent>(
        instancer.events$,
        (e) => e.instances.length === 2,
        'the two good entries',
        WAIT,
      );
      expect(first.instances.map((i) => i.key)).toEqual([`${prefix}good-gokit`, `${prefix}good-naming`]);
      expect(first.instances[1]!.metadata).toEqual({ zone: 'a' });
      const warned = logger.records.filter((l) => l.level === 'warn').map((l) => [l.obj.key, l.obj.codec]);
      expect(warned).toEqual([
        [`${prefix}bad-json`, 'auto'],
        [`${prefix}bad-shape`, 'auto'],
      ]);
      // a good entry that turns bad leaves; a bad one that turns good joins
      await etcd.etcdctl('put', `${prefix}good-gokit`, '{nope');
      await etcd.etcdctl('put', `${prefix}bad-json`, '{"address":"http://fixed:1"}');
      const later = await converged(instancer, client, 'mixed');
      expect(later.instances.map((i) => i.key)).toEqual([`${prefix}bad-json`, `${prefix}good-naming`]);
    } finally {
      instancer.stop();
    }
  });

  it('shares one etcd watch between instancers of one client and prefix; stop() completes and releases it', async () => {
    // An etcd of its own: the watcher count is server-wide, and other tests' watches may still be closing.
    await using etcd = await startEtcd({ name: 'instancer-sharing' });
    await using client = await createEtcdClient({ endpoints: etcd.endpoints });
    await using watcher = await clientFor(transport, etcd.endpoints);
    const endpoint = etcd.endpoints[0]!;
    const watchers = () => metric(endpoint, 'etcd_debugging_mvcc_watcher_total');
    const base = await watchers();
    expect(base).toBe(0);
    const a = new EtcdInstancer(watcher, { prefix: 'shared/' });
    await waitFor<InstancerEvent>(a.events$, (e) => !e.error, 'a ready', WAIT);
    await eventually(async () => (await watchers()) === base + 1, 'one etcd watcher for a', WAIT);
    const b = new EtcdInstancer(watcher, { prefix: 'shared/', codec: codecs.gokit });
    await waitFor<InstancerEvent>(b.events$, (e) => !e.error, 'b ready', WAIT);
    const c = new EtcdInstancer(watcher, { prefix: 'shared-other/' });
    await waitFor<InstancerEvent>(c.events$, (e) => !e.error, 'c ready', WAIT);
    await eventually(
      async () => (await watchers()) === base + 2,
      'two etcd watchers for a, b (shared) and c',
      WAIT,
    );

    await etcd.etcdctl('put', 'shared/x', 'http://x:1');
    await Promise.all([converged(a, client, 'a'), converged(b, client, 'b')]);

    let aDone = false;
    a.events$.subscribe({ complete: () => (aDone = true) });
    a.stop();
    expect(aDone).toBe(true);
    await etcd.etcdctl('put', 'shared/y', 'http://y:1');
    await converged(b, client, 'b after a stopped'); // b still follows through the shared watch
    expect(await watchers()).toBe(base + 2);
    b[Symbol.dispose]();
    await eventually(
      async () => (await watchers()) === base + 1,
      'shared watch released after the last stop',
      WAIT,
    );
    c.stop();
    await eventually(async () => (await watchers()) === base, 'no watcher left', WAIT);
  });

  it('keeps changes incremental at 10 000 instances (no re-read per change)', async () => {
    const prefix = 'big/';
    const n = 10_000;
    for (let i = 0; i < n; i += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, n - i) }, (_, j) =>
          client.etcd
            .put(`${prefix}${String(i + j).padStart(5, '0')}`)
            .value(`http://10.0.${(i + j) >> 8}.${(i + j) & 255}:80`),
        ),
      );
    }
    const instancer = new EtcdInstancer(watcher, { prefix, codec: codecs.gokit });
    try {
      const readStart = performance.now();
      await waitFor<InstancerEvent>(instancer.events$, (e) => e.instances.length === n, 'all 10 000', 60_000);
      const readMs = performance.now() - readStart;
      const ranges = () =>
        metric(
          etcd.endpoints[0]!,
          'grpc_server_started_total',
          'grpc_method="Range",grpc_service="etcdserverpb.KV"',
        );
      const rangesBefore = await ranges();
      const changes = 200;
      const latencies: number[] = [];
      for (let i = 0; i < changes; i++) {
        const key = `${prefix}${String(i * 37).padStart(5, '0')}`;
        const address = `http://changed-${i}:80`;
        const t0 = performance.now();
        const seen = waitFor<InstancerEvent>(
          instancer.events$,
          (e) => e.changes?.added[0]?.address === address,
          `change ${i}`,
          WAIT,
        );
        await client.etcd.put(key).value(address);
        const e = await seen;
        latencies.push(performance.now() - t0);
        expect(e.changes?.added).toHaveLength(1);
        expect(e.changes?.removed).toHaveLength(1);
        expect(e.instances).toHaveLength(n);
      }
      // puts are not Range RPCs: any Range here would be a re-read by the instancer
      const rangesAfter = await ranges();
      expect(rangesAfter - rangesBefore).toBe(0);
      latencies.sort((x, y) => x - y);
      const p50 = latencies[Math.floor(changes / 2)]!;
      const p95 = latencies[Math.floor(changes * 0.95)]!;
      console.info(
        `[sd-etcd] ${transport}, 10 000 instances: initial read+decode ${readMs.toFixed(0)} ms; put→event latency p50 ${p50.toFixed(2)} ms, p95 ${p95.toFixed(2)} ms over ${changes} changes (0 Range RPCs)`,
      );
      await converged(instancer, client, 'big');
    } finally {
      instancer.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// destructive: each test gets its own etcd
// ---------------------------------------------------------------------------------------------------------------

describe.each(TRANSPORTS)('EtcdInstancer through etcd failures ($transport)', ({ transport }) => {
  it('keeps the last known good set while etcd is down, and converges after it comes back with its data', async () => {
    await using etcd = await startEtcd({ name: 'outage' });
    await using client = await createEtcdClient({ endpoints: etcd.endpoints });
    await using watcher = await clientFor(transport, etcd.endpoints);
    for (let i = 0; i < 5; i++) await etcd.etcdctl('put', `svc/${i}`, `http://h${i}:1`);
    const instancer = new EtcdInstancer(watcher, { prefix: 'svc/', backoff: { maxMs: 500 } });
    const events = record(instancer);
    try {
      await converged(instancer, client, 'before the outage');
      await etcd.stop();
      const failing = await waitFor<InstancerEvent>(
        instancer.events$,
        (e) => e.error !== undefined,
        'an error event',
        WAIT,
      );
      expect(failing.instances).toHaveLength(5);
      expect(failing.error?.message).toMatch(/svc\//);
      await etcd.start();
      await etcd.etcdctl('put', 'svc/new', 'http://new:1');
      await etcd.etcdctl('del', 'svc/0');
      const back = await converged(instancer, client, 'after the outage');
      expect(back.instances.map((i) => i.key)).toEqual(['svc/1', 'svc/2', 'svc/3', 'svc/4', 'svc/new']);
      // during the outage nothing was dropped
      for (const e of events.filter((x) => x.error)) expect(e.instances.length).toBe(5);
    } finally {
      instancer.stop();
    }
  });

  it('resumes across an etcd restart without losing the writes it missed (no re-read)', async () => {
    await using etcd = await startEtcd({ name: 'resume' });
    const proxy = await TcpProxy.start(etcd.endpoints[0]!);
    const logger = recordingLogger();
    await using client = await createEtcdClient({ endpoints: [proxy.endpoint] });
    await using watcher = await clientFor(transport, [proxy.endpoint]);
    const instancer = new EtcdInstancer(watcher, { prefix: 'svc/', logger, backoff: { maxMs: 300 } });
    const events = record(instancer);
    try {
      await etcd.etcdctl('put', 'svc/a', 'http://a:1');
      await converged(instancer, client, 'start');
      proxy.cut();
      await waitFor<InstancerEvent>(instancer.events$, (e) => e.error !== undefined, 'disconnected', WAIT);
      await etcd.stop();
      await etcd.start();
      // Written while the instancer cannot see etcd: only a watch resumed from the right revision delivers them.
      await etcd.etcdctl('put', 'svc/b', 'http://b:1');
      await etcd.etcdctl('put', 'svc/c', 'http://c:1');
      await etcd.etcdctl('del', 'svc/a');
      await etcd.etcdctl('put', 'svc/c', 'http://c:2');
      proxy.resume();
      const back = await converged(instancer, client, 'resumed');
      expect(back.instances.map((i) => i.address)).toEqual(['http://b:1', 'http://c:2']);
      expect(logger.records.some((l) => l.msg?.includes('watch resumed'))).toBe(true);
      expect(logger.records.some((l) => l.msg?.includes('re-reading'))).toBe(false);
      // one watch response → one event: the four missed writes arrive together
      const afterError = events.slice(events.findIndex((e) => e.error) + 1);
      expect(afterError.filter((e) => !e.error).length).toBeLessThanOrEqual(2);
    } finally {
      instancer.stop();
      await proxy.close();
    }
  });

  it('re-reads and converges when etcd comes back wiped (the revision goes backwards)', async () => {
    await using etcd = await startEtcd({ name: 'wipe' });
    await using client = await createEtcdClient({ endpoints: etcd.endpoints });
    await using watcher = await clientFor(transport, etcd.endpoints);
    for (let i = 0; i < 8; i++) await etcd.etcdctl('put', `svc/${i}`, `http://old${i}:1`);
    const logger = recordingLogger();
    const instancer = new EtcdInstancer(watcher, { prefix: 'svc/', logger, backoff: { maxMs: 500 } });
    try {
      await converged(instancer, client, 'before wipe');
      await etcd.restart({ wipe: true });
      const empty = await converged(instancer, client, 'wiped to empty');
      expect(empty.instances).toEqual([]);
      await etcd.etcdctl('put', 'svc/fresh', 'http://fresh:1');
      const fresh = await converged(instancer, client, 'new data');
      expect(fresh.instances.map((i) => i.address)).toEqual(['http://fresh:1']);
      expect(logger.records.some((l) => l.msg?.includes('different store'))).toBe(true);
    } finally {
      instancer.stop();
    }
  });

  it('recovers when its revision was compacted while it was disconnected: re-read, diff, watch again', async () => {
    await using etcd = await startEtcd({ name: 'compact' });
    const proxy = await TcpProxy.start(etcd.endpoints[0]!);
    const logger = recordingLogger();
    await using client = await createEtcdClient({ endpoints: [proxy.endpoint] });
    await using watcher = await clientFor(transport, [proxy.endpoint]);
    for (let i = 0; i < 4; i++) await etcd.etcdctl('put', `svc/${i}`, `http://h${i}:1`);
    const instancer = new EtcdInstancer(watcher, { prefix: 'svc/', logger, backoff: { maxMs: 300 } });
    const events = record(instancer);
    try {
      await converged(instancer, client, 'start');
      proxy.cut();
      await waitFor<InstancerEvent>(instancer.events$, (e) => e.error !== undefined, 'disconnected', WAIT);
      await etcd.etcdctl('del', 'svc/0');
      await etcd.etcdctl('put', 'svc/1', 'http://h1:2');
      for (let i = 0; i < 20; i++) await etcd.etcdctl('put', 'unrelated', String(i));
      await etcd.etcdctl('put', 'svc/9', 'http://h9:1');
      await etcd.compact();
      proxy.resume();
      const back = await converged(instancer, client, 'after compaction');
      expect(back.instances.map((i) => i.address)).toEqual([
        'http://h1:2',
        'http://h2:1',
        'http://h3:1',
        'http://h9:1',
      ]);
      expect(logger.records.some((l) => l.level === 'info' && l.msg?.includes('compacted'))).toBe(true);
      // the re-read emitted only the difference
      expect(back.changes?.added.map((i) => i.key).sort()).toEqual(['svc/1', 'svc/9']);
      expect(back.changes?.removed.map((i) => i.key).sort()).toEqual(['svc/0', 'svc/1']);
      // The error stayed until the fresh set was applied: no event between passed the old set off as current.
      const sinceCut = events.slice(events.findIndex((e) => e.error));
      const firstGood = sinceCut.find((e) => !e.error);
      expect(firstGood?.instances.map((i) => i.address)).toEqual(back.instances.map((i) => i.address));
      // and it watches again
      await etcd.etcdctl('put', 'svc/10', 'http://h10:1');
      await converged(instancer, client, 'watching after the re-read');
      expect(events.every((e) => e.instances.length >= 3)).toBe(true); // never emptied by the trouble
    } finally {
      instancer.stop();
      await proxy.close();
    }
  });

  it('notices a silent partition by its keepAlive (gRPC pings, HTTP watch renewal): error event, last known set kept, catches up after it heals', async () => {
    // etcd refuses pings closer than --grpc-keepalive-min-time (5 s by default); let this test ping every 500 ms.
    await using etcd = await startEtcd({ name: 'keepalive', extraArgs: ['--grpc-keepalive-min-time=200ms'] });
    await using proxy = await TcpProxy.start(etcd.endpoints[0]!);
    const keepAlive = { timeMs: 500, timeoutMs: 500 };
    await using watcher = await clientFor(transport, [proxy.endpoint], { keepAlive });
    expect(watcher.keepAlive).toEqual(keepAlive);
    await using direct = await createEtcdClient({ endpoints: etcd.endpoints });
    await etcd.etcdctl('put', 'ka/1', 'http://h1:1');
    const instancer = new EtcdInstancer(watcher, { prefix: 'ka/', backoff: { maxMs: 300 } });
    try {
      await converged(instancer, direct, 'start');
      proxy.stall(); // no byte crosses, no connection closes: only a ping can tell
      const stalled = performance.now();
      const failing = await waitFor<InstancerEvent>(
        instancer.events$,
        (e) => e.error !== undefined,
        'an error event during the silent partition',
        WAIT,
      );
      console.info(
        `[measure] ${transport}: silent partition noticed after ${(performance.now() - stalled).toFixed(0)} ms (keepAlive 500 + 500 ms)`,
      );
      expect(failing.instances.map((i) => i.key)).toEqual(['ka/1']); // last known good
      await etcd.etcdctl('put', 'ka/2', 'http://h2:1');
      await etcd.etcdctl('del', 'ka/1');
      proxy.resume();
      const back = await converged(instancer, direct, 'after the partition');
      expect(back.instances.map((i) => i.key)).toEqual(['ka/2']);
    } finally {
      instancer.stop();
    }
  });

  it('survives the leader being killed in a 3-member cluster: nothing lost or duplicated, converges', async () => {
    await using cluster = await startEtcdCluster(3);
    await using client = await createEtcdClient({ endpoints: cluster.endpoints });
    await using watcher = await clientFor(transport, cluster.endpoints);
    const m0 = cluster.members[0]!;
    for (let i = 0; i < 10; i++) await m0.etcdctl('put', `svc/${i}`, `http://h${i}:1`);
    const instancer = new EtcdInstancer(watcher, { prefix: 'svc/', backoff: { maxMs: 500 } });
    const events = record(instancer);
    try {
      await converged(instancer, client, 'cluster start');
      const leader = await cluster.leader();
      await leader.kill();
      const survivor = cluster.members.find((m) => m !== leader)!;
      for (let i = 10; i < 15; i++) await etcdctlRetry(survivor, 'put', `svc/${i}`, `http://h${i}:1`);
      await etcdctlRetry(survivor, 'del', 'svc/0');
      const after = await converged(instancer, client, 'after the leader kill');
      expect(after.instances).toHaveLength(14);
      const start = events.findIndex((e) => e.instances.length === 10);
      for (const e of events.slice(start)) {
        const keys = e.instances.map((i) => i.key);
        expect(new Set(keys).size).toBe(keys.length); // no duplicates
        for (let i = 1; i < 10; i++) expect(keys).toContain(`svc/${i}`); // never deleted, never lost
      }
    } finally {
      instancer.stop();
    }
  });
});
