import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type EtcdServer, eventually, registerTsHooks, startEtcd } from '@sdkit/test-harness';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

// A real service process (src/fixtures/registrar-child.mjs) registers itself; we kill it and watch etcd.
// The child runs the package's TypeScript sources directly through @sdkit/test-harness' registerTsHooks (module hooks that
// transpile with the workspace's `typescript`), so no build is needed and the code under test is always current.

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
const hex = (id: string): string => BigInt(id).toString(16).padStart(16, '0');

interface Service {
  readonly child: ChildProcess;
  readonly leaseId: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children = new Set<ChildProcess>();
afterEach(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
});

/** Starts the fixture service and resolves once it reports that it is registered. */
function startService(config: {
  endpoints: string[];
  key: string;
  value: string;
  ttlSeconds: number;
  signals: boolean;
}): Promise<Service> {
  const child = spawn(
    process.execPath,
    ['--import', registerTsHooks, `${fixtures}registrar-child.mjs`, JSON.stringify(config)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.add(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  return new Promise<Service>((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the service did not register within 30 s; stderr: ${stderr}`));
    }, 30_000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (!line) return;
      clearTimeout(timer);
      resolve({ child, leaseId: (JSON.parse(line) as { leaseId: string }).leaseId, exited });
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(
        new Error(
          `the service exited (code ${code}, signal ${signal}) before registering; stderr: ${stderr}`,
        ),
      );
    });
  });
}

async function get(server: EtcdServer, key: string): Promise<string> {
  return (await server.etcdctl('get', key)).stdout;
}

describe('a registered service process and its registration', () => {
  let server: EtcdServer;
  beforeAll(async () => {
    server = await startEtcd({ name: 'shutdown' });
  });
  afterAll(() => server?.close());

  it('SIGKILL: the key stays until its lease TTL runs out, then disappears', async () => {
    const key = '/services/killed/127.0.0.1:8080';
    const service = await startService({
      endpoints: server.endpoints,
      key,
      value: 'http://127.0.0.1:8080',
      ttlSeconds: 2,
      signals: true,
    });
    expect(await get(server, key)).toBe(`${key}\nhttp://127.0.0.1:8080\n`);
    expect((await server.etcdctl('lease', 'timetolive', hex(service.leaseId), '--keys')).stdout).toContain(
      key,
    );
    const killed = performance.now();
    service.child.kill('SIGKILL');
    expect((await service.exited).signal).toBe('SIGKILL');
    // No handler ran: the key is still there right after the process died…
    expect(await get(server, key)).toBe(`${key}\nhttp://127.0.0.1:8080\n`);
    // …until the lease expires (TTL 2 s, last keep-alive at most TTL/3 before the kill).
    await eventually(async () => (await get(server, key)) === '', 'the key to expire', 10_000);
    const ms = performance.now() - killed;
    expect(ms).toBeGreaterThan(1000);
    // Within TTL + one keep-alive interval (TTL/3), plus etcd's expiry sweep (every 500 ms in etcd 3.4).
    expect(ms).toBeLessThan(2000 + 2000 / 3 + 500);
    console.info(`[measure] SIGKILL → key gone after ${ms.toFixed(0)} ms (TTL 2 s)`);
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} with deregisterOnSignals: the key is deleted and the lease revoked at once, then the process dies by ${signal}`, async () => {
      const key = `/services/${signal.toLowerCase()}/127.0.0.1:8080`;
      const service = await startService({
        endpoints: server.endpoints,
        key,
        value: 'http://127.0.0.1:8080',
        ttlSeconds: 30,
        signals: true,
      });
      expect(await get(server, key)).not.toBe('');
      const sent = performance.now();
      service.child.kill(signal);
      const exit = await service.exited;
      const ms = performance.now() - sent;
      expect(exit).toEqual({ code: null, signal }); // re-raised: killed by the signal, as without handlers
      // Gone at exit — far sooner than the 30 s TTL — and the lease with it.
      expect(await get(server, key)).toBe('');
      expect((await server.etcdctl('lease', 'list')).stdout).not.toContain(hex(service.leaseId));
      expect(ms).toBeLessThan(5000);
      console.info(`[measure] ${signal} → deregistered and exited in ${ms.toFixed(0)} ms`);
    });
  }
});
