import { getEventListeners } from 'node:events';
import { type Clock, type Endpoint, type EndpointOptions, endpointer, type Factory } from '@sdkit/sd-core';
import { FakeClock, FakeInstancer, processHolds } from '@sdkit/sd-core/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Balancer } from './balancer.js';
import { NoEndpointsError, RetryError, TimeoutError } from './errors.js';
import { type RetryInfo, type RetryOptions, retry } from './retry.js';
import { type RetryBudget, retryBudget } from './retry-budget.js';
import { roundRobin } from './round-robin.js';
import { FakeEndpointer, fakeEndpoint } from './testing-fakes.js';

/** Settles `promise` into a value we can assert on, without an unhandled rejection in between. */
function outcome<T>(promise: Promise<T>): { readonly settled: Promise<{ value?: T; error?: unknown }> } & {
  done: boolean;
} {
  const state = {
    done: false,
    settled: promise.then(
      (value) => {
        state.done = true;
        return { value };
      },
      (error: unknown) => {
        state.done = true;
        return { error };
      },
    ),
  };
  return state;
}

async function rejection(promise: Promise<unknown>): Promise<RetryError> {
  const result = await outcome(promise).settled;
  expect(result.error).toBeInstanceOf(RetryError);
  return result.error as RetryError;
}

const base: RetryOptions = { maxAttempts: 3, timeoutMs: 10_000, backoff: false };

describe('retry (fake timers)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    // Whatever the test did, a settled call leaves no timer behind.
    expect(vi.getTimerCount()).toBe(0);
    vi.useRealTimers();
  });

  it('succeeds after failures, picking a different endpoint for each attempt', async () => {
    const a = fakeEndpoint('a', { reject: new Error('a down') });
    const b = fakeEndpoint('b', { reject: new Error('b down') });
    const c = fakeEndpoint('c', { resolve: 'from c' });
    const call = retry(roundRobin(new FakeEndpointer([a, b, c])), base);
    await expect(call('req')).resolves.toBe('from c');
    expect([a.calls.length, b.calls.length, c.calls.length]).toEqual([1, 1, 1]);
    expect(c.calls[0]!.request).toBe('req');
    // Each attempt has its own signal.
    const signals = [a, b, c].map((e) => e.calls[0]!.signal);
    expect(new Set(signals).size).toBe(3);
    expect(signals.every((s) => s instanceof AbortSignal && !s.aborted)).toBe(true);
  });

  it('a retry avoids an endpoint that already failed in the same call, even when the balancer offers it again', async () => {
    const dead = fakeEndpoint('dead', { reject: new Error('refused') });
    const live = fakeEndpoint('live', { resolve: 'ok' });
    // A balancer that keeps offering the dead endpoint first, as a round-robin shared by concurrent callers can.
    let picks = 0;
    const stubborn: Balancer<unknown, string> = { endpoint: () => (picks++ % 3 === 2 ? live : dead) };
    const call = retry(stubborn, { ...base, maxAttempts: 2 });
    await expect(call('req')).resolves.toBe('ok');
    expect(dead.calls.length).toBe(1);
    expect(live.calls.length).toBe(1);
  });

  it('pickContext: computed once per call from its request, passed to every pick of that call with the attempt', async () => {
    const a = fakeEndpoint('a', { reject: new Error('a down') });
    const b = fakeEndpoint('b', { resolve: 'from b' });
    const contexts: unknown[] = [];
    let picks = 0;
    const recording: Balancer<{ user: string }, string> = {
      endpoint: (context) => {
        contexts.push(context);
        return picks++ === 0 ? a : b;
      },
    };
    let computed = 0;
    const call = retry(recording, {
      ...base,
      pickContext: (req) => {
        computed++;
        return { hashKey: req.user };
      },
    });
    await expect(call({ user: 'u-17' })).resolves.toBe('from b');
    expect(computed).toBe(1);
    // The first attempt gets the call's context as it is; the retry's picks get it with `attempt: 2`.
    expect(contexts).toEqual([{ hashKey: 'u-17' }, { hashKey: 'u-17', attempt: 2 }]);
    // Without the option, picks get no context.
    contexts.length = 0;
    picks = 1;
    await retry(recording, base)({ user: 'x' });
    expect(contexts).toEqual([undefined]);
    // …and a retry without the option tells only the attempt.
    contexts.length = 0;
    picks = 0;
    await retry(recording, base)({ user: 'x' });
    expect(contexts).toEqual([undefined, { attempt: 2 }]);
  });

  it('pickContext that throws: the call rejects not-retryable, with no attempt', async () => {
    const a = fakeEndpoint('a', { resolve: 'never' });
    const boom = new Error('no user on the request');
    const call = retry(roundRobin(new FakeEndpointer([a])), {
      ...base,
      pickContext: () => {
        throw boom;
      },
    });
    const error = await rejection(call('req'));
    expect(error.reason).toBe('not-retryable');
    expect(error.cause).toBe(boom);
    expect(a.calls.length).toBe(0);
    expect(() => retry(roundRobin(new FakeEndpointer([a])), { ...base, pickContext: 42 as never })).toThrow(
      /pickContext must be a function/,
    );
  });

  it('settles for a failed endpoint when the balancer offers nothing else', async () => {
    const only = fakeEndpoint('only', { reject: new Error('first') }, { resolve: 'second time lucky' });
    const call = retry(roundRobin(new FakeEndpointer([only])), base);
    await expect(call('req')).resolves.toBe('second time lucky');
    expect(only.calls.length).toBe(2);
  });

  it('when attempts are exhausted, rejects with a RetryError holding every error in order and the last as cause', async () => {
    const errors = [new Error('one'), new Error('two'), new Error('three')];
    const endpoints = errors.map((e, i) => fakeEndpoint(`e${i}`, { reject: e }));
    const call = retry(roundRobin(new FakeEndpointer(endpoints)), base);
    const error = await rejection(call('req'));
    expect(error.name).toBe('RetryError');
    expect(error.errors).toEqual(errors);
    expect(error.errors[0]).toBe(errors[0]);
    expect(error.cause).toBe(errors[2]);
    expect(error.attempts).toBe(3);
    expect(error.reason).toBe('exhausted');
    expect(error.message).toBe('gave up after 3 attempts (exhausted): three');
  });

  it('maxAttempts: 1 makes a single attempt', async () => {
    const a = fakeEndpoint('a', { reject: new Error('nope') });
    const error = await rejection(
      retry(roundRobin(new FakeEndpointer([a])), { ...base, maxAttempts: 1 })('x'),
    );
    expect(a.calls.length).toBe(1);
    expect(error.message).toBe('gave up after 1 attempt (exhausted): nope');
  });

  it('shouldRetry returning false stops at once with reason not-retryable', async () => {
    const fatal = new Error('400 bad request');
    const a = fakeEndpoint('a', { reject: fatal });
    const b = fakeEndpoint('b', { resolve: 'b' });
    const seen: [Error, number][] = [];
    const call = retry(roundRobin(new FakeEndpointer([a, b])), {
      ...base,
      shouldRetry: (error, attempt) => {
        seen.push([error, attempt]);
        return !error.message.startsWith('400');
      },
    });
    const error = await rejection(call('x'));
    expect(seen).toEqual([[fatal, 1]]);
    expect(b.calls.length).toBe(0);
    expect(error.reason).toBe('not-retryable');
    expect(error.errors).toEqual([fatal]);
    expect(error.cause).toBe(fatal);
  });

  it('shouldRetry is consulted per error: retryable errors go on, and it is not called after the last attempt', async () => {
    const a = fakeEndpoint('a', { reject: new Error('503') });
    const calls: number[] = [];
    const call = retry(roundRobin(new FakeEndpointer([a])), {
      ...base,
      shouldRetry: (_error, attempt) => {
        calls.push(attempt);
        return true;
      },
    });
    const error = await rejection(call('x'));
    expect(calls).toEqual([1, 2]);
    expect(error.attempts).toBe(3);
    expect(error.reason).toBe('exhausted');
  });

  it('a throwing shouldRetry stops retrying; what it threw is the cause', async () => {
    const attemptError = new Error('down');
    const bug = new Error('bug in predicate');
    const a = fakeEndpoint('a', { reject: attemptError });
    const call = retry(roundRobin(new FakeEndpointer([a])), {
      ...base,
      shouldRetry: () => {
        throw bug;
      },
    });
    const error = await rejection(call('x'));
    expect(a.calls.length).toBe(1);
    expect(error.cause).toBe(bug);
    expect(error.errors).toEqual([attemptError]);
    expect(error.reason).toBe('not-retryable');
  });

  it('calls onRetry before each retry (not after the last attempt) with the error and attempt numbers', async () => {
    const log: string[] = [];
    const infos: RetryInfo[] = [];
    const errors = [new Error('e0'), new Error('e1'), new Error('e2')];
    const endpoints = errors.map((e, i): Endpoint<string, string> => {
      return async () => {
        log.push(`call ${i}`);
        throw e;
      };
    });
    const call = retry(roundRobin(new FakeEndpointer(endpoints)), {
      ...base,
      onRetry: (info) => {
        log.push(`retry after ${info.attempt}`);
        infos.push(info);
      },
    });
    await rejection(call('x'));
    expect(log).toEqual(['call 0', 'retry after 1', 'call 1', 'retry after 2', 'call 2']);
    expect(infos).toEqual([
      { error: errors[0], attempt: 1, attemptsLeft: 2 },
      { error: errors[1], attempt: 2, attemptsLeft: 1 },
    ]);
  });

  it('counts NoEndpointsError as a failed attempt and picks again on the next one', async () => {
    const source = new FakeEndpointer<string, string>([]);
    const a = fakeEndpoint<string, string>('a', { resolve: 'a' });
    const infos: RetryInfo[] = [];
    const call = retry(roundRobin(source), {
      ...base,
      onRetry: (info) => {
        infos.push(info);
        if (info.attempt === 2) source.set([a]); // endpoints appear before attempt 3
      },
    });
    await expect(call('x')).resolves.toBe('a');
    expect(infos.map((i) => i.error)).toEqual([expect.any(NoEndpointsError), expect.any(NoEndpointsError)]);
  });

  it('a call made before the source reported its first set waits for it, then succeeds on its first attempt', async () => {
    const source = new FakeInstancer();
    const endpoints = endpointer<string, string>(source, (i) => ({
      endpoint: async (req) => `${i.address} ${req}`,
    }));
    const infos: RetryInfo[] = [];
    const call = retry(roundRobin(endpoints), { ...base, timeoutMs: 5_000, onRetry: (i) => infos.push(i) });
    const result = outcome(call('x'));
    await vi.advanceTimersByTimeAsync(3_000);
    expect(result.done).toBe(false);
    expect(processHolds()).toBeGreaterThan(0); // the waiting call keeps the process alive
    source.set(['a:1']);
    expect(await result.settled).toEqual({ value: 'a:1 x' });
    expect(infos).toEqual([]);
    expect(processHolds()).toBe(0);
    await endpoints.close();
  });

  it('the wait for the first set is bounded by the call timeout, and leaves nothing behind', async () => {
    const source = new FakeInstancer();
    const endpoints = endpointer<string, string>(source, (i) => ({ endpoint: async () => i.address }));
    const call = retry(roundRobin(endpoints), { ...base, timeoutMs: 1_000 });
    const result = outcome(call('x'));
    await vi.advanceTimersByTimeAsync(1_000);
    const { error } = await result.settled;
    expect(error).toBeInstanceOf(RetryError);
    expect((error as RetryError).reason).toBe('timeout');
    expect(processHolds()).toBe(0);
    source.set(['a:1']); // a late first set reaches no abandoned waiter
    await endpoints.close();
  });

  it("a NoEndpointsError says why there are none: the factory's mistake reaches the caller", async () => {
    const source = new FakeInstancer(['a:1']);
    const endpoints = endpointer<string, string>(
      source,
      ((i: { address: string }) => async () => i.address) as unknown as Factory<string, string>,
    );
    const error = await rejection(retry(roundRobin(endpoints), base)('x'));
    expect(error.reason).toBe('exhausted');
    expect(error.cause).toBeInstanceOf(NoEndpointsError);
    expect((error.cause as Error).message).toBe(
      'no endpoints available: the factory failed for 1 of 1 instances; last, for "a:1": factory returned a ' +
        'function; return { endpoint: yourFunction } (and optionally close) instead',
    );
    await endpoints.close();
  });

  it('with no endpoints at all, every attempt fails with NoEndpointsError', async () => {
    const call = retry(roundRobin(new FakeEndpointer<string, string>([])), base);
    const error = await rejection(call('x'));
    expect(error.attempts).toBe(3);
    expect(error.errors.every((e) => e instanceof NoEndpointsError)).toBe(true);
    expect(error.cause).toBeInstanceOf(NoEndpointsError);
  });

  it('retries TypeErrors, synchronous throws and non-Error rejections like any failure', async () => {
    const typeError = new TypeError('cannot read x of undefined');
    const a = fakeEndpoint('a', { reject: typeError });
    const b = fakeEndpoint('b', { throwSync: new Error('sync') });
    const c = fakeEndpoint('c', { reject: 'a string' });
    const error = await rejection(retry(roundRobin(new FakeEndpointer([a, b, c])), base)('x'));
    expect(error.attempts).toBe(3);
    expect(error.errors[0]).toBe(typeError);
    expect(error.errors[1]!.message).toBe('sync');
    expect(error.errors[2]).toBeInstanceOf(Error);
    expect(error.errors[2]!.cause).toBe('a string');
    expect(error.errors[2]!.message).toContain('"a string"');
  });

  it('a balancer that throws something else also counts as an attempt', async () => {
    let picks = 0;
    const a = fakeEndpoint('a', { resolve: 'ok' });
    const balancer: Balancer<unknown, string> = {
      endpoint() {
        picks++;
        if (picks === 1) throw new Error('balancer hiccup');
        return a;
      },
    };
    await expect(retry(balancer, base)('x')).resolves.toBe('ok');
    expect(picks).toBe(2);
  });

  it('per-attempt timeout aborts the attempt signal, counts as a failed attempt, and the next attempt goes on', async () => {
    const slow = fakeEndpoint('slow', 'hang');
    const fast = fakeEndpoint('fast', { resolve: 'fast' });
    const infos: RetryInfo[] = [];
    const call = retry(roundRobin(new FakeEndpointer([slow, fast])), {
      ...base,
      perAttemptTimeoutMs: 50,
      onRetry: (info) => infos.push(info),
    });
    const result = outcome(call('x'));
    await vi.advanceTimersByTimeAsync(49);
    expect(fast.calls.length).toBe(0);
    expect(slow.abortsSeen).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect((await result.settled).value).toBe('fast');
    expect(slow.abortsSeen.length).toBe(1);
    const timeout = slow.abortsSeen[0] as TimeoutError;
    expect(timeout).toBeInstanceOf(TimeoutError);
    expect(timeout.name).toBe('TimeoutError');
    expect(timeout.scope).toBe('attempt');
    expect(timeout.timeoutMs).toBe(50);
    expect(timeout.message).toBe('attempt 1 timed out after 50 ms');
    expect(infos[0]!.error).toBe(timeout);
    // The per-attempt timer of the successful attempt was cleared (afterEach checks the count).
  });

  it('per-attempt timeout fails the attempt even if the endpoint ignores its signal', async () => {
    const deaf: Endpoint<string, string> = () => new Promise<string>(() => {});
    const call = retry(roundRobin(new FakeEndpointer([deaf])), { ...base, perAttemptTimeoutMs: 20 });
    const result = outcome(call('x'));
    await vi.advanceTimersByTimeAsync(60);
    const { error } = await result.settled;
    expect(error).toBeInstanceOf(RetryError);
    const retryError = error as RetryError;
    expect(retryError.reason).toBe('exhausted');
    expect(retryError.errors.map((e) => (e as TimeoutError).scope)).toEqual([
      'attempt',
      'attempt',
      'attempt',
    ]);
  });

  it('an endpoint that reads its signal only after the attempt timed out gets it already aborted, with the cause', async () => {
    const seen: { options: EndpointOptions | undefined }[] = [];
    const late: Endpoint<string, string> = (_req, options) => {
      seen.push({ options });
      return new Promise<string>(() => {});
    };
    const call = retry(roundRobin(new FakeEndpointer([late])), {
      ...base,
      maxAttempts: 1,
      perAttemptTimeoutMs: 20,
    });
    const result = outcome(call('x'));
    await vi.advanceTimersByTimeAsync(25);
    await result.settled;
    const signal = seen[0]!.options!.signal!;
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(TimeoutError);
    expect((signal.reason as TimeoutError).scope).toBe('attempt');
    // The same signal on every read.
    expect(seen[0]!.options!.signal).toBe(signal);
  });

  it('overall timeout rejects at once with all errors so far and aborts the in-flight attempt', async () => {
    const first = new Error('first failed');
    const a = fakeEndpoint('a', { reject: first });
    const b = fakeEndpoint('b', 'hang');
    const call = retry(roundRobin(new FakeEndpointer([a, b])), { ...base, timeoutMs: 100 });
    const result = outcome(call('x'));
    await vi.advanceTimersByTimeAsync(99);
    expect(result.done).toBe(false);
    expect(b.calls.length).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(result.done).toBe(true);
    const error = (await result.settled).error as RetryError;
    expect(error).toBeInstanceOf(RetryError);
    expect(error.reason).toBe('timeout');
    expect(error.cause).toBeInstanceOf(TimeoutError);
    expect((error.cause as TimeoutError).scope).toBe('overall');
    expect(error.errors).toEqual([first, error.cause]);
    expect(error.attempts).toBe(2);
    expect(error.message).toBe('gave up after 2 attempts (timeout): retry timed out after 100 ms overall');
    // The in-flight attempt saw the abort, with the timeout as reason.
    expect(b.abortsSeen).toEqual([error.cause]);
    expect(b.calls[0]!.signal!.aborted).toBe(true);
  });

  it('the signal option aborts the call at once; the cause is the abort reason and the attempt sees it', async () => {
    const controller = new AbortController();
    const a = fakeEndpoint('a', 'hang');
    const call = retry(roundRobin(new FakeEndpointer([a])), { ...base, signal: controller.signal });
    const result = outcome(call('x'));
    await vi.advanceTimersByTimeAsync(0);
    expect(result.done).toBe(false);
    const reason = new Error('shutting down');
    controller.abort(reason);
    const error = (await result.settled).error as RetryError;
    expect(error).toBeInstanceOf(RetryError);
    expect(error.reason).toBe('aborted');
    expect(error.cause).toBe(reason);
    expect(error.errors).toEqual([reason]);
    expect(a.abortsSeen).toEqual([reason]);
    expect(getEventListeners(controller.signal, 'abort').length).toBe(0);
    // Calls made after the signal fired reject without an attempt.
    const late = await rejection(call('y'));
    expect(late.cause).toBe(reason);
    expect(late.attempts).toBe(0);
    expect(a.calls.length).toBe(1);
  });

  it('combines the signal option and the per-call signal: either one ends the call', async () => {
    const shared = new AbortController();
    const perCall = new AbortController();
    const a = fakeEndpoint('a', 'hang');
    const call = retry(roundRobin(new FakeEndpointer([a])), { ...base, signal: shared.signal });
    const one = outcome(call('1', { signal: perCall.signal }));
    const two = outcome(call('2'));
    await vi.advanceTimersByTimeAsync(0);
    perCall.abort(new Error('call 1 cancelled'));
    expect(((await one.settled).error as RetryError).cause.message).toBe('call 1 cancelled');
    await vi.advanceTimersByTimeAsync(0);
    expect(two.done).toBe(false);
    shared.abort(new Error('all cancelled'));
    expect(((await two.settled).error as RetryError).cause.message).toBe('all cancelled');
    expect(a.abortsSeen.map((r) => (r as Error).message)).toEqual(['call 1 cancelled', 'all cancelled']);
  });

  it('an already-aborted per-call signal rejects without an attempt; a non-Error reason is wrapped', async () => {
    const a = fakeEndpoint('a', { resolve: 'a' });
    const error = await rejection(
      retry(roundRobin(new FakeEndpointer([a])), base)('x', { signal: AbortSignal.abort('stop') }),
    );
    expect(a.calls.length).toBe(0);
    expect(error.errors).toEqual([]);
    expect(error.cause).toBeInstanceOf(Error);
    expect(error.cause.cause).toBe('stop');
    expect(error.message).toBe('gave up after 0 attempts (aborted): non-Error value: "stop"');
  });

  it('a successful call removes its listeners from the signals', async () => {
    const shared = new AbortController();
    const perCall = new AbortController();
    const a = fakeEndpoint('a', { resolve: 'a' });
    const call = retry(roundRobin(new FakeEndpointer([a])), { ...base, signal: shared.signal });
    await expect(call('x', { signal: perCall.signal })).resolves.toBe('a');
    expect(getEventListeners(shared.signal, 'abort').length).toBe(0);
    expect(getEventListeners(perCall.signal, 'abort').length).toBe(0);
    expect(getEventListeners(a.calls[0]!.signal!, 'abort').length).toBe(0);
  });

  it('rejects a per-call signal that is not an AbortSignal', async () => {
    const call = retry(roundRobin(new FakeEndpointer([fakeEndpoint('a')])), base);
    await expect(call('x', { signal: {} as never })).rejects.toThrow(
      /options\.signal must be an AbortSignal/,
    );
  });

  it('uses an injected clock for its timeouts', async () => {
    const pending: { fn: () => void; ms: number; cancelled: boolean }[] = [];
    const clock: Clock = {
      now: () => 0,
      setTimeout(fn, ms) {
        const entry = { fn, ms, cancelled: false };
        pending.push(entry);
        return () => {
          entry.cancelled = true;
        };
      },
    };
    const a = fakeEndpoint('a', 'hang');
    const result = outcome(
      retry(roundRobin(new FakeEndpointer([a])), { ...base, perAttemptTimeoutMs: 5, clock })('x'),
    );
    expect(pending.map((p) => p.ms)).toEqual([10_000, 5]);
    pending[0]!.fn(); // the overall timeout fires
    const error = (await result.settled).error as RetryError;
    expect(error.reason).toBe('timeout');
    expect(pending.every((p) => p.cancelled)).toBe(true);
  });
});

/** Lets every pending promise reaction run (p-retry's awaits between one attempt and the next). */
async function settleReactions(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((r) => setImmediate(r));
}

/**
 * Moves `clock` forward `ms`, one due timer at a time, letting promise reactions run after each, as real time
 * would (a backoff timer set by a reaction to an earlier timer is then set at that timer's time).
 */
async function run(clock: FakeClock, ms: number): Promise<void> {
  const target = clock.now() + ms;
  await settleReactions();
  for (let next = clock.nextTimerAt; next !== undefined && next <= target; next = clock.nextTimerAt) {
    clock.advance(next - clock.now());
    await settleReactions();
  }
  clock.advance(target - clock.now());
}

/** An endpoint that fails every call with `error` and notes the clock's time of each call. */
function failingAt(clock: Clock, times: number[], error = new Error('down')): Endpoint<unknown, never> {
  return () => {
    times.push(clock.now());
    return Promise.reject(error);
  };
}

describe('retry backoff (timed by the injected clock)', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('waits the backoff delays between attempts on the clock (exponential, capped)', async () => {
    const clock = new FakeClock();
    const times: number[] = [];
    const call = retry(roundRobin(new FakeEndpointer([failingAt(clock, times)])), {
      ...base,
      maxAttempts: 4,
      backoff: { initialMs: 100, factor: 3, maxMs: 250, jitter: 0 },
      clock,
    });
    const result = outcome(call('x'));
    await run(clock, 99);
    expect(times).toEqual([0]);
    await run(clock, 1);
    expect(times).toEqual([0, 100]);
    await run(clock, 249); // 300 ms would be next, capped at 250
    expect(times).toEqual([0, 100]);
    await run(clock, 1);
    expect(times).toEqual([0, 100, 350]);
    await run(clock, 250);
    expect(times).toEqual([0, 100, 350, 600]);
    expect(((await result.settled).error as RetryError).attempts).toBe(4);
    expect(clock.pendingTimers).toBe(0);
  });

  it('default backoff: 10–20 ms, 20–40 ms, … doubling, each at most 1 s (jitter 0.5 below the bound)', async () => {
    const attemptTimes = async (random: number): Promise<number[]> => {
      vi.spyOn(Math, 'random').mockReturnValue(random);
      const clock = new FakeClock();
      const times: number[] = [];
      const call = retry(roundRobin(new FakeEndpointer([failingAt(clock, times)])), {
        maxAttempts: 9,
        timeoutMs: 60_000,
        clock,
      });
      const result = outcome(call('x'));
      await run(clock, 10_000);
      expect(result.done).toBe(true);
      expect(clock.pendingTimers).toBe(0);
      return times;
    };
    // Delays 10, 20, 40, 80, 160, 320, then the cap: 500, 500.
    expect(await attemptTimes(0)).toEqual([0, 10, 30, 70, 150, 310, 630, 1130, 1630]);
    // Delays 20, 40, 80, 160, 320, 640, then 1000, 1000.
    expect(await attemptTimes(1)).toEqual([0, 20, 60, 140, 300, 620, 1260, 2260, 3260]);
  });

  it('backoff: false retries at once, without a timer', async () => {
    const clock = new FakeClock();
    const times: number[] = [];
    const call = retry(roundRobin(new FakeEndpointer([failingAt(clock, times)])), { ...base, clock });
    const { error } = await outcome(call('x')).settled;
    expect((error as RetryError).attempts).toBe(3);
    expect(times).toEqual([0, 0, 0]);
  });

  it('a call waiting on a backoff delay holds the process until it settles', async () => {
    const clock = new FakeClock();
    const call = retry(roundRobin(new FakeEndpointer([failingAt(clock, [])])), {
      maxAttempts: 2,
      timeoutMs: 10_000,
      backoff: { initialMs: 1000, jitter: 0 },
      clock,
    });
    const result = outcome(call('x'));
    await run(clock, 500);
    expect(result.done).toBe(false);
    expect(processHolds()).toBeGreaterThan(0);
    await run(clock, 500);
    expect(result.done).toBe(true);
    expect(processHolds()).toBe(0);
  });

  it('overall timeout during a backoff delay ends at once, without another attempt, leaving no timer', async () => {
    const clock = new FakeClock();
    const first = new Error('first failed');
    const times: number[] = [];
    const call = retry(roundRobin(new FakeEndpointer([failingAt(clock, times, first)])), {
      maxAttempts: 5,
      timeoutMs: 100,
      backoff: { initialMs: 1000, jitter: 0 },
      clock,
    });
    const result = outcome(call('x'));
    await run(clock, 100);
    expect(result.done).toBe(true);
    const error = (await result.settled).error as RetryError;
    expect(error.reason).toBe('timeout');
    expect(error.errors).toEqual([first]); // the timeout is not an attempt's error here
    expect(error.cause).toBeInstanceOf(TimeoutError);
    expect(clock.pendingTimers).toBe(0); // the delay's timer is gone with the call
    expect(processHolds()).toBe(0);
    await run(clock, 5000);
    expect(times).toEqual([0]);
  });

  it('the per-call signal aborts that call at once, also during a backoff delay', async () => {
    const clock = new FakeClock();
    const controller = new AbortController();
    const failure = new Error('down');
    const times: number[] = [];
    const call = retry(roundRobin(new FakeEndpointer([failingAt(clock, times, failure)])), {
      maxAttempts: 5,
      timeoutMs: 60_000,
      backoff: { initialMs: 10_000, jitter: 0 },
      clock,
    });
    const result = outcome(call('x', { signal: controller.signal }));
    await run(clock, 10);
    expect(times).toEqual([0]);
    controller.abort(); // default reason: a DOMException AbortError
    const error = (await result.settled).error as RetryError;
    expect(error.reason).toBe('aborted');
    expect(error.cause).toBe(controller.signal.reason);
    expect(error.cause.name).toBe('AbortError');
    expect(error.errors).toEqual([failure]);
    expect(getEventListeners(controller.signal, 'abort').length).toBe(0);
    expect(clock.pendingTimers).toBe(0);
    await run(clock, 60_000);
    expect(times).toEqual([0]);
  });

  it('onRetry and the budget come before the delay; the delay before the next attempt', async () => {
    const clock = new FakeClock();
    const log: string[] = [];
    const call = retry(
      roundRobin(
        new FakeEndpointer([
          () => {
            log.push(`call at ${clock.now()}`);
            return Promise.reject(new Error('down'));
          },
        ]),
      ),
      {
        maxAttempts: 3,
        timeoutMs: 10_000,
        backoff: { initialMs: 100, jitter: 0 },
        clock,
        onRetry: ({ attempt }) => log.push(`onRetry ${attempt} at ${clock.now()}`),
      },
    );
    const result = outcome(call('x'));
    await run(clock, 1_000);
    expect(result.done).toBe(true);
    expect(log).toEqual(['call at 0', 'onRetry 1 at 0', 'call at 100', 'onRetry 2 at 100', 'call at 300']);
  });
});

describe('retry option validation', () => {
  const balancer = roundRobin(new FakeEndpointer([fakeEndpoint('a')]));
  it.each([
    [{ ...base, maxAttempts: 0 }, /maxAttempts must be an integer >= 1, got number 0/],
    [{ ...base, maxAttempts: 1.5 }, /maxAttempts.*1\.5/],
    [{ ...base, maxAttempts: Number.POSITIVE_INFINITY }, /maxAttempts/],
    [{ ...base, timeoutMs: 0 }, /timeoutMs must be .* got number 0/],
    [{ ...base, timeoutMs: Number.NaN }, /timeoutMs.*NaN/],
    [{ ...base, timeoutMs: 2 ** 31 }, /timeoutMs/],
    [{ maxAttempts: 2 }, /timeoutMs.*got undefined/],
    [{ ...base, perAttemptTimeoutMs: -5 }, /perAttemptTimeoutMs.*-5/],
    [{ ...base, backoff: { initialMs: -1 } }, /backoff\.initialMs must be a finite number > 0, got -1/],
    [{ ...base, backoff: { initialMs: 0 } }, /backoff\.initialMs/], // no delay at all: `backoff: false`
    [{ ...base, backoff: { initialMs: 100, maxMs: 50 } }, /backoff\.maxMs must be .*>= initialMs \(100\)/],
    [{ ...base, backoff: { maxMs: Number.POSITIVE_INFINITY } }, /backoff\.maxMs.*Infinity/],
    [{ ...base, backoff: { factor: 0.5 } }, /backoff\.factor.*0\.5/],
    [{ ...base, backoff: { jitter: 'yes' } }, /backoff\.jitter/],
    [{ ...base, backoff: { random: 0.5 } }, /backoff\.random must be a function/],
    // lb's names before the one backoff shape: refused, naming the new one.
    [
      { ...base, backoff: { minDelayMs: 10 } },
      /retry: backoff: unknown option "minDelayMs" \(did you mean "initialMs"\?\)/,
    ],
    [{ ...base, backoff: { maxDelayMs: 1000 } }, /unknown option "maxDelayMs" \(did you mean "maxMs"\?\)/],
    [{ ...base, backoff: { randomize: false } }, /unknown option "randomize" \(did you mean "jitter"\?\)/],
    [{ ...base, backoff: true }, /backoff must be an object or false, got boolean true/],
    [{ ...base, shouldRetry: 'no' }, /shouldRetry must be a function/],
    [{ ...base, onRetry: 1 }, /onRetry must be a function/],
    [{ ...base, signal: {} }, /signal must be an AbortSignal/],
    [{ ...base, clock: {} }, /clock must be a Clock/],
    [
      { ...base, budget: {} },
      /budget must be a RetryBudget \(an object with deposit\(\) and tryWithdraw\(\)\), got object/,
    ],
    [{ ...base, budget: 0.2 }, /budget must be a RetryBudget.*got number 0\.2/],
    [{ ...base, retryBudget: retryBudget() }, /unknown option "retryBudget" \(did you mean "budget"\?\)/],
  ])('rejects %o', (options, message) => {
    expect(() => retry(balancer, options as never)).toThrow(TypeError);
    expect(() => retry(balancer, options as never)).toThrow(message);
  });

  it('rejects a missing balancer or options', () => {
    expect(() => retry({} as never, base)).toThrow(/expected a Balancer/);
    expect(() => retry(balancer, undefined as never)).toThrow(/expected an options object, got undefined/);
  });

  it('accepts a large initialMs without maxMs (maxMs follows it)', () => {
    expect(() => retry(balancer, { ...base, backoff: { initialMs: 5000 } })).not.toThrow();
  });
});

describe('retry (real timers: the behaviour under test is a timeout)', () => {
  it('overall timeout does not wait for an endpoint that ignores its signal', async () => {
    const deaf: Endpoint<string, string> = () => new Promise<string>(() => {});
    const call = retry(roundRobin(new FakeEndpointer([deaf])), { maxAttempts: 3, timeoutMs: 30 });
    const started = performance.now();
    const error = await rejection(call('x'));
    const elapsed = performance.now() - started;
    expect(error.reason).toBe('timeout');
    expect(error.attempts).toBe(1);
    expect(elapsed).toBeGreaterThanOrEqual(25);
    expect(elapsed).toBeLessThan(1000);
  });
});

/**
 * A budget that writes what retry asks of it to `log` and grants the withdrawals its script says, in order (then
 * refuses). `deposit` or `tryWithdraw` throw `fail` when it is set.
 */
class ScriptedBudget implements RetryBudget {
  readonly #log: string[];
  readonly #grants: boolean[];
  fail: { deposit?: Error; tryWithdraw?: Error } = {};

  constructor(log: string[], grants: readonly boolean[] = []) {
    this.#log = log;
    this.#grants = [...grants];
  }

  deposit(): void {
    this.#log.push('deposit');
    if (this.fail.deposit) throw this.fail.deposit;
  }

  tryWithdraw(): boolean {
    if (this.fail.tryWithdraw) throw this.fail.tryWithdraw;
    const granted = this.#grants.shift() ?? false;
    this.#log.push(granted ? 'withdraw: granted' : 'withdraw: refused');
    return granted;
  }

  get balance(): number {
    return this.#grants.filter(Boolean).length;
  }
}

/** An endpoint that writes `call <label>` to `log` and fails with `error`, or resolves with its label if none. */
function loggingEndpoint(log: string[], label: string, error?: Error): Endpoint<unknown, string> {
  return async () => {
    log.push(`call ${label}`);
    if (error) throw error;
    return label;
  };
}

describe('retry with a budget', () => {
  const options = { maxAttempts: 3, timeoutMs: 10_000, backoff: false } as const;

  it('each call deposits once, before its first attempt; each retry withdraws first, before onRetry', async () => {
    const log: string[] = [];
    const budget = new ScriptedBudget(log, [true, true]);
    const endpoints = [
      loggingEndpoint(log, 'a', new Error('a down')),
      loggingEndpoint(log, 'b', new Error('b down')),
      loggingEndpoint(log, 'c'),
    ];
    const call = retry(roundRobin(new FakeEndpointer(endpoints)), {
      ...options,
      budget,
      onRetry: ({ attempt }) => log.push(`onRetry ${attempt}`),
    });
    await expect(call('x')).resolves.toBe('c');
    expect(log).toEqual([
      'deposit',
      'call a',
      'withdraw: granted',
      'onRetry 1',
      'call b',
      'withdraw: granted',
      'onRetry 2',
      'call c',
    ]);
  });

  it('is asked only for retries that would otherwise happen: not after a success, nor after the last attempt', async () => {
    const log: string[] = [];
    const budget = new ScriptedBudget(log, [true, true, true, true]);
    const ok = loggingEndpoint(log, 'ok');
    await retry(roundRobin(new FakeEndpointer([ok])), { ...options, budget })('x');
    expect(log).toEqual(['deposit', 'call ok']);

    log.length = 0;
    const down = loggingEndpoint(log, 'down', new Error('down'));
    const once = await rejection(
      retry(roundRobin(new FakeEndpointer([down])), { ...options, maxAttempts: 1, budget })('x'),
    );
    expect(once.reason).toBe('exhausted');
    expect(log).toEqual(['deposit', 'call down']);

    log.length = 0;
    const twice = await rejection(
      retry(roundRobin(new FakeEndpointer([down])), { ...options, maxAttempts: 2, budget })('x'),
    );
    expect(twice.reason).toBe('exhausted');
    expect(log).toEqual(['deposit', 'call down', 'withdraw: granted', 'call down']);
  });

  it('when the budget says no, the call stops: reason budget-exhausted, cause the last error, every error kept', async () => {
    const log: string[] = [];
    const budget = new ScriptedBudget(log, [true, false]);
    const first = new Error('a down');
    const second = new Error('b down');
    const endpoints = [
      loggingEndpoint(log, 'a', first),
      loggingEndpoint(log, 'b', second),
      loggingEndpoint(log, 'c'),
    ];
    const retries: number[] = [];
    const call = retry(roundRobin(new FakeEndpointer(endpoints)), {
      ...options,
      budget,
      onRetry: ({ attempt }) => retries.push(attempt),
    });
    const error = await rejection(call('x'));
    expect(error.reason).toBe('budget-exhausted');
    expect(error.cause).toBe(second);
    expect(error.errors).toEqual([first, second]);
    expect(error.attempts).toBe(2);
    expect(error.message).toBe('gave up after 2 attempts (budget-exhausted): b down');
    expect(log).toEqual(['deposit', 'call a', 'withdraw: granted', 'call b', 'withdraw: refused']);
    expect(retries).toEqual([1]); // no onRetry for the retry that was refused
  });

  it('shouldRetry saying no wins: reason not-retryable, and the budget is not asked', async () => {
    const log: string[] = [];
    const budget = new ScriptedBudget(log, []); // would refuse
    const fatal = new Error('400');
    const call = retry(roundRobin(new FakeEndpointer([loggingEndpoint(log, 'a', fatal)])), {
      ...options,
      budget,
      shouldRetry: () => false,
    });
    const error = await rejection(call('x'));
    expect(error.reason).toBe('not-retryable');
    expect(error.cause).toBe(fatal);
    expect(log).toEqual(['deposit', 'call a']);
  });

  it('a budget that throws: not-retryable with what it threw as cause (from deposit: no attempt)', async () => {
    const log: string[] = [];
    const budget = new ScriptedBudget(log, [true]);
    const down = new Error('down');
    const call = retry(roundRobin(new FakeEndpointer([loggingEndpoint(log, 'a', down)])), {
      ...options,
      budget,
    });
    budget.fail = { deposit: new Error('deposit bug') };
    const fromDeposit = await rejection(call('x'));
    expect(fromDeposit.reason).toBe('not-retryable');
    expect(fromDeposit.cause).toBe(budget.fail.deposit);
    expect(fromDeposit.attempts).toBe(0);
    expect(log).toEqual(['deposit']);
    budget.fail = { tryWithdraw: new Error('withdraw bug') };
    const fromWithdraw = await rejection(call('x'));
    expect(fromWithdraw.reason).toBe('not-retryable');
    expect(fromWithdraw.cause).toBe(budget.fail.tryWithdraw);
    expect(fromWithdraw.errors).toEqual([down]);
  });

  it('two retry endpoints sharing a budget draw from the same pool', async () => {
    const clock = new FakeClock();
    // No reserve; each call earns half a retry.
    const budget = retryBudget({ ratio: 0.5, minRetriesPerSecond: 0, clock });
    const log: string[] = [];
    const users = retry(
      roundRobin(new FakeEndpointer([loggingEndpoint(log, 'users', new Error('users down'))])),
      {
        ...options,
        budget,
        clock,
      },
    );
    const healthy = retry(roundRobin(new FakeEndpointer([loggingEndpoint(log, 'orders')])), {
      ...options,
      budget,
      clock,
    });
    // Calls through one endpoint fund the retries of the other: 0.5 + 0.5 + 0.5 (the failing call's own deposit).
    await healthy('x');
    await healthy('x');
    expect(budget.balance).toBe(1);
    log.length = 0;
    const error = await rejection(users('x'));
    expect(error.reason).toBe('budget-exhausted');
    expect(error.attempts).toBe(2);
    expect(budget.balance).toBe(0);
    // The half it left over is there for the other: with its own call's half, one retry.
    const other = retry(
      roundRobin(new FakeEndpointer([loggingEndpoint(log, 'orders', new Error('orders down'))])),
      {
        ...options,
        budget,
        clock,
      },
    );
    const leftover = await rejection(other('x'));
    expect(leftover.reason).toBe('budget-exhausted');
    expect(leftover.attempts).toBe(2);
    // From here on the halves of calls through either add up: every second call gets one retry.
    expect((await rejection(users('x'))).attempts).toBe(1);
    expect((await rejection(other('x'))).attempts).toBe(2);
    expect(clock.pendingTimers).toBe(0);
  });

  it('withdraws when it decides to retry, before the backoff delay', async () => {
    const clock = new FakeClock();
    const budget = retryBudget({ ratio: 0, minRetriesPerSecond: 0.5, clock }); // 5 retries
    const a = fakeEndpoint('a', { reject: new Error('down') });
    const call = retry(roundRobin(new FakeEndpointer([a])), {
      maxAttempts: 2,
      timeoutMs: 10_000,
      backoff: { initialMs: 100, jitter: 0 },
      budget,
      clock,
    });
    const result = outcome(call('x'));
    await run(clock, 0);
    expect(a.calls.length).toBe(1);
    expect(budget.balance).toBe(4);
    await run(clock, 99);
    expect(a.calls.length).toBe(1);
    await run(clock, 1);
    expect(a.calls.length).toBe(2);
    expect(((await result.settled).error as RetryError).reason).toBe('exhausted');
    expect(clock.pendingTimers).toBe(0);
  });

  /**
   * A full outage: `callsPerSecond` calls a second for `seconds` s (a multiple of 10), one at a time, through a
   * `retry` with `maxAttempts: 3` over three endpoints that all fail at once. Returns attempts per call in each
   * 10-s window (the budget's window), and how many calls gave up for each reason.
   */
  async function outage(
    callsPerSecond: number,
    seconds: number,
    budgetOptions?: { ratio?: number; minRetriesPerSecond?: number },
  ): Promise<{ perWindow: number[]; reasons: Record<string, number> }> {
    const clock = new FakeClock();
    let attempts = 0;
    const down = new Error('connect ECONNREFUSED');
    const dead = (): Endpoint<number, never> => () => {
      attempts++;
      return Promise.reject(down);
    };
    const call = retry(roundRobin(new FakeEndpointer([dead(), dead(), dead()])), {
      ...options,
      clock,
      ...(budgetOptions && { budget: retryBudget({ ...budgetOptions, clock }) }),
    });
    const perWindow: number[] = [];
    const reasons: Record<string, number> = {};
    const callsPerWindow = callsPerSecond * 10;
    for (let w = 0; w < seconds / 10; w++) {
      const before = attempts;
      for (let i = 0; i < callsPerWindow; i++) {
        const error = await call(i).catch((e: unknown) => e as RetryError);
        reasons[error.reason] = (reasons[error.reason] ?? 0) + 1;
        clock.advance(1000 / callsPerSecond);
      }
      perWindow.push((attempts - before) / callsPerWindow);
    }
    expect(clock.pendingTimers).toBe(0);
    return { perWindow, reasons };
  }

  it('full outage without a budget: every call makes maxAttempts attempts (3×)', async () => {
    const { perWindow, reasons } = await outage(100, 10);
    expect(perWindow).toEqual([3]);
    expect(reasons).toEqual({ exhausted: 1_000 });
  });

  it('full outage at 1 000 calls/s with the default budget: 1 + ratio + minRetriesPerSecond / rate = 1.11×', async () => {
    const { perWindow, reasons } = await outage(1_000, 30, {});
    for (const amplification of perWindow) {
      expect(amplification).toBeLessThanOrEqual(1.11);
      expect(amplification).toBeGreaterThanOrEqual(1.1); // the budget is used, not just refused
    }
    expect((reasons['budget-exhausted'] ?? 0) + (reasons.exhausted ?? 0)).toBe(30_000);
    expect(reasons['budget-exhausted']).toBeGreaterThan(25_000);
  });

  it('full outage at 100 calls/s with the default budget: the goal of issue 14, at most 1.2×', async () => {
    const { perWindow } = await outage(100, 30, {});
    for (const amplification of perWindow) {
      expect(amplification).toBeLessThanOrEqual(1.2);
      expect(amplification).toBeGreaterThanOrEqual(1.19);
    }
  });

  it('full outage with ratio 0.2 and no minimum rate: at most 1 + ratio = 1.2×, from the first window on', async () => {
    const { perWindow } = await outage(1_000, 20, { ratio: 0.2, minRetriesPerSecond: 0 });
    for (const amplification of perWindow) {
      expect(amplification).toBeLessThanOrEqual(1.2);
      expect(amplification).toBeGreaterThanOrEqual(1.199);
    }
  });

  it('full outage at a low rate: the minimum rate dominates (20 calls/s: 1 + 0.1 + 10 / 20 = 1.6×)', async () => {
    const { perWindow } = await outage(20, 30, {});
    for (const amplification of perWindow) {
      expect(amplification).toBeLessThanOrEqual(1.6);
      expect(amplification).toBeGreaterThanOrEqual(1.59);
    }
  });
});
