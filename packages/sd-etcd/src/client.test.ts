import { FakeClock } from '@sdkit/sd-core/testing';
import { GRPCUnavailableError } from 'etcd3';
import { describe, expect, it } from 'vitest';
import {
  createEtcdClient,
  defaultFaultHandling,
  type EtcdClientOptions,
  type EtcdHttpTransportOptions,
} from './client.js';
import { tlsHint } from './client-core.js';

const ok = ['http://127.0.0.1:2379'];

describe('createEtcdClient option validation', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['no options', undefined, /options must be an object/],
    ['empty endpoints', { endpoints: [] }, /endpoints must be a non-empty array/],
    ['endpoints not an array', { endpoints: 'http://127.0.0.1:2379' }, /endpoints must be a non-empty array/],
    ['non-string endpoint', { endpoints: [2379] }, /endpoint must be a string URL, got 2379/],
    ['not a URL', { endpoints: ['::nope'] }, /endpoint "::nope" is not a valid URL/],
    [
      'host:port without scheme',
      { endpoints: ['localhost:2379'] },
      /"localhost:2379" must use http:\/\/ or https:\/\//,
    ],
    ['no port', { endpoints: ['http://127.0.0.1'] }, /must include a port/],
    ['a path', { endpoints: ['http://127.0.0.1:2379/v3'] }, /must be scheme:\/\/host:port only/],
    ['mixed schemes', { endpoints: ['http://a:1', 'https://b:2'] }, /mix http:\/\/ and https:\/\//],
    [
      'tls with http',
      { endpoints: ok, tls: { ca: '-----BEGIN CERTIFICATE-----' } },
      /tls options need https/,
    ],
    [
      'zero dial timeout',
      { endpoints: ok, dialTimeoutMs: 0 },
      /dialTimeoutMs must be a positive number.*got 0/,
    ],
    ['NaN dial timeout', { endpoints: ok, dialTimeoutMs: Number.NaN }, /dialTimeoutMs .*got NaN/],
    ['empty namespace', { endpoints: ok, namespace: '' }, /namespace must be a non-empty string, got ""/],
    [
      'keepAlive true',
      { endpoints: ok, keepAlive: true },
      /keepAlive must be \{ timeMs\?, timeoutMs\? \} or false, got true/,
    ],
    [
      'keepAlive.timeMs 0',
      { endpoints: ok, keepAlive: { timeMs: 0 } },
      /keepAlive.timeMs must be a positive integer.*got 0/,
    ],
    [
      'keepAlive.timeoutMs not a number',
      { endpoints: ok, keepAlive: { timeoutMs: '5s' } },
      /keepAlive.timeoutMs must be a positive integer.*got "5s"/,
    ],
    ['empty username', { endpoints: ok, auth: { username: '', password: 'p' } }, /auth.username must be/],
    [
      'unreadable ca file',
      { endpoints: ['https://127.0.0.1:1'], tls: { ca: '/nonexistent/ca.pem' } },
      /cannot read tls.ca file "\/nonexistent\/ca.pem"/,
    ],
    [
      'cert without key',
      { endpoints: ['https://127.0.0.1:1'], tls: { cert: Buffer.from('-----BEGIN CERTIFICATE-----') } },
      /tls.cert and tls.key must be given together/,
    ],
  ];
  for (const [name, options, message] of cases) {
    it(`rejects ${name} with a TypeError`, async () => {
      const err = await createEtcdClient(options as EtcdClientOptions).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TypeError);
      expect((err as Error).message).toMatch(message);
    });
  }

  it('never puts a bad password into the message', async () => {
    const err = await createEtcdClient({
      endpoints: ok,
      auth: { username: 'u', password: 42 as unknown as string },
    }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(TypeError);
    expect(err?.message).toBe('createEtcdClient: auth.password must be a string');
  });
});

describe("createEtcdClient({ transport: 'http' }) and TLS", () => {
  it('refuses tls with a TypeError pointing at fetch, before any request', async () => {
    let requests = 0;
    const err = await createEtcdClient({
      transport: 'http',
      endpoints: ['https://127.0.0.1:2379'],
      tls: { ca: '-----BEGIN CERTIFICATE-----' },
      fetch: async () => {
        requests++;
        return new Response('{}');
      },
    } as unknown as EtcdHttpTransportOptions).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(TypeError);
    expect(err?.message).toMatch(/^createEtcdClient: tls is not taken with transport 'http'/);
    expect(err?.message).toMatch(/pass a `fetch` that applies them/);
    expect(requests).toBe(0);
  });

  it("the TLS hint of an 'unreachable' error names what each transport takes", () => {
    const untrusted = new TypeError('fetch failed', {
      cause: new Error('unable to verify the first certificate'),
    });
    expect(tlsHint(untrusted, 'grpc')).toMatch(/not signed by the CA given as tls\.ca/);
    expect(tlsHint(untrusted, 'http')).toMatch(/not signed by a CA that fetch trusts: .*NODE_EXTRA_CA_CERTS/);
    expect(tlsHint(untrusted, 'http')).not.toMatch(/tls\./);
    const refused = new Error('sslv3 alert bad certificate');
    expect(tlsHint(refused, 'grpc')).toMatch(/needs tls\.cert and tls\.key/);
    expect(tlsHint(refused, 'http')).toMatch(/needs a `fetch` that presents one/);
    expect(tlsHint(refused, 'http')).not.toMatch(/tls\./);
    const plain = new Error('wrong version number');
    expect(tlsHint(plain, 'http')).toBe(
      ' (TLS: etcd does not seem to serve TLS on this port; use an http:// endpoint)',
    );
    expect(tlsHint(new Error('connect ECONNREFUSED'), 'http')).toBe('');
  });
});

describe('ready() between its round-trips', () => {
  it('waits 50 ms doubling to 500 ms, exactly, on the injected clock', async () => {
    const clock = new FakeClock();
    const probes: number[] = [];
    // Connection refused, over and over: a passing failure, retried until dialTimeoutMs.
    const refused = (() => {
      probes.push(clock.now());
      return Promise.reject(new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } }));
    }) as unknown as typeof fetch;
    const created = createEtcdClient({
      transport: 'http',
      endpoints: ok,
      fetch: refused,
      clock,
      dialTimeoutMs: 2000,
    });
    const outcome = created.then(
      () => 'ready',
      (error: Error) => error.message,
    );
    while (clock.now() < 2000) {
      await new Promise<void>((r) => setImmediate(r));
      clock.advance((clock.nextTimerAt ?? 2000) - clock.now());
    }
    expect(await outcome).toMatch(/could not reach etcd at http:\/\/127\.0\.0\.1:2379 within 2000 ms/);
    // Waits of 50, 100, 200, 400, then 500 each.
    expect(probes).toEqual([0, 50, 150, 350, 750, 1250, 1750]);
  });
});

describe("etcd3's fault handling (gRPC transport)", () => {
  it('watch re-connects wait 200 ms doubling to 2000 ms, exactly', () => {
    // What etcd3 uses of it: `duration`, and `next()` without a context.
    interface Stepper {
      readonly duration: number;
      next(): Stepper;
    }
    const given = defaultFaultHandling(new FakeClock(), undefined).watchBackoff as unknown as Stepper;
    // etcd3 steps once past the backoff it is given before its first wait.
    const waits: number[] = [];
    for (let b = given.next(); waits.length < 7; b = b.next()) waits.push(b.duration);
    expect(waits).toEqual([200, 400, 800, 1600, 2000, 2000, 2000]);
  });

  it('a host that failed 3 times in a row is skipped for 1000 ms on the clock, then tried once', async () => {
    const clock = new FakeClock();
    const breaker = defaultFaultHandling(clock, undefined).host!('h1');
    const down = (): Promise<never> => Promise.reject(new GRPCUnavailableError('down'));
    for (let i = 0; i < 3; i++) await expect(breaker.execute(down)).rejects.toThrow('down');
    await expect(breaker.execute(() => 'up')).rejects.toThrow(
      /failed 3 times in a row; next attempt in 1000 ms/,
    );
    clock.advance(999);
    await expect(breaker.execute(() => 'up')).rejects.toThrow(/next attempt in 1 ms/);
    clock.advance(1);
    await expect(breaker.execute(down)).rejects.toThrow('down'); // the trial fails: open again, as long
    clock.advance(999);
    await expect(breaker.execute(() => 'up')).rejects.toThrow(/next attempt in 1 ms/);
    clock.advance(1);
    await expect(breaker.execute(() => 'up')).resolves.toBe('up');
    await expect(breaker.execute(down)).rejects.toThrow('down'); // closed: one failure does not open it
    await expect(breaker.execute(() => 'up')).resolves.toBe('up');
  });
});
