import { describe, expect, it } from 'vitest';
import { createEtcdClient, type EtcdClientOptions, type EtcdHttpTransportOptions } from './client.js';
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
