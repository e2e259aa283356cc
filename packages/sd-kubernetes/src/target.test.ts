import type { experimental } from '@grpc/grpc-js';
import { parseUri } from '@grpc/grpc-js/build/src/uri-parser.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatKubernetesTarget,
  type KubernetesTarget,
  type KubernetesTargetPort,
  type KubernetesTargetUri,
  parseKubernetesTarget,
} from './target.js';

const num = (number: number): KubernetesTargetPort => ({ kind: 'number', number });
const named = (name: string): KubernetesTargetPort => ({ kind: 'name', name });

/** Parses a string the way grpc-js does before handing it to a resolver. */
function grpcUri(target: string): KubernetesTargetUri {
  const uri = parseUri(target);
  if (uri === null) throw new Error(`grpc-js cannot parse ${target}`);
  return uri;
}

/** Outcome of a parse, for comparing two parsers including their failures. */
function outcome(parse: () => KubernetesTarget): KubernetesTarget | 'TypeError' {
  try {
    return parse();
  } catch (error) {
    if (error instanceof TypeError) return 'TypeError';
    throw error;
  }
}

/**
 * A port of kuberesolver v5's `parseResolverTarget`, applied to what Go's `url.Parse` makes of a
 * `kubernetes:<rest>` string (for strings without `?`, `#`, `@`, `%`, `[`, which the generators never produce).
 * Returns undefined where Go or kuberesolver reject the target.
 */
function kuberesolverModel(target: string): { service: string; namespace: string; port: string } | undefined {
  const rest = target.slice('kubernetes:'.length);
  const validOptionalPort = (p: string) => p === '' || (p.startsWith(':') && /^[0-9]*$/.test(p.slice(1)));
  let host = '';
  let path = '';
  let opaque = '';
  if (!rest.startsWith('/')) {
    opaque = rest;
  } else if (rest.startsWith('//')) {
    const after = rest.slice(2);
    const slash = after.indexOf('/');
    host = slash === -1 ? after : after.slice(0, slash);
    path = slash === -1 ? '' : after.slice(slash);
    const colon = host.lastIndexOf(':');
    if (colon !== -1 && !validOptionalPort(host.slice(colon))) return undefined; // Go: invalid port
  } else {
    path = rest;
  }
  const endpoint = (path === '' ? opaque : path).replace(/^\//, '');
  const colon = host.lastIndexOf(':');
  const urlPort = colon !== -1 && validOptionalPort(host.slice(colon)) ? host.slice(colon + 1) : '';
  const hostname = colon !== -1 && validOptionalPort(host.slice(colon)) ? host.slice(0, colon) : host;
  const split = (hpn: string) => {
    let service = hpn;
    let port = '';
    let namespace = '';
    const c = service.lastIndexOf(':');
    if (c !== -1) [service, port] = [service.slice(0, c), service.slice(c + 1)];
    const parts = service.split('.');
    if (parts.length >= 2) [service, namespace] = [parts[0]!, parts[1]!];
    return { service, port, namespace };
  };
  let result: { service: string; namespace: string; port: string };
  if (host === '') {
    result = split(endpoint);
  } else if (urlPort === '' && endpoint !== '') {
    result = { ...split(endpoint), namespace: hostname };
  } else {
    result = split(host);
  }
  return result.service === '' ? undefined : result;
}

/** Compares a kuberesolver model result with ours: same service, namespace ('' = absent), port. */
function sameAsModel(ours: KubernetesTarget, model: ReturnType<typeof kuberesolverModel>): boolean {
  if (model === undefined) return false;
  const port =
    ours.port === undefined ? '' : ours.port.kind === 'number' ? String(ours.port.number) : ours.port.name;
  const modelPort = /^[0-9]+$/.test(model.port) ? String(Number(model.port)) : model.port;
  return ours.service === model.service && (ours.namespace ?? '') === model.namespace && port === modelPort;
}

describe('parseKubernetesTarget: the forms in kuberesolver’s README', () => {
  const cases: [string, KubernetesTarget][] = [
    ['kubernetes:///service-name:8080', { service: 'service-name', port: num(8080) }],
    ['kubernetes:///service-name:portname', { service: 'service-name', port: named('portname') }],
    [
      'kubernetes:///service-name.namespace:8080',
      { service: 'service-name', namespace: 'namespace', port: num(8080) },
    ],
    [
      'kubernetes:///service-name.namespace.svc.cluster_name',
      { service: 'service-name', namespace: 'namespace' },
    ],
    [
      'kubernetes:///service-name.namespace.svc.cluster_name:8080',
      { service: 'service-name', namespace: 'namespace', port: num(8080) },
    ],
    [
      'kubernetes://namespace/service-name:8080',
      { service: 'service-name', namespace: 'namespace', port: num(8080) },
    ],
    ['kubernetes://service-name:8080/', { service: 'service-name', port: num(8080) }],
    [
      'kubernetes://service-name.namespace:8080/',
      { service: 'service-name', namespace: 'namespace', port: num(8080) },
    ],
    [
      'kubernetes://service-name.namespace.svc.cluster_name',
      { service: 'service-name', namespace: 'namespace' },
    ],
    [
      'kubernetes://service-name.namespace.svc.cluster_name:8080',
      { service: 'service-name', namespace: 'namespace', port: num(8080) },
    ],
  ];

  it.each(cases)('%s (string)', (target, expected) => {
    expect(parseKubernetesTarget(target)).toStrictEqual(expected);
  });

  it.each(cases)('%s (as grpc-js parses it)', (target, expected) => {
    expect(parseKubernetesTarget(grpcUri(target))).toStrictEqual(expected);
  });

  it.each(cases)('%s (kuberesolver reads it the same)', (target, expected) => {
    expect(sameAsModel(expected, kuberesolverModel(target))).toBe(true);
  });
});

describe('parseKubernetesTarget: kuberesolver’s own test table (TestParseTargets)', () => {
  it.each<[string, KubernetesTarget]>([
    ['kubernetes://a:30', { service: 'a', port: num(30) }],
    ['kubernetes://a/', { service: 'a' }],
    ['kubernetes:///a', { service: 'a' }],
    ['kubernetes://a/b', { service: 'b', namespace: 'a' }],
    ['kubernetes://a.b/', { service: 'a', namespace: 'b' }],
    ['kubernetes:///a.b:80', { service: 'a', namespace: 'b', port: num(80) }],
    ['kubernetes:///a.b:port', { service: 'a', namespace: 'b', port: named('port') }],
    ['kubernetes:///a:port', { service: 'a', port: named('port') }],
    ['kubernetes://x/a:port', { service: 'a', namespace: 'x', port: named('port') }],
    ['kubernetes://a.x:30/', { service: 'a', namespace: 'x', port: num(30) }],
    ['kubernetes://a.b.svc.cluster.local', { service: 'a', namespace: 'b' }],
    ['kubernetes://a.b.svc.cluster.local:80', { service: 'a', namespace: 'b', port: num(80) }],
    ['kubernetes:///a.b.svc.cluster.local', { service: 'a', namespace: 'b' }],
    ['kubernetes:///a.b.svc.cluster.local:80', { service: 'a', namespace: 'b', port: num(80) }],
    ['kubernetes:///a.b.svc.cluster.local:port', { service: 'a', namespace: 'b', port: named('port') }],
    // Not in kuberesolver's table, but the same rules:
    ['dns-k8s:///a.b:80', { service: 'a', namespace: 'b', port: num(80) }], // any scheme
    ['kubernetes:///a.b.svc', { service: 'a', namespace: 'b' }], // short in-cluster name
    ['kubernetes:///a:08080', { service: 'a', port: num(8080) }], // Go's Atoi reads leading zeros
    ['kubernetes:///a:65535', { service: 'a', port: num(65535) }],
    ['kubernetes:///a:h2c-1', { service: 'a', port: named('h2c-1') }],
  ])('%s', (target, expected) => {
    expect(parseKubernetesTarget(target)).toStrictEqual(expected);
    expect(parseKubernetesTarget(grpcUri(target))).toStrictEqual(expected);
  });

  it('reads grpc-js’s opaque form ("kubernetes:svc.ns:80" has no authority) like Go’s URL.Opaque', () => {
    expect(parseKubernetesTarget({ scheme: 'kubernetes', path: 'a.b:80' })).toStrictEqual({
      service: 'a',
      namespace: 'b',
      port: num(80),
    });
    expect(
      sameAsModel({ service: 'a', namespace: 'b', port: num(80) }, kuberesolverModel('kubernetes:a.b:80')),
    ).toBe(true);
  });

  it('accepts a grpc-js GrpcUri as it is typed', () => {
    const uri: experimental.GrpcUri = { scheme: 'kubernetes', authority: '', path: 'a.b:grpc' };
    expect(parseKubernetesTarget(uri)).toStrictEqual({ service: 'a', namespace: 'b', port: named('grpc') });
  });
});

describe('parseKubernetesTarget: errors', () => {
  it.each<[string, RegExp]>([
    // kuberesolver rejects these too:
    ['kubernetes:///', /no service name/],
    ['kubernetes://', /no service name/],
    ['kubernetes:///:80', /no service name/],
    ['kubernetes://:80/', /no service name/],
    ['kubernetes://svc:grpc/', /port "grpc" in the authority must be a number.*kubernetes:\/\/\/svc:grpc/],
    // kuberesolver accepts these and then follows a Service that cannot exist:
    ['kubernetes:///a:', /empty port/],
    ['kubernetes:///a:0', /port 0 must be from 1 to 65535/],
    ['kubernetes:///a:65536', /port 65536/],
    ['kubernetes:///a:+80', /port "\+80" must be a number or a port name/],
    ['kubernetes:///a:-1', /port "-1"/],
    ['kubernetes:///a:port_name', /port "port_name"/],
    ['kubernetes:///a:8080/', /port "8080\/"/],
    ['kubernetes:///My-Service:80', /service "My-Service" must be a lowercase RFC 1123 label/],
    ['kubernetes:///-svc', /service "-svc"/],
    [`kubernetes:///${'a'.repeat(64)}`, /service "a{64}"/],
    ['kubernetes:///.ns:80', /service ""/],
    ['kubernetes:///a..svc', /namespace ""/],
    ['kubernetes:///a.b.c', /too many dots/],
    ['kubernetes:///a.b.c.d:80', /too many dots/],
    ['kubernetes:///a.b.svc.:80', /invalid cluster domain/],
    ['kubernetes:///a.b.svc.cluster..local', /invalid cluster domain/],
    ['kubernetes://ns/a.other:80', /namespace is given twice/],
    ['kubernetes://a.b/c', /namespace "a.b"/],
    ['kubernetes://a:80/extra', /nothing may follow "\/"/],
    ['kubernetes://user@ns/a', /user info/],
    ['kubernetes:///a:80?x=1', /queries and fragments/],
    ['kubernetes:///a#frag', /queries and fragments/],
  ])('%s', (target, message) => {
    for (const input of [target, grpcUri(target)]) {
      let error: unknown;
      try {
        parseKubernetesTarget(input);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).toContain(JSON.stringify(target));
    }
  });

  it.each(['svc.ns:8080', 'kubernetes:svc', '', '///svc', '8080:svc'])(
    'a string without "<scheme>://" (%j) is rejected',
    (target) => {
      expect(() => parseKubernetesTarget(target)).toThrow(/expected "<scheme>:\/\/…"/);
    },
  );

  it.each<unknown>([undefined, null, 42, {}, { path: 1 }, { path: 'a', authority: 3 }])(
    'a non-target (%j) is a TypeError',
    (target) => {
      expect(() => parseKubernetesTarget(target as string)).toThrow(TypeError);
    },
  );
});

describe('formatKubernetesTarget', () => {
  it('writes the canonical kubernetes:/// form', () => {
    expect(formatKubernetesTarget({ service: 'a' })).toBe('kubernetes:///a');
    expect(formatKubernetesTarget({ service: 'a', namespace: 'b', port: num(80) })).toBe(
      'kubernetes:///a.b:80',
    );
    expect(formatKubernetesTarget({ service: 'a', port: named('grpc') }, { scheme: 'k8s' })).toBe(
      'k8s:///a:grpc',
    );
  });

  it.each<[KubernetesTarget, { scheme?: string }]>([
    [{ service: '' }, {}],
    [{ service: 'a', namespace: 'B' }, {}],
    [{ service: 'a', port: num(0) }, {}],
    [{ service: 'a', port: num(1.5) }, {}],
    [{ service: 'a', port: named('80') }, {}],
    [{ service: 'a' }, { scheme: 'no scheme' }],
  ])('rejects %j %j', (target, options) => {
    expect(() => formatKubernetesTarget(target, options)).toThrow(TypeError);
  });
});

describe('parseKubernetesTarget: properties', () => {
  const label = fc
    .tuple(
      fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'),
      fc.string({ unit: fc.constantFrom(...'abcxyz0189-'), maxLength: 61 }),
      fc.constantFrom(...'abcxyz0189'),
    )
    .map(([first, middle, last]) => `${first}${middle}${last}`)
    .chain((long) => fc.constantFrom(long, long[0]!));
  const port: fc.Arbitrary<KubernetesTargetPort> = fc.oneof(
    fc.integer({ min: 1, max: 65535 }).map(num),
    label.filter((l) => !/^[0-9]+$/.test(l)).map(named),
  );
  const clusterDomain = fc.array(fc.stringMatching(/^[A-Za-z0-9_-]{1,10}$/), { minLength: 0, maxLength: 3 });
  const target = fc
    .record({
      service: label,
      namespace: fc.option(label, { nil: undefined }),
      port: fc.option(port, { nil: undefined }),
    })
    .map(
      ({ service, namespace, port }): KubernetesTarget => ({
        service,
        ...(namespace === undefined ? {} : { namespace }),
        ...(port === undefined ? {} : { port }),
      }),
    );

  /** Every form of kuberesolver's README that can express `t` (with `domain` as the cluster domain). */
  function forms(t: KubernetesTarget, domain: readonly string[]): string[] {
    const p = t.port === undefined ? '' : `:${t.port.kind === 'number' ? t.port.number : t.port.name}`;
    const numericPort = t.port === undefined || t.port.kind === 'number';
    const svcSuffix = `.svc${domain.map((d) => `.${d}`).join('')}`;
    const out: string[] = [];
    if (t.namespace === undefined) {
      out.push(`kubernetes:///${t.service}${p}`);
      if (numericPort) out.push(`kubernetes://${t.service}${p}/`, `kubernetes://${t.service}${p}`);
    } else {
      const ns = t.namespace;
      out.push(
        `kubernetes:///${t.service}.${ns}${p}`,
        `kubernetes:///${t.service}.${ns}${svcSuffix}${p}`,
        `kubernetes://${ns}/${t.service}${p}`,
      );
      if (numericPort) {
        out.push(
          `kubernetes://${t.service}.${ns}${p}/`,
          `kubernetes://${t.service}.${ns}${svcSuffix}${p}`,
          `kubernetes://${t.service}.${ns}${svcSuffix}${p}/`,
        );
      }
    }
    return out;
  }

  it('every form of a valid target parses back to it, from a string and from grpc-js’s URI, as kuberesolver reads it', () => {
    fc.assert(
      fc.property(target, clusterDomain, (t, domain) => {
        for (const form of forms(t, domain)) {
          expect(parseKubernetesTarget(form)).toStrictEqual(t);
          expect(parseKubernetesTarget(grpcUri(form))).toStrictEqual(t);
          expect(sameAsModel(t, kuberesolverModel(form))).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('formatKubernetesTarget output parses back to the same target', () => {
    fc.assert(
      fc.property(target, (t) => {
        expect(parseKubernetesTarget(formatKubernetesTarget(t))).toStrictEqual(t);
      }),
    );
  });

  // Strings built from the characters that matter, so that edge cases (empty parts, stray colons, slashes,
  // dots) come up often.
  const noise = fc
    .array(
      fc.constantFrom('a', 'b', 'z9', '-', '0', '80', '.', '.', ':', ':', '/', '/', 'svc', 'grpc', 'X', '_'),
      {
        maxLength: 14,
      },
    )
    .map((parts) => parts.join(''));
  const noisyTarget = fc
    .oneof(
      noise,
      noise.map((n) => `//${n}`),
      noise.map((n) => `///${n}`),
    )
    .map((n) => `kubernetes:${n}`);

  it('never accepts what kuberesolver rejects, and never reads a target differently from kuberesolver', () => {
    let accepted = 0;
    fc.assert(
      fc.property(noisyTarget, (t) => {
        const ours = outcome(() => parseKubernetesTarget(grpcUri(t)));
        if (ours !== 'TypeError') {
          accepted++;
          expect(sameAsModel(ours, kuberesolverModel(t))).toBe(true);
        }
      }),
      { numRuns: 3000 },
    );
    // The generator must reach valid targets often enough for this to prove something.
    expect(accepted).toBeGreaterThan(100);
  });

  it('a string and grpc-js’s parse of it give the same result or both fail', () => {
    fc.assert(
      fc.property(
        noise.map((n) => `kubernetes://${n}`),
        (t) => {
          expect(outcome(() => parseKubernetesTarget(t))).toStrictEqual(
            outcome(() => parseKubernetesTarget(grpcUri(t))),
          );
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('any input at all either parses to a valid target or throws a TypeError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), noisyTarget, fc.anything()), (input) => {
        const result = outcome(() => parseKubernetesTarget(input as string));
        if (result !== 'TypeError') {
          expect(parseKubernetesTarget(formatKubernetesTarget(result))).toStrictEqual(result);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
