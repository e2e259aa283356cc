import { readFile } from 'node:fs/promises';
import { recordingLogger } from '@sdkit/sd-core/testing';
import {
  type Certificates,
  type EtcdServer,
  eventually,
  freePort,
  startEtcd,
  startTlsEtcdPair,
  type TlsEtcdPair,
} from '@sdkit/test-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdClient, EtcdClientError } from './client.js';

/** A logger that keeps every record, to assert on what was (not) logged. */

async function rejection(promise: Promise<unknown>): Promise<EtcdClientError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EtcdClientError);
  return err as EtcdClientError;
}

describe('createEtcdClient on a plain etcd', () => {
  let server: EtcdServer;
  beforeAll(async () => {
    server = await startEtcd({ name: 'client-plain' });
  });
  afterAll(() => server?.close());

  it('connects, reads and writes, and closes idempotently', async () => {
    const client = await createEtcdClient({ endpoints: server.endpoints });
    expect(client.endpoints).toEqual(server.endpoints);
    expect(client.dialTimeoutMs).toBe(3000);
    await client.etcd.put('greeting').value('hello');
    expect(await client.etcd.get('greeting').string()).toBe('hello');
    expect((await server.etcdctl('get', 'greeting', '--print-value-only')).stdout.trim()).toBe('hello');
    await client.ready();
    client.close();
    client.close();
    const err = await rejection(client.ready());
    expect(err.reason).toBe('closed');
  });

  it('namespace isolates keys', async () => {
    await using a = await createEtcdClient({ endpoints: server.endpoints, namespace: '/tenant-a/' });
    await using b = await createEtcdClient({ endpoints: server.endpoints, namespace: '/tenant-b/' });
    expect(a.namespace).toBe('/tenant-a/');
    await a.etcd.put('svc/1').value('a1');
    await b.etcd.put('svc/1').value('b1');
    expect(await a.etcd.get('svc/1').string()).toBe('a1');
    expect(await b.etcd.get('svc/1').string()).toBe('b1');
    expect(await a.etcd.getAll().prefix('svc/').keys()).toEqual(['svc/1']);
    expect(await a.root.get('/tenant-b/svc/1').string()).toBe('b1');
    const raw = (await server.etcdctl('get', '--prefix', '/tenant-', '--keys-only')).stdout
      .split('\n')
      .filter(Boolean);
    expect(raw.sort()).toEqual(['/tenant-a/svc/1', '/tenant-b/svc/1']);
  });

  it('waits for an etcd that comes up within the dial timeout, and is ready soon after', async () => {
    await server.stop();
    const pending = createEtcdClient({ endpoints: server.endpoints, dialTimeoutMs: 15_000 });
    await server.start();
    const up = performance.now();
    await using client = await pending;
    // etcd3's own circuit breaker would keep the host blocked for 5 s after the failed attempts.
    expect(performance.now() - up).toBeLessThan(2000);
    expect(await client.etcd.get('greeting').string()).toBe('hello');
  });

  it('an established client works again soon after etcd restarts', async () => {
    await using client = await createEtcdClient({ endpoints: server.endpoints });
    await server.stop();
    await expect(client.etcd.get('greeting').string()).rejects.toThrow();
    await expect(client.etcd.get('greeting').string()).rejects.toThrow(); // trips the breaker
    await server.start();
    const up = performance.now();
    await eventually(
      async () => (await client.etcd.get('greeting').string()) === 'hello',
      'a read to succeed',
      5000,
    );
    expect(performance.now() - up).toBeLessThan(2000);
  });
});

describe('createEtcdClient on an unreachable endpoint', () => {
  it('rejects within dialTimeoutMs, naming the endpoint and the timeout', async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const logger = recordingLogger();
    const started = performance.now();
    const err = await rejection(createEtcdClient({ endpoints: [endpoint], dialTimeoutMs: 500, logger }));
    const elapsed = performance.now() - started;
    expect(err.reason).toBe('unreachable');
    expect(err.message).toContain(`could not reach etcd at ${endpoint} within 500 ms`);
    expect(elapsed).toBeGreaterThanOrEqual(480);
    expect(elapsed).toBeLessThan(500 + 400);
    expect(logger.records.some((r) => r.level === 'warn' && r.msg?.includes(endpoint))).toBe(true);
  });
});

describe('createEtcdClient with etcd auth', () => {
  let server: EtcdServer;
  const password = 'correct-horse-battery';
  beforeAll(async () => {
    server = await startEtcd({ name: 'client-auth' });
    await server.etcdctl('user', 'add', 'root', `--new-user-password=${password}`);
    await server.etcdctl('user', 'grant-role', 'root', 'root');
    await server.etcdctl('auth', 'enable');
  });
  afterAll(() => server?.close());

  it('works with the right password', async () => {
    await using client = await createEtcdClient({
      endpoints: server.endpoints,
      auth: { username: 'root', password },
    });
    await client.etcd.put('secret-key').value('v');
    expect(await client.etcd.get('secret-key').string()).toBe('v');
  });

  it('fails at once and clearly with a wrong password, without leaking it', async () => {
    const wrong = 'hunter2-wrong';
    const logger = recordingLogger();
    const started = performance.now();
    const err = await rejection(
      createEtcdClient({ endpoints: server.endpoints, auth: { username: 'root', password: wrong }, logger }),
    );
    expect(performance.now() - started).toBeLessThan(2500); // not the 3 s dial timeout
    expect(err.reason).toBe('authentication-failed');
    expect(err.message).toMatch(/rejected the credentials of user "root": wrong username or password/);
    expect(err.message).not.toContain(wrong);
    expect(JSON.stringify(logger.records)).not.toContain(wrong);
    expect(logger.records.length).toBeGreaterThan(0);
  });

  it('fails clearly when etcd requires credentials and none are given', async () => {
    const err = await rejection(createEtcdClient({ endpoints: server.endpoints }));
    expect(err.reason).toBe('authentication-failed');
    expect(err.message).toMatch(/requires authentication .* no credentials were given/);
  });
});

describe('createEtcdClient over TLS', () => {
  let pair: TlsEtcdPair;
  let certs: Certificates;
  let tlsServer: EtcdServer;
  let mtlsServer: EtcdServer;
  beforeAll(async () => {
    pair = await startTlsEtcdPair('client');
    ({ certs, tls: tlsServer, mtls: mtlsServer } = pair);
  });
  afterAll(() => pair?.close());

  it('works with the right CA (given as a path) over https', async () => {
    expect(tlsServer.endpoints[0]).toMatch(/^https:\/\//);
    await using client = await createEtcdClient({
      endpoints: tlsServer.endpoints,
      tls: { ca: certs.caFile },
    });
    await client.etcd.put('tls').value('ok');
    expect(await client.etcd.get('tls').string()).toBe('ok');
  });

  it('fails clearly with another CA', async () => {
    const err = await rejection(
      createEtcdClient({
        endpoints: tlsServer.endpoints,
        tls: { ca: certs.otherCaFile },
        dialTimeoutMs: 10_000, // not waited for: a TLS failure rejects at once
      }),
    );
    expect(err.reason).toBe('unreachable');
    expect(err.message).toContain(`could not reach etcd at ${tlsServer.endpoints[0]}: `);
    expect(err.message).not.toMatch(/within \d+ ms/);
    expect(err.message).toMatch(/certificate|handshake|SSL|TLS/i);
  });

  it('mTLS: works with a client certificate (contents as Buffer and string)', async () => {
    const [ca, cert, key] = await Promise.all([
      readFile(certs.caFile),
      readFile(certs.clientCertFile, 'utf8'),
      readFile(certs.clientKeyFile),
    ]);
    await using client = await createEtcdClient({ endpoints: mtlsServer.endpoints, tls: { ca, cert, key } });
    await client.etcd.put('mtls').value('ok');
    expect(await client.etcd.get('mtls').string()).toBe('ok');
  });

  it('mTLS: fails clearly without a client certificate, or with one from another CA', async () => {
    const without = await rejection(
      createEtcdClient({ endpoints: mtlsServer.endpoints, tls: { ca: certs.caFile }, dialTimeoutMs: 10_000 }),
    );
    expect(without.reason).toBe('unreachable');
    expect(without.message).toContain(`could not reach etcd at ${mtlsServer.endpoints[0]}: `);
    expect(without.message).not.toMatch(/within \d+ ms/);
    const foreign = await rejection(
      createEtcdClient({
        endpoints: mtlsServer.endpoints,
        tls: { ca: certs.caFile, cert: certs.otherClientCertFile, key: certs.otherClientKeyFile },
        dialTimeoutMs: 10_000,
      }),
    );
    expect(foreign.reason).toBe('unreachable');
  });
});
