import { type Instance, sameInstance } from '@sdkit/sd-core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type EndpointSlice, readSlice, type SliceContribution } from './endpoint-slice.js';
import { endpoint, slice } from './fixtures/fake-api-server.js';
import { SliceUnion } from './slice-union.js';

let version = 0;
function contribution(s: EndpointSlice): SliceContribution {
  const withVersion = { ...s, metadata: { ...s.metadata, resourceVersion: String(++version) } };
  return readSlice(withVersion, { port: undefined, servingTerminating: false });
}

/** A consumer of the union's changes, as the instancer feeds InstanceCache. */
function follower(union: SliceUnion) {
  const published = new Map<string, Instance>();
  let events = 0;
  return {
    published,
    get events() {
      return events;
    },
    apply(changed: Set<string>) {
      let any = false;
      for (const key of changed) {
        const now = union.get(key);
        const before = published.get(key);
        if (now === undefined) {
          if (before !== undefined) any = true;
          published.delete(key);
        } else {
          if (before === undefined || !sameInstance(before, now)) any = true;
          published.set(key, now);
        }
      }
      if (any) events++;
    },
  };
}

describe('SliceUnion', () => {
  it('holds an endpoint once however many slices hold it; a slice deletion removes only what no other holds', () => {
    const union = new SliceUnion();
    const f = follower(union);
    let changed = new Set<string>();
    union.set(contribution(slice('a', 'svc', [endpoint('10.0.0.1'), endpoint('10.0.0.2')])), changed);
    union.set(contribution(slice('b', 'svc', [endpoint('10.0.0.2'), endpoint('10.0.0.3')])), changed);
    f.apply(changed);
    expect([...f.published.keys()].sort()).toEqual(['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:8080']);
    expect(union.size).toBe(3);
    changed = new Set();
    union.delete('a', changed);
    f.apply(changed);
    expect([...f.published.keys()].sort()).toEqual(['10.0.0.2:8080', '10.0.0.3:8080']);
  });

  it('a rewritten slice reports only the endpoints that changed, and keeps the objects of the others', () => {
    const union = new SliceUnion();
    const eps = [endpoint('10.0.0.1'), endpoint('10.0.0.2'), endpoint('10.0.0.3')];
    union.set(contribution(slice('a', 'svc', eps)), new Set());
    const before = union.get('10.0.0.1:8080');
    const changed = new Set<string>();
    // A new resourceVersion and new objects for every endpoint, as each update of a slice delivers them.
    union.set(contribution(slice('a', 'svc', [eps[0]!, eps[1]!, endpoint('10.0.0.4')])), changed);
    expect([...changed].sort()).toEqual(['10.0.0.3:8080', '10.0.0.4:8080']);
    expect(union.get('10.0.0.1:8080')).toBe(before);
  });

  it('does not flap when an endpoint moves between slices, in either order, with equal copies', () => {
    const union = new SliceUnion();
    const f = follower(union);
    const ep = endpoint('10.0.0.9', { zone: 'z1' });
    let changed = new Set<string>();
    union.set(contribution(slice('b', 'svc', [ep])), changed);
    f.apply(changed);
    expect(f.events).toBe(1);
    // Added to "a" (which sorts first) then removed from "b": no change at all.
    changed = new Set();
    union.set(contribution(slice('a', 'svc', [ep])), changed);
    f.apply(changed);
    changed = new Set();
    union.set(contribution(slice('b', 'svc', [])), changed);
    f.apply(changed);
    // And back: added to "b", removed from "a".
    changed = new Set();
    union.set(contribution(slice('b', 'svc', [ep])), changed);
    f.apply(changed);
    changed = new Set();
    union.delete('a', changed);
    f.apply(changed);
    expect(f.events).toBe(1);
    expect(f.published.get('10.0.0.9:8080')?.metadata).toMatchObject({ zone: 'z1' });
  });

  it('with different copies, takes the copy of the slice whose name sorts first', () => {
    const union = new SliceUnion();
    const changed = new Set<string>();
    union.set(contribution(slice('b', 'svc', [endpoint('10.0.0.9', { zone: 'from-b' })])), changed);
    union.set(contribution(slice('a', 'svc', [endpoint('10.0.0.9', { zone: 'from-a' })])), changed);
    expect(union.get('10.0.0.9:8080')?.metadata).toMatchObject({ zone: 'from-a' });
    union.delete('a', changed);
    expect(union.get('10.0.0.9:8080')?.metadata).toMatchObject({ zone: 'from-b' });
  });

  it('skips a slice whose resourceVersion it already holds, and reports only changed keys', () => {
    const union = new SliceUnion();
    const s = contribution(slice('a', 'svc', [endpoint('10.0.0.1'), endpoint('10.0.0.2')]));
    union.set(s, new Set());
    const changed = new Set<string>();
    union.set(s, changed);
    expect(changed.size).toBe(0);
    union.reset(new Map([['a', s]]), changed);
    expect(changed.size).toBe(0);
    union.reset(new Map(), changed);
    expect([...changed].sort()).toEqual(['10.0.0.1:8080', '10.0.0.2:8080']);
    expect(union.size).toBe(0);
  });

  it('counts the IP slices that have the port, and describes the ports offered', () => {
    const union = new SliceUnion();
    const read = (s: EndpointSlice) =>
      readSlice(s, { port: { kind: 'name', name: 'grpc' }, servingTerminating: false });
    union.set(read(slice('a', 'svc', [endpoint('10.0.0.1')])), new Set());
    union.set(read(slice('f', 'svc', [endpoint('x.example')], { addressType: 'FQDN' })), new Set());
    expect(union.portCoverage()).toEqual({ slices: 1, withPort: 0 });
    expect(union.portsOffered()).toEqual(['"http" 8080/TCP']);
    union.set(
      read(
        slice('b', 'svc', [endpoint('10.0.0.2')], { ports: [{ name: 'grpc', port: 9000, protocol: 'TCP' }] }),
      ),
      new Set(),
    );
    expect(union.portCoverage()).toEqual({ slices: 2, withPort: 1 });
    union.delete('b', new Set());
    union.delete('a', new Set());
    expect(union.portCoverage()).toEqual({ slices: 0, withPort: 0 });
  });

  it('always equals the union of the slices, whatever the sequence of changes (property)', () => {
    const ips = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6'];
    const names = ['s1', 's2', 's3', 's4'];
    const ep = fc.record({
      ip: fc.constantFrom(...ips),
      zone: fc.constantFrom('a', 'b'),
      ready: fc.constantFrom(true, false, undefined),
    });
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('set' as const),
        name: fc.constantFrom(...names),
        eps: fc.array(ep, { maxLength: 5 }),
      }),
      fc.record({ kind: fc.constant('delete' as const), name: fc.constantFrom(...names) }),
      fc.record({
        kind: fc.constant('move' as const),
        from: fc.constantFrom(...names),
        to: fc.constantFrom(...names),
        ip: fc.constantFrom(...ips),
      }),
      fc.record({ kind: fc.constant('reset' as const), keep: fc.array(fc.constantFrom(...names)) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const union = new SliceUnion();
        const f = follower(union);
        const model = new Map<string, EndpointSlice>();
        const held = new Map<string, SliceContribution>();
        const put = (s: EndpointSlice, changed: Set<string>) => {
          const c = contribution(s);
          model.set(s.metadata!.name!, s);
          held.set(c.name, c);
          union.set(c, changed);
        };
        for (const o of ops) {
          const changed = new Set<string>();
          if (o.kind === 'set') {
            put(
              slice(
                o.name,
                'svc',
                o.eps.map((e) =>
                  endpoint(e.ip, {
                    zone: e.zone,
                    conditions: e.ready === undefined ? {} : { ready: e.ready },
                  }),
                ),
              ),
              changed,
            );
          } else if (o.kind === 'delete') {
            model.delete(o.name);
            held.delete(o.name);
            union.delete(o.name, changed);
          } else if (o.kind === 'move') {
            const from = model.get(o.from);
            const moving = from?.endpoints?.filter((e) => e.addresses?.[0] === o.ip) ?? [];
            if (from && moving.length > 0 && o.from !== o.to) {
              const to = model.get(o.to) ?? slice(o.to, 'svc', []);
              put({ ...to, endpoints: [...(to.endpoints ?? []), ...moving] }, changed);
              f.apply(changed);
              changed.clear();
              put({ ...from, endpoints: from.endpoints!.filter((e) => e.addresses?.[0] !== o.ip) }, changed);
            }
          } else {
            const keep = new Map([...held].filter(([name]) => o.keep.includes(name)));
            for (const name of [...model.keys()]) if (!keep.has(name)) model.delete(name);
            held.clear();
            for (const [name, c] of keep) held.set(name, c);
            union.reset(keep, changed);
          }
          f.apply(changed);
          // The model: every served endpoint of every slice, the copy of the first slice by name.
          const expected = new Map<string, Instance>();
          for (const name of [...model.keys()].sort()) {
            for (const [key, instance] of readSlice(model.get(name)!, {
              port: undefined,
              servingTerminating: false,
            }).instances) {
              if (!expected.has(key)) expected.set(key, instance);
            }
          }
          expect(new Set(f.published.keys())).toEqual(new Set(expected.keys()));
          for (const [key, instance] of expected)
            expect(sameInstance(f.published.get(key)!, instance)).toBe(true);
          expect(union.size).toBe(expected.size);
        }
      }),
      { numRuns: 300 },
    );
  });
});
