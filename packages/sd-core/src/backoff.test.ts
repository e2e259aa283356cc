import { describe, expect, it } from 'vitest';
import { type BackoffDefaults, type BackoffOptions, createBackoff, DEFAULT_BACKOFF } from './backoff.js';

/** The delays of attempts 0–6 and 10 of `createBackoff(options, 't', defaults)`. */
function delays(options: BackoffOptions | undefined, defaults?: Partial<BackoffDefaults>): number[] {
  const backoff = createBackoff(options, 't', defaults);
  return [0, 1, 2, 3, 4, 5, 6, 10].map((attempt) => backoff.delay(attempt));
}

describe('createBackoff', () => {
  it('defaults: 100 ms doubling to 5 s, each a random time in [d/2, d]', () => {
    expect(DEFAULT_BACKOFF).toEqual({ initialMs: 100, maxMs: 5000, factor: 2, jitter: 0.5 });
    expect(delays({ random: () => 0 })).toEqual([50, 100, 200, 400, 800, 1600, 2500, 2500]);
    expect(delays({ random: () => 1 })).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000]);
  });

  it("takes a component's own defaults over DEFAULT_BACKOFF, and the options over both", () => {
    const retry = { initialMs: 20, maxMs: 1000 };
    expect(delays({ random: () => 1 }, retry)).toEqual([20, 40, 80, 160, 320, 640, 1000, 1000]);
    expect(delays({ random: () => 0 }, retry)).toEqual([10, 20, 40, 80, 160, 320, 500, 500]);
    expect(delays({ maxMs: 100, jitter: 0 }, retry)).toEqual([20, 40, 80, 100, 100, 100, 100, 100]);
    const constant = { initialMs: 1000, maxMs: 1000, factor: 1, jitter: 0 };
    expect(delays(undefined, constant)).toEqual(Array(8).fill(1000));
  });

  it('maxMs left out is at least initialMs', () => {
    expect(delays({ initialMs: 8000, jitter: 0 })).toEqual(Array(8).fill(8000));
  });

  it.each([
    ['not an object', 5, /t: backoff must be an object, got 5/],
    ['initialMs 0', { initialMs: 0 }, /t: backoff\.initialMs must be a finite number > 0, got 0/],
    [
      'maxMs below initialMs',
      { initialMs: 500, maxMs: 100 },
      /backoff\.maxMs must be .*>= initialMs \(500\)/,
    ],
    ['maxMs Infinity', { maxMs: Number.POSITIVE_INFINITY }, /backoff\.maxMs .*Infinity/],
    ['factor below 1', { factor: 0.5 }, /backoff\.factor must be a finite number >= 1, got 0\.5/],
    ['jitter above 1', { jitter: 2 }, /backoff\.jitter must be between 0 and 1, got 2/],
    ['random not a function', { random: 0.3 }, /backoff\.random must be a function/],
    ['multiplier', { multiplier: 2 }, /t: backoff\.multiplier is now called backoff\.factor/],
    [
      'a misspelt field',
      { intialMs: 10 },
      /t: backoff: unknown option "intialMs"; the options are initialMs, maxMs/,
    ],
    // lb's names before the one shape, and p-retry's: refused, naming the field meant.
    ['minDelayMs', { minDelayMs: 10 }, /unknown option "minDelayMs" \(did you mean "initialMs"\?\)/],
    ['maxDelayMs', { maxDelayMs: 10 }, /unknown option "maxDelayMs" \(did you mean "maxMs"\?\)/],
    ['randomize', { randomize: true }, /unknown option "randomize" \(did you mean "jitter"\?\)/],
    ['minTimeout', { minTimeout: 10 }, /unknown option "minTimeout" \(did you mean "initialMs"\?\)/],
    ['maxTimeout', { maxTimeout: 10 }, /unknown option "maxTimeout" \(did you mean "maxMs"\?\)/],
  ])('rejects %s with a TypeError naming it', (_name, options, message) => {
    expect(() => createBackoff(options as BackoffOptions, 't')).toThrow(TypeError);
    expect(() => createBackoff(options as BackoffOptions, 't')).toThrow(message);
  });
});
