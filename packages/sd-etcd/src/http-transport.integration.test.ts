/**
 * The HTTP/JSON transport against real etcd processes (etcd 3.4's gateway on the client port): ranged reads at a
 * revision in pages, puts with and without a lease, delete-if-lease, leases, watches (events in revision order,
 * fragments of a 2 MiB response, compaction, etcd stopped or stalled, idle bound), auth (token expiry and
 * transparent renewal, also for a watch; wrong password; no credentials; permission denied), close(), and
 * failover from a dead endpoint.
 */
import { readFile } from 'node:fs/promises';
import { systemClock } from '@sdkit/sd-core';
import { type RecordingLogger, recordingLogger } from '@sdkit/sd-core/testing';
import { type EtcdServer, eventually, freePort, startEtcd } from '@sdkit/test-harness';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHttpTransport, EtcdHttpError, type HttpTransportOptions } from './http-transport.js';
import {
  concatBytes,
  type EtcdTransport,
  encodeKey,
  prefixRangeEnd,
  type WatchRequest,
  type WatchResponse,
  type WatchStream,
} from './transport.js';

const enc = encodeKey;
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const figures: Record<string, unknown> = {};
const cleanups: Array<() => unknown> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(() => {
  if (process.env.SDKIT_HTTP_FIGURES) console.info('http transport figures', JSON.stringify(figures));
});

// --- helpers ----------------------------------------------------------------------------------------------------

interface Seen {
  readonly path: string;
  readonly authorization: string | null;
  status?: number;
  /** Chunks and bytes of the body, as the stream delivered them. */
  chunks: number;
  bytes: number;
}

/** The global fetch, recording each request (path, Authorization, status, body chunks). */
function recordingFetch(): { fetch: typeof fetch; seen: Seen[] } {
  const seen: Seen[] = [];
  const wrapped = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const entry: Seen = {
      path: new URL(String(input)).pathname,
      authorization: new Headers(init?.headers).get('authorization'),
      chunks: 0,
      bytes: 0,
    };
    seen.push(entry);
    const res = await fetch(input, init);
    entry.status = res.status;
    if (!res.body) return res;
    const counted = res.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          entry.chunks++;
          entry.bytes += chunk.length;
          controller.enqueue(chunk);
        },
      }),
    );
    return new Response(counted, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
  return { fetch: wrapped as typeof fetch, seen };
}

function open(
  endpoints: readonly string[],
  options: Partial<HttpTransportOptions> = {},
): { t: EtcdTransport; logger: RecordingLogger } {
  const logger = recordingLogger();
  const t = createHttpTransport({
    endpoints,
    clock: systemClock,
    logger,
    keepAlive: { timeMs: 30_000, timeoutMs: 5_000 },
    ...options,
  });
  cleanups.push(() => t.close());
  return { t, logger };
}

async function rejection(promise: Promise<unknown>): Promise<EtcdHttpError> {
  const error = await promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(EtcdHttpError);
  return error as EtcdHttpError;
}

interface SeenEvent {
  type: 'put' | 'delete';
  key: string;
  value: string;
  rev: number;
}

/** A watch and everything it reported, with a way to await a state. */
class WatchLog {
  readonly responses: WatchResponse[] = [];
  readonly events: SeenEvent[] = [];
  failure: EtcdHttpError | undefined;
  quietAt: number | undefined;
  createdAt: number | undefined;
  readonly stream: WatchStream;
  readonly #wakers = new Set<() => void>();

  constructor(t: EtcdTransport, req: WatchRequest) {
    this.stream = t.watch(req, {
      response: (res) => {
        if (res.created) this.createdAt ??= performance.now();
        this.responses.push(res);
        for (const e of res.events) {
          this.events.push({
            type: e.type,
            key: text(e.kv.key),
            value: text(e.kv.value),
            rev: Number(e.kv.modRevision),
          });
        }
        this.#wake();
      },
      failed: (error) => {
        if (this.failure || this.quietAt !== undefined) throw new Error('a second final report');
        this.failure = error as EtcdHttpError;
        this.#wake();
      },
      quiet: () => {
        if (this.failure || this.quietAt !== undefined) throw new Error('a second final report');
        this.quietAt = performance.now();
        this.#wake();
      },
    });
    cleanups.push(() => this.stream.close());
  }

  #wake(): void {
    for (const wake of [...this.#wakers]) wake();
  }

  /** Resolves with `check()` once it is truthy (checked now and at every report); rejects after `timeoutMs`. */
  until<T>(check: () => T | undefined | false, what: string, timeoutMs = 10_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const wake = (): void => {
        const value = check();
        if (value) {
          done();
          resolve(value);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}; ${this.responses.length} responses, ${this.events.length} events, failure: ${this.failure?.message}, quiet: ${this.quietAt !== undefined}`,
          ),
        );
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.#wakers.delete(wake);
      };
      this.#wakers.add(wake);
      wake();
    });
  }

  created(): Promise<WatchResponse> {
    return this.until(() => this.responses.find((r) => r.created), 'the created response');
  }
}

function prefixWatch(prefix: string, startRevision: number | string): WatchRequest {
  return { key: enc(prefix), rangeEnd: prefixRangeEnd(enc(prefix)), startRevision: String(startRevision) };
}

/** The store's revision now (read through `key`, which the user must be allowed to read). */
async function currentRevision(t: EtcdTransport, key = '/'): Promise<number> {
  return Number(
    (await t.range({ key: enc(key), rangeEnd: new Uint8Array(0), countOnly: true })).header.revision,
  );
}

// --- a plain etcd -------------------------------------------------------------------------------------------------

describe('HTTP transport on etcd without auth', () => {
  let plain: EtcdServer;
  beforeAll(async () => {
    plain = await startEtcd({ name: 'http-plain' });
  });
  afterAll(() => plain?.close());

  it('reads a prefix in pages at one revision (limit, more, count from the page start), and count_only', async () => {
    const { t } = open(plain.endpoints);
    const p = '/paging/';
    for (let i = 0; i < 10; i++) await t.put(enc(`${p}k${i}`), enc(`v${i}`));
    const end = prefixRangeEnd(enc(p));
    const counted = await t.range({ key: enc(p), rangeEnd: end, countOnly: true });
    expect([counted.count, counted.kvs, counted.more]).toEqual(['10', [], false]);
    const at = counted.header.revision;
    // Changes after `at`: the pages must not see them.
    await t.put(enc(`${p}k5`), enc('changed'));
    await t.put(enc(`${p}k99`), enc('new'));
    await t.put(enc(`${p}k10`), enc('new'));
    await plain.etcdctl('del', `${p}k3`);
    const pages = [];
    for (let start = enc(p); ; ) {
      const page = await t.range({ key: start, rangeEnd: end, revision: at, limit: 4 });
      pages.push(page);
      if (!page.more) break;
      start = concatBytes(page.kvs.at(-1)!.key, Uint8Array.of(0));
    }
    expect(pages.map((pg) => [pg.kvs.length, pg.more, pg.count])).toEqual([
      [4, true, '10'],
      [4, true, '6'],
      [2, false, '2'],
    ]);
    const kvs = pages.flatMap((pg) => pg.kvs);
    expect(kvs.map((kv) => `${text(kv.key)}=${text(kv.value)}`)).toEqual(
      Array.from({ length: 10 }, (_, i) => `${p}k${i}=v${i}`),
    );
    expect(kvs.every((kv) => BigInt(kv.modRevision) <= BigInt(at))).toBe(true);
    // The header says the store's revision now, not the one read at.
    const now = BigInt(at) + 4n;
    expect(pages.every((pg) => pg.header.revision === String(now))).toBe(true);
    expect(pages[0]!.header.clusterId).toMatch(/^\d+$/);
    // Now: k3 gone, k10 and k99 added, k5 changed.
    const latest = await t.range({ key: enc(p), rangeEnd: end });
    expect(latest.count).toBe('11');
    expect(latest.kvs.map((kv) => text(kv.key).slice(p.length))).toEqual([
      'k0',
      'k1',
      'k10',
      'k2',
      'k4',
      'k5',
      'k6',
      'k7',
      'k8',
      'k9',
      'k99',
    ]);
    expect(text(latest.kvs.find((kv) => text(kv.key) === `${p}k5`)!.value)).toBe('changed');
    expect((await t.range({ key: enc(p), rangeEnd: end, countOnly: true })).count).toBe('11');
    // A single key (empty range end); a key that does not exist.
    const one = await t.range({ key: enc(`${p}k7`), rangeEnd: new Uint8Array(0) });
    expect(one.kvs.map((kv) => text(kv.value))).toEqual(['v7']);
    const none = await t.range({ key: enc(`${p}nope`), rangeEnd: new Uint8Array(0) });
    expect([none.kvs, none.count, none.more]).toEqual([[], '0', false]);
    // A revision ahead of the store.
    const future = await rejection(t.range({ key: enc(p), rangeEnd: end, revision: String(now + 1000n) }));
    expect(t.classify(future)).toBe('future-revision');
    expect(future.message).toMatch(
      /POST \/v3\/kv\/range: etcdserver: mvcc: required revision is a future revision \(gRPC code 11, HTTP 400\)$/,
    );
  });

  it('puts with and without a lease, and deletes only a key attached to the lease', async () => {
    const { t } = open(plain.endpoints);
    const lease = await t.leaseGrant(60);
    const other = await t.leaseGrant(60);
    const withLease = enc('/lease-keys/with');
    const without = enc('/lease-keys/without');
    await t.put(withLease, enc('a'), { lease: lease.id });
    await t.put(without, enc(''));
    const { stdout } = await plain.etcdctl('lease', 'timetolive', BigInt(lease.id).toString(16), '--keys');
    expect(stdout).toContain('/lease-keys/with');
    expect(stdout).not.toContain('/lease-keys/without');
    const get = async (k: Uint8Array) => (await t.range({ key: k, rangeEnd: new Uint8Array(0) })).kvs;
    expect((await get(without)).map((kv) => kv.value.length)).toEqual([0]); // an empty value (omitted on the wire)

    expect(await t.deleteIfLease(without, lease.id)).toBe(false);
    expect(await get(without)).toHaveLength(1);
    expect(await t.deleteIfLease(withLease, other.id)).toBe(false);
    expect(await get(withLease)).toHaveLength(1);
    expect(await t.deleteIfLease(withLease, lease.id)).toBe(true);
    expect(await get(withLease)).toHaveLength(0);
    expect(await t.deleteIfLease(withLease, lease.id)).toBe(false); // gone already

    await t.leaseRevoke(other.id);
    const gone = await rejection(t.put(withLease, enc('b'), { lease: other.id }));
    expect(t.classify(gone)).toBe('lease-not-found');
    expect([gone.code, gone.status]).toEqual([5, 404]);
    expect(gone.message).toBe(
      `etcd ${plain.endpoints[0]}: POST /v3/kv/put: etcdserver: requested lease not found (gRPC code 5, HTTP 404)`,
    );
    expect(await get(withLease)).toHaveLength(0);
  });

  it('grants, keeps alive and revokes leases; a keep-alive of a revoked or unknown lease is 0', async () => {
    const { t } = open(plain.endpoints);
    const lease = await t.leaseGrant(7);
    expect(lease.ttlSeconds).toBe(7);
    expect(lease.id).toMatch(/^[1-9]\d*$/);
    // The id is exact (int64 beyond 2^53 kept as a string): etcdctl lists it in hex.
    expect((await plain.etcdctl('lease', 'list')).stdout).toContain(BigInt(lease.id).toString(16));
    const k = enc('/leases/k');
    await t.put(k, enc('v'), { lease: lease.id });
    const started = performance.now();
    const rounds = 20;
    for (let i = 0; i < rounds; i++) expect(await t.leaseKeepAlive(lease.id)).toBe(7);
    figures.keepAliveMs = +((performance.now() - started) / rounds).toFixed(2);
    await t.leaseRevoke(lease.id);
    expect((await t.range({ key: k, rangeEnd: new Uint8Array(0) })).kvs).toEqual([]);
    expect(await t.leaseKeepAlive(lease.id)).toBe(0);
    await expect(t.leaseRevoke(lease.id)).resolves.toBeUndefined();
    await expect(t.leaseRevoke('12345')).resolves.toBeUndefined();
    expect(await t.leaseKeepAlive('12345')).toBe(0);
  });

  it('watches: created, then puts and deletes (DELETE type, no value) in revision order', async () => {
    const { t } = open(plain.endpoints);
    const p = '/watched/';
    const from = (await currentRevision(t)) + 1;
    const opened = performance.now();
    const w = new WatchLog(t, prefixWatch(p, from));
    const created = await w.created();
    figures.watchCreatedMs = +(w.createdAt! - opened).toFixed(1);
    expect(created).toMatchObject({ canceled: false, compactRevision: '0', events: [] });
    await t.put(enc(`${p}a`), enc('A1'));
    await t.put(enc(`${p}b`), enc(''));
    await plain.etcdctl('del', `${p}a`);
    await t.put(enc('/elsewhere'), enc('x')); // outside the range
    await t.put(enc(`${p}a`), enc('A2'));
    await w.until(() => w.events.length >= 4, 'four events');
    expect(w.events).toEqual([
      { type: 'put', key: `${p}a`, value: 'A1', rev: from },
      { type: 'put', key: `${p}b`, value: '', rev: from + 1 },
      { type: 'delete', key: `${p}a`, value: '', rev: from + 2 },
      { type: 'put', key: `${p}a`, value: 'A2', rev: from + 4 },
    ]);
    expect(w.failure).toBeUndefined();
  });

  it('delivers a 2 MiB catch-up response in fragments, each flagged but the last', async () => {
    const { fetch, seen } = recordingFetch();
    const { t } = open(plain.endpoints, { fetch });
    const p = '/fragments/';
    const from = (await currentRevision(t)) + 1;
    const n = 40;
    const value = (i: number) => String.fromCharCode(65 + (i % 26)).repeat(52 * 1024) + i;
    for (let i = 0; i < n; i++) await t.put(enc(`${p}${String(i).padStart(2, '0')}`), enc(value(i)));
    // Watching from before the puts: etcd sends them in one response of ~2.1 MiB, over its 1.5 MiB request limit.
    const w = new WatchLog(t, prefixWatch(p, from));
    await w.until(() => w.events.length >= n && !w.responses.at(-1)!.fragment, 'all events, last fragment');
    const parts = w.responses.filter((r) => !r.created);
    expect(parts.length).toBeGreaterThanOrEqual(2);
    expect(parts.map((r) => r.fragment)).toEqual([...parts.slice(1).map(() => true), false]);
    expect(w.events.map((e) => e.rev)).toEqual(Array.from({ length: n }, (_, i) => from + i));
    expect(w.events.every((e, i) => e.type === 'put' && e.value === value(i))).toBe(true);
    const watchRequest = seen.find((s) => s.path === '/v3/watch')!;
    Object.assign(figures, {
      fragments: parts.length,
      fragmentEvents: parts.map((r) => r.events.length),
      watchBytes: watchRequest.bytes,
      watchReads: watchRequest.chunks,
    });
  });

  it('stays open while bytes flow, and is closed as quiet after keepAlive.timeMs without any', async () => {
    const timeMs = 700;
    const { t } = open(plain.endpoints, { keepAlive: { timeMs, timeoutMs: 2000 } });
    const p = '/busy/';
    const busy = new WatchLog(t, prefixWatch(p, (await currentRevision(t)) + 1));
    await busy.created();
    const started = performance.now();
    for (let i = 0; performance.now() - started < 2 * timeMs; i++) {
      await t.put(enc(`${p}k`), enc(String(i)));
      await busy.until(() => busy.events.length > i, `event ${i}`);
    }
    expect(busy.quietAt).toBeUndefined();
    expect(busy.failure).toBeUndefined();
    figures.busyEvents = busy.events.length;

    const idle = new WatchLog(t, prefixWatch('/idle/', (await currentRevision(t)) + 1));
    await idle.created();
    await idle.until(() => idle.quietAt !== undefined, 'quiet', 5000);
    const quietAfter = idle.quietAt! - idle.createdAt!;
    figures.quietAfterMs = Math.round(quietAfter);
    expect(quietAfter).toBeGreaterThanOrEqual(timeMs - 5);
    expect(quietAfter).toBeLessThan(timeMs + 1000);
    expect(idle.failure).toBeUndefined();
  });

  it('sticks to an endpoint that answers, after moving away from one that does not', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const { t, logger } = open([dead, ...plain.endpoints]);
    const error = await rejection(currentRevision(t));
    expect(t.classify(error)).toBe('unavailable');
    expect(error.message).toMatch(
      new RegExp(`^etcd ${dead}: POST /v3/kv/range: fetch failed \\(.*ECONNREFUSED 127\\.0\\.0\\.1:\\d+`),
    );
    for (let i = 0; i < 3; i++) await currentRevision(t);
    expect(logger.records.filter((r) => r.level === 'warn').map((r) => [r.obj.endpoint, r.obj.next])).toEqual(
      [[dead, plain.endpoints[0]]],
    );
  });

  it('close(): calls in flight and later reject `closed`; watches say nothing more; a new watch fails `closed`', async () => {
    const { t } = open(plain.endpoints);
    const { t: witness } = open(plain.endpoints);
    const p = '/closing/';
    const from = (await currentRevision(t)) + 1;
    const w = new WatchLog(t, prefixWatch(p, from));
    const seenByWitness = new WatchLog(witness, prefixWatch(p, from));
    await Promise.all([w.created(), seenByWitness.created()]);
    const inFlight = [
      t.range({ key: enc(p), rangeEnd: new Uint8Array(0) }),
      t.leaseGrant(5),
      t.leaseKeepAlive('1'),
    ];
    t.close();
    for (const call of inFlight) expect(t.classify(await rejection(call))).toBe('closed');
    // A change the closed watch would have seen: the witness sees it, the closed watch reports nothing.
    await witness.put(enc(`${p}k`), enc('v'));
    await seenByWitness.until(() => seenByWitness.events.length === 1, 'the witness event');
    expect([w.responses.length, w.failure, w.quietAt]).toEqual([1, undefined, undefined]);
    const later = await rejection(t.put(enc(`${p}k`), enc('w')));
    expect([t.classify(later), later.message]).toEqual([
      'closed',
      'etcd client closed: POST /v3/kv/put not done',
    ]);
    const late = new WatchLog(t, prefixWatch(p, from));
    await late.until(() => late.failure, 'failed');
    expect(t.classify(late.failure)).toBe('closed');
  });

  // Last in this block: it compacts the store.
  it('a watch from a compacted revision: created, then canceled with the compact revision; reads there fail `compacted`', async () => {
    const { t } = open(plain.endpoints);
    const p = '/compacted/';
    const first = (await currentRevision(t)) + 1;
    for (let i = 0; i < 3; i++) await t.put(enc(`${p}${i}`), enc('v'));
    const compactedAt = await plain.compact();
    const w = new WatchLog(t, prefixWatch(p, first));
    const canceled = await w.until(() => w.responses.find((r) => r.canceled), 'the cancel');
    expect(w.responses.map((r) => [r.created, r.canceled])).toEqual([
      [true, false],
      [false, true],
    ]);
    expect(canceled.compactRevision).toBe(String(compactedAt));
    expect(w.failure).toBeUndefined(); // reported as a response; the caller closes the stream
    const read = await rejection(
      t.range({ key: enc(p), rangeEnd: prefixRangeEnd(enc(p)), revision: String(first) }),
    );
    expect(t.classify(read)).toBe('compacted');
    expect(read.etcdMessage).toBe('etcdserver: mvcc: required revision has been compacted');
  });
});

// --- etcd stopped, killed, stalled ------------------------------------------------------------------------------

describe('HTTP transport when etcd goes away', () => {
  it('etcd stopped: the watch fails (not silent), calls fail unavailable with the reason; it works again after a start', async () => {
    const server = await startEtcd({ name: 'http-stop' });
    cleanups.push(() => server.close());
    const { t } = open(server.endpoints);
    const w = new WatchLog(t, prefixWatch('/stop/', (await currentRevision(t)) + 1));
    await w.created();
    const stopping = performance.now();
    await server.stop();
    await w.until(() => w.failure, 'the watch to fail');
    figures.failedAfterStopMs = Math.round(performance.now() - stopping);
    figures.stopFailure = w.failure!.message;
    expect(t.classify(w.failure)).toBe('unavailable');
    expect(w.failure!.message).toMatch(
      new RegExp(`^etcd ${server.endpoints[0]}: POST /v3/watch: etcd ended the`),
    );
    const refused = await rejection(currentRevision(t));
    expect(t.classify(refused)).toBe('unavailable');
    expect(refused.message).toMatch(/fetch failed \(.*ECONNREFUSED/);
    const watchRefused = new WatchLog(t, prefixWatch('/stop/', 1));
    await watchRefused.until(() => watchRefused.failure, 'a watch of a stopped etcd to fail');
    expect(t.classify(watchRefused.failure)).toBe('unavailable');

    await server.start();
    const again = new WatchLog(t, prefixWatch('/stop/', (await currentRevision(t)) + 1));
    await again.created();
    await server.kill();
    await again.until(() => again.failure, 'the watch to fail after SIGKILL');
    figures.killFailure = again.failure!.message;
    expect(t.classify(again.failure)).toBe('unavailable');
  });

  it('etcd stalled (SIGSTOP): the open watch goes quiet within timeMs, a new one fails within timeoutMs', async () => {
    const server = await startEtcd({ name: 'http-stall' });
    cleanups.push(() => server.close());
    const keepAlive = { timeMs: 800, timeoutMs: 600 };
    const { t } = open(server.endpoints, { keepAlive, requestTimeoutMs: 600 });
    const w = new WatchLog(t, prefixWatch('/stall/', (await currentRevision(t)) + 1));
    await w.created();
    const pid = server.pid!;
    process.kill(pid, 'SIGSTOP');
    cleanups.push(() => {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone already
      }
    });
    const stalled = performance.now();
    await w.until(() => w.quietAt, 'quiet');
    const reopened = new WatchLog(t, prefixWatch('/stall/', 1));
    await reopened.until(() => reopened.failure, 'the re-opened watch to fail');
    const noticedMs = performance.now() - stalled;
    figures.stallNoticedMs = Math.round(noticedMs);
    expect(reopened.failure!.message).toBe(
      `etcd ${server.endpoints[0]}: POST /v3/watch: no watch created within ${keepAlive.timeoutMs} ms`,
    );
    expect(t.classify(reopened.failure)).toBe('unavailable');
    expect(noticedMs).toBeLessThan(keepAlive.timeMs + keepAlive.timeoutMs + 1000);
    const call = await rejection(currentRevision(t));
    expect(call.message).toMatch(/no answer within 600 ms$/);
    process.kill(pid, 'SIGCONT');
    const back = new WatchLog(t, prefixWatch('/stall/', (await currentRevision(t)) + 1));
    await back.created();
  });
});

// --- auth -----------------------------------------------------------------------------------------------------

describe('HTTP transport on etcd with auth (token TTL 2 s)', () => {
  let secured: EtcdServer;
  const passwords = { root: 'root-Pa55-h2kq9', alice: 'alice-Pa55-x7wq1', nobody: 'nobody-Pa55-c3vb8' };
  const alice = { username: 'alice', password: passwords.alice };
  const issuedTokens = new Set<string>();

  beforeAll(async () => {
    secured = await startEtcd({ name: 'http-auth', extraArgs: ['--auth-token-ttl=2'] });
    const e = (...args: string[]) => secured.etcdctl(...args);
    await e('user', 'add', 'root', `--new-user-password=${passwords.root}`);
    await e('user', 'grant-role', 'root', 'root');
    await e('role', 'add', 'auth-rw');
    await e('role', 'grant-permission', 'auth-rw', 'readwrite', '/auth/', '--prefix=true');
    await e('user', 'add', 'alice', `--new-user-password=${passwords.alice}`);
    await e('user', 'grant-role', 'alice', 'auth-rw');
    await e('role', 'add', 'no-access');
    await e('user', 'add', 'nobody', `--new-user-password=${passwords.nobody}`);
    await e('user', 'grant-role', 'nobody', 'no-access');
    await e('auth', 'enable');
  });
  afterAll(() => secured?.close());

  /** Tokens sent so far (from recorded requests), remembered so that no log or message may contain them. */
  function tokensOf(seen: readonly Seen[]): string[] {
    const tokens = [...new Set(seen.map((s) => s.authorization).filter((a): a is string => a !== null))];
    for (const token of tokens) issuedTokens.add(token);
    return tokens;
  }

  /** Resolves once etcd has logged that it deleted `token` (its TTL passed without use). */
  async function expired(token: string): Promise<void> {
    await eventually(
      async () =>
        (await readFile(secured.logFile, 'utf8'))
          .split('\n')
          .some((line) => line.includes('deleted a simple token') && line.includes(token)),
      'etcd to expire the token',
      10_000,
    );
  }

  function expectNoSecrets(where: string, textToCheck: string): void {
    for (const secret of [...Object.values(passwords), ...issuedTokens]) {
      expect(textToCheck.includes(secret), `${where} contains a secret`).toBe(false);
    }
  }

  it('an expired token is renewed (one authentication for concurrent calls) and the calls keep working', async () => {
    const { fetch, seen } = recordingFetch();
    const { t, logger } = open(secured.endpoints, { auth: alice, fetch });
    await t.put(enc('/auth/a'), enc('1'));
    const [first] = tokensOf(seen);
    expect(first).toMatch(/^[a-zA-Z]{16}\.\d+$/); // raw simple token, no "Bearer"
    const waited = performance.now();
    await expired(first!);
    figures.tokenExpiredAfterMs = Math.round(performance.now() - waited);
    const mark = seen.length;
    const lease = await (async () => {
      const [, , , granted] = await Promise.all([
        t.put(enc('/auth/a'), enc('2')),
        t.range({ key: enc('/auth/'), rangeEnd: prefixRangeEnd(enc('/auth/')) }),
        t.range({ key: enc('/auth/a'), rangeEnd: new Uint8Array(0) }),
        t.leaseGrant(5),
      ]);
      return granted;
    })();
    const after = seen.slice(mark);
    expect(after.filter((s) => s.path === '/v3/auth/authenticate')).toHaveLength(1);
    expect(after.filter((s) => s.status === 401).length).toBeGreaterThanOrEqual(1);
    expect(await t.leaseKeepAlive(lease.id)).toBe(5);
    expect(await t.deleteIfLease(enc('/auth/a'), lease.id)).toBe(false);
    const [, second] = tokensOf(seen);
    expect(second).toBeDefined();
    expect(second).not.toBe(first);
    expectNoSecrets('the log', JSON.stringify(logger.records));
  });

  it('a watch opened with an expired token is re-opened with a new one, unseen by the caller', async () => {
    const { fetch, seen } = recordingFetch();
    const { t } = open(secured.endpoints, { auth: alice, fetch });
    const from = (await currentRevision(t, '/auth/w/')) + 1;
    const [token] = tokensOf(seen);
    await expired(token!);
    const mark = seen.length;
    const w = new WatchLog(t, prefixWatch('/auth/w/', from));
    await w.created();
    expect(w.responses).toHaveLength(1);
    expect(w.responses[0]!.canceled).toBe(false);
    expect(seen.slice(mark).map((s) => `${s.path} ${s.authorization === token ? 'old' : 'new'}`)).toEqual([
      '/v3/watch old',
      '/v3/auth/authenticate new',
      '/v3/watch new',
    ]);
    await t.put(enc('/auth/w/k'), enc('v'));
    await w.until(() => w.events.length === 1, 'the event');
    expect(w.events[0]).toMatchObject({ key: '/auth/w/k', value: 'v', rev: from });
    tokensOf(seen);
  });

  it('wrong password: authentication-failed for calls and watches, without the password anywhere', async () => {
    const wrong = 'wrong-Pa55-q8sd2';
    const { t, logger } = open(secured.endpoints, { auth: { username: 'alice', password: wrong } });
    const error = await rejection(currentRevision(t));
    expect(t.classify(error)).toBe('authentication-failed');
    expect(error.message).toBe(
      `etcd ${secured.endpoints[0]}: POST /v3/auth/authenticate (user "alice"): etcdserver: authentication failed, invalid user ID or password (gRPC code 3, HTTP 400); wrong username or password`,
    );
    const w = new WatchLog(t, prefixWatch('/auth/', 1));
    await w.until(() => w.failure, 'failed');
    expect(t.classify(w.failure)).toBe('authentication-failed');
    for (const text of [
      error.message,
      error.stack ?? '',
      w.failure!.message,
      JSON.stringify(logger.records),
    ]) {
      expect(text).not.toContain(wrong);
    }
  });

  it('no credentials: missing-credentials for calls and watches', async () => {
    const { t } = open(secured.endpoints);
    const error = await rejection(t.put(enc('/auth/x'), enc('v')));
    expect(t.classify(error)).toBe('missing-credentials');
    expect(error.message).toBe(
      `etcd ${secured.endpoints[0]}: POST /v3/kv/put: etcdserver: user name is empty (gRPC code 3, HTTP 400); etcd has authentication enabled: give a username and password`,
    );
    const w = new WatchLog(t, prefixWatch('/auth/', 1));
    await w.until(() => w.failure, 'failed');
    expect(t.classify(w.failure)).toBe('missing-credentials');
    expect(w.failure!.message).toMatch(
      /POST \/v3\/watch: etcd refused the watch: etcdserver: user name is empty/,
    );
    expect(w.responses).toEqual([]);
  });

  it('a user whose roles allow nothing: permission-denied for reads, writes and watches', async () => {
    const { fetch, seen } = recordingFetch();
    const { t, logger } = open(secured.endpoints, {
      auth: { username: 'nobody', password: passwords.nobody },
      fetch,
    });
    const read = await rejection(t.range({ key: enc('/auth/'), rangeEnd: prefixRangeEnd(enc('/auth/')) }));
    const write = await rejection(t.put(enc('/auth/x'), enc('v')));
    for (const error of [read, write]) {
      expect(t.classify(error)).toBe('permission-denied');
      expect([error.code, error.status, error.etcdMessage]).toEqual([
        7,
        403,
        'etcdserver: permission denied',
      ]);
    }
    const w = new WatchLog(t, prefixWatch('/auth/', 1));
    await w.until(() => w.failure, 'failed');
    expect(t.classify(w.failure)).toBe('permission-denied');
    expect(w.failure!.code).toBe(7);
    // alice may not go outside /auth/ either.
    const { t: a } = open(secured.endpoints, { auth: alice });
    expect(a.classify(await rejection(a.put(enc('/other'), enc('v'))))).toBe('permission-denied');
    tokensOf(seen);
    for (const text of [read.message, write.message, w.failure!.message, JSON.stringify(logger.records)]) {
      expectNoSecrets('an error or log', text);
    }
  });
});
