/**
 * Process lifetime in plain child processes (no test runner holding the event loop): an awaited
 * createKubernetesClient holds the process until it settles; with everything disposed, a process exits by itself,
 * also with a watch open when the client is closed.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { registerTsHooks } from '@sdkit/test-harness';
import { afterEach, describe, expect, it } from 'vitest';
import { endpoint, FakeApiServer, slice } from './fixtures/fake-api-server.js';
import { tempDir, writeKubeconfig } from './fixtures/kubeconfig.js';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));

function run(
  which: string,
  kubeconfig: string,
): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', registerTsHooks, 'lifetime-child.mjs', which, kubeconfig],
      { cwd: fixtures, timeout: 20_000 },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? null) : 0;
        resolve({ code: typeof code === 'number' ? code : null, stdout, stderr, ms: Date.now() - started });
      },
    );
  });
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serverWithSlice(): Promise<string> {
  const server = await FakeApiServer.start();
  cleanups.push(() => server.close());
  server.put('default', slice('cart-a', 'cart', [endpoint('10.0.0.1')]));
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  return writeKubeconfig(dir, { server: server.url });
}

describe('process lifetime', () => {
  it.each(['stop', 'close'])(
    'exits by itself once disposed (%s, then close the client)',
    async (which) => {
      const result = await run(which, await serverWithSlice());
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe('instances: 10.0.0.1:8080\ndisposed\n');
      expect(result.code).toBe(0);
    },
    30_000,
  );

  it('an awaited createKubernetesClient that fails is seen by a top-level await', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const result = await run('unreachable', writeKubeconfig(dir, { server: 'http://127.0.0.1:9' }));
    expect(result.stdout).toBe('rejected: unreachable\n');
    expect(result.code).toBe(0);
  }, 30_000);
});
