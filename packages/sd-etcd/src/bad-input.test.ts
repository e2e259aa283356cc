/**
 * Bad input at the edges of sd-etcd, without a server: an EtcdInstancer fed garbage values, keys outside its
 * prefix and non-UTF-8 keys by a byte-level fake etcd (it answers every read with whatever it holds, as a
 * misbehaving server or proxy would); prefix and key validation; EtcdRegistrar's checks that run before anything
 * is written (empty key, key repeating the namespace, lone surrogates, etcd's request size limit); and the
 * `maxRequestBytes` client option. The same with a real etcd: bad-input.integration.test.ts.
 */
import { EventEmitter } from 'node:events';
import { FakeClock, type RecordingLogger, recordingLogger } from '@sdkit/sd-core/testing';
import type { IRangeRequest, IRangeResponse, IResponseHeader, IWatchRequest, IWatchResponse } from 'etcd3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createEtcdClient,
  DEFAULT_MAX_REQUEST_BYTES,
  type EtcdClient,
  type EtcdClientOptions,
} from './client.js';
import { clip, codecs, decodeEntry, MAX_LOGGED_KEY_LENGTH } from './codecs.js';
import { bytes, garbageValue, goodValue } from './fixtures/bad-values.js';
import { fakeClient, inertClient } from './fixtures/fake-client.js';
import { watchResponse } from './fixtures/watch-response.js';
import { EtcdInstancer } from './instancer.js';
import type { LeaseBackend } from './lease-backend.js';
import { EtcdLeasePool, leaseBackendOverride } from './lease-pool.js';
import { EtcdRegistrar, type EtcdRegistrarOptions, PUT_REQUEST_OVERHEAD_BYTES } from './registrar.js';

/** The Watch RPC stream shape etcd3 hands over (what the gRPC transport drives). */
interface WatchStream {
  write(req: IWatchRequest): void;
  cancel(): void;
}

// ---------------------------------------------------------------------------------------------------------------
// A byte-level fake etcd: holds raw key/value bytes; a read returns everything it holds (ignoring the range asked
// for, so keys outside the prefix reach the instancer); the test pushes watch responses itself.

class ByteStream extends EventEmitter implements WatchStream {
  constructor(private readonly etcd: ByteEtcd) {
    super();
  }
  write(req: IWatchRequest): void {
    if (req.create_request) queueMicrotask(() => this.emit('data', this.etcd.response({ created: true })));
  }
  cancel(): void {}
}

class ByteEtcd {
  readonly prefix: Buffer;
  readonly data = new Map<string, { key: Buffer; value: Buffer }>();
  readonly ranges: IRangeRequest[] = [];
  rev = 10;
  stream: ByteStream | undefined;

  constructor(namespace = '') {
    this.prefix = Buffer.from(namespace);
  }

  set(key: Buffer, value: Uint8Array): void {
    this.data.set(key.toString('hex'), { key, value: Buffer.from(value) });
  }

  readonly kv = {
    range: async (req: IRangeRequest): Promise<IRangeResponse> => {
      this.ranges.push(req);
      await Promise.resolve();
      const kvs = [...this.data.values()].map(({ key, value }) => ({
        key,
        value,
        create_revision: '1',
        mod_revision: '1',
        version: '1',
        lease: '0',
      }));
      return { header: this.header(), kvs, more: false, count: String(kvs.length) };
    },
  };

  readonly watchClient = {
    watch: async (): Promise<WatchStream> => {
      await Promise.resolve();
      this.stream = new ByteStream(this);
      return this.stream;
    },
  };

  header(): IResponseHeader {
    return { cluster_id: '1', member_id: '1', revision: String(this.rev), raft_term: '1' };
  }

  response(fields: Partial<IWatchResponse>): IWatchResponse {
    return watchResponse(this.header(), fields);
  }

  /** One watch response putting all of `puts` (in one revision), as etcd sends a transaction. */
  putAll(puts: ReadonlyArray<{ key: Buffer; value: Uint8Array }>): void {
    this.rev++;
    for (const p of puts) this.set(p.key, p.value);
    const events = puts.map(({ key, value }) => ({
      type: 'Put' as const,
      kv: {
        key,
        value: Buffer.from(value),
        create_revision: '1',
        mod_revision: String(this.rev),
        version: '1',
        lease: '0',
      },
      prev_kv: undefined as never,
    }));
    this.stream?.emit('data', this.response({ events }));
  }
}

const clientOf = (etcd: ByteEtcd, logger: RecordingLogger): EtcdClient =>
  fakeClient(etcd, etcd.prefix.toString(), logger);

async function flush(): Promise<void> {
  for (let i = 0; i < 4; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

// ---------------------------------------------------------------------------------------------------------------

describe('EtcdInstancer fed bad keys and values (byte-level fake etcd)', () => {
  type Where = 'in-prefix' | 'outside-prefix' | 'non-utf8-key';
  /** One entry: which of 12 names, where its key is, and its value (good or garbage). */
  const entry = fc.record({
    slot: fc.integer({ min: 0, max: 11 }),
    where: fc.constantFrom<Where>('in-prefix', 'in-prefix', 'in-prefix', 'outside-prefix', 'non-utf8-key'),
    value: fc.oneof(
      goodValue.map((g) => g.value),
      garbageValue,
    ),
  });

  it('keeps exactly the readable in-prefix entries, one log line per skipped entry; the watch goes on', async () => {
    let runs = 0;
    let kept = 0;
    let warned = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('', '/tenant/'),
        fc.array(entry, { maxLength: 14 }),
        fc.array(entry, { minLength: 1, maxLength: 14 }),
        async (namespace, initial, later) => {
          runs++;
          const prefix = 'svc/';
          const etcd = new ByteEtcd(namespace);
          const ns = Buffer.from(namespace);
          const keyOf = (e: { slot: number; where: Where }): Buffer =>
            e.where === 'in-prefix'
              ? Buffer.concat([ns, bytes(`${prefix}n${e.slot}`)])
              : e.where === 'outside-prefix'
                ? Buffer.concat([ns, bytes(`other/n${e.slot}`)])
                : Buffer.concat([ns, bytes(prefix), Buffer.from([0xff, 0x30 + e.slot])]);
          /** Model: what an instancer must show for the entries held (key relative to the namespace → value). */
          const model = new Map<string, Uint8Array>();
          const expected = (): string[] =>
            [...model]
              .flatMap(([key, value]) => {
                const out = decodeEntry(codecs.auto, key, value);
                return out.ok ? [`${key}=${out.instance.address}`] : [];
              })
              .sort();
          /**
           * Applies entries to the model; counts the skips (once per key: the last value counts) and the keys the
           * instancer must ignore (once per key in a read, once per event in a watch response).
           */
          const apply = (entries: typeof initial, read: boolean): { skipped: number; ignored: number } => {
            let skipped = 0;
            let ignored = read ? 0 : entries.filter((e) => e.where !== 'in-prefix').length;
            const last = new Map<string, (typeof entries)[number]>();
            for (const e of entries) last.set(keyOf(e).toString('hex'), e);
            for (const e of last.values()) {
              if (e.where !== 'in-prefix') {
                if (read) ignored++;
                continue;
              }
              const key = `${prefix}n${e.slot}`;
              model.set(key, e.value);
              if (!decodeEntry(codecs.auto, key, e.value).ok) skipped++;
            }
            return { skipped, ignored };
          };

          for (const e of initial) etcd.set(keyOf(e), e.value);
          const first = apply(initial, true);
          const logger = recordingLogger();
          const instancer = new EtcdInstancer(clientOf(etcd, logger), {
            prefix,
            clock: new FakeClock(),
            backoff: { jitter: 0 },
          });
          try {
            await flush();
            const shown = (): string[] =>
              (instancer.current()?.instances ?? []).map((i) => `${i.key}=${i.address}`).sort();
            expect(instancer.current()?.error).toBeUndefined();
            expect(shown()).toEqual(expected());
            // One line per skipped entry (warn, or debug for etcd naming's Op 1), one warn per ignored key.
            expect(logger.records.filter((r) => r.level !== 'info' && r.obj.key !== undefined)).toHaveLength(
              first.skipped + first.ignored,
            );
            for (const r of logger.records.filter((r) => r.level === 'warn' || r.level === 'debug')) {
              if (r.obj.codec === undefined) continue;
              expect(String(r.obj.key).startsWith(prefix)).toBe(true);
              expect(r.obj).not.toHaveProperty('value');
            }
            warned += logger.records.filter((r) => r.level === 'warn').length;

            // While watching: more garbage, replacements both ways, then one good put that must arrive.
            const before = logger.records.length;
            const second = apply(later, false);
            etcd.putAll(later.map((e) => ({ key: keyOf(e), value: e.value })));
            expect(shown()).toEqual(expected());
            expect(logger.records.length - before).toBe(second.skipped + second.ignored);
            const good = { slot: 99, where: 'in-prefix' as const, value: bytes('http://10.9.9.9:80') };
            apply([good], false);
            etcd.putAll([{ key: keyOf(good), value: good.value }]);
            expect(shown()).toContain(`${prefix}n99=http://10.9.9.9:80`);
            expect(shown()).toEqual(expected());
            expect(instancer.current()?.error).toBeUndefined();
            kept += shown().length;
          } finally {
            instancer.stop();
          }
        },
      ),
      { numRuns: 150 },
    );
    expect(runs).toBe(150);
    expect(kept).toBeGreaterThan(150); // the runs did keep instances …
    expect(warned).toBeGreaterThan(150); // … and did skip garbage
  });

  it('logs a very long bad key cut to a bounded length, with the value size but not the value', async () => {
    const etcd = new ByteEtcd();
    const key = `svc/${'k'.repeat(3000)}`;
    etcd.set(Buffer.from(key), Buffer.from('x'.repeat(100_000)).fill(0xff, 0, 1));
    etcd.set(Buffer.from('svc/good'), bytes('http://10.0.0.1:80'));
    const logger = recordingLogger();
    const instancer = new EtcdInstancer(clientOf(etcd, logger), { prefix: 'svc/', clock: new FakeClock() });
    await flush();
    expect(instancer.current()?.instances.map((i) => i.key)).toEqual(['svc/good']);
    const warnings = logger.records.filter((r) => r.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.obj.key).toBe(clip(key, MAX_LOGGED_KEY_LENGTH));
    expect(warnings[0]!.obj.valueBytes).toBe(100_000);
    expect(JSON.stringify(warnings[0]).length).toBeLessThan(1200);
    instancer.stop();
  });
});

describe('EtcdInstancer prefix validation', () => {
  const client = clientOf(new ByteEtcd('/ns/'), recordingLogger());

  it('refuses a prefix that is not a non-empty string, naming it', () => {
    fc.assert(
      fc.property(
        fc.anything().filter((v) => typeof v !== 'string'),
        (prefix) => {
          expect(() => new EtcdInstancer(client, { prefix: prefix as string })).toThrow(
            /EtcdInstancer: prefix must be a non-empty string, got /,
          );
        },
      ),
    );
    expect(() => new EtcdInstancer(client, { prefix: '' })).toThrow(TypeError);
  });

  it('refuses a prefix with a lone surrogate (not UTF-8: the watch would follow the U+FFFD spelling)', () => {
    for (const prefix of ['svc/\ud800', '\udc00', 'a\ud83d/']) {
      expect(() => new EtcdInstancer(client, { prefix })).toThrow(/lone UTF-16 surrogate/);
    }
  });

  it('follows any other non-empty prefix byte-exactly under the namespace', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }), async (prefix) => {
        const etcd = new ByteEtcd('/ns/');
        const instancer = new EtcdInstancer(clientOf(etcd, recordingLogger()), {
          prefix,
          clock: new FakeClock(),
        });
        await flush();
        expect(etcd.ranges[0]?.key).toEqual(Buffer.from(`/ns/${prefix}`));
        expect(instancer.current()?.error).toBeUndefined();
        instancer.stop();
      }),
      { numRuns: 100 },
    );
  });
});

// ---------------------------------------------------------------------------------------------------------------

/** A lease backend that records every call: the registrar must make none from its constructor. */
function recordingBackend(): { backend: LeaseBackend; calls: string[] } {
  const calls: string[] = [];
  const backend = new Proxy({} as LeaseBackend, {
    get: (_target, name) => {
      return (..._args: unknown[]) => {
        calls.push(String(name));
        return Promise.reject(new Error('the fake backend does nothing'));
      };
    },
  });
  return { backend, calls };
}

interface FakeClientShape {
  namespace?: string;
  maxRequestBytes?: number;
  username?: string;
}

/** A registrar on a fake client (namespace/maxRequestBytes/username as given), and the backend calls made. */
function tryRegistrar(
  options: Partial<EtcdRegistrarOptions>,
  shape: FakeClientShape = {},
): { error: unknown; calls: string[]; registrar: EtcdRegistrar | undefined } {
  const client = inertClient({ logger: undefined, ...shape });
  const { backend, calls } = recordingBackend();
  const pool = new EtcdLeasePool(client, { [leaseBackendOverride]: backend });
  try {
    const registrar = new EtcdRegistrar(client, { lease: pool, ...options } as EtcdRegistrarOptions);
    return { error: undefined, calls, registrar };
  } catch (error) {
    return { error, calls, registrar: undefined };
  }
}

describe('EtcdRegistrar: bad keys and values fail in the constructor, before anything is written', () => {
  it('an empty or non-string key (key or instance.key)', () => {
    for (const options of [
      { key: '', value: 'http://a:1' },
      { instance: { key: '', address: 'a:1' } },
      { instance: { address: 'a:1' } },
    ]) {
      const { error, calls } = tryRegistrar(options);
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(/key must be a non-empty string, got (""|undefined)/);
      expect(calls).toEqual([]);
    }
    fc.assert(
      fc.property(
        fc.anything().filter((v) => typeof v !== 'string' && v !== undefined),
        (key) => {
          const { error, calls } = tryRegistrar({ key: key as string, value: 'http://a:1' });
          expect(error).toBeInstanceOf(TypeError);
          expect((error as Error).message).toMatch(/key must be a non-empty string/);
          expect(calls).toEqual([]);
        },
      ),
    );
  });

  it('a key that repeats the namespace: refused with the key to use instead; other keys accepted', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 12 }).filter((s) => !/\p{Surrogate}/u.test(s)),
        fc.string({ maxLength: 20 }).filter((s) => !/\p{Surrogate}/u.test(s)),
        (namespace, rest) => {
          const key = namespace + rest;
          const bad = tryRegistrar({ key, value: 'http://a:1' }, { namespace });
          expect(bad.error).toBeInstanceOf(TypeError);
          const message = (bad.error as Error).message;
          expect(message).toContain(`starts with the client's namespace ${JSON.stringify(namespace)}`);
          expect(message).toContain(`it would be stored as ${JSON.stringify(namespace + key)}`);
          if (rest !== '')
            expect(message).toContain(`Pass the key without the namespace (${JSON.stringify(rest)})`);
          expect(message).toContain('or create the client without `namespace`');
          expect(bad.calls).toEqual([]);
          // The same key is fine without a namespace, and the relative key is fine with it.
          expect(tryRegistrar({ key, value: 'http://a:1' }).error).toBeUndefined();
          if (rest !== '' && !rest.startsWith(namespace)) {
            expect(tryRegistrar({ key: rest, value: 'http://a:1' }, { namespace }).error).toBeUndefined();
          }
        },
      ),
      { numRuns: 300 },
    );
    // The mistake the check is for: an absolute go-kit key on a client namespaced to the same prefix.
    const { error } = tryRegistrar(
      { instance: { key: '/services/foosvc/10.0.0.5:8080', address: 'http://10.0.0.5:8080' } },
      { namespace: '/services/' },
    );
    expect((error as Error).message).toBe(
      `EtcdRegistrar: key "/services/foosvc/10.0.0.5:8080" starts with the client's namespace "/services/", but keys ` +
        'are relative to the namespace: it would be stored as "/services//services/foosvc/10.0.0.5:8080". Pass the ' +
        'key without the namespace ("foosvc/10.0.0.5:8080"), or create the client without `namespace`',
    );
  });

  it('a key or value with a lone UTF-16 surrogate (etcd would store U+FFFD instead)', () => {
    expect((tryRegistrar({ key: 'svc/\ud800', value: 'http://a:1' }).error as Error).message).toMatch(
      /key "svc\/\\ud800" contains a lone UTF-16 surrogate/,
    );
    expect((tryRegistrar({ key: 'svc/a', value: 'http://a:1\udfff' }).error as Error).message).toMatch(
      /the value of "svc\/a" contains a lone UTF-16 surrogate/,
    );
    // gokit writes the address as is; etcdNaming and json escape it (\ufffd, \udfff), which is fine.
    expect(tryRegistrar({ key: 'svc/a', instance: { address: 'a:1\ud800' } }).error).toBeInstanceOf(
      TypeError,
    );
    expect(
      tryRegistrar({ key: 'svc/a', instance: { address: 'a:1\ud800' }, codec: codecs.json }).error,
    ).toBeUndefined();
  });

  it('a registration larger than etcd accepts: refused iff key + value + overhead (+ username) > maxRequestBytes', () => {
    let refused = 0;
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: 1024, max: 8192 }),
        fc.constantFrom('', '/tenant-a/'),
        fc.option(
          fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !/\p{Surrogate}/u.test(s)),
          {
            nil: undefined,
          },
        ),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 9000 }),
        fc.constantFrom('x', 'é', '😀'), // 1, 2 and 4 UTF-8 bytes: sizes are bytes, not characters
        (limit, namespace, username, keyLength, valueLength, unit) => {
          const key = `svc/${'k'.repeat(keyLength)}`;
          const value = unit.repeat(Math.ceil(valueLength / unit.length));
          const shape: FakeClientShape = { namespace, maxRequestBytes: limit };
          if (username !== undefined) shape.username = username;
          const { error, calls } = tryRegistrar({ key, value }, shape);
          const total =
            Buffer.byteLength(namespace + key) +
            Buffer.byteLength(value) +
            PUT_REQUEST_OVERHEAD_BYTES +
            Buffer.byteLength(username ?? '');
          expect(calls).toEqual([]);
          if (total <= limit) {
            accepted++;
            expect(error).toBeUndefined();
            return;
          }
          refused++;
          expect(error).toBeInstanceOf(TypeError);
          const message = (error as Error).message;
          expect(message).toContain(
            `the registration of ${JSON.stringify(clip(key, 200))} is too large for etcd`,
          );
          expect(message).toContain(`value ${Buffer.byteLength(value)} bytes`);
          expect(message).toContain(`= ${total} bytes, over the limit of ${limit} bytes`);
          expect(message).toContain("must match etcd's --max-request-bytes");
          expect(message).toContain('nothing was written');
        },
      ),
      { numRuns: 500 },
    );
    expect(refused).toBeGreaterThan(50);
    expect(accepted).toBeGreaterThan(50);
  });

  it("defaults to etcd's 1.5 MiB and counts the encoded instance (metadata included)", () => {
    const room = DEFAULT_MAX_REQUEST_BYTES - PUT_REQUEST_OVERHEAD_BYTES - 'svc/a'.length;
    expect(tryRegistrar({ key: 'svc/a', value: 'v'.repeat(room) }).error).toBeUndefined();
    expect((tryRegistrar({ key: 'svc/a', value: 'v'.repeat(room + 1) }).error as Error).message).toMatch(
      /= 1572865 bytes, over the limit of 1572864 bytes/,
    );
    const blob = 'b'.repeat(DEFAULT_MAX_REQUEST_BYTES);
    const { error, calls } = tryRegistrar({
      key: 'svc/a',
      instance: { address: '10.0.0.1:80', metadata: { blob } },
      codec: codecs.etcdNaming,
    });
    expect((error as Error).message).toMatch(/too large for etcd/);
    expect((error as Error).message.length).toBeLessThan(600); // names sizes, never dumps the value
    expect(calls).toEqual([]);
  });

  it('an address longer than MAX_ADDRESS_LENGTH, empty, or not a string: refused by the codec, naming the key', () => {
    for (const address of ['', 'a'.repeat(8193), 42, null]) {
      const { error, calls } = tryRegistrar({
        key: 'svc/a',
        instance: { address: address as string },
      });
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(/^EtcdRegistrar: codec auto cannot encode instance "svc\/a"/);
      expect(calls).toEqual([]);
    }
  });
});

describe('createEtcdClient maxRequestBytes', () => {
  const ok = ['http://127.0.0.1:2379'];
  for (const bad of [0, 1023, 1500.5, Number.NaN, Number.POSITIVE_INFINITY, -1, '1572864']) {
    it(`refuses ${String(bad)} with a TypeError, before connecting`, async () => {
      const err = await createEtcdClient({
        endpoints: ok,
        maxRequestBytes: bad,
      } as unknown as EtcdClientOptions).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err).toBeInstanceOf(TypeError);
      expect(err?.message).toMatch(
        /maxRequestBytes must be an integer >= 1024 matching etcd's --max-request-bytes/,
      );
    });
  }
});

describe('mistakes people make get an answer that names the fix', () => {
  const logger = recordingLogger();
  const client = clientOf(new ByteEtcd(''), logger);

  it('a client passed without await: "did you forget await?", not an internal class name', () => {
    const promised = Promise.resolve(client) as unknown as EtcdClient;
    expect(() => new EtcdInstancer(promised, { prefix: 'svc/' })).toThrow(
      /got a Promise \(did you forget `await`/,
    );
    expect(() => new EtcdRegistrar(promised, { key: 'svc/a', value: 'http://a:1' })).toThrow(
      /^EtcdRegistrar: client must be an EtcdClient from `await createEtcdClient\(…\)`, got a Promise \(did you forget `await`/,
    );
    expect(() => new EtcdLeasePool(promised)).toThrow(/did you forget `await`/);
  });

  it('unknown options are refused, naming them and the right name', async () => {
    const err = await createEtcdClient({
      endpoints: ['http://127.0.0.1:2379'],
      dialTimeout: 500,
    } as unknown as EtcdClientOptions).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(TypeError);
    expect(err?.message).toMatch(
      /^createEtcdClient: unknown option "dialTimeout" \(did you mean "dialTimeoutMs"\?\)/,
    );
    const pool = new EtcdLeasePool(client, { [leaseBackendOverride]: {} as LeaseBackend });
    expect(
      () =>
        new EtcdRegistrar(client, {
          key: 'svc/a',
          value: 'x',
          ttl: 5,
          lease: pool,
        } as unknown as EtcdRegistrarOptions),
    ).toThrow(/^EtcdRegistrar: unknown option "ttl" \(did you mean "ttlSeconds"\?\)/);
    expect(() => new EtcdInstancer(client, { prefix: 'svc/', format: codecs.gokit } as never)).toThrow(
      /^EtcdInstancer: unknown option "format" \(did you mean "codec"\?\)/,
    );
  });

  it('a prefix without a trailing "/" is warned about once: it also matches its siblings', () => {
    const before = logger.records.length;
    new EtcdInstancer(client, { prefix: 'warn-me' }).stop();
    new EtcdInstancer(client, { prefix: 'warn-me' }).stop();
    new EtcdInstancer(client, { prefix: 'quiet/' }).stop();
    const warnings = logger.records.slice(before).filter((r) => r.level === 'warn');
    expect(warnings.map((r) => r.msg)).toEqual([
      'sdkit: EtcdInstancer: prefix "warn-me" has no trailing "/", so it also matches keys like "warn-me-canary/…"; add the "/" unless that is what you want',
    ]);
  });
});
