/**
 * The runtime suite, defined once and run per runtime (deno.test.ts, bun.test.ts, workerd.test.ts) and per
 * implementation of the scenarios: against a real etcd, an instancer inside the runtime sees etcdctl's puts and
 * deletes; a registrar inside it registers and keeps its lease alive past several TTLs; and when the runtime
 * process is killed, the registration expires within the TTL (and in workerd, a worker whose client goes away
 * deregisters at its next write). The stand-in implementation runs the instancer test only, as a canary.
 * @module
 */
import { join } from 'node:path';
import { type EtcdServer, eventually, makeTempDir, startEtcd, type TempDir } from '@sdkit/test-harness';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bundleScenarios, type Implementation } from './bundle-scenarios.js';
import type { RecordLog } from './record-log.js';
import { runScript } from './run-script.js';
import { type RuntimeName, runtimeBinary } from './runtime-binary.js';
import type { ScenarioCall } from './scripts/protocol.js';
import { HEARTBEAT_MS } from './scripts/worker-host.js';
import { startWorkerd } from './start-workerd.js';

/** Lease TTL of the registrations under test. */
export const TTL_SECONDS = 3;

/**
 * How long after the kill etcd may take beyond the TTL to delete the key: its lessor looks for expired leases
 * every 500 ms and revokes them through raft, and the test polls etcdctl.
 */
export const EXPIRY_SLACK_MS = 1_500;

/** Bound for a runtime to start, load its bundle and report its first record. */
const START_MS = 20_000;

/** One key as etcd holds it (revisions and lease id as decimal strings). */
export interface KeyInfo {
  readonly value: string;
  readonly createRevision: string;
  readonly modRevision: string;
  readonly version: string;
  readonly lease: string;
}

/** `key` as etcd holds it now, or undefined when absent. */
export async function keyInfo(etcd: EtcdServer, key: string): Promise<KeyInfo | undefined> {
  const { stdout } = await etcd.etcdctl('get', key, '-w', 'json');
  // Keep etcd's int64s exact: quote every number before parsing.
  const parsed = JSON.parse(stdout.replace(/":(\d+)/g, '":"$1"')) as {
    kvs?: Array<{
      key: string;
      value?: string;
      create_revision: string;
      mod_revision: string;
      version: string;
      lease?: string;
    }>;
  };
  const kv = parsed.kvs?.[0];
  if (!kv) return undefined;
  return {
    value: Buffer.from(kv.value ?? '', 'base64').toString('utf8'),
    createRevision: kv.create_revision,
    modRevision: kv.mod_revision,
    version: kv.version,
    lease: kv.lease ?? '0',
  };
}

/** The lease's granted and remaining TTL (seconds), from `etcdctl lease timetolive`. */
export async function leaseTtl(
  etcd: EtcdServer,
  lease: string,
): Promise<{ granted: number; remaining: number }> {
  const { stdout } = await etcd.etcdctl('lease', 'timetolive', BigInt(lease).toString(16), '-w', 'json');
  const parsed = JSON.parse(stdout.replace(/":(\d+)/g, '":"$1"')) as { ttl: string; 'granted-ttl': string };
  return { granted: Number(parsed['granted-ttl']), remaining: Number(parsed.ttl) };
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A scenario running in a runtime. */
interface Running {
  readonly records: RecordLog;
  /** SIGKILLs the runtime process. */
  kill(): Promise<string>;
  /** For workerd: closes the test's connection to the worker (the process keeps running). */
  disconnect?(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Defines the suite for `implementation` in `runtime`: the instancer test, and unless `watchOnly` the registrar
 * tests.
 */
export function describeRuntime(
  runtime: RuntimeName,
  implementation: Implementation,
  options: { watchOnly?: boolean } = {},
): void {
  describe(`${implementation} scenarios in ${runtime}`, () => {
    let etcd: EtcdServer | undefined;
    let dir: TempDir | undefined;
    let bundle = '';
    const running = new Set<Running>();

    /** A missing runtime or a stale build: every test fails with it (as failures, not skips). */
    let setupError: unknown;

    beforeAll(async () => {
      dir = await makeTempDir(`runtimes-${runtime}-${implementation}`);
      try {
        runtimeBinary(runtime); // says how to get it
        bundle = bundleScenarios(
          implementation,
          runtime === 'workerd' ? 'worker' : 'cli',
          join(dir.path, `${implementation}.mjs`),
        );
      } catch (err) {
        setupError = err;
        return;
      }
      etcd = await startEtcd({ name: `${runtime}-${implementation}` });
    });

    beforeEach(() => {
      if (setupError) throw setupError;
    });

    afterAll(async () => {
      await Promise.all([...running].map((r) => r.close()));
      await etcd?.close();
      await dir?.remove();
    });

    async function start(call: ScenarioCall): Promise<Running> {
      let r: Running;
      if (runtime === 'workerd') {
        const workerd = await startWorkerd({ script: bundle, dir: dir!.path });
        try {
          const stream = await workerd.openStream(`/${call.scenario}`, call.params);
          r = {
            records: stream.records,
            kill: () => workerd.kill('SIGKILL'),
            disconnect: () => stream.close(),
            close: () => workerd.close(),
          };
        } catch (err) {
          await workerd.close();
          throw err;
        }
      } else {
        const allowNet = etcd!.endpoints.map((e) => new URL(e).host);
        const p = runScript(runtime, bundle, call, { dir: dir!.path, allowNet });
        r = { records: p.records, kill: () => p.kill('SIGKILL'), close: () => p.close() };
      }
      running.add(r);
      return r;
    }

    async function stop(r: Running): Promise<void> {
      await r.close();
      running.delete(r);
    }

    /** Starts the register scenario for `key` and resolves once it reports `registered` (else stops it). */
    async function startRegistered(key: string, address: string): Promise<Running> {
      const r = await start({
        scenario: 'register',
        params: { endpoints: etcd!.endpoints, key, address, ttlSeconds: TTL_SECONDS },
      });
      try {
        await r.records.waitForState('registered', { timeoutMs: START_MS });
        return r;
      } catch (err) {
        await stop(r);
        throw err;
      }
    }

    /** Resolves with the ms from `since` (a `performance.now()`) until `key` was seen gone; bounded past the TTL. */
    function msUntilGone(key: string, since: number, what: string): Promise<number> {
      return eventually(
        async () => (await keyInfo(etcd!, key)) === undefined && performance.now() - since,
        `${key} ${what}`,
        TTL_SECONDS * 1000 + EXPIRY_SLACK_MS + 5_000,
      );
    }

    it('an instancer inside the runtime sees puts and deletes', async () => {
      const prefix = `/runtimes/${runtime}/${implementation}/watch/`;
      const [a, b, c] = ['a', 'b', 'c'].map((k) => `${prefix}${k}`) as [string, string, string];
      await etcd!.etcdctl('put', a, '127.0.0.1:10001');
      const r = await start({ scenario: 'watch', params: { endpoints: etcd!.endpoints, prefix } });
      try {
        // The initial read.
        await r.records.waitFor((x) => x.type === 'started', 'the scenario to start', {
          timeoutMs: START_MS,
        });
        await r.records.waitForInstances([a]);

        let from = r.records.count;
        await etcd!.etcdctl('put', b, '127.0.0.1:10002');
        let event = await r.records.waitForInstances([a, b], { from });
        expect(event.addresses).toEqual(['127.0.0.1:10001', '127.0.0.1:10002']);

        from = r.records.count;
        await etcd!.etcdctl('put', a, '127.0.0.1:10011'); // a new address under the same key
        event = await r.records.waitFor(
          (x): x is typeof event => x.type === 'instances' && x.addresses[0] === '127.0.0.1:10011',
          `${a}'s new address`,
          { from },
        );
        expect(event.keys).toEqual([a, b]);

        from = r.records.count;
        await etcd!.etcdctl('del', a);
        event = await r.records.waitForInstances([b], { from });
        expect(event.addresses).toEqual(['127.0.0.1:10002']);

        from = r.records.count;
        await etcd!.etcdctl('put', `/runtimes/${runtime}/${implementation}/watch-outside`, '127.0.0.1:1');
        await etcd!.etcdctl('put', c, '127.0.0.1:10003');
        await etcd!.etcdctl('del', b);
        await r.records.waitForInstances([c], { from });
        const seen = r.records.all().slice(from);
        expect(seen.flatMap((x) => (x.type === 'instances' ? x.keys : []))).not.toContain(
          `/runtimes/${runtime}/${implementation}/watch-outside`,
        );
        expect(seen.filter((x) => x.type === 'instances' && x.error !== undefined)).toEqual([]);
      } finally {
        await stop(r);
      }
    });

    if (options.watchOnly) return;

    it(`a registrar inside the runtime registers and keeps its lease alive past 2 TTLs (${TTL_SECONDS} s)`, async () => {
      const key = `/runtimes/${runtime}/${implementation}/keepalive/a`;
      const r = await startRegistered(key, '127.0.0.1:20001');
      try {
        const registered = await keyInfo(etcd!, key);
        expect(registered?.value).toBe('127.0.0.1:20001');
        expect(registered?.lease).not.toBe('0');
        expect((await leaseTtl(etcd!, registered!.lease)).granted).toBe(TTL_SECONDS);

        // The passing of time is what is under test: without keep-alives etcd deletes the key after one TTL.
        await delay(TTL_SECONDS * 1000 * 2.5);

        // Same creation revision, same modification, same lease: the key was never deleted and put again.
        expect(await keyInfo(etcd!, key)).toEqual(registered);
        const ttl = await leaseTtl(etcd!, registered!.lease);
        expect(ttl.remaining).toBeGreaterThan(0);
        expect(ttl.remaining).toBeLessThanOrEqual(TTL_SECONDS);
        expect(
          r.records.all().filter((x) => x.type === 'failed' || (x.type === 'state' && x.state === 'lost')),
        ).toEqual([]);
      } finally {
        await stop(r);
      }
    });

    it(`killing the runtime process (SIGKILL) lets the registration expire within the TTL (${TTL_SECONDS} s)`, async () => {
      const key = `/runtimes/${runtime}/${implementation}/kill/a`;
      const r = await startRegistered(key, '127.0.0.1:20002');
      try {
        expect((await keyInfo(etcd!, key))?.value).toBe('127.0.0.1:20002');

        const killedAt = performance.now();
        expect(await r.kill()).toBe('signal SIGKILL');
        const goneAfterMs = await msUntilGone(key, killedAt, 'to expire after the kill');
        expect(goneAfterMs).toBeLessThanOrEqual(TTL_SECONDS * 1000 + EXPIRY_SLACK_MS);
      } finally {
        await stop(r);
      }
    });

    if (runtime === 'workerd') {
      it('a worker whose client goes away deregisters at its next write, well before the TTL', async () => {
        const key = `/runtimes/${runtime}/${implementation}/disconnect/a`;
        const r = await startRegistered(key, '127.0.0.1:20003');
        try {
          expect((await keyInfo(etcd!, key))?.value).toBe('127.0.0.1:20003');

          const closedAt = performance.now();
          await r.disconnect!();
          const goneAfterMs = await msUntilGone(
            key,
            closedAt,
            'to be deregistered after the client went away',
          );
          // A heartbeat write fails, the scenario deregisters: far sooner than the lease could expire.
          expect(goneAfterMs).toBeLessThan(HEARTBEAT_MS + 1_000);
          expect(goneAfterMs).toBeLessThan(TTL_SECONDS * 1000);
        } finally {
          await stop(r);
        }
      });
    }
  });
}
