import { type ChannelOptions, experimental, status } from '@grpc/grpc-js';
import { getDefaultAuthority } from '@grpc/grpc-js/build/src/resolver.js';
import { parseUri } from '@grpc/grpc-js/build/src/uri-parser.js';
import type { Instancer, Logger } from '@sdkit/sd-core';
import { FakeInstancer } from '@sdkit/sd-core/testing';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  defaultAuthorityForTarget,
  type GrpcTarget,
  isValidAuthority,
  registerInstancerScheme,
  type SchemeRegistration,
} from './resolver.js';

// Unit tests of the resolver semantics, through grpc-js's own `createResolver` (the same path a channel takes),
// with FakeInstancers as the source. No network.

interface Report {
  readonly endpoints: string[] | undefined;
  readonly error: { code: number; details: string } | undefined;
  readonly serviceConfig: unknown;
  readonly note: string;
}

let schemeSeq = 0;
const registrations: SchemeRegistration[] = [];
const resolvers: experimental.Resolver[] = [];
afterEach(() => {
  for (const r of resolvers.splice(0)) r.destroy();
  for (const reg of registrations.splice(0)) reg();
});

function endpointText(e: experimental.Endpoint): string {
  const a = e.addresses[0] as { host: string; port: number };
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Lets every pending nextTick/microtask run (reports are deferred to the next tick). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function recordingLogger(): Logger & { warnings: Array<Record<string, unknown>> } {
  const warnings: Array<Record<string, unknown>> = [];
  return {
    warnings,
    debug() {},
    info() {},
    warn(obj: object) {
      warnings.push(obj as Record<string, unknown>);
    },
    error(obj: object) {
      warnings.push(obj as Record<string, unknown>);
    },
  };
}

/** A scheme backed by FakeInstancers (one per start), and a resolver for `<scheme>:///svc` with a recorder. */
function setup(
  options: {
    initial?: string[];
    forTarget?: (target: GrpcTarget) => Instancer;
    logger?: Logger;
    channelOptions?: ChannelOptions;
    accept?: () => boolean;
  } = {},
) {
  const scheme = `fake${++schemeSeq}`;
  const fakes: FakeInstancer[] = [];
  const targets: GrpcTarget[] = [];
  const reg = registerInstancerScheme(
    scheme,
    options.forTarget ??
      ((target) => {
        targets.push(target);
        const fake = new FakeInstancer(options.initial);
        fakes.push(fake);
        return fake;
      }),
    options.logger ? { logger: options.logger } : {},
  );
  registrations.push(reg);
  const reports: Report[] = [];
  let waiter: (() => void) | undefined;
  const listener: experimental.ResolverListener = (endpointList, _attrs, serviceConfig, note) => {
    reports.push({
      endpoints: endpointList.ok ? endpointList.value.map(endpointText) : undefined,
      error: endpointList.ok
        ? undefined
        : { code: endpointList.error.code, details: endpointList.error.details },
      serviceConfig:
        serviceConfig === null ? null : serviceConfig.ok ? serviceConfig.value : serviceConfig.error,
      note,
    });
    waiter?.();
    return options.accept ? options.accept() : true;
  };
  const uri = { scheme, authority: '', path: 'svc' };
  const resolver = experimental.createResolver(uri, listener, options.channelOptions ?? {});
  resolvers.push(resolver);
  /** Resolves with the next report (bounded). */
  const nextReport = (timeoutMs = 2000): Promise<Report> => {
    const seen = reports.length;
    return new Promise<Report>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no report within ${timeoutMs} ms`)), timeoutMs);
      waiter = () => {
        if (reports.length > seen) {
          clearTimeout(timer);
          waiter = undefined;
          resolve(reports[reports.length - 1]!);
        }
      };
    });
  };
  return { scheme, reg, resolver, reports, fakes, targets, nextReport };
}

describe('registerInstancerScheme: what the channel is told', () => {
  it('reports the instances as endpoints with the round_robin config, never synchronously', async () => {
    const t = setup({ initial: ['127.0.0.1:5001', '127.0.0.1:5002'] });
    expect(t.fakes).toHaveLength(0); // nothing is watched before grpc-js asks
    const next = t.nextReport();
    t.resolver.updateResolution();
    expect(t.reports).toHaveLength(0);
    const report = await next;
    expect(report.endpoints).toEqual(['127.0.0.1:5001', '127.0.0.1:5002']);
    expect(report.serviceConfig).toMatchObject({ loadBalancingConfig: [{ round_robin: {} }] });
    expect(report.note).toBe('');
    expect(t.targets).toEqual([{ scheme: t.scheme, authority: '', path: 'svc' }]);

    const changed = t.nextReport();
    t.fakes[0]!.remove('127.0.0.1:5001');
    t.fakes[0]!.add('127.0.0.1:5003');
    expect((await changed).endpoints).toEqual(['127.0.0.1:5002', '127.0.0.1:5003']);
  });

  it('coalesces a burst of events into one report of the latest set', async () => {
    const t = setup({ initial: ['127.0.0.1:5001'] });
    t.resolver.updateResolution();
    await t.nextReport();
    const next = t.nextReport();
    for (let p = 6000; p < 6010; p++) t.fakes[0]!.add(`127.0.0.1:${p}`);
    expect((await next).endpoints).toHaveLength(11);
    await settle();
    expect(t.reports).toHaveLength(2);
  });

  it('an empty set is a successful, empty resolution with a note (so calls fail fast)', async () => {
    const t = setup({ initial: [] });
    t.resolver.updateResolution();
    const report = await t.nextReport();
    expect(report.error).toBeUndefined();
    expect(report.endpoints).toEqual([]);
    expect(report.note).toContain(`no instances of ${t.scheme}:///svc`);
    // grpc-js asks again when a call arrives on the emptied channel: every request is answered (that is what
    // fails the call fast), still from the one instancer.
    const again = t.nextReport();
    t.resolver.updateResolution();
    t.resolver.updateResolution();
    expect((await again).endpoints).toEqual([]);
    await settle();
    expect(t.reports).toHaveLength(2);
    expect(t.fakes).toHaveLength(1);
  });

  it('a source error keeps the last-known instances; with none it is a failed resolution (UNAVAILABLE)', async () => {
    const t = setup({ initial: ['127.0.0.1:5001'] });
    t.resolver.updateResolution();
    await t.nextReport();
    let next = t.nextReport();
    t.fakes[0]!.fail('etcd is down');
    let report = await next;
    expect(report.error).toBeUndefined();
    expect(report.endpoints).toEqual(['127.0.0.1:5001']);
    expect(report.note).toContain('etcd is down');

    next = t.nextReport();
    t.fakes[0]!.set([]);
    expect((await next).endpoints).toEqual([]);
    next = t.nextReport();
    t.fakes[0]!.fail('etcd is still down');
    report = await next;
    expect(report.endpoints).toBeUndefined();
    expect(report.error).toEqual({
      code: status.UNAVAILABLE,
      details: `${t.scheme}:///svc: etcd is still down`,
    });

    next = t.nextReport();
    t.fakes[0]!.set(['127.0.0.1:5009']);
    report = await next;
    expect(report.endpoints).toEqual(['127.0.0.1:5009']);
    expect(report.note).toBe('');
  });

  it('skips addresses gRPC cannot dial (logged once each), strips http://, dedupes, keeps [ipv6]:port', async () => {
    const logger = recordingLogger();
    const t = setup({ logger });
    t.resolver.updateResolution();
    const next = t.nextReport();
    t.fakes[0]!.set([
      { key: 'a', address: '127.0.0.1:5001' },
      { key: 'b', address: 'http://127.0.0.1:5002' },
      { key: 'c', address: '[::1]:5003' },
      { key: 'd', address: 'no-port' },
      { key: 'e', address: '::1:5004' },
      { key: 'f', address: 'unix:///tmp/sock' },
      { key: 'g', address: '127.0.0.1:5001' },
      { key: 'h', address: 'host:99999' },
    ]);
    const report = await next;
    expect(report.endpoints).toEqual(['127.0.0.1:5001', '127.0.0.1:5002', '[::1]:5003']);
    expect(logger.warnings.map((w) => w.key)).toEqual(['d', 'e', 'f', 'h']);
    expect(logger.warnings.every((w) => typeof w.reason === 'string' && w.reason !== '')).toBe(true);

    const again = t.nextReport();
    t.fakes[0]!.add({ key: 'i', address: '127.0.0.1:5005' });
    expect((await again).endpoints).toContain('127.0.0.1:5005');
    expect(logger.warnings).toHaveLength(4); // the same bad instances are not logged again
  });

  it('only bad addresses: an empty resolution that says so', async () => {
    const t = setup({ initial: ['nope'] });
    t.resolver.updateResolution();
    const report = await t.nextReport();
    expect(report.endpoints).toEqual([]);
    expect(report.note).toContain('no instance of');
  });

  it('updateResolution is idempotent: one instancer, no re-report of an accepted state', async () => {
    const t = setup({ initial: ['127.0.0.1:5001'] });
    t.resolver.updateResolution();
    await t.nextReport();
    for (let i = 0; i < 5; i++) t.resolver.updateResolution();
    await settle();
    await settle();
    expect(t.reports).toHaveLength(1);
    expect(t.fakes).toHaveLength(1);
    expect(t.fakes[0]!.subscriberCount).toBe(1);
  });

  it('re-reports on updateResolution when grpc-js did not accept the last report', async () => {
    let accept = false;
    const t = setup({ initial: ['127.0.0.1:5001'], accept: () => accept });
    t.resolver.updateResolution();
    await t.nextReport();
    accept = true;
    const next = t.nextReport();
    t.resolver.updateResolution();
    expect((await next).endpoints).toEqual(['127.0.0.1:5001']);
    t.resolver.updateResolution();
    await settle();
    expect(t.reports).toHaveLength(2);
    expect(t.fakes).toHaveLength(1);
  });

  it('destroy stops the instancer and drops a pending report; a later updateResolution watches again', async () => {
    const t = setup({ initial: ['127.0.0.1:5001'] });
    t.resolver.updateResolution();
    t.resolver.destroy(); // before the deferred report ran
    expect(t.fakes[0]!.stopped).toBe(true);
    await settle();
    expect(t.reports).toHaveLength(0);

    const next = t.nextReport();
    t.resolver.updateResolution();
    expect((await next).endpoints).toEqual(['127.0.0.1:5001']);
    expect(t.fakes).toHaveLength(2);
    expect(t.fakes[1]!.stopped).toBe(false);

    // Destroy + immediate restart (an idle channel waking up): exactly one report, from the new instancer.
    t.resolver.destroy();
    t.resolver.updateResolution();
    await settle();
    expect(t.fakes).toHaveLength(3);
    expect(t.reports).toHaveLength(2);
    expect(t.fakes[1]!.stopped).toBe(true);
    expect(t.fakes[2]!.subscriberCount).toBe(1);
  });

  it('a forTarget that throws fails the resolution with its message, and is retried after destroy', async () => {
    let calls = 0;
    const logger = recordingLogger();
    const t = setup({
      logger,
      forTarget: (target) => {
        calls++;
        if (calls === 1) throw new TypeError(`cannot read ${target.path}`);
        return new FakeInstancer(['127.0.0.1:5001']);
      },
    });
    t.resolver.updateResolution();
    const report = await t.nextReport();
    expect(report.error).toEqual({
      code: status.UNAVAILABLE,
      details: `${t.scheme}:///svc: cannot read svc`,
    });
    expect(logger.warnings).toHaveLength(1);
    t.resolver.updateResolution();
    await settle();
    expect(calls).toBe(1);
    t.resolver.destroy();
    const next = t.nextReport();
    t.resolver.updateResolution();
    expect((await next).endpoints).toEqual(['127.0.0.1:5001']);
  });

  it('an instancer that never emits gives no resolution (calls wait for it)', async () => {
    const t = setup();
    t.resolver.updateResolution();
    await settle();
    expect(t.reports).toHaveLength(0);
    const next = t.nextReport();
    t.fakes[0]!.set(['127.0.0.1:5001']);
    expect((await next).endpoints).toEqual(['127.0.0.1:5001']);
  });

  it('disposing the registration stops live instancers and fails their resolution', async () => {
    const t = setup({ initial: ['127.0.0.1:5001'] });
    t.resolver.updateResolution();
    await t.nextReport();
    const next = t.nextReport();
    t.reg();
    t.reg(); // idempotent
    const report = await next;
    expect(t.fakes[0]!.stopped).toBe(true);
    expect(report.error?.details).toContain(`scheme "${t.scheme}" was unregistered`);
  });

  it('a channel with its own grpc.service_config gets no service config from the resolver', async () => {
    const t = setup({
      initial: ['127.0.0.1:5001'],
      channelOptions: { 'grpc.service_config': '{"loadBalancingConfig":[{"pick_first":{}}]}' },
    });
    t.resolver.updateResolution();
    expect((await t.nextReport()).serviceConfig).toBeNull();
  });

  it('getDefaultAuthority is the path, without the slashes a :authority cannot carry', () => {
    const t = setup();
    const authority = (target: string) => getDefaultAuthority(parseUri(`${t.scheme}:${target}`)!);
    expect(authority('///my-service')).toBe('my-service');
    expect(authority('///my-service/')).toBe('my-service');
    expect(authority('////services/foo')).toBe('services.foo');
  });
});

describe('default :authority', () => {
  // Every target is parsed by grpc-js's own parser, as a channel does.
  const authorityOf = (target: string) => defaultAuthorityForTarget(parseUri(target)!);

  it('is the path without leading and trailing slashes when that is a valid authority', () => {
    expect(authorityOf('x:///my-service')).toBe('my-service');
    expect(authorityOf('x:///my-service/')).toBe('my-service');
    expect(authorityOf('x:///my-service//')).toBe('my-service');
    expect(authorityOf('x:///svc.ns:8080')).toBe('svc.ns:8080');
    expect(authorityOf('x:///[::1]:50051')).toBe('[::1]:50051');
    expect(authorityOf('x:my-service')).toBe('my-service');
  });

  it('sanitizes paths that are not: segments joined with ".", other characters "-", the port kept', () => {
    expect(authorityOf('x:////services/foo')).toBe('services.foo');
    expect(authorityOf('x:////services/foo/')).toBe('services.foo');
    expect(authorityOf('x:///a//b/c')).toBe('a.b.c');
    expect(authorityOf('x:///my%20svc')).toBe('my-svc');
    expect(authorityOf('x:///team%2Fsvc')).toBe('team.svc');
    expect(authorityOf('x:///grüße@home')).toBe('gr-e-home');
    expect(authorityOf('x:///ns/svc:8080')).toBe('ns.svc:8080');
    expect(authorityOf('x:///svc:99999')).toBe('svc-99999');
    expect(authorityOf('x:///bad%zz/svc')).toBe('bad-zz.svc');
    // http2.connect reads a name ending in a number as an IPv4 address, and refuses it when it is none.
    expect(authorityOf('x:///svc/1')).toBe('svc-1');
    expect(authorityOf('x:///svc.1:8080')).toBe('svc-1:8080');
    expect(authorityOf('x:///99999999999')).toBe('localhost');
    expect(authorityOf('x:///10.0.0.1:8080')).toBe('10.0.0.1:8080');
    expect(authorityOf('x:///')).toBe('localhost');
    expect(authorityOf('x://greeter')).toBe('greeter'); // path "//greeter": no authority part for grpc-js
  });

  it('isValidAuthority: hosts with an optional port, nothing an HTTP/2 server or http2.connect refuses', () => {
    for (const ok of ['greeter', 'svc.ns:8080', '[::1]:50051', 'a_b~c', "a!$&'()*+,;=b", 'h:0', 'h:65535']) {
      expect(isValidAuthority(ok), ok).toBe(true);
    }
    for (const bad of [
      '',
      'greeter/',
      'services/foo',
      'my svc',
      'my%20svc',
      'u@h',
      'ü',
      'h:65536',
      'h:',
      'a:b',
      'svc.1',
    ]) {
      expect(isValidAuthority(bad), bad).toBe(false);
    }
  });

  it('is always a valid authority that http2.connect can parse, whatever the path', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 40 }),
          // The characters that make the edge cases: segments, escapes, ports, numeric labels, IPv6 brackets.
          fc.string({
            unit: fc.constantFrom('a', '1', '9', '.', '/', '%', '2', 'F', ':', 'x', ' ', 'ü', '[', ']', '@'),
          }),
        ),
        (path) => {
          const authority = defaultAuthorityForTarget({ scheme: 'x', authority: '', path });
          expect(isValidAuthority(authority)).toBe(true);
          expect(URL.canParse(`http://${authority}`)).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('a defaultAuthority option that returns an invalid authority makes grpc-js get a TypeError naming it', () => {
    const scheme = `auth${++schemeSeq}`;
    registrations.push(
      registerInstancerScheme(scheme, () => new FakeInstancer(), { defaultAuthority: () => 'a/b' }),
    );
    expect(() => getDefaultAuthority({ scheme, authority: '', path: 'svc' })).toThrow(
      new RegExp(`defaultAuthority\\("${scheme}:///svc"\\) returned "a/b", not a valid :authority`),
    );
    const good = `auth${++schemeSeq}`;
    registrations.push(
      registerInstancerScheme(good, () => new FakeInstancer(), {
        defaultAuthority: (t) => `${t.path}.internal`,
      }),
    );
    expect(getDefaultAuthority({ scheme: good, authority: '', path: 'svc' })).toBe('svc.internal');
  });
});

describe('registerInstancerScheme: options', () => {
  const f = () => new FakeInstancer();
  it('uses loadBalancingPolicy or a custom serviceConfig', async () => {
    const scheme = `opt${++schemeSeq}`;
    registrations.push(
      registerInstancerScheme(scheme, () => new FakeInstancer(['127.0.0.1:1']), {
        loadBalancingPolicy: 'pick_first',
      }),
    );
    const configs: unknown[] = [];
    const r = experimental.createResolver(
      { scheme, authority: '', path: 'x' },
      (_e, _a, sc) => {
        configs.push(sc?.ok ? sc.value : sc);
        return true;
      },
      {},
    );
    resolvers.push(r);
    r.updateResolution();
    await settle();
    expect(configs).toEqual([expect.objectContaining({ loadBalancingConfig: [{ pick_first: {} }] })]);
  });

  it('refuses bad arguments with TypeErrors naming the value', () => {
    expect(() => registerInstancerScheme('not a scheme', f)).toThrow(
      /scheme must be a URI scheme.*"not a scheme"/,
    );
    expect(() => registerInstancerScheme('ok', 42 as never)).toThrow(/forTarget must be a function, got 42/);
    expect(() => registerInstancerScheme('ok', f, { loadBalancingPolicy: 'no_such_policy' })).toThrow(
      /no_such_policy/,
    );
    expect(() => registerInstancerScheme('ok', f, { serviceConfig: '{' })).toThrow(/not valid JSON/);
    expect(() => registerInstancerScheme('ok', f, { serviceConfig: '[]' })).toThrow(/must be a JSON object/);
    expect(() =>
      registerInstancerScheme('ok', f, { serviceConfig: {}, loadBalancingPolicy: 'round_robin' }),
    ).toThrow(/not both/);
    expect(() => registerInstancerScheme('ok', f, { serviceConfig: { loadBalancingConfig: 'x' } })).toThrow(
      /invalid serviceConfig/,
    );
  });
});
