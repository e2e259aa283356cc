import { credentials, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { parseUri } from '@grpc/grpc-js/build/src/uri-parser.js';
import type { Logger } from '@sdkit/sd-core';
import {
  codecs,
  createEtcdClient,
  type EtcdClient,
  EtcdRegistrar,
  etcdPrefixForTarget,
} from '@sdkit/sd-etcd';
import { type EtcdServer, eventually, startEtcd } from '@sdkit/test-harness';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { registerEtcdScheme } from './etcd-scheme.js';
import { EchoClient, type EchoServer, startEchoServer, type WhoReply } from './fixtures/echo-server.mjs';
import type { SchemeRegistration } from './resolver.js';

type ServiceClient = InstanceType<typeof EchoClient>;

// Real etcd + real grpc-js servers on 127.0.0.1: `new EchoClient('etcd:///svc', …)` follows etcd.

let etcd: EtcdServer;
let client: EtcdClient;
let registration: SchemeRegistration;
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  etcd = await startEtcd({ name: 'sd-grpc-scheme' });
  client = await createEtcdClient({ endpoints: etcd.endpoints });
  registration = registerEtcdScheme(client);
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});
afterAll(async () => {
  registration?.();
  await client?.close();
  await etcd?.close();
});

async function server(id: string): Promise<EchoServer> {
  const s = await startEchoServer(id);
  cleanups.push(() => s.kill());
  return s;
}

function channel(target: string): ServiceClient {
  const c = new EchoClient(target, credentials.createInsecure());
  cleanups.push(() => c.close());
  return c;
}

/** `etcdNaming` registration of a server under `<service>/<addr>`, as etcd's own naming package writes it. */
async function register(service: string, s: EchoServer): Promise<EtcdRegistrar> {
  const r = new EtcdRegistrar(client, {
    key: `${service}/${s.address}`,
    instance: { address: s.address },
    codec: codecs.etcdNaming,
    ttlSeconds: 5,
  });
  cleanups.push(() => r[Symbol.asyncDispose]());
  await r.register();
  return r;
}

/** One unary call; resolves with the reply or the ServiceError (never rejects), and how long it took. */
function who(
  c: ServiceClient,
  deadlineMs = 5000,
): Promise<{ reply?: WhoReply; error?: ServiceError; ms: number }> {
  const start = performance.now();
  return new Promise((resolve) => {
    c.Who!(
      { name: 'x' },
      new Metadata(),
      { deadline: Date.now() + deadlineMs },
      (error: ServiceError | null, reply: WhoReply) =>
        resolve(error ? { error, ms: performance.now() - start } : { reply, ms: performance.now() - start }),
    );
  });
}

/** `eventually` for assertions: retries `check` (bounded) until it stops throwing. */
function until(check: () => unknown, what: string, timeoutMs?: number): Promise<true> {
  return eventually(
    async () => {
      await check();
      return true as const;
    },
    what,
    timeoutMs,
  );
}

/** Calls until every id in `ids` answered (bounded); returns the ids seen. */
async function reachAll(c: ServiceClient, ids: string[]): Promise<Set<string>> {
  const seen = new Set<string>();
  await until(
    async () => {
      const r = await who(c);
      if (r.reply) seen.add(r.reply.id);
      expect([...seen].sort()).toEqual([...ids].sort());
    },
    `calls reaching ${ids.join(', ')}`,
  );
  return seen;
}

describe('etcd:/// targets on real etcd and real gRPC servers', () => {
  it('reaches servers an EtcdRegistrar registered with codecs.etcdNaming, balanced round robin', async () => {
    const a = await server('a');
    const b = await server('b');
    await register('svc-reg', a);
    await register('svc-reg', b);
    const c = channel('etcd:///svc-reg');
    await reachAll(c, ['a', 'b']);
    // Round robin: 20 more calls split evenly between the two.
    const counts = new Map<string, number>();
    for (let i = 0; i < 20; i++) {
      const r = await who(c);
      expect(r.error).toBeUndefined();
      counts.set(r.reply!.id, (counts.get(r.reply!.id) ?? 0) + 1);
    }
    expect(Object.fromEntries(counts)).toEqual({ a: 10, b: 10 });
  });

  it("reaches servers added with plain etcdctl put (etcd's documented format), and drops them on del", async () => {
    const a = await server('ctl-a');
    await etcd.etcdctl('put', `svc-ctl/${a.address}`, JSON.stringify({ Addr: a.address }));
    cleanups.push(() => etcd.etcdctl('del', '--prefix', 'svc-ctl/'));
    const c = channel('etcd:///svc-ctl');
    await reachAll(c, ['ctl-a']);

    await etcd.etcdctl('del', `svc-ctl/${a.address}`);
    // The server is still up: only the resolver can make calls fail, and it says why.
    await until(async () => {
      const r = await who(c);
      expect(r.error?.code).toBe(status.UNAVAILABLE);
      expect(r.error?.details).toContain('no instances of etcd:///svc-ctl');
    }, 'calls failing after etcdctl del');
    expect(a.state.inFlight).toBe(0);
  });

  it('rolling replacement under continuous calls: no failed call, calls spread over the live servers', async () => {
    const servers = new Map<string, EchoServer>();
    const registrars = new Map<string, EtcdRegistrar>();
    for (const id of ['r1', 'r2']) {
      const s = await server(id);
      servers.set(id, s);
      registrars.set(id, await register('svc-roll', s));
    }
    const c = channel('etcd:///svc-roll');
    await reachAll(c, ['r1', 'r2']);

    const failures: ServiceError[] = [];
    const counts = new Map<string, number>();
    const recent: string[] = [];
    let running = true;
    const loops = [0, 1, 2].map(async () => {
      while (running) {
        const r = await who(c);
        if (r.error) failures.push(r.error);
        else {
          counts.set(r.reply!.id, (counts.get(r.reply!.id) ?? 0) + 1);
          recent.push(r.reply!.id);
          if (recent.length > 50) recent.shift();
        }
      }
    });
    /** Waits until the last 30 calls avoided `id` (round robin over ≤ 3 servers cannot do that while it's picked). */
    const drained = (id: string) =>
      until(() => {
        expect(recent.length).toBe(50);
        expect(recent.slice(-30)).not.toContain(id);
      }, `no call reaching ${id}`);

    try {
      for (const [oldId, newId] of [
        ['r1', 'r3'],
        ['r2', 'r4'],
      ] as const) {
        const s = await server(newId);
        servers.set(newId, s);
        registrars.set(newId, await register('svc-roll', s));
        await until(() => expect(recent.slice(-10)).toContain(newId), `calls reaching ${newId}`);
        recent.length = 0;
        await registrars.get(oldId)!.deregister();
        await drained(oldId);
        await servers.get(oldId)!.stop();
      }
      recent.length = 0;
      await until(() => {
        expect(recent.length).toBe(50);
        expect(new Set(recent.slice(-20))).toEqual(new Set(['r3', 'r4']));
      }, 'calls spread over r3 and r4');
    } finally {
      running = false;
      await Promise.all(loops);
    }
    expect(failures.map((e) => `${e.code} ${e.details}`)).toEqual([]);
    for (const id of ['r1', 'r2', 'r3', 'r4']) expect(counts.get(id) ?? 0).toBeGreaterThan(0);
  });

  it('scale to zero and back: calls fail fast with UNAVAILABLE while none exist, then succeed', async () => {
    const a = await server('z-a');
    const ra = await register('svc-zero', a);
    const c = channel('etcd:///svc-zero');
    await reachAll(c, ['z-a']);

    await ra.deregister();
    await a.stop();
    await until(async () => {
      const r = await who(c);
      expect(r.error?.details).toContain('no instances of etcd:///svc-zero');
    }, 'the empty set reaching the channel');
    const empty = await Promise.all(Array.from({ length: 5 }, () => who(c, 10_000)));
    for (const r of empty) {
      expect(r.error?.code).toBe(status.UNAVAILABLE);
      expect(r.error?.details).toContain('no instances of etcd:///svc-zero');
      expect(r.ms).toBeLessThan(1000); // fail fast, not at the 10 s deadline
    }

    const b = await server('z-b');
    const registeredAt = performance.now();
    await register('svc-zero', b);
    await reachAll(c, ['z-b']);
    expect(performance.now() - registeredAt).toBeLessThan(5000);
  });

  it('etcdPrefixForTarget: etcd naming layout, refuses authorities and empty paths', () => {
    // Targets as grpc-js's own parser hands them to the resolver.
    const prefix = (target: string) => etcdPrefixForTarget(parseUri(target)!);
    expect(prefix('etcd:///my-service')).toBe('my-service/');
    expect(prefix('etcd:////services/foo')).toBe('/services/foo/');
    expect(prefix('etcd:///svc/')).toBe('svc/');
    expect(prefix('etcd:svc/')).toBe('svc/');
    // Percent-decoded, as grpc-go's Target.Endpoint() is ('+' stays a plus in a path).
    expect(prefix('etcd:///my%20svc%2Fv1+x')).toBe('my svc/v1+x/');
    expect(() => prefix('etcd:bad%zz')).toThrow(/"etcd:bad%zz" has a malformed percent-encoding/);
    expect(() => prefix('etcd://h:2379/svc')).toThrow(
      new TypeError(
        'etcd target "etcd://h:2379/svc" has an authority; write etcd:///<service> (the etcd client decides which cluster is asked)',
      ),
    );
    expect(() => prefix('etcd:///')).toThrow(/"etcd:\/\/\/" names no service/);
    expect(() => prefix('etcd:////')).toThrow(/names no service/);
    expect(() => prefix('etcd://')).toThrow(/names no service/);
  });

  it('etcdPrefixForTarget: a service where the authority goes (etcd://svc) is refused, naming the fix', () => {
    // grpc-js splits off an authority only when a "/" follows it, so this arrives with no authority at all.
    expect(parseUri('etcd://greeter')).toEqual({ scheme: 'etcd', authority: undefined, path: '//greeter' });
    const twoSlashes = new TypeError(
      'etcd target "etcd://greeter" puts the service where the authority goes (two slashes); write etcd:///greeter (three slashes)',
    );
    expect(() => etcdPrefixForTarget(parseUri('etcd://greeter')!)).toThrow(twoSlashes);
    expect(() => etcdPrefixForTarget(parseUri('etcd://greeter/')!)).toThrow(
      /"etcd:\/\/greeter\/" puts the service where the authority goes .*write etcd:\/\/\/greeter \(three slashes\)/,
    );
    expect(() => etcdPrefixForTarget(parseUri('mine://a.b')!)).toThrow(/write mine:\/\/\/a\.b \(three/);
  });

  it('a target with an authority fails its calls with a clear UNAVAILABLE', async () => {
    const c = channel('etcd://somehost/svc');
    const r = await who(c);
    expect(r.error?.code).toBe(status.UNAVAILABLE);
    expect(r.error?.details).toContain('has an authority');
  });
});

/** A logger that keeps every `warn` and `error` entry. */
function recordingLogger(): Logger & {
  entries: Array<{ level: string; fields: Record<string, unknown>; msg?: string }>;
} {
  const entries: Array<{ level: string; fields: Record<string, unknown>; msg?: string }> = [];
  const keep =
    (level: string) =>
    (fields: object, msg?: string): void => {
      entries.push({
        level,
        fields: fields as Record<string, unknown>,
        ...(msg !== undefined ? { msg } : {}),
      });
    };
  return { entries, debug() {}, info() {}, warn: keep('warn'), error: keep('error') };
}

describe("over etcd's HTTP/JSON gateway", () => {
  it('a client with transport: http serves the same targets (its own scheme here, since etcd is taken)', async () => {
    const httpClient = await createEtcdClient({ transport: 'http', endpoints: etcd.endpoints });
    cleanups.push(() => httpClient.close());
    const unregister = registerEtcdScheme(httpClient, { scheme: 'etcdhttp' });
    cleanups.push(unregister);
    const a = await server('ha');
    const b = await server('hb');
    await register('svc-http', a);
    const c = channel('etcdhttp:///svc-http');
    await reachAll(c, ['ha']);
    // A registration after the channel exists reaches it through the HTTP watch.
    await register('svc-http', b);
    await reachAll(c, ['ha', 'hb']);
  });
});

describe('etcd:/// target forms and defaults, end to end', () => {
  it('etcd:///svc/ (trailing slash): calls succeed, with the service name as :authority', async () => {
    const a = await server('slash-a');
    await register('svc-slash', a);
    const c = channel('etcd:///svc-slash/');
    // Registered before the channel exists: the very first call must succeed (it used to fail with
    // "13 Received RST_STREAM with code 1", the server refusing the :authority "svc-slash/").
    const r = await who(c);
    expect(r.error?.details).toBeUndefined();
    expect(r.reply?.id).toBe('slash-a');
    expect([...a.state.authorities]).toEqual(['svc-slash']);
  });

  it("etcd:////services/foo (go-kit's layout, EtcdRegistrar defaults): calls succeed, :authority services.foo", async () => {
    const a = await server('gk-a');
    const r = new EtcdRegistrar(client, {
      key: `/services/foo-gk/${a.address}`,
      instance: { address: a.address },
    });
    cleanups.push(() => r[Symbol.asyncDispose]());
    await r.register();
    const c = channel('etcd:////services/foo-gk');
    const reply = await who(c);
    expect(reply.error?.details).toBeUndefined();
    expect(reply.reply?.id).toBe('gk-a');
    expect([...a.state.authorities]).toEqual(['services.foo-gk']);
  });

  it('EtcdRegistrar and registerEtcdScheme both on default options find each other', async () => {
    const a = await server('def-a');
    const r = new EtcdRegistrar(client, {
      key: `svc-defaults/${a.address}`,
      instance: { address: a.address },
    });
    cleanups.push(() => r[Symbol.asyncDispose]());
    await r.register();
    // The registrar's default is the plain go-kit instance string, not etcd-naming JSON.
    const stored = await etcd.etcdctl('get', `svc-defaults/${a.address}`, '--print-value-only');
    expect(stored.stdout.trim()).toBe(a.address);

    const c = channel('etcd:///svc-defaults'); // `registration` is registerEtcdScheme(client), no options
    const reply = await who(c);
    expect(reply.error?.details).toBeUndefined();
    expect(reply.reply?.id).toBe('def-a');
  });

  it('etcd://svc (two slashes) fails calls at once with UNAVAILABLE naming the fix, logged at error', async () => {
    const logger = recordingLogger();
    const reg = registerEtcdScheme(client, { scheme: 'etcd-two', logger });
    cleanups.push(reg);
    // A live server under the prefix the target used to be followed as ("//svc-two/"): it must not be reached.
    const a = await server('two-a');
    await etcd.etcdctl('put', `//svc-two/${a.address}`, JSON.stringify({ Addr: a.address }));
    cleanups.push(() => etcd.etcdctl('del', '--prefix', '//svc-two/'));

    const c = channel('etcd-two://svc-two');
    const r = await who(c, 10_000);
    expect(r.error?.code).toBe(status.UNAVAILABLE);
    expect(r.error?.details).toContain(
      'etcd-two://svc-two: etcd target "etcd-two://svc-two" puts the service where the authority goes (two slashes); write etcd-two:///svc-two (three slashes)',
    );
    expect(r.ms).toBeLessThan(1000); // the resolution failed; the call did not wait for its deadline
    expect(a.state.calls).toBe(0);
    expect(logger.entries).toContainEqual({
      level: 'error',
      fields: { target: 'etcd-two://svc-two', err: expect.stringContaining('write etcd-two:///svc-two') },
      msg: 'sdkit grpc resolver: cannot make an instancer for the target',
    });
  });

  it('values that cannot be read or dialled are skipped with a warning; the other instances serve', async () => {
    const logger = recordingLogger();
    const reg = registerEtcdScheme(client, { scheme: 'etcd-warn', logger });
    cleanups.push(reg);
    cleanups.push(() => etcd.etcdctl('del', '--prefix', 'svc-bad/'));
    await etcd.etcdctl('put', 'svc-bad/json-garbage', '{"neither":"Addr nor address"}');
    await etcd.etcdctl('put', 'svc-bad/no-port', 'not-an-address');
    const a = await server('bad-a');
    const r = new EtcdRegistrar(client, { key: `svc-bad/${a.address}`, instance: { address: a.address } });
    cleanups.push(() => r[Symbol.asyncDispose]());
    await r.register();

    const c = channel('etcd-warn:///svc-bad');
    const reply = await who(c);
    expect(reply.error?.details).toBeUndefined();
    expect(reply.reply?.id).toBe('bad-a');
    // Both were read in the initial range read, before the channel got its addresses: already logged.
    expect(logger.entries).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        fields: expect.objectContaining({ key: 'svc-bad/json-garbage', codec: 'auto' }),
      }),
    );
    expect(logger.entries).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        fields: expect.objectContaining({ key: 'svc-bad/no-port', address: 'not-an-address' }),
      }),
    );
  });
});
