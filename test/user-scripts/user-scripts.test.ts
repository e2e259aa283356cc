/**
 * sdkit as users run it: plain Node scripts (./scripts, the README's composition block, the demo and the gRPC
 * example), each in a child process with nothing else holding its event loop, against a real etcd. Each asserts
 * the exit code (Node exits 13 when a top-level await can never settle), the output, and that the process ends
 * by itself soon after its last line. Everything runs the built packages (`pnpm build`), as a user's code would.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type EtcdServer, eventually, freePort, startEtcd } from '@sdkit/test-harness';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const script = (name: string) => join(here, 'scripts', name);

/**
 * Longest a process may live after its last line of output. Generous for a loaded 2-core machine; what it
 * catches is a process held by a forgotten timer or stream (seconds to forever), not slowness.
 */
const EXIT_AFTER_LAST_LINE_MS = 3_000;

/** The scripts that take ETCD_TRANSPORT run once per etcd transport. */
const TRANSPORTS = [{ transport: 'grpc' }, { transport: 'http' }] as const;

/** The environment that makes a script use `transport` (gRPC is the default: no variable). */
function transportEnv(transport: 'grpc' | 'http'): Record<string, string> {
  return transport === 'http' ? { ETCD_TRANSPORT: 'http' } : {};
}

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** From the last stdout/stderr output to the exit. */
  readonly quietBeforeExitMs: number;
}

interface Started {
  readonly child: ReturnType<typeof spawn>;
  /** Resolves with the first stdout line matching `pattern`. */
  line(pattern: RegExp): Promise<string>;
  readonly exited: Promise<Run>;
}

/** Starts `node <file> ...args` with only the given environment added; kills it after `timeoutMs`. */
function start(
  file: string,
  options: { args?: string[]; env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Started {
  const child = spawn(process.execPath, [file, ...(options.args ?? [])], {
    cwd: options.cwd ?? here,
    env: { ...process.env, NODE_OPTIONS: '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let lastOutputAt = performance.now();
  const watchers: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];
  const check = () => {
    for (const w of [...watchers]) {
      const found = stdout.split('\n').find((l) => w.pattern.test(l));
      if (found !== undefined) {
        watchers.splice(watchers.indexOf(w), 1);
        w.resolve(found);
      }
    }
  };
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    lastOutputAt = performance.now();
    check();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    lastOutputAt = performance.now();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 45_000);
  const exited = once(child, 'exit').then(([code, signal]) => {
    clearTimeout(timer);
    return {
      code: code as number | null,
      signal: signal as NodeJS.Signals | null,
      stdout,
      stderr,
      quietBeforeExitMs: performance.now() - lastOutputAt,
    };
  });
  return {
    child,
    exited,
    line: (pattern) =>
      new Promise<string>((resolve, reject) => {
        watchers.push({ pattern, resolve });
        check();
        void exited.then((run) =>
          reject(
            new Error(
              `exited (${run.code ?? run.signal}) before printing ${pattern}:\n${run.stdout}${run.stderr}`,
            ),
          ),
        );
      }),
  };
}

/** Runs a script to its end and checks that it succeeded by itself and exited promptly. */
async function runOk(file: string, options: Parameters<typeof start>[1] = {}): Promise<Run> {
  const run = await start(file, options).exited;
  const output = `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
  expect(run.code, output).toBe(0);
  expect(run.quietBeforeExitMs, `still alive long after its last line\n${output}`).toBeLessThan(
    EXIT_AFTER_LAST_LINE_MS,
  );
  return run;
}

async function etcdKeys(etcd: EtcdServer, prefix: string): Promise<string[]> {
  const { stdout } = await etcd.etcdctl('get', prefix, '--prefix', '--keys-only');
  return stdout.split('\n').filter((l) => l.trim() !== '');
}

/** An HTTP server answering POST /bar {question} with {answer: question}, like the README's barsvc. */
async function startBarService(): Promise<{ server: Server; address: string; calls: () => number }> {
  let calls = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      calls++;
      const { question } = JSON.parse(body || '{}') as { question?: unknown };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ answer: req.url === '/bar' ? question : 'wrong path' }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return { server, address: `http://127.0.0.1:${port}`, calls: () => calls };
}

/** The README's composition block (after the readme-composition marker), as JavaScript, pointed at `endpoint`. */
function readmeComposition(endpoint: string): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const match = /<!-- readme-composition[^>]*-->\s*```ts\n([\s\S]*?)```/.exec(readme);
  if (!match)
    throw new Error('README.md has no ```ts block after <!-- readme-composition --> (see this test)');
  const source = match[1]!;
  if (!source.includes("'http://127.0.0.1:2379'")) {
    throw new Error("the README composition no longer dials 'http://127.0.0.1:2379'; update this test");
  }
  const js = ts.transpileModule(source.replace("'http://127.0.0.1:2379'", JSON.stringify(endpoint)), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  }).outputText;
  return js;
}

describe('sdkit in plain Node processes (nothing else holds the event loop)', () => {
  let etcd: EtcdServer;
  let env: Record<string, string>;

  beforeAll(async () => {
    etcd = await startEtcd({ name: 'user-scripts' });
    env = { ETCD_ENDPOINTS: etcd.endpoints.join(',') };
  });
  afterAll(async () => {
    await etcd?.close();
  });

  it('holdUntilSettled keeps a process alive until the promise settles (and without it, Node exits 13)', async () => {
    const held = await runOk(script('hold-process.mjs'), { args: ['held'] });
    expect(held.stdout).toBe('settled\n');
    const control = await start(script('hold-process.mjs'), { args: ['unheld'] }).exited;
    expect(control.code).toBe(13);
    expect(control.stdout).toBe('');
  });

  it("runs the README's composition block as written: the call answers, the script exits 0 by itself", async () => {
    const bar = await startBarService();
    try {
      const hostPort = bar.address.slice('http://'.length);
      await etcd.etcdctl('put', `/services/barsvc/${hostPort}`, bar.address);
      const dir = join(here, '.generated');
      mkdirSync(dir, { recursive: true });
      const file = join(dir, 'readme-composition.mjs');
      writeFileSync(file, readmeComposition(etcd.endpoints[0]!));
      // It failed intermittently (exit 13 in 14 runs of 20): run it several times.
      for (let i = 0; i < 5; i++) {
        const run = await runOk(file);
        expect(run.stdout).toContain('the answer is 42');
        // deregister() removed foosvc's key at once (its TTL is 10 s: expiry cannot explain it).
        expect(await etcdKeys(etcd, '/services/foosvc/')).toEqual([]);
      }
      expect(bar.calls()).toBe(5);
    } finally {
      bar.server.close();
    }
  });

  it.each(TRANSPORTS)(
    'register(), deregister(), close() with nothing else in the process: every await completes ($transport)',
    async ({ transport }) => {
      for (let i = 0; i < 5; i++) {
        const key = `/services/register-only/${transport}-${i}`;
        const run = await runOk(script('register-only.mjs'), {
          env: { ...env, ...transportEnv(transport), KEY: key },
        });
        expect(run.stdout).toMatch(
          new RegExp(`registered ${key} on lease \\d+\\nderegistered ${key}\\nclosed\\n$`),
        );
        expect(await etcdKeys(etcd, key)).toEqual([]);
      }
    },
  );

  it.each(TRANSPORTS)(
    "go-kit's flow: client, register, discover, call, deregister, close ($transport)",
    async ({ transport }) => {
      const prefix = `/services/flow-${transport}/`;
      const run = await runOk(script('gokit-flow.mjs'), {
        env: { ...env, ...transportEnv(transport), PREFIX: prefix },
      });
      expect(run.stdout).toMatch(
        new RegExp(
          `registered ${prefix}127\\.0\\.0\\.1:\\d+\nanswer 42 from /hello\nderegistered\nclosed\n$`,
        ),
      );
      expect(await etcdKeys(etcd, prefix)).toEqual([]);
    },
  );

  it('a one-shot call to a service that is down prints the RetryError', async () => {
    const port = await freePort();
    const run = await runOk(script('call-down-service.mjs'), {
      env: { DOWN_ADDRESS: `http://127.0.0.1:${port}` },
    });
    expect(run.stdout).toMatch(/^RetryError \(exhausted, 3 attempts\): .*fetch failed/m);
  });

  it.each(TRANSPORTS)(
    'etcd down at start: the error is printed within the dial timeout ($transport)',
    async ({ transport }) => {
      const port = await freePort();
      const run = await runOk(script('etcd-down.mjs'), {
        env: { ETCD_ENDPOINTS: `http://127.0.0.1:${port}`, ...transportEnv(transport) },
      });
      const match =
        /^EtcdClientError \(unreachable\) after (\d+) ms: could not reach etcd at http:\/\/127\.0\.0\.1:\d+ within 1000 ms/m.exec(
          run.stdout,
        );
      expect(match, run.stdout).not.toBeNull();
      expect(Number(match![1])).toBeGreaterThanOrEqual(999);
    },
  );

  it('the embedded registry: register, discover, call, deregister, close', async () => {
    const run = await runOk(script('embedded-registry.mjs'));
    expect(run.stdout).toBe('registered 2\nlocal://a got one\nlocal://b got two\nderegistered, 0 left\n');
  });

  it.each(TRANSPORTS)(
    'close() of the client: the instancer says so and completes, the lease is left to expire, the process exits ($transport)',
    async ({ transport }) => {
      const key = `/services/close-client/${transport}`;
      const run = await runOk(script('close-client.mjs'), {
        env: { ...env, ...transportEnv(transport), KEY: key, TTL_SECONDS: '3' },
      });
      expect(run.stdout).toBe(
        `registered ${key}; instancer sees it\n` +
          'closed; registrar: registered → lost → (complete); instancer: 1 → error: EtcdClientError closed → (complete)\n' +
          'register() after close: EtcdClientError (closed)\n',
      );
      // Not revoked: still there right after, gone once the TTL ran out without keep-alives.
      expect(await etcdKeys(etcd, key)).toEqual([key]);
      await eventually(
        async () => expect(await etcdKeys(etcd, key)).toEqual([]),
        'the key to expire',
        10_000,
      );
    },
  );

  it('a service SIGTERMed deregisters at once and ends as the signal would', async () => {
    const service = start(script('sigterm-service.mjs'), { env });
    const ready = await service.line(/^ready /);
    const key = ready.slice('ready '.length);
    expect(await etcdKeys(etcd, key)).toEqual([key]);
    service.child.kill('SIGTERM');
    const run = await service.exited;
    expect(run.signal, `${run.stdout}${run.stderr}`).toBe('SIGTERM');
    // The TTL is 60 s: only the deregistration explains the key's absence.
    expect(await etcdKeys(etcd, key)).toEqual([]);
  });

  describe('the demo', () => {
    const demo = join(root, 'examples', 'demo', 'dist', 'main.js');
    const demoCwd = join(root, 'examples', 'demo');

    it('on the embedded registry', async () => {
      const run = await runOk(demo, { args: ['--backend=memory'], cwd: demoCwd });
      expect(run.stdout).toContain('backend: embedded');
      expect(run.stdout).toMatch(/calls \d+, retries \d+, failures 0/);
      expect(run.stdout).toContain('ok: no call failed');
    });

    it('on an etcd it starts itself', async () => {
      const run = await runOk(demo, { args: ['--backend=etcd'], cwd: demoCwd, env: { ETCD_ENDPOINTS: '' } });
      expect(run.stdout).toContain('started by the demo');
      expect(run.stdout).toContain("svc-b's registration expired");
      expect(run.stdout).toContain('ok: no call failed');
    });

    it('on an etcd given by ETCD_ENDPOINTS', async () => {
      const run = await runOk(demo, { args: ['--backend=etcd'], cwd: demoCwd, env });
      expect(run.stdout).toContain(`etcd at ${etcd.endpoints[0]} over gRPC`);
      expect(run.stdout).toContain("svc-b's registration expired");
      expect(run.stdout).toContain('ok: no call failed');
    });

    it("on etcd's HTTP/JSON gateway (--transport=http)", async () => {
      const run = await runOk(demo, { args: ['--backend=etcd', '--transport=http'], cwd: demoCwd, env });
      expect(run.stdout).toContain(`etcd at ${etcd.endpoints[0]} over HTTP/JSON`);
      expect(run.stdout).toContain("svc-b's registration expired");
      expect(run.stdout).toContain('ok: no call failed');
    });
  });

  it('the gRPC example on etcd:/// targets', async () => {
    const grpc = join(root, 'examples', 'grpc', 'dist', 'main.js');
    const run = await runOk(grpc, { cwd: join(root, 'examples', 'grpc'), env });
    expect(run.stdout).toContain(`etcd at ${etcd.endpoints[0]}`);
  });

  it('the kubernetes example against the test API server: slices written, rewritten under calls, all cleaned up', async () => {
    const { startKubeApiServer } = await import('@sdkit/test-harness');
    const kube = await startKubeApiServer({ name: 'user-scripts-kube' });
    try {
      const example = join(root, 'examples', 'kubernetes', 'dist', 'main.js');
      const run = await runOk(example, {
        args: ['--kubeconfig', await kube.kubeconfig()],
        cwd: join(root, 'examples', 'kubernetes'),
      });
      const out = run.stdout;
      expect(out).toContain(`API server ${kube.url} (context "admin@sdkit-test", user "admin")`);
      expect(out).toContain('namespace sdkit-example created, Service hello (port "http") created');
      expect(out).toMatch(
        /^ {2}instancer: 127\.0\.0\.1:\d+ \(pod hello-a, zone-1\), 127\.0\.0\.1:\d+ \(pod hello-b, zone-2\)$/m,
      );
      expect(out).toMatch(/^ {2}ok {3}6 calls, round robin over both slices: (a b a b a b|b a b a b a)$/m);
      expect(out).toMatch(/hello-b rewritten: .* → instancer: 127\.0\.0\.1:\d+ \(pod hello-a, zone-1\)$/m);
      expect(out).toMatch(/^ {4}instancer: \S+ \(pod hello-a, zone-1\), \S+ \(pod hello-c, zone-3\)$/m);
      expect(out).toMatch(
        /^ {2}ok {3}\d+ calls while scaling, 0 failed, \d+ retried \(answered: a \d+, b \d+, c \d+\)$/m,
      );
      expect(out).toContain(
        'deleted EndpointSlice hello-a, EndpointSlice hello-c, Service hello, namespace sdkit-example',
      );
      expect(out).not.toContain('FAIL');
      expect(out).toMatch(/\nok\n$/);
      // It left nothing behind.
      expect((await kube.request('GET', '/api/v1/namespaces/sdkit-example')).status).toBe(404);
      const slices = await kube.request<{ items?: unknown[] }>(
        'GET',
        '/apis/discovery.k8s.io/v1/namespaces/sdkit-example/endpointslices',
      );
      expect(slices.body?.items).toEqual([]);
    } finally {
      await kube.close();
    }
  });
});
