import { describe, expect, it } from 'vitest';
import { CliError } from './cli-error.js';
import { fakeIo, inst } from './fixtures/fake-io.js';
import { commandContext, fakeTarget } from './fixtures/fake-target.js';
import { lsCommand } from './ls-command.js';
import { registerCommand } from './register-command.js';
import { resolveCommand } from './resolve-command.js';
import { watchCommand } from './watch-command.js';

const settle = () => new Promise<void>((r) => setImmediate(r));

describe('ls', () => {
  it('prints the first answer as a table (or JSON) and stops the instancer', async () => {
    const io = fakeIo();
    const target = fakeTarget([inst('svc/b', '10.0.0.2:80'), inst('svc/a', '10.0.0.1:80', { zone: 'a' })]);
    expect(await lsCommand(commandContext(io, target))).toBe(0);
    expect(io.stdout.text).toBe(
      'KEY     ADDRESS       METADATA\nsvc/a   10.0.0.1:80   {"zone":"a"}\nsvc/b   10.0.0.2:80\n',
    );
    expect(io.stderr.text).toBe('');
    expect(target.instancer.stopped).toBe(true);

    const json = fakeIo();
    expect(await lsCommand(commandContext(json, fakeTarget([inst('svc/a', 'x:1')]), { json: true }))).toBe(0);
    expect(JSON.parse(json.stdout.text)).toEqual([{ key: 'svc/a', address: 'x:1' }]);
  });

  it('says so on stderr when the set is empty, with the hint, and exits 0', async () => {
    const io = fakeIo();
    expect(await lsCommand(commandContext(io, fakeTarget([]), { json: true }))).toBe(0);
    expect(io.stdout.text).toBe('[]\n');
    expect(io.stderr.text).toBe('sdkit: no instances: the test source (try elsewhere)\n');
  });

  it('prints the last known set of an error answer, the error on stderr, and exits 1', async () => {
    const io = fakeIo();
    const target = fakeTarget([inst('svc/a', 'x:1')]);
    target.instancer.fail(new Error('permission denied'));
    expect(await lsCommand(commandContext(io, target, { json: true }))).toBe(1);
    expect(JSON.parse(io.stdout.text)).toEqual([{ key: 'svc/a', address: 'x:1' }]);
    expect(io.stderr.text).toBe('sdkit: the test source: permission denied\n');
  });

  it('fails with a timeout when the source has not answered within --timeout', async () => {
    const io = fakeIo();
    const target = fakeTarget();
    const run = lsCommand(commandContext(io, target, { timeoutMs: 500 }));
    io.clock.advance(499);
    await settle();
    expect(target.instancer.stopped).toBe(false);
    io.clock.advance(1);
    const err = await run.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect(err).toMatchObject({ kind: 'timeout', message: 'no answer from the test source within 500 ms' });
    expect(target.instancer.stopped).toBe(true);
  });
});

describe('resolve', () => {
  it('waits for a good answer with instances, then prints the addresses one per line', async () => {
    const io = fakeIo();
    const target = fakeTarget([]);
    const run = resolveCommand(commandContext(io, target));
    target.instancer.fail('etcd down');
    await settle();
    expect(io.stdout.text).toBe('');
    target.instancer.set([inst('svc/b', 'http://10.0.0.2:80'), inst('svc/a', '10.0.0.1:80')]);
    expect(await run).toBe(0);
    expect(io.stdout.text).toBe('10.0.0.1:80\nhttp://10.0.0.2:80\n');
    expect(target.instancer.stopped).toBe(true);
  });

  it('prints a JSON array of the addresses with --json', async () => {
    const io = fakeIo();
    expect(await resolveCommand(commandContext(io, fakeTarget(['a:1', 'b:2']), { json: true }))).toBe(0);
    expect(JSON.parse(io.stdout.text)).toEqual(['a:1', 'b:2']);
  });

  it('fails after --timeout saying what it saw: the error, or an empty set with the hint', async () => {
    for (const [setup, seen] of [
      [
        (t: ReturnType<typeof fakeTarget>) => t.instancer.fail(new Error('etcd down')),
        'the source fails: etcd down',
      ],
      [(t: ReturnType<typeof fakeTarget>) => t.instancer.set([]), 'the source has none (try elsewhere)'],
      [() => {}, 'no answer from the source'],
    ] as const) {
      const io = fakeIo();
      const target = fakeTarget();
      setup(target);
      const run = resolveCommand(commandContext(io, target, { timeoutMs: 2000 })).catch((e: unknown) => e);
      io.clock.advance(2000);
      expect(await run).toMatchObject({
        kind: 'timeout',
        message: `no instances within 2 s from the test source; ${seen}`,
      });
      expect(io.stdout.text).toBe('');
    }
  });
});

describe('watch, not on a terminal', () => {
  it('prints one JSON object per change, errors included, until a signal; then stops and removes its listeners', async () => {
    const io = fakeIo();
    const target = fakeTarget([inst('svc/a', 'x:1')]);
    const run = watchCommand(commandContext(io, target));
    target.instancer.add(inst('svc/b', 'y:2', { zone: 'b' }));
    target.instancer.fail(Object.assign(new Error('etcd down'), { name: 'EtcdWatchError' }));
    target.instancer.fail(Object.assign(new Error('etcd down'), { name: 'EtcdWatchError' }));
    target.instancer.remove('svc/a');
    io.signal('SIGTERM');
    expect(await run).toBe(0);
    expect(
      io.stdout.text
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual([
      { instances: [{ key: 'svc/a', address: 'x:1' }] },
      {
        instances: [
          { key: 'svc/a', address: 'x:1' },
          { key: 'svc/b', address: 'y:2', metadata: { zone: 'b' } },
        ],
      },
      {
        instances: [
          { key: 'svc/a', address: 'x:1' },
          { key: 'svc/b', address: 'y:2', metadata: { zone: 'b' } },
        ],
        error: { name: 'EtcdWatchError', message: 'etcd down' },
      },
      { instances: [{ key: 'svc/b', address: 'y:2', metadata: { zone: 'b' } }] },
    ]);
    expect(io.stderr.text).toBe('sdkit: the test source: etcd down\nsdkit: the test source: recovered\n');
    expect(target.instancer.stopped).toBe(true);
    expect(io.listeners()).toBe(0);
  });

  it('ends with 0 when stdout’s reader goes away, and with 1 when the source ends by itself', async () => {
    const io = fakeIo();
    const target = fakeTarget([]);
    const run = watchCommand(commandContext(io, target));
    io.closeStdout();
    expect(await run).toBe(0);

    const io2 = fakeIo();
    const target2 = fakeTarget([]);
    const run2 = watchCommand(commandContext(io2, target2));
    target2.instancer.stop();
    expect(await run2).toBe(1);
    expect(io2.stderr.text).toBe('sdkit: the test source: the source ended\n');
    expect(io2.listeners()).toBe(0);
  });
});

describe('watch, on a terminal', () => {
  it('draws a live table, shows warnings in it, and leaves the last view with the cursor shown', async () => {
    const io = fakeIo({ tty: true });
    const target = fakeTarget([inst('svc/a', 'x:1')]);
    const context = commandContext(io, target);
    const run = watchCommand(context);
    context.logger.warn({ key: 'svc/bad' }, 'sdkit: skipped an unreadable value');
    target.instancer.add(inst('svc/b', 'y:2'));
    io.resize();
    io.signal('SIGINT');
    expect(await run).toBe(0);
    const out = io.stdout.text;
    expect(out.startsWith('\u001b[?25l')).toBe(true);
    expect(out).toContain('sdkit watch etcd:///svc');
    expect(out).toContain('svc/b   y:2');
    expect(out).toContain('sdkit: warning: skipped an unreadable value (key "svc/bad")');
    expect(out).toContain('\u001b[H\u001b[2J');
    expect(out.endsWith('\u001b[?25h')).toBe(true);
    expect(io.stderr.text).toBe('');
    // After the watch, warnings go to stderr again.
    context.logger.warn({}, 'later');
    expect(io.stderr.text).toBe('sdkit: warning: later\n');
    expect(io.listeners()).toBe(0);
  });

  it('prints JSON lines with --json', async () => {
    const io = fakeIo({ tty: true });
    const run = watchCommand(commandContext(io, fakeTarget(['a:1']), { json: true }));
    io.signal('SIGINT');
    expect(await run).toBe(0);
    expect(io.stdout.text).toBe('{"instances":[{"key":"a:1","address":"a:1"}]}\n');
  });
});

describe('register', () => {
  const options = { ttlSeconds: 7, metadata: undefined };

  it('registers, says so, and on a signal deregisters and exits 0', async () => {
    const io = fakeIo();
    const target = fakeTarget();
    const watcher = target.registry.instancer('svc/');
    const run = registerCommand(commandContext(io, target), '10.0.0.5:8080', options);
    await settle();
    expect(io.stdout.text).toBe(
      'registered svc/10.0.0.5:8080 = 10.0.0.5:8080 (lease TTL 7 s); Ctrl-C deregisters\n',
    );
    expect(watcher.current()?.instances.map((i) => i.key)).toEqual(['svc/10.0.0.5:8080']);
    io.signal('SIGINT');
    expect(await run).toBe(0);
    expect(io.stdout.text).toMatch(/\nderegistered svc\/10\.0\.0\.5:8080\n$/);
    expect(watcher.current()?.instances).toEqual([]);
    expect(io.listeners()).toBe(0);
  });

  it('prints one JSON object per state with --json', async () => {
    const io = fakeIo();
    const run = registerCommand(commandContext(io, fakeTarget(), { json: true }), 'a:1', options);
    await settle();
    io.signal('SIGTERM');
    expect(await run).toBe(0);
    expect(
      io.stdout.text
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual([
      { state: 'registered', key: 'svc/a:1', value: 'a:1', ttlSeconds: 7 },
      { state: 'deregistered', key: 'svc/a:1' },
    ]);
  });

  it('exits 1 when the registration is refused', async () => {
    const io = fakeIo();
    const target = fakeTarget();
    target.patch.register = () => Promise.reject(new Error('permission denied for put'));
    expect(await registerCommand(commandContext(io, target), 'a:1', options)).toBe(1);
    expect(io.stderr.text).toBe('sdkit: could not register svc/a:1: permission denied for put\n');
    expect(io.listeners()).toBe(0);
  });

  it('exits 1 when the deregistration fails or hangs, saying the key expires with its lease', async () => {
    const io = fakeIo();
    const target = fakeTarget();
    target.patch.deregister = () => Promise.reject(new Error('etcd down'));
    const run = registerCommand(commandContext(io, target), 'a:1', options);
    await settle();
    io.signal('SIGINT');
    expect(await run).toBe(1);
    expect(io.stderr.text).toBe(
      'sdkit: could not deregister svc/a:1: etcd down; it expires with its lease (7 s)\n',
    );

    const io2 = fakeIo();
    const target2 = fakeTarget();
    target2.patch.deregister = () => new Promise(() => {});
    const run2 = registerCommand(commandContext(io2, target2), 'a:1', options);
    await settle();
    io2.signal('SIGINT');
    await settle();
    io2.clock.advance(5000);
    expect(await run2).toBe(1);
    expect(io2.stderr.text).toMatch(
      /could not deregister svc\/a:1 within 5 s; it expires with its lease \(7 s\)/,
    );
  });

  it('gives up at once on a second signal (130)', async () => {
    const io = fakeIo();
    const target = fakeTarget();
    target.patch.deregister = () => new Promise(() => {});
    const run = registerCommand(commandContext(io, target), 'a:1', options);
    await settle();
    io.signal('SIGINT');
    io.signal('SIGINT');
    expect(await run).toBe(130);
    expect(io.stderr.text).toBe('sdkit: interrupted again: svc/a:1 is left to expire with its lease (7 s)\n');
    expect(io.clock.pendingTimers).toBe(0);
  });
});
