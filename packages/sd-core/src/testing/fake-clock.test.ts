import { describe, expect, it } from 'vitest';
import { FakeClock } from './fake-clock.js';

describe('FakeClock', () => {
  it('starts at the given time and moves only on advance', () => {
    const clock = new FakeClock(1000);
    expect(clock.now()).toBe(1000);
    clock.advance(250);
    expect(clock.now()).toBe(1250);
    expect(new FakeClock().now()).toBe(0);
  });

  it('runs due timers in order of due time, then creation, with now() at each due time', () => {
    const clock = new FakeClock();
    const ran: string[] = [];
    clock.setTimeout(() => ran.push(`c@${clock.now()}`), 30);
    clock.setTimeout(() => ran.push(`a@${clock.now()}`), 10);
    clock.setTimeout(() => ran.push(`b@${clock.now()}`), 10);
    clock.setTimeout(() => ran.push(`late@${clock.now()}`), 31);
    clock.advance(30);
    expect(ran).toEqual(['a@10', 'b@10', 'c@30']);
    expect(clock.pendingTimers).toBe(1);
    expect(clock.nextTimerAt).toBe(31);
    clock.advance(1);
    expect(ran.at(-1)).toBe('late@31');
    expect(clock.pendingTimers).toBe(0);
    expect(clock.nextTimerAt).toBeUndefined();
  });

  it('does not run a timer before its due time', () => {
    const clock = new FakeClock();
    let ran = false;
    clock.setTimeout(() => {
      ran = true;
    }, 100);
    clock.advance(99);
    expect(ran).toBe(false);
    clock.advance(1);
    expect(ran).toBe(true);
  });

  it('runs timers set during advance when they fall due within it (a self re-arming heartbeat)', () => {
    const clock = new FakeClock();
    const beats: number[] = [];
    const beat = () => {
      beats.push(clock.now());
      clock.setTimeout(beat, 10);
    };
    clock.setTimeout(beat, 10);
    clock.advance(35);
    expect(beats).toEqual([10, 20, 30]);
    expect(clock.now()).toBe(35);
  });

  it('cancel is idempotent and stops the timer; Infinity never runs; negative or NaN delays are due at once', () => {
    const clock = new FakeClock();
    const ran: string[] = [];
    const cancel = clock.setTimeout(() => ran.push('cancelled'), 5);
    cancel();
    cancel();
    clock.setTimeout(() => ran.push('never'), Number.POSITIVE_INFINITY);
    clock.setTimeout(() => ran.push('neg'), -5);
    clock.setTimeout(() => ran.push('nan'), Number.NaN);
    clock.advance(0);
    expect(ran).toEqual(['neg', 'nan']);
    clock.advance(1e12);
    expect(ran).toEqual(['neg', 'nan']);
  });

  it('rejects a negative or non-finite advance and a non-finite start', () => {
    const clock = new FakeClock();
    expect(() => clock.advance(-1)).toThrow(TypeError);
    expect(() => clock.advance(Number.NaN)).toThrow(TypeError);
    expect(() => clock.advance(Number.POSITIVE_INFINITY)).toThrow(TypeError);
    expect(() => new FakeClock(Number.NaN)).toThrow(TypeError);
  });

  it('propagates a throwing timer, leaving time at its due time and later timers pending', () => {
    const clock = new FakeClock();
    let later = false;
    clock.setTimeout(() => {
      throw new Error('boom');
    }, 10);
    clock.setTimeout(() => {
      later = true;
    }, 20);
    expect(() => clock.advance(30)).toThrow('boom');
    expect(clock.now()).toBe(10);
    expect(later).toBe(false);
    clock.advance(10);
    expect(later).toBe(true);
  });
});
