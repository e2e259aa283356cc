/**
 * Process lifetime in plain child processes (no test runner holding the event loop), against a real DNS server: a
 * script that follows an SRV name exits by itself, with code 0, soon after its last line — whether it stops the
 * instancer or leaves it running (refresh timers and sockets never hold the process).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type DnsServer, freePort, registerTsHooks, startDnsServer } from '@sdkit/test-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));

/** Longest a process may live after its last line: what it catches is a process held by a timer or socket. */
const EXIT_AFTER_LAST_LINE_MS = 3_000;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** From the last output to the exit. */
  readonly quietBeforeExitMs: number;
}

function run(which: string, server: string, zone: string): Promise<Run> {
  return new Promise((resolve) => {
    let lastOutputAt = performance.now();
    const child = execFile(
      process.execPath,
      ['--import', registerTsHooks, 'lifetime-child.mjs', which, server, zone],
      { cwd: fixtures, timeout: 30_000, env: { ...process.env, NODE_OPTIONS: '' } },
      (err, stdout, stderr) => {
        const code = err ? (err as { code?: unknown }).code : 0;
        resolve({
          code: typeof code === 'number' ? code : null,
          stdout,
          stderr,
          quietBeforeExitMs: performance.now() - lastOutputAt,
        });
      },
    );
    child.stdout?.on('data', () => {
      lastOutputAt = performance.now();
    });
    child.stderr?.on('data', () => {
      lastOutputAt = performance.now();
    });
  });
}

describe('process lifetime of a DnsSrvInstancer', () => {
  let dns: DnsServer;
  beforeAll(async () => {
    dns = await startDnsServer({ records: ['_http._tcp 1 IN SRV 10 5 8080 a'] });
  });
  afterAll(() => dns?.close());

  it.each([
    ['stop', 'endpoints: a.sdkit.test:8080\nstopped\n'],
    ['leave', 'endpoints: a.sdkit.test:8080\nleaving it running\n'],
    ['first-event', 'first: a.sdkit.test:8080 error: none\n'],
  ])('%s: exits by itself with code 0', async (which, output) => {
    const result = await run(which, dns.server, dns.zone);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(output);
    expect(result.code).toBe(0);
    expect(result.quietBeforeExitMs).toBeLessThan(EXIT_AFTER_LAST_LINE_MS);
  });

  it('against a server that is gone: the first event is the error, and the script still exits 0', async () => {
    const result = await run('first-event', `127.0.0.1:${await freePort()}`, dns.zone);
    expect(result.stdout).toBe('first:  error: unreachable\n');
    expect(result.code).toBe(0);
    expect(result.quietBeforeExitMs).toBeLessThan(EXIT_AFTER_LAST_LINE_MS);
  });
});
