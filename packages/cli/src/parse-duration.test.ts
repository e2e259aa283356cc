import { describe, expect, it } from 'vitest';
import { parseDuration, parseTtlSeconds } from './parse-duration.js';

describe('parseDuration', () => {
  it('reads etcdctl-style durations and bare seconds, in ms', () => {
    expect(parseDuration('--timeout', '500ms')).toBe(500);
    expect(parseDuration('--timeout', '5s')).toBe(5000);
    expect(parseDuration('--timeout', '1.5m')).toBe(90_000);
    expect(parseDuration('--timeout', '1h')).toBe(3_600_000);
    expect(parseDuration('--timeout', '10')).toBe(10_000);
    expect(parseDuration('--timeout', '.25')).toBe(250);
  });

  it.each(['', '0', '0s', '-1s', '5 minutes', '1d', 'abc', '1e3'])('refuses %j naming the flag', (text) => {
    expect(() => parseDuration('$ETCDCTL_DIAL_TIMEOUT', text)).toThrow(
      /\$ETCDCTL_DIAL_TIMEOUT must be a positive duration/,
    );
  });
});

describe('parseTtlSeconds', () => {
  it('reads whole seconds', () => {
    expect(parseTtlSeconds('10')).toBe(10);
    expect(parseTtlSeconds('3s')).toBe(3);
  });

  it.each(['0', '1.5', '-2', '2m', 'x'])('refuses %j', (text) => {
    expect(() => parseTtlSeconds(text)).toThrow(/--ttl must be a whole number of seconds/);
  });
});
