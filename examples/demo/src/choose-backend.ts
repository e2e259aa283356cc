import { execFileSync } from 'node:child_process';
import type { Logger } from '@sdkit/sd-core';
import { type DemoBackend, memoryBackend } from './backend.js';
import { etcdBackend } from './etcd-backend.js';

/** Whether an etcd binary can be run (ETCD_BIN or `etcd` on PATH). */
function etcdBinary(): string | undefined {
  const bin = process.env.ETCD_BIN || 'etcd';
  try {
    execFileSync(bin, ['--version'], { stdio: 'ignore', timeout: 5_000 });
    return bin;
  } catch {
    return undefined;
  }
}

/**
 * Picks the demo's backend:
 * - `memory`: the embedded MemoryRegistry;
 * - `etcd`: ETCD_ENDPOINTS (comma-separated URLs) if set, else a throwaway etcd started in a temp dir on a free
 *   loopback port (needs an etcd binary: ETCD_BIN or PATH); fails if neither works;
 * - `auto`: `etcd` when it works, else `memory`, saying why.
 * `transport` (`grpc` or `http`): how the etcd backend's clients talk to etcd.
 */
export async function chooseBackend(
  choice: string,
  logger: Logger,
  say: (line: string) => void,
  transport = 'grpc',
): Promise<DemoBackend> {
  if (choice !== 'memory' && choice !== 'auto' && choice !== 'etcd') {
    throw new TypeError(`--backend must be memory, etcd or auto (got ${JSON.stringify(choice)})`);
  }
  if (transport !== 'grpc' && transport !== 'http') {
    throw new TypeError(`--transport must be grpc or http (got ${JSON.stringify(transport)})`);
  }
  if (choice === 'memory') return memoryBackend(logger);
  try {
    return await etcd(logger, transport);
  } catch (err) {
    if (choice === 'etcd') throw err;
    say(`(no etcd: ${(err as Error).message}; using the embedded registry)`);
    return memoryBackend(logger);
  }
}

async function etcd(logger: Logger, transport: 'grpc' | 'http'): Promise<DemoBackend> {
  const given = process.env.ETCD_ENDPOINTS?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (given?.length) return etcdBackend(given, 'ETCD_ENDPOINTS', logger, async () => {}, 2, transport);
  if (!etcdBinary()) {
    throw new Error('no etcd binary found (install etcd-server, set ETCD_BIN, or set ETCD_ENDPOINTS)');
  }
  // The project's test harness starts etcd on free loopback ports in a temp dir and removes it afterwards.
  const { startEtcd } = await import('@sdkit/test-harness');
  const server = await startEtcd({ name: 'sdkit-demo' });
  try {
    return await etcdBackend(
      server.endpoints,
      `started by the demo in ${server.dataDir}`,
      logger,
      () => server.close(),
      2,
      transport,
    );
  } catch (err) {
    await server.close();
    throw err;
  }
}
