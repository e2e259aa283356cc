/**
 * Unit tests of EtcdInstancer and its shared watch against a simulated etcd (an in-memory MVCC store with history,
 * compaction, watch streams that batch, fragment, lag behind their header revision and break on demand).
 * The real-etcd behaviour is covered by instancer.integration.test.ts.
 */
import { EventEmitter } from 'node:events';
import type { InstancerEvent, Logger } from '@sdkit/sd-core';
import { type BackoffOptions, createBackoff } from '@sdkit/sd-core';
import { FakeClock, recordingLogger } from '@sdkit/sd-core/testing';
import { startTestTelemetry } from '@sdkit/test-harness/telemetry';
import type { IRangeRequest, IRangeResponse, IResponseHeader, IWatchRequest, IWatchResponse } from 'etcd3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EtcdClient } from './client.js';
import { type Codec, codecs, decodeEntry } from './codecs.js';
import { fakeClient, transportFor } from './fixtures/fake-client.js';
import { watchResponse } from './fixtures/watch-response.js';
import { EtcdInstancer, type EtcdInstancerOptions } from './instancer.js';
import { prefixRangeEnd } from './transport.js';
import { joinWatch, sharedWatchCount } from './watch-hub.js';

/** The Watch RPC stream shape etcd3 hands over (what the gRPC transport drives). */
interface WatchStream {
  write(req: IWatchRequest): void;
  cancel(): void;
}

// ---------------------------------------------------------------------------------------------------------------
// simulated etcd
// ---------------------------------------------------------------------------------------------------------------

interface Change {
  readonly rev: number;
  readonly key: string;
  readonly value: string | null;
}

type Op = { put: string; value: string } | { del: string };

class SimStream extends EventEmitter implements WatchStream {
  startRev = 0;
  next = 0;
  created = false;
  cancelled = false;
  dead = false;
  key: Buffer = Buffer.alloc(0);
  rangeEnd: Buffer = Buffer.alloc(0);
  readonly requests: IWatchRequest[] = [];

  constructor(readonly sim: SimEtcd) {
    super();
  }

  write(req: IWatchRequest): void {
    this.requests.push(req);
    const create = req.create_request;
    if (!create || this.dead) return;
    this.key = create.key!;
    this.rangeEnd = create.range_end!;
    this.startRev = Number(create.start_revision);
    this.next = this.startRev;
    queueMicrotask(() => {
      if (this.dead) return;
      this.created = true;
      this.emit('data', this.sim.response({ created: true }));
      if (this.sim.compacted > 0 && this.startRev < this.sim.compacted) {
        this.emit(
          'data',
          this.sim.response({ canceled: true, compact_revision: String(this.sim.compacted) }),
        );
        this.dead = true;
      }
    });
  }

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    const wasDead = this.dead;
    this.dead = true;
    if (!wasDead) queueMicrotask(() => this.emit('error', new Error('1 CANCELLED: Cancelled on client')));
  }

  /** Sends pending events (whole revisions, at most `maxRevs` of them) as one response, maybe fragmented. */
  deliver(maxRevs = Number.POSITIVE_INFINITY, fragmentSize = 0): boolean {
    if (this.dead || !this.created) return false;
    const changes: Change[] = [];
    let revs = 0;
    let lastRev = -1;
    for (const c of this.sim.history) {
      if (c.rev < this.next) continue;
      if (c.rev !== lastRev) {
        if (revs === maxRevs) break;
        revs++;
        lastRev = c.rev;
      }
      if (this.inRange(c.key)) changes.push(c);
    }
    if (lastRev >= 0) this.next = lastRev + 1;
    if (changes.length === 0) return false;
    const events = changes.map((c) => ({
      type: c.value === null ? ('Delete' as const) : ('Put' as const),
      kv: {
        key: Buffer.from(c.key),
        value: Buffer.from(c.value ?? ''),
        create_revision: '0',
        mod_revision: String(c.rev),
        version: '1',
        lease: '0',
      },
      prev_kv: undefined as never,
    }));
    if (fragmentSize > 0 && events.length > fragmentSize) {
      for (let i = 0; i < events.length; i += fragmentSize) {
        const more = i + fragmentSize < events.length;
        this.emit('data', this.sim.response({ events: events.slice(i, i + fragmentSize), fragment: more }));
      }
    } else {
      // The header revision is the store's current one: ahead of the events when the watcher is catching up.
      this.emit('data', this.sim.response({ events }));
    }
    return true;
  }

  progress(): void {
    if (!this.dead && this.created) this.emit('data', this.sim.response({}));
  }

  fail(message = '14 UNAVAILABLE: connection reset'): void {
    if (this.dead) return;
    this.dead = true;
    this.emit('error', new Error(message));
  }

  inRange(key: string): boolean {
    const k = Buffer.from(key);
    return (
      Buffer.compare(k, this.key) >= 0 &&
      (this.rangeEnd.equals(Buffer.from([0])) || Buffer.compare(k, this.rangeEnd) < 0)
    );
  }
}

class SimEtcd {
  readonly prefix: Buffer;
  clusterId = '1';
  rev = 1;
  compacted = 0;
  history: Change[] = [];
  down = false;
  /** Reads of the prefix (the count-only probes before a resume are in {@link probes}). */
  readonly ranges: IRangeRequest[] = [];
  readonly probes: IRangeRequest[] = [];
  readonly streams: SimStream[] = [];
  /** Every state the store has been in (canonical form of what an instancer should show), for consistency checks. */
  readonly states = new Set<string>();

  constructor(
    namespace = '',
    readonly codec: Codec = codecs.auto,
    readonly watchPrefix = 'svc/',
  ) {
    this.prefix = Buffer.from(namespace);
    this.recordState();
  }

  readonly kv = {
    range: async (req: IRangeRequest): Promise<IRangeResponse> => {
      (req.count_only ? this.probes : this.ranges).push(req);
      await Promise.resolve();
      if (this.down) throw new Error('14 UNAVAILABLE: No connection established (2024-01-01T00:00:00.000Z)');
      const at = req.revision === undefined ? this.rev : Number(req.revision);
      if (at < this.compacted) throw new Error('etcdserver: mvcc: required revision has been compacted');
      if (at > this.rev) throw new Error('etcdserver: mvcc: required revision is a future revision');
      const start = req.key!;
      const end = req.range_end!;
      const keys = [...this.stateAt(at).entries()]
        .filter(([k]) => {
          const b = Buffer.from(k);
          return (
            Buffer.compare(b, start) >= 0 && (end.equals(Buffer.from([0])) || Buffer.compare(b, end) < 0)
          );
        })
        .sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      const limit = Number(req.limit ?? 0);
      const page = limit > 0 ? keys.slice(0, limit) : keys;
      return {
        header: this.header(),
        kvs: page.map(([k, v]) => ({
          key: Buffer.from(k),
          value: Buffer.from(v),
          create_revision: '0',
          mod_revision: '0',
          version: '1',
          lease: '0',
        })),
        more: page.length < keys.length,
        count: String(keys.length),
      };
    },
  };

  readonly watchClient = {
    watch: async (): Promise<WatchStream> => {
      await Promise.resolve();
      if (this.down) throw new Error('14 UNAVAILABLE: No connection established');
      const stream = new SimStream(this);
      this.streams.push(stream);
      return stream;
    },
  };

  header(): IResponseHeader {
    return { cluster_id: this.clusterId, member_id: '1', revision: String(this.rev), raft_term: '2' };
  }

  response(fields: Partial<IWatchResponse>): IWatchResponse {
    return watchResponse(this.header(), fields);
  }

  /** The live (not dead) stream, if any. */
  get stream(): SimStream | undefined {
    return this.streams.filter((s) => !s.dead).at(-1);
  }

  full(key: string): string {
    return this.prefix.toString() + key;
  }

  /** One transaction: one new revision holding every op (keys relative to the namespace). */
  txn(...ops: Op[]): number {
    this.rev++;
    for (const op of ops) {
      if ('put' in op) this.history.push({ rev: this.rev, key: this.full(op.put), value: op.value });
      else if (this.stateAt(this.rev).has(this.full(op.del))) {
        this.history.push({ rev: this.rev, key: this.full(op.del), value: null });
      }
    }
    this.recordState();
    return this.rev;
  }

  put(key: string, value: string): number {
    return this.txn({ put: key, value });
  }

  del(key: string): number {
    return this.txn({ del: key });
  }

  compact(): void {
    this.compacted = this.rev;
  }

  /** A brand-new store: revision 1, new cluster id, no data; every stream breaks. */
  wipe(): void {
    this.history = [];
    this.rev = 1;
    this.compacted = 0;
    this.clusterId = String(Number(this.clusterId) + 1);
    for (const s of this.streams) s.fail('14 UNAVAILABLE: etcd restarted');
    this.recordState();
  }

  setDown(down: boolean): void {
    this.down = down;
    if (down) for (const s of this.streams) s.fail('14 UNAVAILABLE: etcd is down');
  }

  stateAt(rev: number): Map<string, string> {
    const state = new Map<string, string>();
    for (const c of this.history) {
      if (c.rev > rev) break;
      if (c.value === null) state.delete(c.key);
      else state.set(c.key, c.value);
    }
    return state;
  }

  /** What an instancer on `watchPrefix` should show now (canonical string). */
  expected(): string {
    const instances = [];
    for (const [full, value] of this.stateAt(this.rev)) {
      const key = full.slice(this.prefix.length);
      if (!key.startsWith(this.watchPrefix)) continue;
      const out = decodeEntry(this.codec, key, Buffer.from(value));
      if (out.ok) instances.push(out.instance);
    }
    return canonical(instances.sort((a, b) => (a.key < b.key ? -1 : 1)));
  }

  recordState(): void {
    this.states.add(this.expected());
  }
}

function canonical(instances: readonly { key: string; address: string; metadata?: unknown }[]): string {
  return JSON.stringify(instances.map((i) => [i.key, i.address, i.metadata ?? null]));
}

const clientOf = (etcd: SimEtcd, logger?: Logger): EtcdClient =>
  fakeClient(etcd, etcd.prefix.toString(), logger);

/** Lets promises and queued stream responses run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 4; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

interface Harness {
  sim: SimEtcd;
  clock: FakeClock;
  instancer: EtcdInstancer;
  events: InstancerEvent[];
  completed: () => boolean;
  addresses: () => string[];
}

async function setup(
  sim = new SimEtcd(),
  options: Partial<EtcdInstancerOptions> = {},
  logger?: Logger,
): Promise<Harness> {
  const clock = new FakeClock();
  const instancer = new EtcdInstancer(clientOf(sim, logger), {
    prefix: 'svc/',
    clock,
    backoff: { jitter: 0 },
    ...options,
  });
  const events: InstancerEvent[] = [];
  let done = false;
  instancer.events$.subscribe({ next: (e) => events.push(e), complete: () => (done = true) });
  await flush();
  return {
    sim,
    clock,
    instancer,
    events,
    completed: () => done,
    addresses: () => (instancer.current()?.instances ?? []).map((i) => i.address),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// scenarios
// ---------------------------------------------------------------------------------------------------------------

describe('EtcdInstancer (simulated etcd)', () => {
  it('reads the prefix at R, then watches from R + 1 with a prefix range', async () => {
    const sim = new SimEtcd();
    sim.put('svc/a', 'http://a:1');
    sim.put('other/x', 'http://x:1');
    const R = sim.put('svc/b', 'http://b:1');
    const h = await setup(sim);
    expect(h.events).toHaveLength(1);
    expect(h.addresses()).toEqual(['http://a:1', 'http://b:1']);
    expect(h.events[0]!.error).toBeUndefined();
    expect(sim.ranges).toHaveLength(1);
    const create = sim.stream!.requests[0]!.create_request!;
    expect(Number(create.start_revision)).toBe(R + 1);
    expect(create.key).toEqual(Buffer.from('svc/'));
    expect(create.range_end).toEqual(Buffer.from('svc0'));
    h.instancer.stop();
  });

  it('turns one watch response into one event, applying only the change', async () => {
    const h = await setup();
    h.sim.put('svc/a', 'http://a:1');
    h.sim.txn({ put: 'svc/b', value: 'http://b:1' }, { put: 'svc/c', value: 'http://c:1' }, { del: 'svc/a' });
    h.sim.stream!.deliver();
    expect(h.events).toHaveLength(2); // the empty first read + one event for both revisions
    expect(h.addresses()).toEqual(['http://b:1', 'http://c:1']);
    expect(h.events[1]!.changes?.added.map((i) => i.key)).toEqual(['svc/b', 'svc/c']);
    h.instancer.stop();
  });

  it('merges the fragments of a large response into one event', async () => {
    const h = await setup();
    h.sim.txn(...Array.from({ length: 10 }, (_, i) => ({ put: `svc/${i}`, value: `http://h${i}:1` })));
    h.sim.stream!.deliver(Number.POSITIVE_INFINITY, 3);
    expect(h.events).toHaveLength(2);
    expect(h.instancer.current()!.instances).toHaveLength(10);
    h.instancer.stop();
  });

  it('keeps a key that is deleted and put again within one response (last event wins)', async () => {
    const h = await setup();
    h.sim.put('svc/a', 'http://a:1');
    h.sim.stream!.deliver();
    h.sim.del('svc/a');
    h.sim.put('svc/a', 'http://a:2');
    h.sim.stream!.deliver();
    expect(h.addresses()).toEqual(['http://a:2']);
    h.instancer.stop();
  });

  it('resumes after the last event applied, not after the (later) header revision', async () => {
    const h = await setup();
    const first = h.sim.put('svc/a', 'http://a:1');
    h.sim.put('svc/b', 'http://b:1');
    h.sim.put('svc/c', 'http://c:1');
    h.sim.stream!.deliver(1); // only revision `first`; the header says the store is 2 revisions further
    expect(h.addresses()).toEqual(['http://a:1']);
    h.sim.stream!.fail();
    await flush();
    expect(h.instancer.current()!.error).toBeInstanceOf(Error);
    expect(h.addresses()).toEqual(['http://a:1']); // last known good kept
    h.clock.advance(100);
    await flush();
    const create = h.sim.stream!.requests[0]!.create_request!;
    expect(Number(create.start_revision)).toBe(first + 1);
    expect(h.instancer.current()!.error).toBeUndefined(); // cleared by the new watch, no re-read
    expect(h.sim.ranges).toHaveLength(1);
    h.sim.stream!.deliver();
    expect(h.addresses()).toEqual(['http://a:1', 'http://b:1', 'http://c:1']);
    h.instancer.stop();
  });

  it('goes through a read (which refreshes the auth token) after a watch fails on an expired token', async () => {
    const h = await setup();
    h.sim.put('svc/a', 'http://a:1');
    h.sim.stream!.fail('16 UNAUTHENTICATED: etcdserver: invalid auth token');
    await flush();
    h.clock.advance(100);
    await flush();
    expect(h.sim.ranges).toHaveLength(2);
    expect(h.addresses()).toEqual(['http://a:1']);
    expect(h.instancer.current()!.error).toBeUndefined();
    h.instancer.stop();
  });

  it('ignores progress notifications (their revision is not used for resuming)', async () => {
    const h = await setup();
    h.sim.put('svc/a', 'http://a:1');
    const before = h.events.length;
    h.sim.stream!.progress();
    expect(h.events).toHaveLength(before);
    h.sim.stream!.fail();
    await flush();
    h.clock.advance(100);
    await flush();
    h.sim.stream!.deliver();
    expect(h.addresses()).toEqual(['http://a:1']);
    h.instancer.stop();
  });

  it('re-reads after compaction of its revision and emits only the difference', async () => {
    const h = await setup();
    h.sim.put('svc/a', 'http://a:1');
    h.sim.put('svc/b', 'http://b:1');
    h.sim.stream!.deliver();
    h.sim.stream!.fail();
    await flush();
    const since: InstancerEvent[] = [];
    const sub = h.instancer.events$.subscribe((e) => since.push(e));
    h.sim.put('svc/c', 'http://c:1');
    h.sim.del('svc/a');
    h.sim.compact();
    h.clock.advance(100); // reconnect: the probe finds the revision compacted, so no watch is resumed
    await flush();
    h.clock.advance(100);
    await flush();
    sub.unsubscribe();
    expect(h.sim.probes).toHaveLength(1);
    expect(h.sim.ranges).toHaveLength(2);
    const last = h.instancer.current()!;
    expect(last.error).toBeUndefined();
    // The error stayed until the fresh set was applied: no event passed the old set off as current.
    expect(since.map((e) => [e.error !== undefined, e.instances.map((i) => i.key)])).toEqual([
      [true, ['svc/a', 'svc/b']],
      [false, ['svc/b', 'svc/c']],
    ]);
    expect(h.addresses()).toEqual(['http://b:1', 'http://c:1']);
    expect(last.changes?.added.map((i) => i.key)).toEqual(['svc/c']);
    expect(last.changes?.removed.map((i) => i.key)).toEqual(['svc/a']);
    // and it watches again from the new read's revision
    h.sim.put('svc/d', 'http://d:1');
    h.sim.stream!.deliver();
    expect(h.addresses()).toEqual(['http://b:1', 'http://c:1', 'http://d:1']);
    h.instancer.stop();
  });

  it('re-reads when the store went back in revision (wiped etcd) and converges to the new contents', async () => {
    const h = await setup();
    for (let i = 0; i < 5; i++) h.sim.put(`svc/${i}`, `http://old${i}:1`);
    h.sim.stream!.deliver();
    expect(h.instancer.current()!.instances).toHaveLength(5);
    h.sim.wipe();
    h.sim.put('svc/new', 'http://new:1');
    await flush();
    h.clock.advance(100);
    await flush();
    expect(h.sim.ranges).toHaveLength(2);
    expect(h.addresses()).toEqual(['http://new:1']);
    expect(h.instancer.current()!.error).toBeUndefined();
    h.instancer.stop();
  });

  it('re-reads when the cluster id changes even if the revision did not go back', async () => {
    const h = await setup();
    h.sim.put('svc/a', 'http://a:1');
    h.sim.stream!.deliver();
    h.sim.wipe();
    for (let i = 0; i < 5; i++) h.sim.put(`svc/n${i}`, `http://n${i}:1`); // revision now past the old one
    await flush();
    h.clock.advance(100);
    await flush();
    expect(h.sim.ranges).toHaveLength(2);
    expect(h.instancer.current()!.instances.map((i) => i.key)).toEqual([
      'svc/n0',
      'svc/n1',
      'svc/n2',
      'svc/n3',
      'svc/n4',
    ]);
    h.instancer.stop();
  });

  it('reports etcd being down as an error event and retries with exponential backoff until it is back', async () => {
    const sim = new SimEtcd();
    sim.put('svc/a', 'http://a:1');
    sim.setDown(true);
    const h = await setup(sim, { backoff: { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0 } });
    expect(h.events).toHaveLength(1);
    expect(h.events[0]!.instances).toEqual([]);
    expect(h.events[0]!.error?.message).toMatch(/read of prefix "svc\/" failed: 14 UNAVAILABLE/);
    expect(h.events[0]!.error?.message).not.toMatch(/2024-01-01/); // timestamps stripped: one stable error
    const attemptsAt = (ms: number) => {
      h.clock.advance(ms);
      return flush().then(() => sim.ranges.length);
    };
    expect(await attemptsAt(99)).toBe(1);
    expect(await attemptsAt(1)).toBe(2);
    expect(await attemptsAt(199)).toBe(2);
    expect(await attemptsAt(1)).toBe(3);
    expect(await attemptsAt(400)).toBe(4);
    expect(await attemptsAt(800)).toBe(5);
    expect(await attemptsAt(1000)).toBe(6); // capped
    expect(h.events).toHaveLength(1); // the same error is not repeated
    sim.setDown(false);
    expect(await attemptsAt(1000)).toBe(7);
    expect(h.events).toHaveLength(2);
    expect(h.events[1]!.error).toBeUndefined();
    expect(h.addresses()).toEqual(['http://a:1']);
    h.instancer.stop();
    expect(h.clock.pendingTimers).toBe(0);
  });

  it('keeps the last known good set while failing, and the first good watch clears the error', async () => {
    const h = await setup();
    h.sim.put('svc/a', 'http://a:1');
    h.sim.stream!.deliver();
    h.sim.setDown(true);
    await flush();
    const failing = h.instancer.current()!;
    expect(failing.error).toBeInstanceOf(Error);
    expect(failing.instances.map((i) => i.address)).toEqual(['http://a:1']);
    h.clock.advance(10_000);
    await flush();
    h.sim.setDown(false);
    h.clock.advance(10_000);
    await flush();
    expect(h.instancer.current()!.error).toBeUndefined();
    expect(h.sim.ranges).toHaveLength(1); // resumed, not re-read
    h.instancer.stop();
  });

  it('skips unreadable values with a warning naming the key, keeps the others, drops keys that turn bad', async () => {
    const logger = recordingLogger();
    const sim = new SimEtcd('', codecs.etcdNaming);
    sim.put('svc/good', '{"Op":0,"Addr":"1.2.3.4:50051","Metadata":null}');
    sim.put('svc/bad', 'not json');
    const h = await setup(sim, { codec: codecs.etcdNaming }, logger);
    expect(h.addresses()).toEqual(['1.2.3.4:50051']);
    expect(logger.records.filter((l) => l.level === 'warn').map((l) => l.obj)).toEqual([
      expect.objectContaining({ key: 'svc/bad', codec: 'etcdNaming' }),
    ]);
    sim.put('svc/good', '{"Addr":');
    sim.put('svc/other', '{"Addr":"5.6.7.8:1"}');
    sim.stream!.deliver();
    expect(h.addresses()).toEqual(['5.6.7.8:1']);
    expect(h.instancer.current()!.error).toBeUndefined();
    h.instancer.stop();
  });

  it('applies the client namespace to requests and strips it from keys', async () => {
    const sim = new SimEtcd('tenant/');
    sim.put('svc/a', 'http://a:1');
    sim.put('svc/b', 'http://b:1');
    const h = await setup(sim);
    expect(sim.ranges[0]!.key).toEqual(Buffer.from('tenant/svc/'));
    expect(sim.stream!.requests[0]!.create_request!.key).toEqual(Buffer.from('tenant/svc/'));
    sim.del('svc/a');
    sim.stream!.deliver();
    expect(h.instancer.current()!.instances.map((i) => i.key)).toEqual(['svc/b']);
    h.instancer.stop();
  });

  it('shares one read and one watch between instancers of one client and prefix, refcounted', async () => {
    const sim = new SimEtcd();
    sim.put('svc/a', '{"address":"http://a:1","metadata":{"zone":"z"}}');
    const h = await setup(sim);
    const second = new EtcdInstancer(clientOf(sim), { prefix: 'svc/', codec: codecs.json });
    expect(second.current()?.instances).toEqual([
      { key: 'svc/a', address: 'http://a:1', metadata: { zone: 'z' } },
    ]);
    const other = new EtcdInstancer(clientOf(sim), { prefix: 'other/' });
    await flush();
    expect(sharedWatchCount(transportFor(sim))).toBe(2);
    expect(sim.streams).toHaveLength(2);
    expect(sim.ranges).toHaveLength(2);
    let secondDone = false;
    second.events$.subscribe({ complete: () => (secondDone = true) });
    sim.put('svc/b', 'http://b:1');
    sim.streams[0]!.deliver();
    expect(h.addresses()).toEqual(['http://a:1', 'http://b:1']);
    expect(second.current()!.instances.map((i) => i.key)).toEqual(['svc/a']); // its codec (json) skips gokit
    h.instancer.stop();
    expect(h.completed()).toBe(true);
    expect(sim.streams[0]!.cancelled).toBe(false);
    second.stop();
    second.stop(); // idempotent
    expect(secondDone).toBe(true);
    expect(sim.streams[0]!.cancelled).toBe(true);
    expect(sharedWatchCount(transportFor(sim))).toBe(1);
    other[Symbol.dispose]();
    expect(sharedWatchCount(transportFor(sim))).toBe(0);
    await flush();
    // a new instancer after everyone left starts a fresh watch
    const again = new EtcdInstancer(clientOf(sim), { prefix: 'svc/' });
    await flush();
    expect(sim.ranges).toHaveLength(3);
    expect(again.current()!.instances).toHaveLength(2);
    again.stop();
  });

  it('a member that joins a failing watch gets the last known good set and the error at once', async () => {
    const h = await setup();
    h.sim.put('svc/a', 'http://a:1');
    h.sim.stream!.deliver();
    h.sim.setDown(true);
    await flush();
    const late = new EtcdInstancer(clientOf(h.sim), { prefix: 'svc/' });
    expect(late.current()!.instances.map((i) => i.key)).toEqual(['svc/a']);
    expect(late.current()!.error).toBeInstanceOf(Error);
    late.stop();
    h.instancer.stop();
  });

  it('tolerates stop() from inside an event callback', async () => {
    const sim = new SimEtcd();
    const instancer = new EtcdInstancer(clientOf(sim), { prefix: 'svc/' });
    const seen: InstancerEvent[] = [];
    instancer.events$.subscribe((e) => {
      seen.push(e);
      instancer.stop();
    });
    await flush();
    expect(seen).toHaveLength(1);
    expect(sharedWatchCount(transportFor(sim))).toBe(0);
    expect(sim.streams.every((s) => s.dead)).toBe(true);

    // and from inside an error event: no retry timer is left behind
    const down = new SimEtcd();
    down.setDown(true);
    const clock = new FakeClock();
    const failing = new EtcdInstancer(clientOf(down), { prefix: 'svc/', clock });
    failing.events$.subscribe((e) => {
      if (e.error) failing.stop();
    });
    await flush();
    expect(failing.current()?.error).toBeInstanceOf(Error);
    expect(clock.pendingTimers).toBe(0);
    expect(sharedWatchCount(transportFor(down))).toBe(0);
  });

  it('ignores keys outside the prefix should etcd ever send one', async () => {
    const logger = recordingLogger();
    const h = await setup(new SimEtcd(), {}, logger);
    const stream = h.sim.stream!;
    stream.emit(
      'data',
      h.sim.response({
        events: [
          {
            type: 'Put',
            kv: {
              key: Buffer.from('zzz/x'),
              value: Buffer.from('http://x:1'),
              create_revision: '5',
              mod_revision: '5',
              version: '1',
              lease: '0',
            },
            prev_kv: undefined as never,
          },
          {
            type: 'Put',
            kv: {
              key: Buffer.from('svc/y'),
              value: Buffer.from('http://y:1'),
              create_revision: '6',
              mod_revision: '6',
              version: '1',
              lease: '0',
            },
            prev_kv: undefined as never,
          },
        ],
      }),
    );
    expect(h.addresses()).toEqual(['http://y:1']);
    expect(logger.records.some((l) => l.level === 'warn' && l.obj.key === 'zzz/x')).toBe(true);
    h.instancer.stop();
  });

  it('reads large prefixes in pages at one revision', async () => {
    const sim = new SimEtcd();
    for (let i = 0; i < 7; i++) sim.put(`svc/${i}`, `http://h${i}:1`);
    const R = sim.rev;
    let got: ReadonlyMap<string, Uint8Array> | undefined;
    const leave = joinWatch(
      transportFor(sim),
      '',
      'svc/',
      {
        logger: recordingLogger(),
        clock: new FakeClock(),
        backoff: createBackoff({ initialMs: 1, maxMs: 1, factor: 1, jitter: 0 }, 'test'),
        readPageSize: 3,
      },
      { reset: (e) => (got = new Map(e)), change() {}, healthy() {}, error() {} },
    );
    await flush();
    expect(sim.ranges.map((r) => r.revision)).toEqual([undefined, String(R), String(R)]);
    expect([...got!.keys()]).toEqual(Array.from({ length: 7 }, (_, i) => `svc/${i}`));
    leave();
  });

  it('validates its options', () => {
    const sim = new SimEtcd();
    const client = clientOf(sim);
    expect(() => new EtcdInstancer(client, { prefix: '' })).toThrow(
      /prefix must be a non-empty string, got ""/,
    );
    expect(() => new EtcdInstancer(client, { prefix: 5 as unknown as string })).toThrow(TypeError);
    expect(() => new EtcdInstancer(undefined as unknown as EtcdClient, { prefix: 'a/' })).toThrow(
      /EtcdClient/,
    );
    expect(() => new EtcdInstancer(client, undefined as unknown as EtcdInstancerOptions)).toThrow(TypeError);
    expect(() => new EtcdInstancer(client, { prefix: 'a/', codec: {} as Codec })).toThrow(/codec/);
    expect(() => new EtcdInstancer(client, { prefix: 'a/', backoff: { initialMs: 0 } })).toThrow(/initialMs/);
    expect(
      () => new EtcdInstancer(client, { prefix: 'a/', backoff: { initialMs: 500, maxMs: 100 } }),
    ).toThrow(/maxMs/);
    expect(() => new EtcdInstancer(client, { prefix: 'a/', backoff: { jitter: 2 } })).toThrow(/jitter/);
    expect(
      () => new EtcdInstancer(client, { prefix: 'a/', backoff: { multiplier: 2 } as BackoffOptions }),
    ).toThrow(/backoff.multiplier is now called backoff.factor/);
    // A prefix that repeats the client's namespace would follow `/services//services/…`.
    const namespaced = { ...clientOf(sim), namespace: '/services/' } as EtcdClient;
    expect(() => new EtcdInstancer(namespaced, { prefix: '/services/foo/' })).toThrow(
      /prefix "\/services\/foo\/" starts with the client's namespace "\/services\/".*would follow "\/services\/\/services\/foo\/"\. Pass "foo\/"/,
    );
    expect(() => new EtcdInstancer(namespaced, { prefix: '/services/' })).toThrow(/Pass "<a prefix below/);
    expect(() => new EtcdInstancer(namespaced, { prefix: 'foo/' }).stop()).not.toThrow();
    expect(sharedWatchCount(transportFor(sim))).toBe(0);
  });

  it('computes etcd prefix range ends', () => {
    expect(prefixRangeEnd(new TextEncoder().encode('a/'))).toEqual(Uint8Array.from(Buffer.from('a0')));
    expect(prefixRangeEnd(Uint8Array.of(0x61, 0xff, 0xff))).toEqual(Uint8Array.of(0x62));
    expect(prefixRangeEnd(Uint8Array.of(0xff))).toEqual(Uint8Array.of(0));
  });
});

// ---------------------------------------------------------------------------------------------------------------
// model-based: any interleaving of writes, partial deliveries, fragments, breaks, outages, compactions and wipes
// ---------------------------------------------------------------------------------------------------------------

const keyArb = fc.constantFrom('svc/a', 'svc/b', 'svc/c', 'svc/d', 'svd/x');
const valueArb = fc.oneof(
  fc.constantFrom('http://1:1', 'http://2:2', '{"Addr":"3:3","Metadata":{"w":1}}', '{"address":"4:4"}', ''),
  fc.constantFrom('{"Op":1,"Addr":"5:5"}', '{broken', '{"Addr":"6:6","Metadata":"m"}'),
);
type Step =
  | { t: 'txn'; ops: Op[] }
  | { t: 'deliver'; revs: number; fragment: number }
  | { t: 'break' }
  | { t: 'down' }
  | { t: 'up' }
  | { t: 'compact' }
  | { t: 'wipe' }
  | { t: 'tick'; ms: number }
  | { t: 'flush' };
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('txn' as const),
      ops: fc.uniqueArray(fc.oneof(fc.record({ put: keyArb, value: valueArb }), fc.record({ del: keyArb })), {
        minLength: 1,
        maxLength: 3,
        selector: (op) => ('put' in op ? op.put : op.del),
      }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('deliver' as const),
      revs: fc.constantFrom(1, 1, 2, 4),
      fragment: fc.integer({ min: 0, max: 2 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ t: 'break' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'down' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'up' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'compact' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'wipe' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 3000 }) }),
  },
  { weight: 2, arbitrary: fc.constant({ t: 'flush' as const }) },
);

describe('EtcdInstancer model', () => {
  it('always shows a state etcd was really in, and converges to the store once etcd is reachable', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { maxLength: 40 }), async (steps) => {
        const sim = new SimEtcd();
        const clock = new FakeClock();
        const instancer = new EtcdInstancer(clientOf(sim), {
          prefix: 'svc/',
          clock,
          backoff: { jitter: 0.5 },
        });
        const events: InstancerEvent[] = [];
        instancer.events$.subscribe((e) => events.push(e));
        try {
          for (const step of steps) {
            switch (step.t) {
              case 'txn':
                sim.txn(...step.ops);
                break;
              case 'deliver':
                sim.stream?.deliver(step.revs, step.fragment);
                break;
              case 'break':
                sim.stream?.fail();
                break;
              case 'down':
                sim.setDown(true);
                break;
              case 'up':
                sim.setDown(false);
                break;
              case 'compact':
                sim.compact();
                break;
              case 'wipe':
                sim.wipe();
                break;
              case 'tick':
                clock.advance(step.ms);
                break;
              case 'flush':
                await flush();
                break;
            }
          }
          // etcd comes back and stays: the instancer must converge.
          sim.setDown(false);
          for (let i = 0; i < 20; i++) {
            await flush();
            clock.advance(10_000);
            await flush();
            while (sim.stream?.deliver()) {}
            const now = instancer.current();
            if (now && !now.error && canonical(now.instances) === sim.expected()) break;
          }
          const final = instancer.current()!;
          expect(final.error).toBeUndefined();
          expect(canonical(final.instances)).toBe(sim.expected());
          // Every event showed a state etcd really had (no half-applied transaction, no lost event).
          for (const e of events)
            expect(sim.states.has(canonical(e.instances)), canonical(e.instances)).toBe(true);
          // Events are emitted only on change.
          for (let i = 1; i < events.length; i++) {
            const changed =
              canonical(events[i]!.instances) !== canonical(events[i - 1]!.instances) ||
              (events[i]!.error === undefined) !== (events[i - 1]!.error === undefined) ||
              events[i]!.error?.message !== events[i - 1]!.error?.message;
            expect(changed).toBe(true);
          }
        } finally {
          instancer.stop();
        }
        expect(sharedWatchCount(transportFor(sim))).toBe(0);
        expect(clock.pendingTimers).toBe(0);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('EtcdInstancer telemetry (the real OpenTelemetry SDK)', () => {
  it('reports instances per prefix, source errors, the reconnect after a failure and the re-read after compaction', async () => {
    const otel = startTestTelemetry({ traces: false });
    try {
      const h = await setup();
      const attributes = { 'sdkit.source.name': 'etcd', 'sdkit.source.target': 'svc/' };
      h.sim.put('svc/a', 'http://a:1');
      h.sim.put('svc/b', 'http://b:1');
      h.sim.stream!.deliver();
      expect(await otel.points('sdkit.source.instance.count')).toEqual([{ attributes, value: 2 }]);
      // The stream breaks; the watch resumes from its revision: one error event, one reconnect, no re-read.
      h.sim.stream!.fail();
      await flush();
      h.clock.advance(100);
      await flush();
      expect(h.instancer.current()!.error).toBeUndefined();
      expect(await otel.points('sdkit.source.errors')).toEqual([
        { attributes: { ...attributes, 'error.type': 'EtcdWatchError' }, value: 1 },
      ]);
      expect(await otel.points('sdkit.source.reconnects')).toEqual([{ attributes, value: 1 }]);
      expect(await otel.points('sdkit.source.resyncs')).toEqual([]);
      // Compacted past the watch's revision while it was down: a fresh read (a resync) and the difference.
      h.sim.stream!.fail();
      await flush();
      h.sim.del('svc/a');
      h.sim.compact();
      h.clock.advance(200);
      await flush();
      h.clock.advance(400);
      await flush();
      expect(h.addresses()).toEqual(['http://b:1']);
      expect(await otel.points('sdkit.source.resyncs')).toEqual([{ attributes, value: 1 }]);
      expect(await otel.value('sdkit.source.instance.count')).toBe(1);
      h.instancer.stop();
      expect(await otel.value('sdkit.source.instance.count')).toBe(0);
    } finally {
      await otel.stop();
    }
  });
});
