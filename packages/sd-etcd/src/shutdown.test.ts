import type { Logger, Registrar, RegistrarState } from '@sdkit/sd-core';
import { FakeClock } from '@sdkit/sd-core/testing';
import { NEVER, type Observable } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { deregisterOnSignals, type SignalProcess } from './shutdown.js';

/** A fake `process`: listeners per signal, `emit`, and a record of `kill` calls. */
class FakeProcess implements SignalProcess {
  readonly pid = 4242;
  exitCode: number | string | null | undefined;
  readonly listeners = new Map<NodeJS.Signals, Array<(s: NodeJS.Signals) => void>>();
  readonly kills: Array<[number, NodeJS.Signals]> = [];
  on(event: NodeJS.Signals, listener: (s: NodeJS.Signals) => void): this {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
    return this;
  }
  off(event: NodeJS.Signals, listener: (s: NodeJS.Signals) => void): this {
    this.listeners.set(
      event,
      (this.listeners.get(event) ?? []).filter((l) => l !== listener),
    );
    return this;
  }
  listenerCount(event: NodeJS.Signals): number {
    return this.listeners.get(event)?.length ?? 0;
  }
  kill(pid: number, signal: NodeJS.Signals): boolean {
    this.kills.push([pid, signal]);
    return true;
  }
  emit(signal: NodeJS.Signals): void {
    for (const l of [...(this.listeners.get(signal) ?? [])]) l(signal);
  }
}

/** A registrar whose deregister() the test settles by hand. */
class FakeRegistrar implements Registrar {
  readonly state$: Observable<RegistrarState> = NEVER;
  deregisterCalls = 0;
  #settle: Array<(error?: Error) => void> = [];
  register(): Promise<void> {
    return Promise.resolve();
  }
  deregister(): Promise<void> {
    this.deregisterCalls++;
    return new Promise<void>((resolve, reject) => {
      this.#settle.push((error) => (error ? reject(error) : resolve()));
    });
  }
  finish(error?: Error): void {
    for (const s of this.#settle.splice(0)) s(error);
  }
  async [Symbol.asyncDispose](): Promise<void> {}
}

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (_obj: object, msg?: string) => lines.push(`${level} ${msg ?? ''}`);
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
};

describe('deregisterOnSignals', () => {
  it('installs handlers for SIGTERM and SIGINT by default; the disposer removes them (idempotent, Symbol.dispose)', () => {
    const proc = new FakeProcess();
    const dispose = deregisterOnSignals(new FakeRegistrar(), { process: proc });
    expect(proc.listenerCount('SIGTERM')).toBe(1);
    expect(proc.listenerCount('SIGINT')).toBe(1);
    expect(proc.listenerCount('SIGHUP')).toBe(0);
    dispose();
    dispose[Symbol.dispose]();
    expect(proc.listenerCount('SIGTERM')).toBe(0);
    expect(proc.listenerCount('SIGINT')).toBe(0);
  });

  it('on the signal: deregisters all in parallel, drains, then re-raises the signal with the handlers removed', async () => {
    const proc = new FakeProcess();
    const [a, b] = [new FakeRegistrar(), new FakeRegistrar()];
    const order: string[] = [];
    deregisterOnSignals([a, b], {
      process: proc,
      clock: new FakeClock(),
      drain: async (signal) => {
        order.push(`drain ${signal}`);
      },
    });
    proc.emit('SIGTERM');
    expect(a.deregisterCalls).toBe(1);
    expect(b.deregisterCalls).toBe(1); // both started before either finished
    expect(proc.exitCode).toBe(143); // 128 + SIGTERM(15), in case the process ends by itself meanwhile
    await flush();
    expect(proc.kills).toEqual([]);
    a.finish();
    await flush();
    expect(proc.kills).toEqual([]); // still waiting for b
    b.finish();
    await flush();
    expect(order).toEqual(['drain SIGTERM']);
    expect(proc.kills).toEqual([[4242, 'SIGTERM']]);
    expect(proc.listenerCount('SIGTERM')).toBe(0);
    expect(proc.listenerCount('SIGINT')).toBe(0);
  });

  it('a failing deregistration or drain is logged and the process still exits', async () => {
    const proc = new FakeProcess();
    const logger = recordingLogger();
    const r = new FakeRegistrar();
    deregisterOnSignals(r, {
      process: proc,
      logger,
      drain: () => {
        throw new Error('drain broke');
      },
    });
    proc.emit('SIGINT');
    r.finish(new Error('etcd down'));
    await flush();
    expect(proc.exitCode).toBe(130);
    expect(proc.kills).toEqual([[4242, 'SIGINT']]);
    expect(logger.lines).toContain('warn sdkit: deregistration failed during shutdown');
    expect(logger.lines).toContain('warn sdkit: drain failed during shutdown');
  });

  it('exits after timeoutMs if deregistration hangs', async () => {
    const proc = new FakeProcess();
    const clock = new FakeClock();
    const logger = recordingLogger();
    deregisterOnSignals(new FakeRegistrar(), { process: proc, clock, timeoutMs: 1000, logger });
    proc.emit('SIGTERM');
    clock.advance(999);
    await flush();
    expect(proc.kills).toEqual([]);
    clock.advance(1);
    await flush();
    expect(proc.kills).toEqual([[4242, 'SIGTERM']]);
    expect(logger.lines).toContain('warn sdkit: shutdown timed out; exiting anyway');
    expect(clock.pendingTimers).toBe(0);
  });

  it('a second signal during the shutdown exits at once', async () => {
    const proc = new FakeProcess();
    const r = new FakeRegistrar();
    deregisterOnSignals(r, { process: proc, clock: new FakeClock() });
    proc.emit('SIGINT');
    await flush();
    expect(proc.kills).toEqual([]);
    proc.emit('SIGINT');
    expect(proc.kills).toEqual([[4242, 'SIGINT']]);
    expect(r.deregisterCalls).toBe(1);
    r.finish();
    await flush();
    expect(proc.kills).toHaveLength(1); // not raised twice
  });

  it('leaves the exit to other listeners of the signal (exitCode set), and does not kill', async () => {
    const proc = new FakeProcess();
    const other = (): void => {};
    proc.on('SIGTERM', other);
    const r = new FakeRegistrar();
    deregisterOnSignals(r, { process: proc, clock: new FakeClock() });
    proc.emit('SIGTERM');
    r.finish();
    await flush();
    expect(proc.kills).toEqual([]);
    expect(proc.exitCode).toBe(143);
    expect(proc.listeners.get('SIGTERM')).toEqual([other]);
  });

  it('exit: false only deregisters: no kill, exitCode untouched, handlers stay until disposed', async () => {
    const proc = new FakeProcess();
    const r = new FakeRegistrar();
    const dispose = deregisterOnSignals(r, { process: proc, exit: false, clock: new FakeClock() });
    proc.emit('SIGTERM');
    r.finish();
    await flush();
    proc.emit('SIGTERM');
    await flush();
    expect(r.deregisterCalls).toBe(1);
    expect(proc.kills).toEqual([]);
    expect(proc.exitCode).toBeUndefined();
    expect(proc.listenerCount('SIGTERM')).toBe(1);
    dispose();
    expect(proc.listenerCount('SIGTERM')).toBe(0);
  });

  it('disposing during the shutdown cancels the exit and restores exitCode', async () => {
    const proc = new FakeProcess();
    const r = new FakeRegistrar();
    const dispose = deregisterOnSignals(r, { process: proc, clock: new FakeClock() });
    proc.emit('SIGTERM');
    dispose();
    r.finish();
    await flush();
    expect(proc.kills).toEqual([]);
    expect(proc.exitCode).toBeUndefined();
  });

  it('honours a custom signal list and ignores other signals', async () => {
    const proc = new FakeProcess();
    const r = new FakeRegistrar();
    deregisterOnSignals(r, { process: proc, signals: ['SIGHUP'], clock: new FakeClock() });
    expect(proc.listenerCount('SIGTERM')).toBe(0);
    proc.emit('SIGTERM');
    expect(r.deregisterCalls).toBe(0);
    proc.emit('SIGHUP');
    r.finish();
    await flush();
    expect(proc.kills).toEqual([[4242, 'SIGHUP']]);
  });

  it('rejects bad input with a TypeError', () => {
    const proc = new FakeProcess();
    const r = new FakeRegistrar();
    expect(() => deregisterOnSignals({} as Registrar, { process: proc })).toThrow(
      /registrars\[0\] is not a Registrar/,
    );
    expect(() => deregisterOnSignals([r, null as unknown as Registrar], { process: proc })).toThrow(
      /registrars\[1\]/,
    );
    expect(() => deregisterOnSignals(r, { process: proc, signals: [] })).toThrow(/non-empty array/);
    expect(() => deregisterOnSignals(r, { process: proc, signals: ['SIGNOPE' as NodeJS.Signals] })).toThrow(
      /unknown signal "SIGNOPE"/,
    );
    expect(() => deregisterOnSignals(r, { process: proc, timeoutMs: -1 })).toThrow(/timeoutMs/);
    expect(() => deregisterOnSignals(r, { process: proc, drain: 5 as never })).toThrow(
      /drain must be a function/,
    );
    expect(proc.listeners.size).toBe(0); // nothing installed on bad input
  });
});
