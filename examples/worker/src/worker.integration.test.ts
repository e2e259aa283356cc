/**
 * The example worker in a real workerd, served from the example's own workerd.capnp and build.mjs, against a real
 * etcd and two tiny Node HTTP backends that register themselves with sdkit's Node registrar: requests through
 * the worker reach the backends round-robin, follow deregistrations at once, skip an unreachable instance, and
 * get a 503 when the service has no instance.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEtcdClient, type EtcdClient, EtcdRegistrar } from '@sdkit/sd-etcd';
import {
  type EtcdServer,
  eventually,
  freePort,
  spawnTracked,
  startEtcd,
  trackDir,
  untrackDir,
} from '@sdkit/test-harness';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const exampleDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const PREFIX = '/services/hello/';
/** The response header in which the worker names the instance that answered. */
const INSTANCE_HEADER = 'x-sdkit-instance';

/** The workerd binary of the `workerd` npm package (its main export is the platform binary's path). */
function workerdBinary(): string {
  let path: string;
  try {
    path = (createRequire(import.meta.url)('workerd') as { default: string }).default;
    accessSync(path, constants.X_OK);
  } catch (err) {
    throw new Error(
      `the example worker's test needs workerd: run \`pnpm install\` at the workspace root (the example depends on ` +
        `the npm package \`workerd\`, whose platform package carries the binary; no install script needs to run). ` +
        `(${err instanceof Error ? err.message.split('\n')[0] : String(err)})`,
    );
  }
  return path;
}

function run(bin: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: 60_000 }, (err, _stdout, stderr) =>
      err ? reject(new Error(`${bin} ${args.join(' ')} failed: ${stderr || err.message}`)) : resolve(),
    );
  });
}

/** A backend answering every request with JSON naming itself and echoing the request. */
async function startBackend(name: string): Promise<{ server: Server; address: string }> {
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ backend: name, method: req.method, url: req.url, body }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, address: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

interface Answer {
  readonly status: number;
  readonly instance: string | null;
  readonly text: string;
}

describe('example worker in workerd', () => {
  let etcd: EtcdServer | undefined;
  let client: EtcdClient | undefined;
  let dir: string | undefined;
  let workerUrl = '';
  let logFile = '';
  let stopWorkerd: (() => Promise<void>) | undefined;
  const backends: Server[] = [];
  const registrars = new Map<string, EtcdRegistrar>();

  async function call(path: string, init?: RequestInit): Promise<Answer> {
    const res = await fetch(`${workerUrl}${path}`, init);
    return { status: res.status, instance: res.headers.get(INSTANCE_HEADER), text: await res.text() };
  }

  async function register(name: string, address: string): Promise<void> {
    const registrar = new EtcdRegistrar(client!, {
      key: `${PREFIX}${name}`,
      instance: { address },
      ttlSeconds: 10,
    });
    await registrar.register();
    registrars.set(name, registrar);
  }

  async function deregister(name: string): Promise<void> {
    await registrars.get(name)?.deregister();
    registrars.delete(name);
  }

  /** A set-up failure (e.g. no workerd): every test fails with it, as a failure rather than a skip. */
  let setupError: unknown;

  beforeAll(async () => {
    try {
      await setUp();
    } catch (err) {
      setupError = err;
    }
  });

  beforeEach(() => {
    if (setupError) throw setupError;
  });

  async function setUp(): Promise<void> {
    const workerd = workerdBinary();
    etcd = await startEtcd({ name: 'example-worker' });
    client = await createEtcdClient({ endpoints: etcd.endpoints });

    // The example's own config and build, laid out as in the example's directory.
    dir = await mkdtemp(join(tmpdir(), 'sdkit-example-worker-'));
    trackDir(dir);
    await mkdir(join(dir, 'dist'));
    await copyFile(join(exampleDir, 'workerd.capnp'), join(dir, 'workerd.capnp'));
    await run(process.execPath, [join(exampleDir, 'build.mjs'), join(dir, 'dist', 'worker.mjs')]);

    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      logFile = join(dir, `workerd-${attempt}.log`);
      const { child, exited } = spawnTracked(
        workerd,
        ['serve', 'workerd.capnp', '--socket-addr', `http=127.0.0.1:${port}`, '--verbose'],
        logFile,
        {
          cwd: dir,
          env: { ...process.env, PWD: dir, ETCD_ENDPOINTS: etcd.endpoints.join(','), SERVICE_PREFIX: PREFIX },
        },
      );
      stopWorkerd = async () => {
        child.kill('SIGKILL');
        await exited;
      };
      workerUrl = `http://127.0.0.1:${port}`;
      let gone: string | undefined;
      void exited.then((how) => {
        gone = how;
      });
      const up = await eventually(
        async () => {
          if (gone !== undefined) return 'exited';
          await fetch(`${workerUrl}/`).then((r) => r.arrayBuffer());
          return 'up';
        },
        `workerd answering on ${workerUrl}`,
        20_000,
      ).catch(() => 'down');
      if (up === 'up') break;
      const log = await readFile(logFile, 'utf8').catch(() => '');
      await stopWorkerd();
      if (gone !== undefined && /address already in use/i.test(log) && attempt < 4) continue;
      throw new Error(`workerd did not start (${gone ?? 'no answer within 20 s'}):\n${log}`);
    }

    for (const name of ['a', 'b']) {
      const backend = await startBackend(name);
      backends.push(backend.server);
      await register(name, backend.address);
    }
  }

  afterAll(async () => {
    await stopWorkerd?.();
    for (const name of [...registrars.keys()]) await deregister(name);
    client?.close();
    await etcd?.close();
    for (const server of backends) {
      server.closeAllConnections();
      server.close();
    }
    if (dir) {
      await rm(dir, { recursive: true, force: true });
      untrackDir(dir);
    }
  });

  async function logTail(): Promise<string> {
    const log = await readFile(logFile, 'utf8').catch(() => '');
    return `--- workerd log (tail) ---\n${log.split('\n').slice(-20).join('\n')}`;
  }

  it('forwards a request to an instance registered in etcd, and answers with its response', async () => {
    const answer = await call('/greet?name=worker');
    expect(answer.status, `${answer.text}\n${await logTail()}`).toBe(200);
    const body = JSON.parse(answer.text) as { backend: string; method: string; url: string };
    expect(['a', 'b']).toContain(body.backend);
    expect(body).toMatchObject({ method: 'GET', url: '/greet?name=worker' });
    expect(answer.instance).toBe(`${PREFIX}${body.backend}`);
  });

  it('sends consecutive requests to the instances in turn, bodies included', async () => {
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) {
      const answer = await call('/echo', { method: 'POST', body: `hello ${i}` });
      expect(answer.status, `${answer.text}\n${await logTail()}`).toBe(200);
      const body = JSON.parse(answer.text) as { backend: string; method: string; body: string };
      expect(body).toMatchObject({ method: 'POST', body: `hello ${i}` });
      seen.push(body.backend);
    }
    expect(seen[0]).not.toBe(seen[1]);
    expect(seen.slice(2)).toEqual(seen.slice(0, 2));
  });

  it('skips an instance that cannot be reached', async () => {
    const closed = await freePort(); // nothing listens there
    await register('0-unreachable', `127.0.0.1:${closed}`);
    try {
      for (let i = 0; i < 3; i++) {
        const answer = await call('/after-unreachable');
        expect(answer.status, `${answer.text}\n${await logTail()}`).toBe(200);
        expect(['a', 'b']).toContain((JSON.parse(answer.text) as { backend: string }).backend);
      }
    } finally {
      await deregister('0-unreachable');
    }
  });

  it('follows deregistrations at the next request, and answers 503 when no instance is left', async () => {
    await deregister('b');
    for (let i = 0; i < 3; i++) {
      const answer = await call('/only-a');
      expect(answer.status, answer.text).toBe(200);
      expect((JSON.parse(answer.text) as { backend: string }).backend).toBe('a');
    }
    await deregister('a');
    const answer = await call('/none');
    expect(answer.status, answer.text).toBe(503);
    expect(answer.text).toContain(PREFIX);
  });
});
