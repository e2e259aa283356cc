/**
 * `sdkit` on a real terminal (a tmux pseudo-terminal) against a real etcd: the live table of `watch` redrawn on
 * every change and on errors, never wider than the terminal, and Ctrl-C ending it with status 0.
 */
import { type EtcdServer, startEtcd } from '@sdkit/test-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SDKIT_BIN } from './fixtures/sdkit-process.js';
import { startTmux, tmuxBin } from './fixtures/tmux-terminal.js';

const WIDTH = 100;
const HEIGHT = 20;

let server: EtcdServer;
let host: string;

beforeAll(async () => {
  tmuxBin();
  server = await startEtcd({ name: 'cli-tty' });
  host = server.endpoints[0]!.replace(/^http:\/\//, '');
});
afterAll(() => server?.close());

describe('sdkit watch on a terminal', () => {
  it('shows a live table, redraws it on changes and errors, and exits 0 on Ctrl-C', async () => {
    await server.etcdctl(
      'put',
      'svc/10.0.0.1:8080',
      JSON.stringify({ Op: 0, Addr: '10.0.0.1:8080', Metadata: { zone: 'a' } }),
    );
    await using term = await startTmux([process.execPath, SDKIT_BIN, 'watch', `etcd://${host}/svc`], {
      width: WIDTH,
      height: HEIGHT,
    });
    let screen = await term.until((s) => s.includes('1 instance'), 'the first table');
    expect(screen).toMatch(
      new RegExp(`^sdkit watch etcd://${host}/svc · 1 instance · updated \\d\\d:\\d\\d:\\d\\d\\n`),
    );
    expect(screen).toMatch(
      /\nKEY\s+ADDRESS\s+METADATA\nsvc\/10\.0\.0\.1:8080\s+10\.0\.0\.1:8080\s+\{"zone":"a"\}\nCtrl-C to stop/,
    );

    await server.etcdctl('put', 'svc/10.0.0.2:8080', '10.0.0.2:8080');
    screen = await term.until((s) => s.includes('2 instances'), 'the table with two');
    // Redrawn in place: one title, one header, both rows.
    expect(screen.match(/sdkit watch/g)).toHaveLength(1);
    expect(screen.match(/^KEY/gm)).toHaveLength(1);
    expect(screen).toMatch(/\nsvc\/10\.0\.0\.2:8080\s+10\.0\.0\.2:8080\n/);

    await server.stop();
    try {
      screen = await term.until((s) => s.includes('! EtcdWatchError'), 'the error line', 30_000);
      expect(screen).toContain('2 instances (last known)');
      expect(screen).toMatch(/! EtcdWatchError: etcd (read|watch) of prefix "svc\/" failed/);
      expect(screen).toContain('svc/10.0.0.2:8080');
    } finally {
      await server.start();
    }
    screen = await term.until(
      (s) => !s.includes('!') && s.includes('2 instances ·'),
      'the error gone',
      30_000,
    );

    for (const line of await term.screen()) expect(line.length).toBeLessThanOrEqual(WIDTH);

    await term.keys('C-c');
    expect(await term.exited()).toBe(0);
    screen = (await term.screen(true)).join('\n');
    expect(screen).toMatch(
      /sdkit watch .* · 2 instances · .*\nKEY.*\nsvc\/10\.0\.0\.1:8080.*\nsvc\/10\.0\.0\.2:8080/,
    );
    expect(screen).not.toContain('Ctrl-C to stop');
  });

  it('cuts long lines to the width and many rows to the height (… N more), also after a resize', async () => {
    for (let i = 0; i < 40; i++) {
      await server.etcdctl(
        'put',
        `many/10.0.1.${i}:8080`,
        JSON.stringify({ Op: 0, Addr: `10.0.1.${i}:8080`, Metadata: { note: 'x'.repeat(120) } }),
      );
    }
    await using term = await startTmux([process.execPath, SDKIT_BIN, 'watch', `etcd://${host}/many`], {
      width: 80,
      height: 15,
    });
    let screen = await term.until((s) => s.includes('40 instances'), 'the table');
    let lines = screen.split('\n');
    expect(lines.every((l) => l.length <= 80)).toBe(true);
    expect(lines.some((l) => l.endsWith('…'))).toBe(true);
    expect(screen).toMatch(/… \d+ more/);
    await term.resize(60, 12);
    await server.etcdctl('del', 'many/10.0.1.0:8080');
    screen = await term.until((s) => s.includes('39 instances'), 'the table after the resize');
    lines = screen.split('\n');
    expect(lines.every((l) => l.length <= 60)).toBe(true);
    expect(screen.match(/sdkit watch/g)).toHaveLength(1);
    await term.keys('C-c');
    expect(await term.exited()).toBe(0);
  });

  it('prints JSON lines with --json, and ls prints its table, on a terminal too', async () => {
    await server.etcdctl('put', 'json/a:1', 'a:1');
    await using watch = await startTmux(
      [process.execPath, SDKIT_BIN, 'watch', `etcd://${host}/json`, '--json'],
      {
        width: WIDTH,
        height: HEIGHT,
      },
    );
    await watch.until((s) => s.includes('{"instances":[{"key":"json/a:1","address":"a:1"}]}'), 'a JSON line');
    await watch.keys('C-c');
    expect(await watch.exited()).toBe(0);

    await using ls = await startTmux([process.execPath, SDKIT_BIN, 'ls', `etcd://${host}/json`], {
      width: WIDTH,
      height: HEIGHT,
    });
    expect(await ls.exited()).toBe(0);
    expect((await ls.screen(true)).join('\n')).toMatch(/^KEY\s+ADDRESS\s+METADATA\njson\/a:1\s+a:1\n/m);
  });
});
