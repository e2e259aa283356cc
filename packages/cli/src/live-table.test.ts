import { describe, expect, it } from 'vitest';
import { fakeIo, inst } from './fixtures/fake-io.js';
import { LiveTable } from './live-table.js';

const at = () => new Date(2024, 0, 1, 12, 34, 56);

function table(color = false) {
  const io = fakeIo({ tty: true });
  return { io, live: new LiveTable(io.stdout, { title: 'sdkit watch etcd:///svc', color, now: at }) };
}

describe('LiveTable', () => {
  it('shows a title with the count and the time of the last change, the table, and how to stop', () => {
    const { live } = table();
    expect(live.lines(79, 24)).toEqual([
      'sdkit watch etcd:///svc · waiting for the first answer…',
      'Ctrl-C to stop',
    ]);
    live.update({ instances: [inst('svc/a', '10.0.0.1:80')] });
    expect(live.lines(79, 24)).toEqual([
      'sdkit watch etcd:///svc · 1 instance · updated 12:34:56',
      'KEY     ADDRESS       METADATA',
      'svc/a   10.0.0.1:80',
      'Ctrl-C to stop',
    ]);
  });

  it("shows the source's error above the last known instances, and the last warnings below", () => {
    const { live } = table();
    live.update({ instances: [inst('svc/a')], error: new Error('etcd is unreachable') });
    for (let i = 1; i <= 4; i++) live.note(`sdkit: warning: note ${i}`);
    expect(live.lines(79, 24)).toEqual([
      'sdkit watch etcd:///svc · 1 instance (last known) · updated 12:34:56',
      '! Error: etcd is unreachable',
      'KEY     ADDRESS   METADATA',
      'svc/a   svc/a',
      'sdkit: warning: note 2',
      'sdkit: warning: note 3',
      'sdkit: warning: note 4',
      'Ctrl-C to stop',
    ]);
  });

  it('wraps a long error over at most three lines', () => {
    const { live } = table();
    live.update({ instances: [], error: new Error(`${'word '.repeat(30)}end`) });
    expect(live.lines(40, 24).slice(1, 4)).toEqual([
      '! Error: word word word word word word',
      'word word word word word word word word',
      'word word word word word word word word…',
    ]);
    live.update({ instances: [], error: new Error('short') });
    expect(live.lines(40, 24)[1]).toBe('! Error: short');
    expect(live.lines(40, 24)[2]).toBe('KEY   ADDRESS   METADATA');
  });

  it('fits the terminal: lines cut to its width, rows beyond its height summed up', () => {
    const { live } = table();
    live.update({
      instances: Array.from({ length: 30 }, (_, i) => inst(`svc/${String(i).padStart(2, '0')}`)),
    });
    const lines = live.lines(30, 10);
    expect(lines).toHaveLength(9);
    expect(lines.every((l) => l.length <= 30)).toBe(true);
    expect(lines[0]).toBe('sdkit watch etcd:///svc · 30 …');
    expect(lines.slice(-2)).toEqual(['… 25 more', 'Ctrl-C to stop']);
  });

  it('redraws in place: cursor up over the previous view, each line erased; hides the cursor until closed', () => {
    const { io, live } = table();
    expect(io.stdout.text.startsWith('\u001b[?25l')).toBe(true);
    io.stdout.text = '';
    live.update({ instances: [inst('svc/a')] });
    // The first view had 2 lines; this one has 4.
    const EL = '\u001b[2K';
    expect(io.stdout.text).toBe(
      `\u001b[2A\r${EL}sdkit watch etcd:///svc · 1 instance · updated 12:34:56\n${EL}KEY     ADDRESS   METADATA\n` +
        `${EL}svc/a   svc/a\n${EL}Ctrl-C to stop\n`,
    );
    io.stdout.text = '';
    live.update({ instances: [] });
    // Two lines fewer: those are erased too, and the cursor goes back to the end of the new view.
    expect(io.stdout.text).toBe(
      `\u001b[4A\r${EL}sdkit watch etcd:///svc · 0 instances · updated 12:34:56\n${EL}KEY   ADDRESS   METADATA\n` +
        `${EL}Ctrl-C to stop\n${EL}\n\u001b[1A`,
    );
    io.stdout.text = '';
    live.close();
    expect(io.stdout.text.startsWith('\u001b[3A\r')).toBe(true);
    expect(io.stdout.text).not.toContain('Ctrl-C');
    expect(io.stdout.text.endsWith('\u001b[?25h')).toBe(true);
    io.stdout.text = '';
    live.update({ instances: [] });
    live.close();
    expect(io.stdout.text).toBe('');
  });

  it('colours the title and the error only when asked', () => {
    const { live } = table(true);
    live.update({ instances: [], error: new Error('down') });
    const [title, error] = live.lines(79, 24);
    expect(title!.startsWith('\u001b[1msdkit watch')).toBe(true);
    expect(title!.endsWith('\u001b[0m')).toBe(true);
    expect(error!.startsWith('\u001b[31m! Error: down')).toBe(true);
  });

  it('clears the screen and redraws from the top after a resize', () => {
    const { io, live } = table();
    io.stdout.text = '';
    live.resize();
    expect(io.stdout.text.startsWith('\u001b[H\u001b[2J\r\u001b[2K')).toBe(true);
  });
});
