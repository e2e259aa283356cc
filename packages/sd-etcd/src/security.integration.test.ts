/**
 * Security, end to end on real etcd (issue #6): TLS with a private CA and mutual TLS through an EtcdInstancer and
 * an EtcdRegistrar; etcd auth with roles (a read-only user, a user confined to one prefix, roles changed while
 * registered); and no password, auth token or private key in what a real pino logger prints, nor in the errors
 * thrown to the caller — in the success and in the failure paths.
 */
import { readFile } from 'node:fs/promises';
import { inspect } from 'node:util';
import type { InstancerEvent } from '@sdkit/sd-core';
import {
  type Certificates,
  type EtcdServer,
  eventually,
  startEtcd,
  startTlsEtcdPair,
  type TlsEtcdPair,
  waitFor,
} from '@sdkit/test-harness';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdClient, EtcdClientError, type EtcdClientOptions, type EtcdGrpcClient } from './client.js';
import { EtcdInstancer } from './instancer.js';
import { EtcdAccessDeniedError, EtcdRegistrar } from './registrar.js';

// --- what the loggers print -----------------------------------------------------------------------------------

/** A real pino logger at `debug`, printing its JSON lines into memory. */
interface CapturedLog {
  readonly logger: pino.Logger;
  readonly lines: string[];
}

const captured: CapturedLog[] = [];

function capturePino(): CapturedLog {
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

const key = (prefix: string, port: number) => `${prefix}127.0.0.1:${port}`;
const has = (k: string) => (e: InstancerEvent) => e.instances.some((i) => i.key === k);
const hasNot = (k: string) => (e: InstancerEvent) => !e.error && !e.instances.some((i) => i.key === k);

/** Register, see it through the instancer, deregister, see it go: all through `c`. */
async function roundTrip(c: EtcdGrpcClient, prefix: string, logger: pino.Logger): Promise<void> {
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
});

// --- auth with roles ----------------------------------------------------------------------------------------------

describe('etcd auth with roles', () => {
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
    server = await startEtcd({ name: 'sec-auth' });
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

  async function as(user: keyof typeof passwords, logger: pino.Logger): Promise<EtcdGrpcClient> {
    const c = await client({
      endpoints: server.endpoints,
      auth: { username: user, password: passwords[user] },
      logger,
    });
    expect(c.username).toBe(user);
    await issuedToken(c);
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
    Object.assign(figures, { readerDeniedMs: first.ms, readerDeniedAgainMs: second.ms });
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
    Object.assign(figures, { writerDeniedMs: ms });
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
        `^EtcdRegistrar: could not remove "${k}" from etcd: permission denied: etcd user "writer-c" may not delete it \\(.*permission denied\\); it expires within 2 s$`,
      ),
    );
    expect(registrar.state).toBe('deregistered');
    // etcd 3.4 also denies the revoke (the lease carries a key the user may no longer write): the lease stays…
    expect((await ctl('lease', 'list')).stdout).not.toContain('found 0 leases');
    // …but nothing keeps it alive any more, so the key goes within the TTL.
    await eventually(async () => (await ctl('get', k)).stdout === '', 'the key to expire', 5000);
    Object.assign(figures, { expiredAfterDeniedDeregisterMs: Math.round(performance.now() - started) });
  });

  it('wrong password, and no credentials: clear errors at createEtcdClient, the password nowhere', async () => {
    const { logger } = capturePino();
    const wrong = 'not-the-Pa55-h7dj3k';
    secrets.set(wrong, 'the wrong password');
    const bad = await rejectionOf(
      createEtcdClient({
        endpoints: server.endpoints,
        auth: { username: 'reader', password: wrong },
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
      createEtcdClient({ endpoints: server.endpoints, logger }),
      EtcdClientError,
    );
    expect(none.error.reason).toBe('authentication-failed');
    expect(none.error.message).toMatch(/requires authentication/);
    Object.assign(figures, { wrongPasswordMs: bad.ms, noCredentialsMs: none.ms });
  });
});
