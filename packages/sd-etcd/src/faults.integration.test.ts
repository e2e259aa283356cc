/**
 * The fault matrix: an EtcdInstancer and live EtcdRegistrars under random writes (puts, deletes, lease expiries)
 * while etcd or the network fails. Every event the instancer emits is checked against etcd's own history
 * (`WatchChecker`); after the fault, the instancer must converge to a fresh ranged read, every live registrar must
 * be registered again within TTL + backoff, and the key of a registrar deregistered before the fault must never
 * come back.
 *
 * Every scenario runs for both transports of the instancer's and registrars' client (gRPC and HTTP/JSON); the
 * writer and the checker always use gRPC, directly.
 *
 * Set SDKIT_FAULT_REPORT=<file> to write the figures of every scenario as JSON (docs/reliability.md quotes them).
 */
import { writeFile } from 'node:fs/promises';
import type { Instancer, InstancerEvent } from '@sdkit/sd-core';
import {
  type EtcdCluster,
  type EtcdServer,
  eventually,
  startEtcd,
  startEtcdCluster,
  TcpProxy,
  waitFor,
} from '@sdkit/test-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdClient, type EtcdClient } from './client.js';
import { codecs } from './codecs.js';
import { RandomWriter } from './fixtures/random-writer.js';
import { canonOf, canonOfEvent, WatchChecker } from './fixtures/watch-checker.js';
import { EtcdInstancer } from './instancer.js';
import { EtcdRegistrar } from './registrar.js';

const TTL_SECONDS = 2;
const REGISTRAR_BACKOFF = { initialMs: 100, maxMs: 1000 };
/** "Within TTL + backoff": the lease TTL, the longest backoff, and one keep-alive interval to notice. */
const REREGISTER_BOUND_MS = TTL_SECONDS * 1000 + REGISTRAR_BACKOFF.maxMs + (TTL_SECONDS * 1000) / 3 + 1000;
const WAIT = 30_000;

/** Figures of one scenario, as docs/reliability.md reports them. */
interface Figures {
  scenario: string;
  transport: 'grpc' | 'http';
  writesOk: number;
  writesFailed: number;
  leasedPuts: number;
  events: number;
  errorEvents: number;
  statesChecked: number;
  revisionsRead: number;
  violations: number;
  /** Keys etcd had at the end that the instancer missed, and keys it still held that etcd no longer had. */
  lostAtEnd: number;
  staleAtEnd: number;
  /** From the end of the fault until the instancer's set equals a fresh ranged read (writes held meanwhile). */
  convergeMs: number;
  /** From the end of the fault until every live registrar's key is in etcd again. */
  reregisterMs: number;
  /** `lost` states the live registrars went through (each one re-registered after). */
  registrarLosses: number;
  /** From the last write after the fault until the instancer had it. */
  lagAfterLastWriteMs: number;
  faultMs: number;
}

const report: Figures[] = [];

afterAll(async () => {
  const file = process.env.SDKIT_FAULT_REPORT;
  if (file) await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
});

/** What a fault gets to work with. */
interface FaultContext {
  readonly writer: RandomWriter;
  readonly checker: WatchChecker;
  /** Resolves with the first event carrying an error from now on (the instancer noticed the fault). */
  instancerError(): Promise<InstancerEvent>;
  /** Resolves when none of the live registrars' keys is in etcd (their lease expired). */
  registrationsExpired(): Promise<void>;
}

interface Setup {
  readonly name: string;
  /** The transport of the instancer's and registrars' client. */
  readonly transport: 'grpc' | 'http';
  /** Where the writer and the checker talk to etcd: directly, never through the fault. */
  readonly direct: string[];
  /** Where the instancer's and registrars' client talks to etcd (a proxy, or the members themselves). */
  readonly through: string[];
  readonly seed: number;
}

/**
 * Runs one scenario: registrars + instancer + writer, then `fault` (which returns once the fault has ended),
 * then checks. Returns the figures (and records them for the report).
 */
async function runScenario(setup: Setup, fault: (ctx: FaultContext) => Promise<void>): Promise<Figures> {
  const prefix = `/faults/${setup.name}-${setup.transport}/`;
  // The writer and the checker use an sdkit client too (direct to etcd): etcd3's own defaults would take ~5 s to
  // notice that a restarted etcd is back, and the figures would time the test's client, not the instancer.
  const directClient = await createEtcdClient({ endpoints: setup.direct, dialTimeoutMs: 10_000 });
  const raw = directClient.etcd;
  let client: EtcdClient | undefined;
  let instancer: Instancer | undefined;
  const registrars: EtcdRegistrar[] = [];
  const writer = new RandomWriter(raw, prefix, { seed: setup.seed, leaseTtlSeconds: TTL_SECONDS });
  try {
    client =
      setup.transport === 'http'
        ? await createEtcdClient({ transport: 'http', endpoints: setup.through, dialTimeoutMs: 10_000 })
        : await createEtcdClient({ endpoints: setup.through, dialTimeoutMs: 10_000 });
    const reg = (i: number) =>
      new EtcdRegistrar(client!, {
        key: `${prefix}r/${i}`,
        value: `127.0.0.1:${7000 + i}`,
        ttlSeconds: TTL_SECONDS,
        backoff: REGISTRAR_BACKOFF,
      });
    // One registrar deregistered before anything else: its key must never come back.
    const gone = reg(99);
    await gone.register();
    await gone.deregister();
    for (let i = 0; i < 3; i++) registrars.push(reg(i));
    await Promise.all(registrars.map((r) => r.register()));

    const checker = new WatchChecker(raw, prefix);
    await checker.begin();
    instancer = new EtcdInstancer(client, { prefix, codec: codecs.gokit });
    checker.follow(instancer);
    const events$ = instancer.events$;
    writer.start();
    await writer.acknowledged(30);

    const liveKeys = registrars.map((r) => r.key);
    const readAll = async () => raw.getAll().prefix(prefix).strings();
    const ctx: FaultContext = {
      writer,
      checker,
      instancerError: () =>
        waitFor(events$, (e) => e.error !== undefined, 'the instancer reports the fault', WAIT),
      registrationsExpired: () =>
        eventually(
          async () => {
            const all = await readAll();
            return liveKeys.every((k) => all[k] === undefined);
          },
          'the registrations expire in etcd',
          WAIT,
        ).then(() => undefined),
    };
    let losses = 0;
    const lossWatch = registrars.map((r) =>
      r.state$.subscribe((state) => {
        if (state === 'lost') losses++;
      }),
    );
    const t0 = performance.now();
    await fault(ctx);
    const healed = performance.now();
    // Recovery is timed with the writer held, so it measures sdkit alone (not the writer's own client).
    await writer.pause();
    const converge = (what: string) =>
      eventually(
        async () => {
          const truth = canonOf(Object.entries(await readAll()));
          const current = instancer!.current();
          return current && !current.error && canonOfEvent(current) === truth ? performance.now() : undefined;
        },
        what,
        WAIT,
      );
    const [converged, reregistered] = await Promise.all([
      converge('the instancer converges to a fresh ranged read after the fault'),
      eventually(
        async () => {
          const all = await readAll();
          return registrars.every((r) => all[r.key] === r.value) ? performance.now() : undefined;
        },
        'every live registrar is registered again',
        WAIT,
      ),
    ]);
    // Then writes go on for a while, stop, and the instancer must catch up with all of them.
    writer.resume();
    await writer.acknowledged(30);
    await writer.stop();
    const stopped = performance.now();
    const caughtUp = await converge('the instancer catches up with the last writes');
    await eventually(
      async () => registrars.every((r) => r.state === 'registered'),
      'every live registrar says registered',
      WAIT,
    );
    for (const sub of lossWatch) sub.unsubscribe();

    const result = await checker.verify();
    const final = instancer.current()!;
    const finalKeys = new Set(final.instances.map((i) => i.key));
    const all = await readAll();
    const figures: Figures = {
      scenario: setup.name,
      transport: setup.transport,
      writesOk: writer.ok,
      writesFailed: writer.failed,
      leasedPuts: writer.leased,
      events: result.events,
      errorEvents: result.errorEvents,
      statesChecked: result.states,
      revisionsRead: result.revisions,
      violations: result.violations.length,
      lostAtEnd: Object.keys(all).filter((k) => !finalKeys.has(k)).length,
      staleAtEnd: [...finalKeys].filter((k) => all[k] === undefined).length,
      convergeMs: Math.round(converged - healed),
      reregisterMs: Math.round(reregistered - healed),
      registrarLosses: losses,
      lagAfterLastWriteMs: Math.round(caughtUp - stopped),
      faultMs: Math.round(healed - t0),
    };
    report.push(figures);

    expect(result.violations).toEqual([]);
    expect(result.events).toBeGreaterThan(10);
    expect(figures.lostAtEnd).toBe(0);
    expect(figures.staleAtEnd).toBe(0);
    expect(all[gone.key]).toBeUndefined();
    expect(finalKeys.has(gone.key)).toBe(false);
    expect(figures.reregisterMs).toBeLessThanOrEqual(REREGISTER_BOUND_MS);
    return figures;
  } finally {
    await writer.stop();
    instancer?.stop();
    await Promise.allSettled(registrars.map((r) => r.deregister()));
    client?.close();
    directClient.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------

const TRANSPORTS = [{ transport: 'grpc' as const }, { transport: 'http' as const }];

describe.each(TRANSPORTS)('fault matrix ($transport): a single etcd member', ({ transport }) => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await startEtcd({ name: `faults-single-${transport}` });
  });
  afterAll(async () => {
    await etcd?.close();
  });
  const direct = () => ({ direct: etcd.endpoints, through: etcd.endpoints });

  it('stop and restart keeping the data', async () => {
    await runScenario({ name: 'stop-restart', transport, seed: 11, ...direct() }, async (ctx) => {
      await etcd.stop();
      await ctx.instancerError();
      await etcd.start();
    });
  });

  it('kill -9 and restart', async () => {
    await runScenario({ name: 'kill-restart', transport, seed: 12, ...direct() }, async (ctx) => {
      await etcd.kill();
      await ctx.instancerError();
      await etcd.start();
    });
  });

  it('restart with wiped data (a new store: revisions restart at 1)', async () => {
    await runScenario({ name: 'wipe-restart', transport, seed: 13, ...direct() }, async (ctx) => {
      await ctx.writer.pause();
      await ctx.checker.capture();
      await etcd.restart({ wipe: true });
      ctx.checker.newEpoch();
      ctx.writer.resume();
    });
  });

  it('compaction while the watcher is cut off', async () => {
    await using proxy = await TcpProxy.start(etcd.endpoints[0]!);
    await runScenario(
      { name: 'compact-while-cut', transport, seed: 14, direct: etcd.endpoints, through: [proxy.endpoint] },
      async (ctx) => {
        proxy.cut();
        await ctx.instancerError();
        await ctx.writer.acknowledged(30);
        // History up to here is read before the compaction destroys it.
        await ctx.writer.pause();
        await ctx.checker.capture();
        // At the captured revision, not the current one: a lease may have expired since (a new revision).
        await etcd.compact(ctx.checker.capturedRevision);
        ctx.writer.resume();
        await ctx.writer.acknowledged(20);
        proxy.resume();
      },
    );
  });
});

describe.each(TRANSPORTS)(
  'fault matrix ($transport): the network between client and etcd',
  ({ transport }) => {
    let etcd: EtcdServer;
    beforeAll(async () => {
      etcd = await startEtcd({ name: `faults-net-${transport}` });
    });
    afterAll(async () => {
      await etcd?.close();
    });

    it('a cut connection, then a slow one (200 ms per hop), then normal', async () => {
      await using proxy = await TcpProxy.start(etcd.endpoints[0]!);
      await runScenario(
        { name: 'cut-then-delay', transport, seed: 21, direct: etcd.endpoints, through: [proxy.endpoint] },
        async (ctx) => {
          proxy.cut();
          await ctx.instancerError();
          await ctx.writer.acknowledged(20);
          proxy.delay(200);
          proxy.resume();
          await ctx.writer.acknowledged(40);
          proxy.delay(0);
        },
      );
    });

    it('a silent partition shorter than the lease TTL', async () => {
      await using proxy = await TcpProxy.start(etcd.endpoints[0]!);
      await runScenario(
        { name: 'partition-short', transport, seed: 22, direct: etcd.endpoints, through: [proxy.endpoint] },
        async (ctx) => {
          proxy.stall();
          await ctx.writer.acknowledged(40);
          proxy.resume();
        },
      );
    });

    it('a silent partition longer than the lease TTL (the registrations expire meanwhile)', async () => {
      await using proxy = await TcpProxy.start(etcd.endpoints[0]!);
      await runScenario(
        { name: 'partition-long', transport, seed: 23, direct: etcd.endpoints, through: [proxy.endpoint] },
        async (ctx) => {
          proxy.stall();
          await ctx.registrationsExpired();
          await ctx.writer.acknowledged(20);
          proxy.resume();
        },
      );
    });
  },
);

describe.each(TRANSPORTS)('fault matrix ($transport): a 3-member cluster', ({ transport }) => {
  let cluster: EtcdCluster;
  beforeAll(async () => {
    cluster = await startEtcdCluster(3);
  });
  afterAll(async () => {
    await cluster?.close();
  });
  const both = () => ({ direct: cluster.endpoints, through: cluster.endpoints });

  /** The member serving the instancer's watch (etcd's own watcher gauge), if exactly one does. */
  async function watchedMember(): Promise<EtcdServer | undefined> {
    const counts = await Promise.all(
      cluster.members.map(async (m) => {
        const page = await (await fetch(`${m.endpoints[0]}/metrics`)).text();
        const line = page.split('\n').find((l) => l.startsWith('etcd_debugging_mvcc_watcher_total '));
        return Number(line?.split(' ')[1] ?? 0);
      }),
    );
    const serving = cluster.members.filter((_, i) => counts[i]! > 0);
    return serving.length === 1 ? serving[0] : undefined;
  }

  it('the leader is killed, then comes back', async () => {
    await runScenario({ name: 'cluster-leader-killed', transport, seed: 31, ...both() }, async (ctx) => {
      const leader = await cluster.leader();
      await leader.kill();
      // A new leader takes writes again.
      await ctx.writer.acknowledged(30);
      await leader.start();
    });
  });

  it('a follower is killed, then comes back', async () => {
    await runScenario({ name: 'cluster-follower-killed', transport, seed: 32, ...both() }, async (ctx) => {
      const leader = await cluster.leader();
      const follower = cluster.members.find((m) => m !== leader)!;
      await follower.kill();
      await ctx.writer.acknowledged(30);
      await follower.start();
    });
  });

  it('the member the client is connected to is killed, then comes back', async () => {
    await runScenario({ name: 'cluster-connected-killed', transport, seed: 33, ...both() }, async (ctx) => {
      const member = await eventually(watchedMember, 'one member serves the watch', WAIT);
      await member.kill();
      await ctx.writer.acknowledged(30);
      await member.start();
    });
  });
});
