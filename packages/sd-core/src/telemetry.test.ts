import { readFileSync } from 'node:fs';
import { metrics } from '@opentelemetry/api';
import { startTestTelemetry, type TestTelemetry } from '@sdkit/test-harness/telemetry';
import { afterEach, describe, expect, it } from 'vitest';
import { endpointEntryOf } from './endpoint-entries.js';
import { endpointer } from './endpointer.js';
import { errorType } from './error-type.js';
import { FixedInstancer } from './fixed-instancer.js';
import { InstanceCache } from './instance-cache.js';
import { MemoryRegistry } from './memory-registry.js';
import { MeterInstruments } from './meter-instruments.js';
import { RegistrarTelemetry } from './registrar-telemetry.js';
import { SD_CORE_SCOPE } from './source-instruments.js';
import { SourceTelemetry } from './source-telemetry.js';
import { FakeClock } from './testing/fake-clock.js';
import { instance } from './testing/instances.js';

const COUNT = 'sdkit.source.instance.count';
const ERRORS = 'sdkit.source.errors';

let otel: TestTelemetry | undefined;
const startOtel = (): TestTelemetry => {
  otel = startTestTelemetry({ traces: false });
  return otel;
};
/** Caches made by a test, closed after it: a cache counts until closed (or garbage). */
const made: InstanceCache[] = [];
const newCache = (options?: ConstructorParameters<typeof InstanceCache>[0]): InstanceCache => {
  const cache = new InstanceCache(options);
  made.push(cache);
  return cache;
};
afterEach(async () => {
  for (const cache of made.splice(0)) cache.close();
  await otel?.points(COUNT); // a collection, which forgets the closed caches
  await otel?.stop();
  otel = undefined;
});

describe('sd-core telemetry without an SDK', () => {
  it('records nothing and costs no instruments: MeterInstruments.current() is undefined, caches work as before', () => {
    let made = 0;
    const instruments = new MeterInstruments(SD_CORE_SCOPE, () => ++made);
    expect(instruments.current()).toBeUndefined();
    const cache = newCache({ source: 'etcd', target: '/services/a/' });
    cache.replace([instance('a'), instance('b')]);
    cache.fail(new Error('down'));
    new SourceTelemetry({ source: 'etcd' }).resynced();
    new RegistrarTelemetry('etcd').stateChanged('registered');
    expect(cache.current()?.instances).toHaveLength(2);
    expect(made).toBe(0);
  });
});

describe('sd-core telemetry with the SDK (registered after sdkit was imported)', () => {
  it('reports the instances of each named source and target, and stops reporting a closed cache', async () => {
    const t = startOtel();
    const a = newCache({ source: 'etcd', target: '/services/a/' });
    const b = newCache({ source: 'kubernetes', target: 'default/b' });
    const unnamed = newCache();
    a.replace([instance('a1'), instance('a2'), instance('a3')]);
    b.replace([instance('b1')]);
    unnamed.replace([instance('x')]);
    expect(await t.points(COUNT)).toEqual([
      { attributes: { 'sdkit.source.name': 'etcd', 'sdkit.source.target': '/services/a/' }, value: 3 },
      { attributes: { 'sdkit.source.name': 'kubernetes', 'sdkit.source.target': 'default/b' }, value: 1 },
    ]);
    a.update({ delete: ['a1'] });
    expect(await t.value(COUNT, { 'sdkit.source.target': '/services/a/' })).toBe(2);
    a.close(); // reported as 0 from then on (an SDK keeps the last value of a series no longer observed)
    expect(await t.points(COUNT)).toEqual([
      { attributes: { 'sdkit.source.name': 'etcd', 'sdkit.source.target': '/services/a/' }, value: 0 },
      { attributes: { 'sdkit.source.name': 'kubernetes', 'sdkit.source.target': 'default/b' }, value: 1 },
    ]);
    a.replace([instance('a9')]); // closed: ignored
    expect(await t.value(COUNT, { 'sdkit.source.target': '/services/a/' })).toBe(0);
  });

  it('keeps the last known good count while the source fails, and counts each error event by error.type', async () => {
    const t = startOtel();
    const cache = newCache({ source: 'etcd', target: '/p/' });
    cache.replace([instance('a'), instance('b')]);
    cache.fail(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    cache.fail(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })); // same message: no event
    cache.fail(new TypeError('bad answer'));
    expect(await t.value(COUNT)).toBe(2);
    expect(await t.points(ERRORS)).toEqual([
      {
        attributes: {
          'sdkit.source.name': 'etcd',
          'sdkit.source.target': '/p/',
          'error.type': 'ECONNREFUSED',
        },
        value: 1,
      },
      {
        attributes: { 'sdkit.source.name': 'etcd', 'sdkit.source.target': '/p/', 'error.type': 'TypeError' },
        value: 1,
      },
    ]);
  });

  it('reports one count for sources with the same name and target: the largest, not the sum', async () => {
    const t = startOtel();
    const one = newCache({ source: 'etcd', target: '/p/' });
    const two = newCache({ source: 'etcd', target: '/p/' });
    one.replace([instance('a'), instance('b')]);
    two.replace([instance('a'), instance('b'), instance('c')]);
    expect(await t.points(COUNT)).toEqual([
      { attributes: { 'sdkit.source.name': 'etcd', 'sdkit.source.target': '/p/' }, value: 3 },
    ]);
  });

  it('an SDK registered after the cache was made gets its count from the next event on', async () => {
    const cache = newCache({ source: 'memory', target: '' });
    cache.replace([instance('a')]);
    const t = startOtel();
    cache.update({ put: [instance('b')] });
    expect(await t.value(COUNT)).toBe(2);
  });

  it('follows a replaced MeterProvider: the new one gets the measurements, the old one no more', async () => {
    const first = startOtel();
    const cache = newCache({ source: 'etcd', target: '/p/' });
    cache.replace([instance('a')]);
    cache.fail(new Error('one'));
    expect(await first.value(ERRORS)).toBe(1);
    await first.stop();
    const second = startOtel();
    cache.fail(new Error('two'));
    expect(await second.value(ERRORS)).toBe(1);
    expect(await second.value(COUNT)).toBe(1);
  });

  it('MemoryRegistry: instances per prefix, registrar state changes by state (a lost entry included)', async () => {
    const t = startOtel();
    const clock = new FakeClock();
    const registry = new MemoryRegistry({ clock, reregisterDelayMs: 0 });
    const instancer = registry.instancer('/svc/');
    const registrars = ['a', 'b', 'c'].map((k) =>
      registry.registrar({ key: `/svc/${k}`, address: `${k}:80` }),
    );
    for (const r of registrars) await r.register();
    expect(await t.value(COUNT, { 'sdkit.source.name': 'memory' })).toBe(3);
    registry.delete('/svc/a'); // the registrar loses its entry and registers again at once
    expect(await t.value(COUNT, { 'sdkit.source.target': '/svc/' })).toBe(2);
    clock.advance(0);
    await registrars[1]!.deregister();
    expect(await t.value(COUNT, { 'sdkit.source.target': '/svc/' })).toBe(2);
    const changes = Object.fromEntries(
      (await t.points('sdkit.registrar.state_changes')).map((p) => [
        `${p.attributes['sdkit.source.name']}:${p.attributes['sdkit.registrar.state']}`,
        p.value,
      ]),
    );
    expect(changes).toEqual({
      'memory:registering': 4,
      'memory:registered': 4,
      'memory:lost': 1,
      'memory:deregistered': 1,
    });
    instancer.stop();
    registry.close();
  });

  it('FixedInstancer counts as source "fixed" (no target)', async () => {
    const t = startOtel();
    const fixed = new FixedInstancer(['a:1', 'b:1']);
    expect(await t.points(COUNT)).toEqual([{ attributes: { 'sdkit.source.name': 'fixed' }, value: 2 }]);
    fixed.stop();
  });

  it('SourceTelemetry and RegistrarTelemetry count resyncs, reconnects and lease re-grants', async () => {
    const t = startOtel();
    const source = new SourceTelemetry({ source: 'kubernetes', target: 'ns/svc' });
    source.resynced();
    source.resynced();
    source.reconnected();
    new RegistrarTelemetry('etcd').leaseRegranted();
    const attributes = { 'sdkit.source.name': 'kubernetes', 'sdkit.source.target': 'ns/svc' };
    expect(await t.points('sdkit.source.resyncs')).toEqual([{ attributes, value: 2 }]);
    expect(await t.points('sdkit.source.reconnects')).toEqual([{ attributes, value: 1 }]);
    expect(await t.points('sdkit.registrar.lease.regrants')).toEqual([
      { attributes: { 'sdkit.source.name': 'etcd' }, value: 1 },
    ]);
  });

  it('uses @opentelemetry/api only: the global MeterProvider is the SDK one the test registered', () => {
    startOtel();
    expect(metrics.getMeterProvider().constructor.name).toBe('MeterProvider');
  });
});

describe('telemetry names and helpers', () => {
  it('bad source names are TypeErrors naming the option', () => {
    expect(() => newCache({ source: '' })).toThrow(/InstanceCache: source must be a non-empty string/);
    expect(() => new InstanceCache({ target: '/p/' })).toThrow(/source must be a non-empty string/);
    expect(() => new InstanceCache({ name: 'etcd' } as never)).toThrow(
      /unknown option "name" \(did you mean "source"\?\)/,
    );
    expect(() => new SourceTelemetry({ source: 'etcd', target: 5 as never })).toThrow(
      /target must be a string/,
    );
    expect(() => new RegistrarTelemetry(undefined as never)).toThrow(TypeError);
  });

  it('errorType: a short string code, else the name, else _OTHER', () => {
    expect(errorType(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe('ECONNREFUSED');
    expect(errorType(Object.assign(new Error('x'), { code: 14 }))).toBe('Error');
    expect(errorType(Object.assign(new Error('x'), { code: 'has spaces in it' }))).toBe('Error');
    expect(errorType(new RangeError('x'))).toBe('RangeError');
    expect(errorType('a string')).toBe('_OTHER');
    expect(errorType(undefined)).toBe('_OTHER');
  });

  it("the meter's version is the package's", () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    expect(SD_CORE_SCOPE).toEqual({ name: pkg.name, version: pkg.version });
  });

  it('endpointEntryOf names the instance behind an endpoint an Endpointer made', async () => {
    const fixed = new FixedInstancer([instance('a')]);
    const ep = endpointer(fixed, (i) => ({ endpoint: async () => i.address }));
    await ep.ready();
    const [made] = ep.endpoints();
    expect(endpointEntryOf(made!)).toMatchObject({ key: 'a', instance: { key: 'a' } });
    expect(endpointEntryOf(async () => 1)).toBeUndefined();
    await ep.close();
  });
});
