/**
 * The HTTP transport against a scripted `fetch` and a {@link FakeClock}: deadlines, idle bounds, failover, token
 * sharing and renewal, close(), stream splitting and handler isolation, deterministically. Real etcd behaviour is
 * covered by `http-transport.integration.test.ts`. Also checks that the transport's sources stay portable.
 */
import { readFileSync } from 'node:fs';
import { FakeClock, recordingLogger } from '@sdkit/sd-core/testing';
import { describe, expect, it, vi } from 'vitest';
import { createHttpTransport, EtcdHttpError, type HttpTransportOptions } from './http-transport.js';
import type { EtcdTransport, WatchHandlers, WatchResponse } from './transport.js';

const utf8 = new TextEncoder();
const HEADER = { cluster_id: '1', member_id: '2', revision: '5', raft_term: '2' };

interface SeenRequest {
  readonly url: string;
  readonly path: string;
  readonly body: Record<string, unknown>;
  readonly authorization: string | null;
  readonly signal: AbortSignal;
}

type Script = (req: SeenRequest) => Response | Promise<Response>;

function abortError(): Error {
  return new DOMException('This operation was aborted', 'AbortError');
}

/** A `fetch` answering by `script`, honouring the request's signal (before and while answering). */
function scriptedFetch(script: Script): { fetch: typeof fetch; requests: SeenRequest[] } {
  const requests: SeenRequest[] = [];
  const fake = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = String(input);
    const signal = init!.signal!;
    const headers = new Headers(init!.headers);
    const req: SeenRequest = {
      url,
      path: new URL(url).pathname,
      body: JSON.parse(String(init!.body)) as Record<string, unknown>,
      authorization: headers.get('authorization'),
      signal,
    };
    requests.push(req);
    if (signal.aborted) throw abortError();
    return await new Promise<Response>((resolve, reject) => {
      signal.addEventListener('abort', () => reject(abortError()), { once: true });
      Promise.resolve()
        .then(() => script(req))
        .then(resolve, reject);
    });
  };
  return { fetch: fake as typeof fetch, requests };
}

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status });
const never = () => new Promise<Response>(() => {});

/** A streamed 200 answer the test writes into; it errors when the request is aborted. */
function streamed(signal: AbortSignal): { response: Response; send(text: string): void; end(): void } {
  let ctl!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      ctl = c;
    },
  });
  signal.addEventListener('abort', () => {
    try {
      ctl.error(abortError());
    } catch {
      // already closed
    }
  });
  return {
    response: new Response(body),
    send: (text) => ctl.enqueue(utf8.encode(text)),
    end: () => ctl.close(),
  };
}

function transport(script: Script, options: Partial<HttpTransportOptions> = {}) {
  const clock = new FakeClock();
  const logger = recordingLogger();
  const { fetch, requests } = scriptedFetch(script);
  const t = createHttpTransport({
    endpoints: ['http://a:1'],
    fetch,
    clock,
    logger,
    keepAlive: { timeMs: 30_000, timeoutMs: 2_000 },
    ...options,
  });
  return { t, clock, logger, requests };
}

/** Handlers recording every call, in order. */
function recorder() {
  const calls: Array<{ response: WatchResponse } | { failed: Error } | { quiet: true }> = [];
  const handlers: WatchHandlers = {
    response: (response) => calls.push({ response }),
    failed: (failed) => calls.push({ failed }),
    quiet: () => calls.push({ quiet: true }),
  };
  return { calls, handlers };
}

async function rejection(promise: Promise<unknown>): Promise<EtcdHttpError> {
  const error = await promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(EtcdHttpError);
  return error as EtcdHttpError;
}

const key = (s: string) => utf8.encode(s);
const range = (t: EtcdTransport) => t.range({ key: key('a'), rangeEnd: new Uint8Array(0) });

describe('portability of the HTTP transport sources', () => {
  const files = [
    'http-transport.ts',
    'http-auth.ts',
    'http-watch.ts',
    'http-answer.ts',
    'http-wire.ts',
    'ndjson-reader.ts',
    'etcd-http-error.ts',
    'transport.ts',
  ];
  for (const file of files) {
    it(`${file} uses no Node-only module or global and no timer but the injected clock`, () => {
      const source = readFileSync(new URL(`./${file}`, import.meta.url), 'utf8');
      const code = source.replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, ''); // comments may mention anything
      expect(code).not.toMatch(/from\s+['"]node:|require\(|\bBuffer\b|\bprocess\b|\betcd3\b|__dirname/);
      expect(code).not.toMatch(/(^|[^.\w])(setTimeout|setInterval|setImmediate|clearTimeout)\s*\(/m);
      for (const [, spec] of code.matchAll(/\bfrom\s+'([^']+)'/g)) {
        expect(spec === '@sdkit/sd-core' || /^\.\/[\w-]+\.js$/.test(spec!), `import of ${spec}`).toBe(true);
      }
      for (const line of code.split('\n').filter((l) => l.includes("'@sdkit/sd-core'"))) {
        expect(line, 'only types from sd-core').toMatch(/^import type /);
      }
    });
  }
});

describe('HTTP transport calls (scripted fetch)', () => {
  it('a network failure is unavailable, says why (the cause), and moves the next call to the next endpoint', async () => {
    const { t, requests, logger } = transport(
      (req) => {
        if (req.url.startsWith('http://a:1')) {
          throw new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 10.0.0.1:1') });
        }
        return json({ header: HEADER, count: '3' });
      },
      { endpoints: ['http://a:1', 'http://b:2/'] },
    );
    const error = await rejection(range(t));
    expect(t.classify(error)).toBe('unavailable');
    expect(error.message).toBe(
      'etcd http://a:1: POST /v3/kv/range: fetch failed (connect ECONNREFUSED 10.0.0.1:1)',
    );
    expect((await range(t)).count).toBe('3');
    expect((await range(t)).count).toBe('3'); // sticks to b
    expect(requests.map((r) => r.url)).toEqual([
      'http://a:1/v3/kv/range',
      'http://b:2/v3/kv/range',
      'http://b:2/v3/kv/range',
    ]);
    expect(logger.records.filter((r) => r.level === 'warn').map((r) => r.obj.next)).toEqual(['http://b:2']);
  });

  it('an AggregateError cause without a message still says what failed', async () => {
    const refused = Object.assign(new AggregateError([new Error('connect ECONNREFUSED ::1:1')], ''), {
      code: 'ECONNREFUSED',
    });
    const { t } = transport(() => {
      throw new TypeError('fetch failed', { cause: refused });
    });
    expect((await rejection(range(t))).message).toMatch(/fetch failed \(connect ECONNREFUSED ::1:1\)$/);
  });

  it('etcd errors keep code, status and message; other errors are not retried elsewhere', async () => {
    const { t, requests } = transport(
      () =>
        json(
          { error: 'etcdserver: permission denied', message: 'etcdserver: permission denied', code: 7 },
          403,
        ),
      { endpoints: ['http://a:1', 'http://b:2'] },
    );
    const error = await rejection(t.put(key('k'), key('v')));
    expect([error.kind, error.code, error.status, error.etcdMessage, error.path]).toEqual([
      'permission-denied',
      7,
      403,
      'etcdserver: permission denied',
      '/v3/kv/put',
    ]);
    expect(error.message).toBe(
      "etcd http://a:1: POST /v3/kv/put: etcdserver: permission denied (gRPC code 7, HTTP 403); the user's roles do not allow this",
    );
    await rejection(t.put(key('k'), key('v')));
    expect(requests.map((r) => r.url)).toEqual(['http://a:1/v3/kv/put', 'http://a:1/v3/kv/put']);
  });

  it('a call without an answer fails at its deadline (timeoutMs, else requestTimeoutMs), unavailable', async () => {
    const { t, clock } = transport(never, { requestTimeoutMs: 700 });
    const byDefault = rejection(range(t));
    const explicit = rejection(t.leaseGrant(5, { timeoutMs: 300 }));
    await vi.waitFor(() => expect(clock.pendingTimers).toBe(2));
    clock.advance(299);
    clock.advance(1);
    const e1 = await explicit;
    expect(e1.kind).toBe('unavailable');
    expect(e1.message).toBe('etcd http://a:1: POST /v3/lease/grant: no answer within 300 ms');
    clock.advance(400);
    expect((await byDefault).message).toMatch(/no answer within 700 ms$/);
    expect(clock.pendingTimers).toBe(0);
  });

  it("the caller's signal aborts a call", async () => {
    const { t } = transport(never);
    const controller = new AbortController();
    const call = rejection(range(t).then(() => undefined));
    const aborted = rejection(t.leaseRevoke('5', { signal: controller.signal }));
    controller.abort(new Error('shutting down'));
    const error = await aborted;
    expect(error.kind).toBe('other');
    expect(error.message).toMatch(/aborted by the caller$/);
    expect((error.cause as Error).message).toBe('shutting down');
    t.close();
    expect((await call).kind).toBe('closed');
  });

  it('close(): calls in flight and later calls reject `closed`', async () => {
    const { t, clock } = transport(never);
    const inFlight = rejection(range(t));
    t.close();
    t.close();
    expect(t.classify(await inFlight)).toBe('closed');
    expect(t.classify(await rejection(t.leaseKeepAlive('1')))).toBe('closed');
    expect(clock.pendingTimers).toBe(0);
  });

  it('revoke of an unknown lease resolves; keep-alive of an unknown lease is 0 (TTL omitted)', async () => {
    const { t } = transport((req) => {
      if (req.path === '/v3/lease/revoke') {
        const m = 'etcdserver: requested lease not found';
        return json({ error: m, message: m, code: 5 }, 404);
      }
      return new Response(`${JSON.stringify({ result: { header: HEADER, ID: '12' } })}\n`);
    });
    await expect(t.leaseRevoke('12')).resolves.toBeUndefined();
    expect(await t.leaseKeepAlive('12')).toBe(0);
  });

  it('keep-alive: takes the first line of the stream and drops the rest of the answer', async () => {
    let stream: ReturnType<typeof streamed> | undefined;
    const { t } = transport((req) => {
      stream = streamed(req.signal);
      return stream.response;
    });
    const ttl = t.leaseKeepAlive('12');
    await vi.waitFor(() => expect(stream).toBeDefined());
    stream!.send('{"result":{"header":{"revision":"5"},"ID":"12",');
    stream!.send('"TTL":"9"}}\n{"result"');
    expect(await ttl).toBe(9);
    await vi.waitFor(() => expect(() => stream!.send('x')).toThrow()); // the answer was dropped
  });
});

describe('HTTP transport auth (scripted fetch)', () => {
  function authScript(tokens: string[], expired: Set<string>) {
    let issued = 0;
    return (req: SeenRequest): Response | Promise<Response> => {
      if (req.path === '/v3/auth/authenticate') {
        if (req.body.password !== 'pw') {
          const m = 'etcdserver: authentication failed, invalid user ID or password';
          return json({ error: m, message: m, code: 3 }, 400);
        }
        const token = `tok${issued++}`;
        tokens.push(token);
        return json({ header: HEADER, token });
      }
      if (req.authorization === null || expired.has(req.authorization)) {
        const m = 'etcdserver: invalid auth token';
        return json({ error: m, message: m, code: 16 }, 401);
      }
      return json({ header: HEADER, count: '1' });
    };
  }

  it('concurrent calls share one authentication; the raw token goes in Authorization', async () => {
    const tokens: string[] = [];
    const { t, requests } = transport(authScript(tokens, new Set()), {
      auth: { username: 'u', password: 'pw' },
    });
    await Promise.all([range(t), range(t), range(t)]);
    expect(requests.filter((r) => r.path === '/v3/auth/authenticate')).toHaveLength(1);
    expect(requests.filter((r) => r.path === '/v3/kv/range').map((r) => r.authorization)).toEqual([
      'tok0',
      'tok0',
      'tok0',
    ]);
  });

  it('an expired token: one new authentication shared by the calls refused, each retried once', async () => {
    const tokens: string[] = [];
    const expired = new Set<string>();
    const { t, requests } = transport(authScript(tokens, expired), {
      auth: { username: 'u', password: 'pw' },
    });
    await range(t);
    expired.add('tok0');
    await Promise.all([range(t), range(t)]);
    expect(tokens).toEqual(['tok0', 'tok1']);
    expect(requests.filter((r) => r.path === '/v3/kv/range').map((r) => r.authorization)).toEqual([
      'tok0',
      'tok0',
      'tok0',
      'tok1',
      'tok1',
    ]);
    // Refused again after renewal: no loop, the call fails unauthenticated.
    expired.add('tok1');
    expired.add('tok2');
    const error = await rejection(range(t));
    expect(error.kind).toBe('unauthenticated');
    expect(tokens).toEqual(['tok0', 'tok1', 'tok2']);
  });

  it('wrong password: authentication-failed, the password in no message or log', async () => {
    const { t, logger } = transport(authScript([], new Set()), {
      auth: { username: 'u', password: 'secret-Pa55' },
    });
    const error = await rejection(range(t));
    expect(error.kind).toBe('authentication-failed');
    expect(error.message).toBe(
      'etcd http://a:1: POST /v3/auth/authenticate (user "u"): etcdserver: authentication failed, invalid user ID or password (gRPC code 3, HTTP 400); wrong username or password',
    );
    expect(JSON.stringify(logger.records)).not.toContain('secret-Pa55');
  });
});

describe('HTTP transport watch (scripted fetch)', () => {
  const created = JSON.stringify({ result: { header: HEADER, created: true } });
  const put = (k: string, rev: string) =>
    JSON.stringify({
      result: { header: { ...HEADER, revision: rev }, events: [{ kv: { key: btoa(k), mod_revision: rev } }] },
    });

  function watchScript() {
    const streams: Array<ReturnType<typeof streamed>> = [];
    const script: Script = (req) => {
      const s = streamed(req.signal);
      streams.push(s);
      return s.response;
    };
    return { streams, script };
  }

  const request = { key: key('/s/'), rangeEnd: key('/s0'), startRevision: '6' };

  it('delivers responses split anywhere, then fails (unavailable, with etcd message) on the last line without newline', async () => {
    const { streams, script } = watchScript();
    const { t, requests } = transport(script);
    const { calls, handlers } = recorder();
    t.watch(request, handlers);
    expect(calls).toEqual([]); // never from inside watch()
    await vi.waitFor(() => expect(streams).toHaveLength(1));
    expect(requests[0]!.body).toEqual({
      create_request: {
        key: 'L3Mv',
        range_end: 'L3Mw',
        start_revision: '6',
        progress_notify: true,
        fragment: true,
      },
    });
    const text = `${created}\n${put('/s/a', '6')}\n${put('/s/b', '7')}\n{"error":{"grpc_code":14,"http_code":503,"message":"transport is closing","http_status":"Service Unavailable"}}`;
    for (let i = 0; i < text.length; i += 7) streams[0]!.send(text.slice(i, i + 7));
    streams[0]!.end();
    await vi.waitFor(() => expect(calls).toHaveLength(4));
    const [c, a, b, f] = calls as [
      { response: WatchResponse },
      { response: WatchResponse },
      { response: WatchResponse },
      { failed: EtcdHttpError },
    ];
    expect(c.response.created).toBe(true);
    expect([a, b].map((x) => new TextDecoder().decode(x.response.events[0]!.kv.key))).toEqual([
      '/s/a',
      '/s/b',
    ]);
    expect(f.failed.kind).toBe('unavailable');
    expect(f.failed.code).toBe(14);
    expect(f.failed.message).toBe(
      'etcd http://a:1: POST /v3/watch: etcd ended the stream: transport is closing (gRPC code 14)',
    );
  });

  it('a clean end without an error line is a failure too', async () => {
    const { streams, script } = watchScript();
    const { t } = transport(script);
    const { calls, handlers } = recorder();
    t.watch(request, handlers);
    await vi.waitFor(() => expect(streams).toHaveLength(1));
    streams[0]!.send(`${created}\n`);
    streams[0]!.end();
    await vi.waitFor(() => expect(calls).toHaveLength(2));
    expect((calls[1] as { failed: EtcdHttpError }).failed.message).toBe(
      'etcd http://a:1: POST /v3/watch: etcd ended the watch stream',
    );
  });

  it('no created answer within keepAlive.timeoutMs: failed; no bytes for keepAlive.timeMs after it: quiet', async () => {
    const { streams, script } = watchScript();
    const { t, clock } = transport(script, { keepAlive: { timeMs: 1000, timeoutMs: 300 } });
    const slow = recorder();
    t.watch(request, slow.handlers);
    await vi.waitFor(() => expect(streams).toHaveLength(1));
    clock.advance(299);
    await Promise.resolve();
    expect(slow.calls).toEqual([]);
    clock.advance(1);
    await vi.waitFor(() => expect(slow.calls).toHaveLength(1));
    expect((slow.calls[0] as { failed: EtcdHttpError }).failed.message).toBe(
      'etcd http://a:1: POST /v3/watch: no watch created within 300 ms',
    );

    const idle = recorder();
    t.watch(request, idle.handlers);
    await vi.waitFor(() => expect(streams).toHaveLength(2));
    streams[1]!.send(`${created}\n`);
    await vi.waitFor(() => expect(idle.calls).toHaveLength(1));
    clock.advance(600);
    streams[1]!.send(`${put('/s/a', '6')}\n`); // bytes push the idle bound back
    await vi.waitFor(() => expect(idle.calls).toHaveLength(2));
    clock.advance(999);
    expect(idle.calls).toHaveLength(2);
    clock.advance(1);
    expect(idle.calls[2]).toEqual({ quiet: true });
    expect(() => streams[1]!.send('x')).toThrow(); // the request was aborted
    expect(clock.pendingTimers).toBe(0);
  });

  it('keepAlive false: no idle bound; the created deadline is requestTimeoutMs', async () => {
    const { streams, script } = watchScript();
    const { t, clock } = transport(script, { keepAlive: false, requestTimeoutMs: 800 });
    const w = recorder();
    t.watch(request, w.handlers);
    await vi.waitFor(() => expect(streams).toHaveLength(1));
    streams[0]!.send(`${created}\n`);
    await vi.waitFor(() => expect(w.calls).toHaveLength(1));
    expect(clock.pendingTimers).toBe(0);
    const late = recorder();
    t.watch(request, late.handlers);
    await vi.waitFor(() => expect(streams).toHaveLength(2));
    clock.advance(800);
    await vi.waitFor(() => expect(late.calls).toHaveLength(1));
    expect((late.calls[0] as { failed: Error }).failed.message).toMatch(/no watch created within 800 ms$/);
  });

  it('refused at creation (created + canceled with an rpc error): failed, classified', async () => {
    const { streams, script } = watchScript();
    const { t } = transport(script);
    const { calls, handlers } = recorder();
    t.watch(request, handlers);
    await vi.waitFor(() => expect(streams).toHaveLength(1));
    const reason = 'rpc error: code = PermissionDenied desc = etcdserver: permission denied';
    streams[0]!.send(
      `${JSON.stringify({ result: { header: HEADER, watch_id: '-1', created: true, canceled: true, cancel_reason: reason } })}\n`,
    );
    await vi.waitFor(() => expect(calls).toHaveLength(1));
    const error = (calls[0] as { failed: EtcdHttpError }).failed;
    expect([t.classify(error), error.code, error.etcdMessage]).toEqual([
      'permission-denied',
      7,
      'etcdserver: permission denied',
    ]);
  });

  it('a watch refused for an expired token is re-opened once with a new token, unseen by the caller', async () => {
    const streams: Array<ReturnType<typeof streamed>> = [];
    let issued = 0;
    const { t, requests } = transport(
      (req) => {
        if (req.path === '/v3/auth/authenticate') return json({ header: HEADER, token: `tok${issued++}` });
        const s = streamed(req.signal);
        streams.push(s);
        return s.response;
      },
      { auth: { username: 'u', password: 'pw' } },
    );
    const { calls, handlers } = recorder();
    t.watch(request, handlers);
    await vi.waitFor(() => expect(streams).toHaveLength(1));
    const reason = 'rpc error: code = Unauthenticated desc = etcdserver: invalid auth token';
    streams[0]!.send(
      `${JSON.stringify({ result: { header: HEADER, watch_id: '-1', created: true, canceled: true, cancel_reason: reason } })}\n`,
    );
    await vi.waitFor(() => expect(streams).toHaveLength(2));
    streams[1]!.send(`${created}\n`);
    await vi.waitFor(() => expect(calls).toHaveLength(1));
    expect((calls[0] as { response: WatchResponse }).response).toMatchObject({
      created: true,
      canceled: false,
    });
    expect(requests.map((r) => `${r.path} ${r.authorization}`)).toEqual([
      '/v3/auth/authenticate null',
      '/v3/watch tok0',
      '/v3/auth/authenticate null',
      '/v3/watch tok1',
    ]);
    // Refused again right after the renewal: reported, no loop.
    const again = recorder();
    t.watch(request, again.handlers);
    const refuse = `${JSON.stringify({ result: { header: HEADER, watch_id: '-1', created: true, canceled: true, cancel_reason: reason } })}\n`;
    await vi.waitFor(() => expect(streams).toHaveLength(3));
    streams[2]!.send(refuse);
    await vi.waitFor(() => expect(streams).toHaveLength(4));
    streams[3]!.send(refuse);
    await vi.waitFor(() => expect(again.calls).toHaveLength(1));
    expect(t.classify((again.calls[0] as { failed: Error }).failed)).toBe('unauthenticated');
    expect(issued).toBe(3); // tok1 (still current), refused; tok2, refused: reported
    // After close(), a new watch fails `closed` (asynchronously).
    t.close();
    const late = recorder();
    t.watch(request, late.handlers);
    expect(late.calls).toEqual([]);
    await vi.waitFor(() => expect(late.calls).toHaveLength(1));
    expect(t.classify((late.calls[0] as { failed: Error }).failed)).toBe('closed');
  });

  it('close() and WatchStream.close(): no handler afterwards; a handler that throws is logged, not a failure', async () => {
    const { streams, script } = watchScript();
    const { t, logger, clock } = transport(script);
    const a = recorder();
    let thrown = 0;
    const b: WatchHandlers = {
      ...a.handlers,
      response: (r) => {
        thrown++;
        a.handlers.response(r);
        throw new Error('handler bug');
      },
    };
    const w1 = t.watch(request, b);
    const second = recorder();
    t.watch(request, second.handlers);
    await vi.waitFor(() => expect(streams).toHaveLength(2));
    streams[0]!.send(`${created}\n${put('/s/a', '6')}\n`);
    await vi.waitFor(() => expect(a.calls).toHaveLength(2));
    expect(thrown).toBe(2);
    expect(logger.records.filter((r) => r.level === 'error').map((r) => r.msg)).toEqual([
      'etcd watch handler response() threw',
      'etcd watch handler response() threw',
    ]);
    w1.close();
    w1.close();
    expect(() => streams[0]!.send('x')).toThrow();
    t.close();
    expect(() => streams[1]!.send('x')).toThrow();
    clock.advance(60_000);
    await new Promise((r) => setTimeout(r, 0));
    expect(a.calls).toHaveLength(2);
    expect(second.calls).toEqual([]);
    expect(clock.pendingTimers).toBe(0);
  });
});
