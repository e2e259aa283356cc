/**
 * Security, end to end on real etcd (issue #6): TLS with a private CA and mutual TLS through an EtcdInstancer and
 * an EtcdRegistrar; etcd auth with roles (a read-only user, a user confined to one prefix, roles changed while
 * registered) and auth tokens expiring while in use; and no password, auth token or private key in what a real
 * pino logger prints, nor in the errors thrown to the caller — in the success and in the failure paths.
 *
 * Auth runs on both transports (gRPC and HTTP/JSON); etcdctl is the ground truth. TLS runs on gRPC with `tls`,
 * and on HTTP, which takes no `tls`, with the runtime's trust store: a plain `node` child process trusting the
 * private CA through NODE_EXTRA_CA_CERTS, or not (it runs the BUILT package: build first).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import type { InstancerEvent, RegistrarState } from '@sdkit/sd-core';
import {
  type Certificates,
  type EtcdServer,
  eventually,
  type NodeScript,
  type NodeScriptExit,
  startEtcd,
  startNodeScript,
  startTlsEtcdPair,
  type TlsEtcdPair,
  waitFor,
} from '@sdkit/test-harness';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createEtcdClient,
  type EtcdClient,
  EtcdClientError,
  type EtcdClientOptions,
  type EtcdGrpcClient,
} from './client.js';
import { EtcdInstancer } from './instancer.js';
import { EtcdAccessDeniedError, EtcdRegistrar } from './registrar.js';

// --- what the loggers print -----------------------------------------------------------------------------------

/** A real pino logger at `debug`, printing its JSON lines into memory (or a child process's pino lines). */
interface CapturedLog {
  readonly lines: string[];
}

const captured: CapturedLog[] = [];

function capturePino(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = pino(
    { level: 'debug', base: null },
    {
      write(chunk: string) {
        for (const line of chunk.split('\n')) if (line) lines.push(line);
      },
    },
  );
  const log = { logger, lines };
  captured.push(log);
  return log;
}

/** The pino lines a child process prints on stderr (see fixtures/http-tls-watcher.mjs), scanned like ours. */
function captureChildLog(script: NodeScript): void {
  const lines: string[] = [];
  let partial = '';
  script.child.stderr!.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    for (const line of parts) if (line) lines.push(line);
  });
  captured.push({ lines });
}

/**
 * Secrets that must never be printed: passwords, the auth tokens etcd issued, private key PEMs (also the key
 * bytes as pino would print a Buffer: `"data":[45,45,…]`). Filled as the tests learn them.
 */
const secrets = new Map<string, string>(); // secret → what it is (failure messages show only that)

function addPemSecret(pem: string, what: string): void {
  secrets.set(pem.trim(), what);
  // Every base64 line of the body, so a partial or re-wrapped copy is caught too.
  for (const line of pem.split('\n')) {
    if (/^[A-Za-z0-9+/=]{40,}$/.test(line.trim())) secrets.set(line.trim(), `a line of ${what}`);
  }
  secrets.set(Array.from(Buffer.from(pem).subarray(30, 70)).join(','), `${what} as Buffer bytes`);
}

/** etcd's simple token: 16 letters, a dot, a counter (auth/simple_token.go). */
const SIMPLE_TOKEN = /\b[a-zA-Z]{16}\.\d+\b/;
const PRIVATE_KEY_PEM = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;

const figures = { logLinesScanned: 0, errorsScanned: 0, tokensSeen: 0, secrets: 0 };

/** Asserts that none of the secrets (nor anything shaped like a token or a key) appears in `text`. */
function expectClean(text: string, where: string): void {
  for (const [secret, what] of secrets) {
    if (text.includes(secret)) throw new Error(`${where} contains ${what}`);
  }
  expect(text, where).not.toMatch(SIMPLE_TOKEN);
  expect(text, where).not.toMatch(PRIVATE_KEY_PEM);
}

/** Checks every line printed so far by this test's loggers; returns how many were scanned. */
function scanLogs(): number {
  let n = 0;
  for (const log of captured.splice(0)) {
    for (const line of log.lines) {
      JSON.parse(line); // pino's output, one JSON object per line
      expectClean(line, 'a log line');
      n++;
    }
  }
  figures.logLinesScanned += n;
  return n;
}

/** An error as the caller sees it, with its whole `cause` chain, own properties and stacks. */
function expectCleanError(err: unknown): void {
  const text = inspect(err, { depth: 20, showHidden: false });
  expect(text).toContain(err instanceof Error ? err.message.slice(0, 20) : '');
  expectClean(text, 'the error (with its causes)');
  let e: unknown = err;
  while (e instanceof Error) {
    expectClean(`${e.message}\n${e.stack ?? ''}`, 'an error in the cause chain');
    e = e.cause;
  }
  figures.errorsScanned++;
}

/** The token etcd3 got from etcd's Authenticate RPC for `client` (etcd3 internals: the cached metadata). */
async function issuedToken(client: EtcdGrpcClient): Promise<string> {
  const pool = (client.root as unknown as { pool?: { authenticator?: { awaitingMetadata?: unknown } } }).pool;
  const metadata = await (pool?.authenticator?.awaitingMetadata as
    | Promise<{ get(key: string): unknown[] }>
    | null
    | undefined);
  const token = metadata?.get('token')[0];
  if (typeof token !== 'string') throw new Error('etcd3 internals changed: no cached auth token found');
  expect(token).toMatch(SIMPLE_TOKEN); // so that the shape check above means something
  secrets.set(token, `the auth token etcd issued to ${client.username}`);
  figures.tokensSeen++;
  return token;
}

/**
 * The global fetch, learning every auth token an HTTP client is issued (from `/v3/auth/authenticate` answers) and
 * sends (its raw `Authorization` header) into `tokens` and {@link secrets}.
 */
function tokenLearningFetch(user: string, tokens: Set<string>): typeof fetch {
  const learn = (token: unknown): void => {
    if (typeof token !== 'string' || tokens.has(token)) return;
    expect(token).toMatch(SIMPLE_TOKEN); // so that the shape check means something for HTTP too
    tokens.add(token);
    secrets.set(token, `the auth token etcd issued to ${user}`);
    figures.tokensSeen++;
  };
  return async (input, init) => {
    learn(new Headers(init?.headers).get('authorization') ?? undefined);
    const res = await fetch(input, init);
    if (new URL(String(input)).pathname === '/v3/auth/authenticate' && res.ok) {
      learn(((await res.clone().json()) as { token?: unknown }).token);
    }
    return res;
  };
}

async function rejectionOf<T extends Error>(promise: Promise<unknown>, type: new (...a: never[]) => T) {
  const started = performance.now();
  const outcome = await promise.then(
    () => 'resolved',
    (e: unknown) => e,
  );
  expect(outcome).toBeInstanceOf(type);
  expectCleanError(outcome);
  return { error: outcome as T, ms: Math.round(performance.now() - started) };
}

// --- the built package, for plain-node child processes ------------------------------------------------------------

const WATCHER = fileURLToPath(new URL('./fixtures/http-tls-watcher.mjs', import.meta.url));

/** A pattern matching exactly the JSON line of `value`. */
const exactly = (value: unknown): RegExp =>
  new RegExp(`^${JSON.stringify(value).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);

/** Throws, saying how to build, unless `dist` is there and not older than any source file it is built from. */
function assertBuilt(): void {
  const src = fileURLToPath(new URL('.', import.meta.url));
  const dist = fileURLToPath(new URL('../dist/', import.meta.url));
  const build = 'build it first: pnpm turbo run build --filter=@sdkit/sd-etcd...';
  if (!existsSync(`${dist}index.js`)) throw new Error(`@sdkit/sd-etcd has no dist: ${build}`);
  for (const file of readdirSync(src)) {
    if (!file.endsWith('.ts') || file.endsWith('.test.ts')) continue;
    const built = `${dist}${file.replace(/\.ts$/, '.js')}`;
    if (!existsSync(built) || statSync(built).mtimeMs < statSync(`${src}${file}`).mtimeMs) {
      throw new Error(`@sdkit/sd-etcd's dist is older than src/${file}: ${build}`);
    }
  }
}

// --- clean-up ---------------------------------------------------------------------------------------------------

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
  // After closing: nothing printed on the way down leaks either, and every test printed something.
  expect(scanLogs()).toBeGreaterThan(0);
});
afterAll(() => {
  figures.secrets = secrets.size;
  if (process.env.SDKIT_SECURITY_FIGURES) console.info('security figures', JSON.stringify(figures));
});

async function client(options: EtcdClientOptions): Promise<EtcdGrpcClient> {
  const c = await createEtcdClient(options);
  cleanups.push(() => c.close());
  return c;
}

type Transport = 'grpc' | 'http';
const TRANSPORTS = [{ transport: 'grpc' as const }, { transport: 'http' as const }];

/** The options both transports take (plus, for HTTP, a `fetch`). */
type CommonOptions = Pick<
  EtcdClientOptions,
  'endpoints' | 'auth' | 'logger' | 'dialTimeoutMs' | 'keepAlive'
> & {
  fetch?: typeof fetch;
};

/** `createEtcdClient` over `transport` (a given `fetch` is used by HTTP only). */
function connect(transport: Transport, options: CommonOptions): Promise<EtcdClient> {
  const { fetch: fetchFn, ...common } = options;
  return transport === 'http'
    ? createEtcdClient({ ...common, transport: 'http', ...(fetchFn ? { fetch: fetchFn } : {}) })
    : createEtcdClient(common);
}

const key = (prefix: string, port: number) => `${prefix}127.0.0.1:${port}`;
const has = (k: string) => (e: InstancerEvent) => e.instances.some((i) => i.key === k);
const hasNot = (k: string) => (e: InstancerEvent) => !e.error && !e.instances.some((i) => i.key === k);

/** Register, see it through the instancer, deregister, see it go: all through `c`. */
async function roundTrip(c: EtcdClient, prefix: string, logger: pino.Logger): Promise<void> {
  const instancer = new EtcdInstancer(c, { prefix, logger });
  cleanups.push(() => instancer.stop());
  const k = key(prefix, 8080);
  const registrar = new EtcdRegistrar(c, { key: k, value: 'http://127.0.0.1:8080', ttlSeconds: 5, logger });
  cleanups.push(() => registrar[Symbol.asyncDispose]());
  await registrar.register();
  expect(registrar.state).toBe('registered');
  const seen = await waitFor(instancer.events$, has(k), `the instancer to see ${k}`, 5000);
  expect(seen.instances.find((i) => i.key === k)?.address).toBe('http://127.0.0.1:8080');
  await registrar.deregister();
  await waitFor(instancer.events$, hasNot(k), `the instancer to see ${k} go`, 5000);
}

// --- TLS ----------------------------------------------------------------------------------------------------------

describe('TLS with a private CA, and mutual TLS', () => {
  let pair: TlsEtcdPair;
  let certs: Certificates;
  let tlsServer: EtcdServer;
  let mtlsServer: EtcdServer;
  beforeAll(async () => {
    assertBuilt();
    pair = await startTlsEtcdPair('sec');
    ({ certs, tls: tlsServer, mtls: mtlsServer } = pair);
    for (const file of [certs.clientKeyFile, certs.otherClientKeyFile, certs.serverKeyFile]) {
      addPemSecret(await readFile(file, 'utf8'), `the private key in ${file}`);
    }
  });
  afterAll(() => pair?.close());

  it('TLS (server verified against the private CA): register, see it in the instancer, deregister', async () => {
    const { logger } = capturePino();
    const c = await client({ endpoints: tlsServer.endpoints, tls: { ca: certs.caFile }, logger });
    await roundTrip(c, '/services/tls/', logger);
  });

  it('mTLS with the key as a file path and as PEM contents: register, instancer, deregister', async () => {
    const { logger } = capturePino();
    const byPath = await client({
      endpoints: mtlsServer.endpoints,
      tls: { ca: certs.caFile, cert: certs.clientCertFile, key: certs.clientKeyFile },
      logger,
    });
    await roundTrip(byPath, '/services/mtls-path/', logger);
    const byContents = await client({
      endpoints: mtlsServer.endpoints,
      tls: {
        ca: await readFile(certs.caFile),
        cert: await readFile(certs.clientCertFile, 'utf8'),
        key: await readFile(certs.clientKeyFile, 'utf8'),
      },
      logger,
    });
    await roundTrip(byContents, '/services/mtls-pem/', logger);
  });

  it('key material in an unexpected form: PEM after a preface works; unarmoured key bytes are never echoed', async () => {
    const { logger } = capturePino();
    const pem = await readFile(certs.clientKeyFile, 'utf8');
    // openssl pkcs12 -nodes writes "Bag Attributes" lines before the block.
    const withPreface = `Bag Attributes\n    localKeyID: 01 02 03\n${pem}`;
    const c = await client({
      endpoints: mtlsServer.endpoints,
      tls: { ca: certs.caFile, cert: certs.clientCertFile, key: withPreface },
      logger,
    });
    await c.etcd.put('/preface').value('ok');
    expect(await c.etcd.get('/preface').string()).toBe('ok');
    // The base64 body without its armour (one line, or several): neither PEM nor a path.
    const body = pem.split('\n').filter((l) => l && !l.startsWith('-----'));
    for (const bare of [body.join(''), body.join('\n')]) {
      const { error } = await rejectionOf(
        createEtcdClient({
          endpoints: mtlsServer.endpoints,
          tls: { ca: certs.caFile, cert: certs.clientCertFile, key: bare },
          logger,
        }),
        TypeError,
      );
      expect(error.message).toMatch(
        /^createEtcdClient: tls\.key is neither PEM contents .* nor a readable file path \(a \d+-character value, not shown: it may be a private key\)$/,
      );
    }
    // A path that does not exist is still named (paths are not secret).
    const missing = `${certs.dir}/missing.key`;
    const { error } = await rejectionOf(
      createEtcdClient({
        endpoints: mtlsServer.endpoints,
        tls: { cert: certs.clientCertFile, key: missing },
      }),
      TypeError,
    );
    expect(error.message).toContain(`cannot read tls.key file "${missing}": ENOENT`);
  });

  it('fails clearly at createEtcdClient: wrong CA, no client certificate, a client certificate of another CA', async () => {
    const { logger } = capturePino();
    // Long on purpose: a TLS failure must reject before it, from the first answer (not "within N ms").
    const dialTimeoutMs = 10_000;
    const [wrongCa, noCert, foreignCert] = await Promise.all([
      rejectionOf(
        createEtcdClient({
          endpoints: tlsServer.endpoints,
          tls: { ca: certs.otherCaFile },
          dialTimeoutMs,
          logger,
        }),
        EtcdClientError,
      ),
      rejectionOf(
        createEtcdClient({
          endpoints: mtlsServer.endpoints,
          tls: { ca: certs.caFile },
          dialTimeoutMs,
          logger,
        }),
        EtcdClientError,
      ),
      rejectionOf(
        createEtcdClient({
          endpoints: mtlsServer.endpoints,
          tls: {
            ca: certs.caFile,
            cert: certs.otherClientCertFile,
            key: await readFile(certs.otherClientKeyFile, 'utf8'),
          },
          dialTimeoutMs,
          logger,
        }),
        EtcdClientError,
      ),
    ]);
    for (const { error, ms } of [wrongCa, noCert, foreignCert]) {
      expect(error.reason).toBe('unreachable');
      expect(ms).toBeLessThan(dialTimeoutMs);
      expect(error.message).not.toMatch(/Resolution note/);
      expect(error.message).not.toMatch(/within \d+ ms/);
    }
    expect(wrongCa.error.message).toContain(`could not reach etcd at ${tlsServer.endpoints[0]}: `);
    expect(wrongCa.error.message).toMatch(/unable to verify the first certificate/);
    expect(wrongCa.error.message).toMatch(
      /\(TLS: etcd's server certificate is not signed by the CA given as tls\.ca/,
    );
    const refused =
      /\(TLS: etcd refused the client certificate: none was given, or it is not signed by a CA in etcd's --trusted-ca-file/;
    for (const { error } of [noCert, foreignCert]) {
      expect(error.message).toContain(`could not reach etcd at ${mtlsServer.endpoints[0]}: `);
      expect(error.message).toMatch(/alert bad certificate/);
      expect(error.message).toMatch(refused);
    }
    Object.assign(figures, {
      wrongCaMs: wrongCa.ms,
      noClientCertMs: noCert.ms,
      foreignClientCertMs: foreignCert.ms,
    });
  });

  // HTTP takes no `tls`: https:// endpoints are verified by the runtime's fetch. A plain `node` trusts the private
  // CA only through NODE_EXTRA_CA_CERTS, which Node reads at start-up: hence a child process.
  it('HTTP from a plain node trusting the private CA (NODE_EXTRA_CA_CERTS): register, see it and a put in the instancer', async () => {
    const prefix = '/services/http-tls/';
    const registered = key(prefix, 8443);
    const script = startNodeScript(
      WATCHER,
      [
        JSON.stringify({
          endpoints: tlsServer.endpoints,
          prefix,
          dialTimeoutMs: 10_000,
          register: { key: registered, value: 'https://127.0.0.1:8443' },
        }),
      ],
      { env: { NODE_EXTRA_CA_CERTS: certs.caFile } },
    );
    cleanups.push(() => script.kill());
    captureChildLog(script);
    const ready = JSON.parse(await script.line(/^\{"(ready|rejected)"/, 20_000));
    expect(ready, script.output()).toMatchObject({ ready: true });
    await script.line(/^\{"registered":/, 10_000);
    expect((await tlsServer.etcdctl('get', registered, '--print-value-only')).stdout.trim()).toBe(
      'https://127.0.0.1:8443',
    );
    await script.line(exactly({ keys: [registered], error: null }), 10_000);
    const put = key(prefix, 8444);
    await tlsServer.etcdctl('put', put, 'https://127.0.0.1:8444');
    await script.line(exactly({ keys: [registered, put], error: null }), 10_000);
    expectClean(script.output(), "the child's output");
    Object.assign(figures, { httpTlsReadyMs: ready.ms });
  });

  it('HTTP without trusting the CA: createEtcdClient rejects at once, unreachable, with the TLS hint for fetch', async () => {
    // Long on purpose: a TLS failure must reject from the first answer, not after the dial timeout.
    const dialTimeoutMs = 10_000;
    const expectTlsRejection = (error: { reason?: string; message?: string }, ms: number): void => {
      expect(error.reason).toBe('unreachable');
      expect(ms).toBeLessThan(2000);
      expect(error.message).toContain(`could not reach etcd at ${tlsServer.endpoints[0]}: `);
      expect(error.message).toMatch(/unable to verify the first certificate/);
      expect(error.message).toMatch(
        /\(TLS: etcd's server certificate is not signed by a CA that fetch trusts: a system CA or, in Node, one added with NODE_EXTRA_CA_CERTS; or pass a `fetch` that trusts its CA\)$/,
      );
      expect(error.message).not.toMatch(/tls\.ca|within \d+ ms/); // the HTTP transport takes no tls.ca
    };
    // In a plain node, as a user's process: rejected, then the process ends by itself.
    const script = startNodeScript(WATCHER, [
      JSON.stringify({ endpoints: tlsServer.endpoints, prefix: '/services/http-tls/', dialTimeoutMs }),
    ]);
    cleanups.push(() => script.kill());
    captureChildLog(script);
    const line = JSON.parse(await script.line(/^\{"(ready|rejected)"/, 20_000));
    expect(line.rejected, script.output()).toMatchObject({ name: 'EtcdClientError' });
    expectTlsRejection(line.rejected, line.ms);
    expectClean(line.rejected.message, "the child's error message");
    let exit: NodeScriptExit | undefined;
    void script.exited.then((e) => (exit = e));
    await eventually(async () => exit !== undefined, 'the child to exit by itself (nothing holds it)', 5000);
    expect(exit).toEqual({ code: 0, signal: null });
    // In this process too, where the error object (with its causes) is scanned for secrets.
    const { logger } = capturePino();
    const inProcess = await rejectionOf(
      createEtcdClient({ transport: 'http', endpoints: tlsServer.endpoints, dialTimeoutMs, logger }),
      EtcdClientError,
    );
    expectTlsRejection(inProcess.error, inProcess.ms);
    Object.assign(figures, { httpUntrustedCaMs: line.ms, httpUntrustedCaInProcessMs: inProcess.ms });
    console.info(
      `[measure] http: untrusted CA rejected after ${line.ms} ms (child process), ${inProcess.ms} ms (in process); dialTimeoutMs ${dialTimeoutMs}`,
    );
  });
});

// --- auth with roles ----------------------------------------------------------------------------------------------

describe.each(TRANSPORTS)('etcd auth with roles ($transport)', ({ transport }) => {
  let server: EtcdServer;
  const passwords = {
    root: 'root-Pa55-7f3kq9',
    reader: 'reader-Pa55-w8zr2x',
    'writer-a': 'writerA-Pa55-m4ty6u',
    'writer-c': 'writerC-Pa55-q1vn0e',
  };
  const asRoot = `--user=root:${passwords.root}`;
  const ctl = (...args: string[]) => server.etcdctl(...args, asRoot);

  beforeAll(async () => {
    for (const [user, p] of Object.entries(passwords)) secrets.set(p, `the password of ${user}`);
    server = await startEtcd({ name: `sec-auth-${transport}` });
    const e = (...args: string[]) => server.etcdctl(...args);
    await e('user', 'add', 'root', `--new-user-password=${passwords.root}`);
    await e('user', 'grant-role', 'root', 'root');
    const roles: Array<[user: keyof typeof passwords, role: string, perm: string, prefix: string]> = [
      ['reader', 'services-read', 'read', '/services/'],
      ['writer-a', 'services-a-write', 'readwrite', '/services/a/'],
      ['writer-c', 'services-c-write', 'readwrite', '/services/c/'],
    ];
    for (const [user, role, perm, prefix] of roles) {
      await e('role', 'add', role);
      await e('role', 'grant-permission', role, perm, prefix, '--prefix=true');
      await e('user', 'add', user, `--new-user-password=${passwords[user]}`);
      await e('user', 'grant-role', user, role);
    }
    await e('auth', 'enable');
  });
  afterAll(() => server?.close());

  /** A client of `user` over the transport under test, whose auth token is known (a secret from then on). */
  async function as(user: keyof typeof passwords, logger: pino.Logger): Promise<EtcdClient> {
    const tokens = new Set<string>();
    const c = await connect(transport, {
      endpoints: server.endpoints,
      auth: { username: user, password: passwords[user] },
      logger,
      fetch: tokenLearningFetch(user, tokens),
    });
    cleanups.push(() => c.close());
    expect(c.username).toBe(user);
    expect(c.transport).toBe(transport);
    if (transport === 'grpc') await issuedToken(c as EtcdGrpcClient);
    else expect(tokens.size).toBe(1); // ready() authenticated once and sent that token
    return c;
  }

  it('reader runs an instancer on /services/ and sees what writer-a registers and deregisters', async () => {
    const { logger } = capturePino();
    const [reader, writer] = await Promise.all([as('reader', logger), as('writer-a', logger)]);
    const instancer = new EtcdInstancer(reader, { prefix: '/services/', logger });
    cleanups.push(() => instancer.stop());
    const narrow = new EtcdInstancer(reader, { prefix: '/services/a/', logger });
    cleanups.push(() => narrow.stop());
    const k = key('/services/a/', 9001);
    const registrar = new EtcdRegistrar(writer, { key: k, value: 'http://127.0.0.1:9001', logger });
    cleanups.push(() => registrar[Symbol.asyncDispose]());
    await registrar.register();
    await waitFor(instancer.events$, has(k), 'reader to see the instance under /services/', 5000);
    await waitFor(narrow.events$, has(k), 'reader to see the instance under /services/a/', 5000);
    expect(instancer.current()?.error).toBeUndefined();
    await registrar.deregister();
    await waitFor(instancer.events$, hasNot(k), 'reader to see it go', 5000);
  });

  it("reader's instancer on a prefix it may not read reports the denial as data (never throws)", async () => {
    const { logger } = capturePino();
    const reader = await as('reader', logger);
    const instancer = new EtcdInstancer(reader, { prefix: '/private/', logger });
    cleanups.push(() => instancer.stop());
    const event = await waitFor(
      instancer.events$,
      (e: InstancerEvent) => e.error !== undefined,
      'an error event',
      5000,
    );
    expect(event.instances).toEqual([]);
    expect(event.error?.message).toMatch(/etcd read of prefix "\/private\/" failed: .*permission denied/);
  });

  it("reader's registrar: register() rejects at once, clearly; no retry, lease released; a later register() tries again", async () => {
    const { logger, lines } = capturePino();
    const reader = await as('reader', logger);
    const k = key('/services/a/', 9002);
    const registrar = new EtcdRegistrar(reader, { key: k, value: 'http://127.0.0.1:9002', logger });
    cleanups.push(() => registrar[Symbol.asyncDispose]());
    const states: string[] = [];
    registrar.state$.subscribe((s) => states.push(s));
    const first = await rejectionOf(registrar.register(), EtcdAccessDeniedError);
    expect(first.ms).toBeLessThan(2000);
    expect(first.error.operation).toBe('put');
    expect(first.error.username).toBe('reader');
    expect(first.error.message).toContain(`permission denied: etcd user "reader" may not write "${k}"`);
    expect(first.error.message).toContain('etcdserver: permission denied');
    expect(registrar.state).toBe('deregistered');
    expect(states).toEqual(['registering', 'deregistered']);
    // The lease it was granted for nothing is revoked (it would otherwise be kept alive forever).
    await eventually(
      async () => (await ctl('lease', 'list')).stdout.includes('found 0 leases'),
      'no lease left',
      3000,
    );
    // No retry: one error line, no "retrying", nothing more put while we watch.
    const errorLines = () => lines.filter((l) => JSON.parse(l).level === 50);
    expect(errorLines()).toHaveLength(1);
    expect(lines.some((l) => l.includes('; retrying'))).toBe(false);
    const second = await rejectionOf(registrar.register(), EtcdAccessDeniedError);
    expect(second.error.message).toBe(first.error.message);
    expect(errorLines()).toHaveLength(2);
    expect(states).toEqual(['registering', 'deregistered', 'registering', 'deregistered']);
    expect((await ctl('get', k)).stdout).toBe('');
    Object.assign(figures, {
      [`${transport}ReaderDeniedMs`]: first.ms,
      [`${transport}ReaderDeniedAgainMs`]: second.ms,
    });
  });

  it('writer-a registers under /services/a/ but not under /services/b/ (clear error, nothing written)', async () => {
    const { logger } = capturePino();
    const writer = await as('writer-a', logger);
    const ok = new EtcdRegistrar(writer, {
      key: key('/services/a/', 9003),
      value: 'http://127.0.0.1:9003',
      logger,
    });
    cleanups.push(() => ok[Symbol.asyncDispose]());
    await ok.register();
    expect((await ctl('get', ok.key, '--print-value-only')).stdout.trim()).toBe('http://127.0.0.1:9003');
    const k = key('/services/b/', 9003);
    const denied = new EtcdRegistrar(writer, { key: k, value: 'http://127.0.0.1:9003', logger });
    cleanups.push(() => denied[Symbol.asyncDispose]());
    const { error, ms } = await rejectionOf(denied.register(), EtcdAccessDeniedError);
    expect(ms).toBeLessThan(2000);
    expect(error.message).toContain(`permission denied: etcd user "writer-a" may not write "${k}"`);
    expect(denied.state).toBe('deregistered');
    expect((await ctl('get', k)).stdout).toBe('');
    // The denial did not disturb the registration sharing the client's lease.
    expect(ok.state).toBe('registered');
    expect((await ctl('get', ok.key, '--print-value-only')).stdout.trim()).toBe('http://127.0.0.1:9003');
    await ok.deregister();
    expect((await ctl('get', ok.key)).stdout).toBe('');
    Object.assign(figures, { [`${transport}WriterDeniedMs`]: ms });
  });

  it('roles changed while registered: deregister() is denied (delete and revoke) clearly; the key expires with its TTL', async () => {
    const { logger } = capturePino();
    const writer = await as('writer-c', logger);
    const k = key('/services/c/', 9004);
    const registrar = new EtcdRegistrar(writer, {
      key: k,
      value: 'http://127.0.0.1:9004',
      ttlSeconds: 2,
      logger,
    });
    cleanups.push(() => registrar[Symbol.asyncDispose]());
    await registrar.register();
    await ctl('role', 'revoke-permission', 'services-c-write', '/services/c/', '--prefix=true');
    const started = performance.now();
    const { error } = await rejectionOf(registrar.deregister(), EtcdAccessDeniedError);
    expect(error.operation).toBe('delete');
    expect(error.message).toMatch(
      new RegExp(
        `^EtcdRegistrar: could not remove "${k}" from etcd: permission denied: etcd user "writer-c" may not delete it \\(.*permission denied.*\\); it expires within 2 s$`,
      ),
    );
    expect(registrar.state).toBe('deregistered');
    // etcd 3.4 also denies the revoke (the lease carries a key the user may no longer write): the lease stays…
    expect((await ctl('lease', 'list')).stdout).not.toContain('found 0 leases');
    // …but nothing keeps it alive any more, so the key goes within the TTL.
    await eventually(async () => (await ctl('get', k)).stdout === '', 'the key to expire', 5000);
    Object.assign(figures, {
      [`${transport}ExpiredAfterDeniedDeregisterMs`]: Math.round(performance.now() - started),
    });
  });

  it('wrong password, and no credentials: clear errors at createEtcdClient, the password nowhere', async () => {
    const { logger } = capturePino();
    const wrong = 'not-the-Pa55-h7dj3k';
    secrets.set(wrong, 'the wrong password');
    // Long on purpose: a refusal must reject from etcd's first answer, not after the dial timeout.
    const dialTimeoutMs = 10_000;
    const bad = await rejectionOf(
      connect(transport, {
        endpoints: server.endpoints,
        auth: { username: 'reader', password: wrong },
        dialTimeoutMs,
        logger,
      }),
      EtcdClientError,
    );
    expect(bad.error.reason).toBe('authentication-failed');
    expect(bad.error.message).toMatch(
      /rejected the credentials of user "reader": wrong username or password/,
    );
    expect(bad.ms).toBeLessThan(2000);
    const none = await rejectionOf(
      connect(transport, { endpoints: server.endpoints, dialTimeoutMs, logger }),
      EtcdClientError,
    );
    expect(none.error.reason).toBe('authentication-failed');
    expect(none.error.message).toBe(
      `etcd at ${server.endpoints[0]} requires authentication (auth is enabled) but no credentials were given`,
    );
    expect(none.ms).toBeLessThan(2000);
    Object.assign(figures, {
      [`${transport}WrongPasswordMs`]: bad.ms,
      [`${transport}NoCredentialsMs`]: none.ms,
    });
  });
});

// --- auth tokens expiring while in use --------------------------------------------------------------------------

describe.each(TRANSPORTS)(
  'etcd auth tokens expiring while in use, --auth-token-ttl=2 ($transport)',
  ({ transport }) => {
    let server: EtcdServer;
    const passwords = { root: 'root-Pa55-z8ttl4', svc: 'svc-Pa55-k2exp7', watcher: 'watcher-Pa55-r5idl0' };
    const ctl = (...args: string[]) => server.etcdctl(...args, `--user=root:${passwords.root}`);

    beforeAll(async () => {
      for (const [user, p] of Object.entries(passwords)) secrets.set(p, `the password of ${user}`);
      server = await startEtcd({ name: `sec-ttl-${transport}`, extraArgs: ['--auth-token-ttl=2'] });
      const e = (...args: string[]) => server.etcdctl(...args);
      await e('user', 'add', 'root', `--new-user-password=${passwords.root}`);
      await e('user', 'grant-role', 'root', 'root');
      for (const [user, perm] of [
        ['svc', 'readwrite'],
        ['watcher', 'read'],
      ] as const) {
        await e('role', 'add', `${user}-role`);
        await e('role', 'grant-permission', `${user}-role`, perm, '/svc/', '--prefix=true');
        await e('user', 'add', user, `--new-user-password=${passwords[user]}`);
        await e('user', 'grant-role', user, `${user}-role`);
      }
      await e('auth', 'enable');
    });
    afterAll(() => server?.close());

    /** How many auth tokens of `user` etcd has deleted so far (unused for the token TTL), from etcd's log. */
    async function tokensExpired(user: string): Promise<number> {
      return (await readFile(server.logFile, 'utf8'))
        .split('\n')
        .filter((line) => line.includes('"deleted a simple token"') && line.includes(`"user-name":"${user}"`))
        .length;
    }

    /** A client of `user`; `authentications` counts its authentications (HTTP; gRPC's happen inside etcd3). */
    async function as(user: 'svc' | 'watcher', logger: pino.Logger) {
      const tokens = new Set<string>();
      const learning = tokenLearningFetch(user, tokens);
      let authentications = 0;
      const c = await connect(transport, {
        endpoints: server.endpoints,
        auth: { username: user, password: passwords[user] },
        logger,
        fetch: (input, init) => {
          if (new URL(String(input)).pathname === '/v3/auth/authenticate') authentications++;
          return learning(input, init);
        },
      });
      cleanups.push(() => c.close());
      /** Learns the token the client holds now (gRPC: from etcd3's cache; HTTP learns each one as it comes). */
      const learnToken = async () => {
        if (transport === 'grpc') await issuedToken(c as EtcdGrpcClient);
      };
      await learnToken();
      return { c, learnToken, authentications: () => authentications, tokens };
    }

    it('an instancer and a registrar keep working across several token expiries; new ones work after each', async () => {
      const { logger } = capturePino();
      const svc = await as('svc', logger);
      const watcher = await as('watcher', logger);
      const prefix = '/svc/';
      const instancer = new EtcdInstancer(watcher.c, { prefix, logger });
      cleanups.push(() => instancer.stop());
      const events: InstancerEvent[] = [];
      instancer.events$.subscribe((e) => events.push(e));
      // TTL 12 s: a keep-alive every 4 s (HTTP: each one a request, after the token it last used expired).
      const ttlSeconds = 12;
      const k = key(prefix, 8080);
      const registrar = new EtcdRegistrar(svc.c, {
        key: k,
        value: 'http://127.0.0.1:8080',
        ttlSeconds,
        logger,
      });
      cleanups.push(() => registrar[Symbol.asyncDispose]());
      const states: RegistrarState[] = [];
      registrar.state$.subscribe((s) => states.push(s));
      await registrar.register();
      const lease = registrar.leaseId!;
      await waitFor(instancer.events$, has(k), 'the registration in the instancer', 5000);

      const rounds = 3;
      const expected = [k];
      const seenMs: number[] = [];
      const expiredBefore = { svc: await tokensExpired('svc'), watcher: await tokensExpired('watcher') };
      for (let round = 1; round <= rounds; round++) {
        // More than 3 s without a change under the prefix, and meanwhile a token of each client expired (the
        // ones they used last, at the end of the previous round or at the start).
        const idleSince = performance.now();
        const before = { svc: await tokensExpired('svc'), watcher: await tokensExpired('watcher') };
        await eventually(
          async () =>
            performance.now() - idleSince > 3000 &&
            (await tokensExpired('svc')) > before.svc &&
            (await tokensExpired('watcher')) > before.watcher,
          `round ${round}: a token of each client to expire, after more than 3 s idle`,
          15_000,
        );
        // The running instancer sees a put made now.
        const put = key(prefix, 9000 + round);
        const putAt = performance.now();
        await ctl('put', put, `http://127.0.0.1:${9000 + round}`);
        await waitFor(instancer.events$, has(put), `round ${round}: the put to reach the instancer`, 10_000);
        seenMs.push(Math.round(performance.now() - putAt));
        expected.push(put);
        // The registration stayed, on its lease, kept alive (a keep-alive within the last interval + slack).
        expect(registrar.state).toBe('registered');
        expect(registrar.leaseId).toBe(lease);
        expect((await ctl('get', k, '--print-value-only')).stdout.trim()).toBe('http://127.0.0.1:8080');
        const ttl = (await ctl('lease', 'timetolive', BigInt(lease).toString(16))).stdout;
        const remaining = Number(/remaining\((\d+)s\)/.exec(ttl)?.[1] ?? -1);
        expect(remaining, ttl).toBeGreaterThanOrEqual(ttlSeconds - ttlSeconds / 3 - 2);
        // New calls with the expired tokens: a new registrar and a new instancer (its read, then its watch) work.
        const sub = `${prefix}extra-${round}/`;
        const extra = new EtcdRegistrar(svc.c, {
          key: key(sub, 8080),
          value: `http://127.0.0.1:${8100 + round}`,
          ttlSeconds,
          logger,
        });
        cleanups.push(() => extra[Symbol.asyncDispose]());
        const fresh = new EtcdInstancer(watcher.c, { prefix: sub, logger });
        cleanups.push(() => fresh.stop());
        await extra.register();
        await waitFor(
          fresh.events$,
          has(key(sub, 8080)),
          `round ${round}: a new instancer to see a new registration`,
          5000,
        );
        expect(fresh.current()?.error).toBeUndefined();
        expected.push(key(sub, 8080));
        await Promise.all([svc.learnToken(), watcher.learnToken()]);
      }
      expect(states).toEqual(['registering', 'registered']); // never lost, never re-registered
      expect(events.filter((e) => e.error)).toEqual([]); // never an error event either
      await waitFor<InstancerEvent>(
        instancer.events$,
        (e) => e.instances.map((i) => i.key).join() === [...expected].sort().join(),
        'the first instancer to hold every registration and put',
        5000,
      );
      const expired = {
        svc: (await tokensExpired('svc')) - expiredBefore.svc,
        watcher: (await tokensExpired('watcher')) - expiredBefore.watcher,
      };
      expect(expired.svc).toBeGreaterThanOrEqual(rounds);
      expect(expired.watcher).toBeGreaterThanOrEqual(rounds);
      if (transport === 'http') {
        // Each expired token was replaced by one new authentication (never one per call), each token learned.
        expect(svc.authentications()).toBeGreaterThanOrEqual(rounds + 1);
        expect(watcher.authentications()).toBeGreaterThanOrEqual(rounds + 1);
        expect(svc.tokens.size).toBe(svc.authentications());
        expect(watcher.tokens.size).toBe(watcher.authentications());
      }
      await registrar.deregister();
      expect((await ctl('get', k)).stdout).toBe('');
      Object.assign(figures, {
        [`${transport}TokenExpiryPutSeenMs`]: seenMs,
        [`${transport}TokensExpired`]: expired,
      });
      console.info(
        `[measure] ${transport}: across ${rounds} rounds of token expiry (TTL 2 s; svc ${expired.svc} and watcher ${expired.watcher} tokens expired), ` +
          `a put after > 3 s idle reached the instancer in ${seenMs.join(' / ')} ms` +
          (transport === 'http'
            ? `; authentications: svc ${svc.authentications()}, watcher ${watcher.authentications()}`
            : ''),
      );
    });
  },
);
