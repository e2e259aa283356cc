import { readFileSync } from 'node:fs';
import { context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { type Endpoint, endpointer, type Instance } from '@sdkit/sd-core';
import { FakeClock, FakeInstancer } from '@sdkit/sd-core/testing';
import { startTestTelemetry, type TestTelemetry } from '@sdkit/test-harness/telemetry';
import { afterEach, describe, expect, it } from 'vitest';
import { CallMeter } from './call-meter.js';
import { RetryError } from './errors.js';
import { LB_SCOPE } from './lb-instruments.js';
import { lbTracer } from './lb-tracer.js';
import { outlierEjection } from './outlier-ejection.js';
import { type RetryOptions, retry } from './retry.js';
import { retryBudget } from './retry-budget.js';
import { roundRobin } from './round-robin.js';

const settle = () => new Promise<void>((r) => setImmediate(r));
const base: RetryOptions = { maxAttempts: 3, timeoutMs: 10_000, backoff: false };

let otel: TestTelemetry | undefined;
const startOtel = (options?: { metrics?: boolean; traces?: boolean }): TestTelemetry => {
  otel = startTestTelemetry(options);
  return otel;
};
const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  await otel?.stop();
  otel = undefined;
});

/** Behaviour of each instance's endpoint, by key: what it answers, or the error it rejects with. */
type Behaviour = { answer: string } | { error: Error } | 'hang';

/** A roundRobin over a real endpointer of `keys`, whose endpoints do what `behaviours` says (by key, per call). */
async function service(keys: string[], behave: (key: string, call: number) => Behaviour) {
  const instancer = new FakeInstancer(keys);
  const calls = new Map<string, number>();
  const ep = endpointer(instancer, (instance: Instance) => ({
    endpoint: async (): Promise<string> => {
      const n = (calls.get(instance.key) ?? 0) + 1;
      calls.set(instance.key, n);
      const b = behave(instance.key, n);
      if (b === 'hang') return new Promise<string>(() => {});
      if ('error' in b) throw b.error;
      return b.answer;
    },
  }));
  await ep.ready();
  closers.push(() => ep.close());
  return { balancer: roundRobin(ep), endpointer: ep };
}

const refused = () => Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:80'), { code: 'ECONNREFUSED' });

describe('retry telemetry without an SDK', () => {
  it('makes no span and records nothing: lbTracer() is undefined and calls work as before', async () => {
    expect(lbTracer()).toBeUndefined();
    const { balancer } = await service(['a', 'b'], (key) =>
      key === 'a' ? { error: refused() } : { answer: key },
    );
    const call = retry(balancer, base);
    await expect(call(1)).resolves.toBe('b');
    expect(trace.getActiveSpan()).toBeUndefined();
  });
});

describe('retry spans (the real SDK)', () => {
  it('a call is one INTERNAL sdkit.retry span, child of the caller’s active span, with one event per attempt', async () => {
    const t = startOtel();
    const { balancer } = await service(['a', 'b', 'c'], (key) =>
      key === 'c' ? { answer: 'from c' } : { error: key === 'a' ? refused() : new TypeError('bad answer') },
    );
    const call = retry(balancer, { ...base, telemetry: { name: 'barsvc' } });
    const tracer = trace.getTracer('test');
    const result = await tracer.startActiveSpan('caller', async (parent: Span) => {
      try {
        return await call(1);
      } finally {
        parent.end();
      }
    });
    expect(result).toBe('from c');
    const [span, parent] = t.spans();
    expect(parent!.name).toBe('caller');
    expect(span!.name).toBe('sdkit.retry');
    expect(span!.kind).toBe(SpanKind.INTERNAL);
    expect(span!.parentSpanContext?.spanId).toBe(parent!.spanContext().spanId);
    expect(span!.spanContext().traceId).toBe(parent!.spanContext().traceId);
    expect(span!.attributes).toEqual({ 'sdkit.retry.name': 'barsvc', 'sdkit.retry.attempt_count': 3 });
    expect(span!.status.code).toBe(SpanStatusCode.UNSET);
    expect(span!.events.map((e) => [e.name, e.attributes])).toEqual([
      [
        'sdkit.retry.attempt',
        {
          'sdkit.retry.attempt.number': 1,
          'sdkit.endpoint.key': 'a',
          'error.type': 'ECONNREFUSED',
          'error.message': 'connect ECONNREFUSED 10.0.0.1:80',
        },
      ],
      [
        'sdkit.retry.attempt',
        {
          'sdkit.retry.attempt.number': 2,
          'sdkit.endpoint.key': 'b',
          'error.type': 'TypeError',
          'error.message': 'bad answer',
        },
      ],
      ['sdkit.retry.attempt', { 'sdkit.retry.attempt.number': 3, 'sdkit.endpoint.key': 'c' }],
    ]);
  });

  it('each attempt runs with the retry span active: a span the endpoint makes (after an await too) is its child', async () => {
    const t = startOtel();
    const tracer = trace.getTracer('http-client');
    let n = 0;
    const instancer = new FakeInstancer(['a', 'b']);
    const ep = endpointer(instancer, () => ({
      endpoint: async (): Promise<string> => {
        await settle(); // an async hop: the context must follow through AsyncLocalStorage
        return tracer.startActiveSpan('GET /bar', (client) => {
          client.end();
          if (++n === 1) throw new Error('503');
          return 'ok';
        });
      },
    }));
    await ep.ready();
    closers.push(() => ep.close());
    await expect(retry(roundRobin(ep), base)(1)).resolves.toBe('ok');
    const spans = t.spans();
    const retrySpan = spans.find((s) => s.name === 'sdkit.retry')!;
    const clientSpans = spans.filter((s) => s.name === 'GET /bar');
    expect(clientSpans).toHaveLength(2);
    for (const s of clientSpans) expect(s.parentSpanContext?.spanId).toBe(retrySpan.spanContext().spanId);
    // The caller's context is its own again afterwards.
    expect(trace.getActiveSpan()).toBeUndefined();
  });

  it('a give-up: status ERROR, the reason and the cause’s error.type; counted in sdkit.retry.give_ups', async () => {
    const t = startOtel();
    const { balancer } = await service(['a', 'b'], () => ({ error: refused() }));
    const error = await retry(balancer, base)(1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryError);
    const [span] = t.spans();
    expect(span!.status).toEqual({ code: SpanStatusCode.ERROR, message: (error as RetryError).message });
    expect(span!.attributes).toEqual({
      'sdkit.retry.attempt_count': 3,
      'sdkit.retry.reason': 'exhausted',
      'error.type': 'ECONNREFUSED',
    });
    expect(span!.events).toHaveLength(3);
    expect(await t.points('sdkit.retry.give_ups')).toEqual([
      { attributes: { 'sdkit.retry.reason': 'exhausted', 'error.type': 'ECONNREFUSED' }, value: 1 },
    ]);
    expect(await t.points('sdkit.retry.retries')).toEqual([
      { attributes: { 'error.type': 'ECONNREFUSED' }, value: 2 },
    ]);
  });

  it('a timeout with an attempt in flight: the span ends after that attempt’s event (TimeoutError)', async () => {
    const t = startOtel();
    const clock = new FakeClock();
    const { balancer } = await service(['a'], () => 'hang');
    const pending = retry(balancer, { ...base, timeoutMs: 500, clock })(1).catch((e: unknown) => e);
    await settle();
    expect(t.spans()).toHaveLength(0); // in flight
    clock.advance(500);
    expect(((await pending) as RetryError).reason).toBe('timeout');
    await settle();
    const [span] = t.spans();
    expect(span!.attributes['sdkit.retry.reason']).toBe('timeout');
    expect(span!.attributes['error.type']).toBe('TimeoutError');
    expect(span!.events.map((e) => e.attributes)).toEqual([
      {
        'sdkit.retry.attempt.number': 1,
        'sdkit.endpoint.key': 'a',
        'error.type': 'TimeoutError',
        'error.message': 'retry timed out after 500 ms overall',
      },
    ]);
  });

  it('counts give-ups by reason: budget-exhausted, aborted before any attempt (no span then)', async () => {
    const t = startOtel();
    const { balancer } = await service(['a', 'b'], () => ({ error: new Error('down') }));
    const budget = retryBudget({ ratio: 0, minRetriesPerSecond: 0 });
    const call = retry(balancer, { ...base, budget, telemetry: { name: 'foo' } });
    expect(((await call(1).catch((e: unknown) => e)) as RetryError).reason).toBe('budget-exhausted');
    const aborted = AbortSignal.abort(new Error('shutting down'));
    expect(((await call(1, { signal: aborted }).catch((e: unknown) => e)) as RetryError).reason).toBe(
      'aborted',
    );
    expect(await t.points('sdkit.retry.give_ups')).toEqual([
      {
        attributes: { 'sdkit.retry.name': 'foo', 'sdkit.retry.reason': 'aborted', 'error.type': 'Error' },
        value: 1,
      },
      {
        attributes: {
          'sdkit.retry.name': 'foo',
          'sdkit.retry.reason': 'budget-exhausted',
          'error.type': 'Error',
        },
        value: 1,
      },
    ]);
    expect(t.spans()).toHaveLength(1);
    expect(await t.points('sdkit.retry.retries')).toEqual([]);
  });

  it('telemetry: false makes no span and counts nothing for that endpoint', async () => {
    const t = startOtel();
    const { balancer } = await service(['a'], () => ({ error: new Error('down') }));
    await retry(balancer, { ...base, telemetry: false })(1).catch(() => undefined);
    expect(t.spans()).toHaveLength(0);
    expect(await t.names()).not.toContain('sdkit.retry.give_ups');
  });

  it('an SDK registered after retry() was made gets the spans of the calls made from then on', async () => {
    const { balancer } = await service(['a'], () => ({ answer: 'ok' }));
    const call = retry(balancer, base);
    await call(1);
    const t = startOtel();
    await call(2);
    expect(t.spans().map((s) => s.name)).toEqual(['sdkit.retry']);
  });

  it('metrics alone (no TracerProvider): no span is started, retries are still counted', async () => {
    const t = startOtel({ traces: false });
    expect(lbTracer()).toBeUndefined();
    const { balancer } = await service(['a', 'b'], (key) =>
      key === 'a' ? { error: refused() } : { answer: 'ok' },
    );
    await retry(balancer, base)(1);
    expect(await t.value('sdkit.retry.retries')).toBe(1);
  });

  it('rejects a bad telemetry option with a TypeError naming it', () => {
    const balancer = { endpoint: () => (async () => 1) as Endpoint };
    expect(() => retry(balancer, { ...base, telemetry: 'on' as never })).toThrow(
      /telemetry must be false or an object/,
    );
    expect(() => retry(balancer, { ...base, telemetry: { name: '' } })).toThrow(
      /telemetry.name must be a non-empty/,
    );
    expect(() => retry(balancer, { ...base, telemetry: { spanName: 'x' } as never })).toThrow(
      /did you mean "name"/,
    );
  });
});

describe('CallMeter and outlierEjection metrics (the real SDK)', () => {
  it('sdkit.endpoint.active_calls: calls in flight per instance key, 0 once they settled and after close', async () => {
    const t = startOtel({ traces: false });
    const meter = new CallMeter();
    const release: (() => void)[] = [];
    const instancer = new FakeInstancer(['a', 'b']);
    const ep = endpointer(
      instancer,
      meter.measure(() => ({ endpoint: () => new Promise<void>((r) => release.push(r)) })),
    );
    await ep.ready();
    const [a, b] = ep.endpoints();
    const calls = [a!(1), a!(2), b!(3)];
    expect(await t.points('sdkit.endpoint.active_calls')).toEqual([
      { attributes: { 'sdkit.endpoint.key': 'a' }, value: 2 },
      { attributes: { 'sdkit.endpoint.key': 'b' }, value: 1 },
    ]);
    for (const r of release) r();
    await Promise.all(calls);
    expect(await t.value('sdkit.endpoint.active_calls', { 'sdkit.endpoint.key': 'a' })).toBe(0);
    instancer.remove('b');
    await settle();
    expect(await t.points('sdkit.endpoint.active_calls')).toEqual([
      { attributes: { 'sdkit.endpoint.key': 'a' }, value: 0 },
      { attributes: { 'sdkit.endpoint.key': 'b' }, value: 0 },
    ]);
    await ep.close();
  });

  it('sdkit.endpoint.ejections counts each ejection by reason', async () => {
    const t = startOtel({ traces: false });
    const meter = new CallMeter();
    const instancer = new FakeInstancer(['a', 'b', 'c', 'd']);
    const ep = endpointer(
      instancer,
      meter.measure((i) => ({
        endpoint: async () => {
          if (i.key === 'a') throw new Error('down');
          return i.key;
        },
      })),
    );
    await ep.ready();
    closers.push(() => ep.close());
    const healthy = outlierEjection(ep, { meter, consecutiveFailures: 2 });
    const [a] = ep.endpoints();
    for (let i = 0; i < 2; i++) await a!(1).catch(() => undefined);
    expect(healthy.ejected().map((e) => e.key)).toEqual(['a']);
    expect(await t.points('sdkit.endpoint.ejections')).toEqual([
      { attributes: { 'sdkit.endpoint.ejection.reason': 'consecutive-failures' }, value: 1 },
    ]);
    healthy.close();
  });

  it("the meter's and tracer's version is the package's", () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    expect(LB_SCOPE).toEqual({ name: pkg.name, version: pkg.version });
    expect(context.active()).toBeDefined();
  });
});
