import { describe, expect, it } from 'vitest';
import { type EndpointSlice, isServed, type ReadSliceOptions, readSlice } from './endpoint-slice.js';
import { endpoint, slice } from './fixtures/fake-api-server.js';

const ready: ReadSliceOptions = { port: undefined, servingTerminating: false };

function keys(s: EndpointSlice, options: ReadSliceOptions = ready): string[] {
  return [...readSlice(s, options).instances.keys()];
}

describe('readSlice', () => {
  it('serves endpoints whose ready condition is true or unset', () => {
    const s = slice('a', 'svc', [
      endpoint('10.0.0.1', { conditions: { ready: true } }),
      endpoint('10.0.0.2'),
      endpoint('10.0.0.3', { conditions: {} }),
      endpoint('10.0.0.4', { conditions: { ready: false } }),
      endpoint('10.0.0.5', { conditions: { ready: false, serving: true, terminating: true } }),
      endpoint('10.0.0.6', { conditions: { ready: null } }),
    ]);
    expect(keys(s)).toEqual(['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:8080', '10.0.0.6:8080']);
  });

  it('with servingTerminating, also serves serving and terminating endpoints', () => {
    const s = slice('a', 'svc', [
      endpoint('10.0.0.4', { conditions: { ready: false } }),
      endpoint('10.0.0.5', { conditions: { ready: false, serving: true, terminating: true } }),
      endpoint('10.0.0.7', { conditions: { ready: false, serving: false, terminating: true } }),
      endpoint('10.0.0.8', { conditions: { ready: false, serving: true } }),
    ]);
    expect(keys(s, { port: undefined, servingTerminating: true })).toEqual(['10.0.0.5:8080']);
    expect(isServed({ conditions: { ready: false, serving: true, terminating: true } }, false)).toBe(false);
  });

  it('takes a port number as given, a port name from the slice, or the first port', () => {
    const ports = [
      { name: 'http', port: 8080, protocol: 'TCP' },
      { name: 'grpc', port: 50051, protocol: 'TCP' },
    ];
    const s = slice('a', 'svc', [endpoint('10.0.0.1')], { ports });
    expect(keys(s, { port: { kind: 'number', number: 9999 }, servingTerminating: false })).toEqual([
      '10.0.0.1:9999',
    ]);
    expect(keys(s, { port: { kind: 'name', name: 'grpc' }, servingTerminating: false })).toEqual([
      '10.0.0.1:50051',
    ]);
    expect(keys(s)).toEqual(['10.0.0.1:8080']);
    const missing = readSlice(s, { port: { kind: 'name', name: 'metrics' }, servingTerminating: false });
    expect(missing.instances.size).toBe(0);
    expect(missing.hasPort).toBe(false);
    expect(missing.ports).toEqual(['"http" 8080/TCP', '"grpc" 50051/TCP']);
  });

  it('cannot dial a slice without ports, or whose first port has no number', () => {
    expect(readSlice(slice('a', 'svc', [endpoint('10.0.0.1')], { ports: [] }), ready).hasPort).toBe(false);
    const all = readSlice(
      slice('a', 'svc', [endpoint('10.0.0.1')], { ports: [{ name: '', protocol: 'TCP' }] }),
      ready,
    );
    expect(all.hasPort).toBe(false);
    expect(all.ports).toEqual(['(unnamed) all ports/TCP']);
    expect(
      keys(slice('a', 'svc', [endpoint('10.0.0.1')], { ports: [] }), {
        port: { kind: 'number', number: 80 },
        servingTerminating: false,
      }),
    ).toEqual(['10.0.0.1:80']);
  });

  it('brackets IPv6 addresses, skips addresses of the wrong family and FQDN slices', () => {
    const v6 = slice('a', 'svc', [endpoint('fd00::1'), endpoint('10.0.0.1')], { addressType: 'IPv6' });
    const [instance] = readSlice(v6, ready).instances.values();
    expect(instance).toMatchObject({ key: '[fd00::1]:8080', address: '[fd00::1]:8080' });
    expect(keys(v6)).toEqual(['[fd00::1]:8080']);
    expect(
      keys(slice('a', 'svc', [endpoint('10.0.0.1'), endpoint('fd00::1'), endpoint('not-an-ip')])),
    ).toEqual(['10.0.0.1:8080']);
    const fqdn = readSlice(slice('a', 'svc', [endpoint('db.example.com')], { addressType: 'FQDN' }), ready);
    expect(fqdn.instances.size).toBe(0);
    expect(fqdn.addressType).toBe('FQDN');
  });

  it('gives every address of an endpoint, and a key once per slice', () => {
    const s = slice('a', 'svc', [
      { addresses: ['10.0.0.1', '10.0.0.2'] },
      endpoint('10.0.0.1', { zone: 'b' }),
    ]);
    expect(keys(s)).toEqual(['10.0.0.1:8080', '10.0.0.2:8080']);
    expect(readSlice(s, ready).instances.get('10.0.0.1:8080')?.metadata).not.toHaveProperty('zone');
  });

  it('puts zone, node, hostname, pod, hints and normalised conditions in frozen metadata', () => {
    const s = slice('a', 'svc', [
      endpoint('10.0.0.1', {
        zone: 'eu-west-1a',
        nodeName: 'node-1',
        hostname: 'web-0',
        targetRef: {
          kind: 'Pod',
          name: 'web-0',
          namespace: 'shop',
          uid: 'u-1',
          resourceVersion: '7',
        } as never,
        hints: { forZones: [{ name: 'eu-west-1a' }, { name: 'eu-west-1b' }] },
        conditions: { ready: true },
      }),
      endpoint('10.0.0.2'),
    ]);
    const instances = readSlice(s, ready).instances;
    const a = instances.get('10.0.0.1:8080')!;
    expect(a.metadata).toEqual({
      zone: 'eu-west-1a',
      nodeName: 'node-1',
      hostname: 'web-0',
      targetRef: { kind: 'Pod', name: 'web-0', namespace: 'shop', uid: 'u-1' },
      hints: { forZones: ['eu-west-1a', 'eu-west-1b'] },
      conditions: { ready: true, serving: true, terminating: false },
    });
    expect(instances.get('10.0.0.2:8080')!.metadata).toEqual({
      conditions: { ready: true, serving: true, terminating: false },
    });
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a.metadata)).toBe(true);
    const md = a.metadata as { targetRef: object; hints: { forZones: string[] }; conditions: object };
    expect(Object.isFrozen(md.targetRef)).toBe(true);
    expect(Object.isFrozen(md.hints.forZones)).toBe(true);
    expect(Object.isFrozen(md.conditions)).toBe(true);
  });

  it('tolerates missing and null fields', () => {
    expect(readSlice({}, ready)).toMatchObject({ name: '', hasPort: false, instances: new Map() });
    const s: EndpointSlice = {
      metadata: { name: 'a' },
      addressType: 'IPv4',
      endpoints: [
        { addresses: null },
        null as never,
        { addresses: ['10.0.0.1'], conditions: null, targetRef: null, hints: null },
      ],
      ports: [{ port: 80 }],
    };
    expect(keys(s)).toEqual(['10.0.0.1:80']);
  });
});
