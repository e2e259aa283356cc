import { describe, expect, it } from 'vitest';
import { CliError } from './cli-error.js';
import { parseCommandLine } from './parse-command-line.js';

function usage(...argv: string[]): string {
  try {
    parseCommandLine(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).kind).toBe('usage');
    return (err as CliError).message;
  }
  throw new Error(`${argv.join(' ')}: no usage error`);
}

describe('parseCommandLine', () => {
  it('reads COMMAND TARGET [ADDRESS] with flags anywhere, in both --flag forms', () => {
    expect(parseCommandLine(['ls', '--json', 'etcd:///x', '--timeout=2s'])).toEqual({
      kind: 'run',
      command: 'ls',
      target: 'etcd:///x',
      flags: { json: true, timeout: '2s' },
    });
    expect(
      parseCommandLine([
        'register',
        'etcd:///x',
        '10.0.0.5:8080',
        '--ttl',
        '5',
        '--metadata',
        '{"zone":"a"}',
      ]),
    ).toEqual({
      kind: 'run',
      command: 'register',
      target: 'etcd:///x',
      address: '10.0.0.5:8080',
      flags: { ttl: '5', metadata: '{"zone":"a"}' },
    });
    expect(parseCommandLine(['watch', 'kubernetes:///svc', '-n', 'apps'])).toMatchObject({
      flags: { namespace: 'apps' },
    });
  });

  it('asks for help or the version wherever the flag is', () => {
    expect(parseCommandLine(['--help'])).toEqual({ kind: 'help' });
    expect(parseCommandLine(['ls', 'etcd:///x', '-h'])).toEqual({ kind: 'help' });
    expect(parseCommandLine(['help'])).toEqual({ kind: 'help' });
    expect(parseCommandLine(['--version'])).toEqual({ kind: 'version' });
  });

  it('refuses a missing or unknown command, and missing or extra arguments', () => {
    expect(usage()).toMatch(/no command given; the commands are ls, watch, resolve, register/);
    expect(usage('list', 'etcd:///x')).toMatch(/unknown command "list" \(did you mean ls\?\)/);
    expect(usage('ls')).toMatch(/sdkit ls needs a TARGET/);
    expect(usage('register', 'etcd:///x')).toMatch(/needs the ADDRESS/);
    expect(usage('ls', 'etcd:///x', 'extra')).toMatch(
      /unexpected argument "extra": sdkit ls takes one TARGET/,
    );
    expect(usage('register', 'etcd:///x', 'a', 'b')).toMatch(/unexpected argument "b"/);
  });

  it('refuses unknown flags, naming the right one for known mistakes', () => {
    expect(usage('ls', 'etcd:///x', '--bogus')).toBe('unknown flag --bogus');
    expect(usage('ls', 'etcd:///x', '-x')).toBe('unknown flag -x');
    expect(usage('ls', 'etcd:///x', '--endpoint=h:1')).toMatch(/did you mean --endpoints\?/);
    expect(usage('ls', 'etcd:///x', '-w', 'json')).toMatch(/use --json/);
    expect(usage('ls', 'etcd:///x', '--insecure-skip-tls-verify')).toMatch(/not supported.*--cacert/);
    expect(usage('ls', 'etcd:///x', '--codec', 'naming')).toMatch(/\?codec=naming/);
  });

  it('never repeats a password given as a flag', () => {
    for (const argv of [
      ['ls', 'etcd:///x', '--password=hunter2-secret'],
      ['ls', 'etcd:///x', '--password', 'hunter2-secret'],
    ]) {
      const message = usage(...argv);
      expect(message).toMatch(/\$ETCDCTL_PASSWORD or use --password-file/);
      expect(message).not.toContain('hunter2');
    }
  });

  it('refuses a flag without its value, a switch with one, and a flag the command does not take', () => {
    expect(usage('ls', 'etcd:///x', '--timeout')).toMatch(/--timeout needs a value/);
    expect(usage('register', 'etcd:///x', 'a', '--ttl', '--json')).toMatch(/--ttl needs a value/);
    expect(usage('ls', 'etcd:///x', '--json=yes')).toBe('--json takes no value');
    expect(usage('ls', 'etcd:///x', '--ttl', '5')).toMatch(
      /--ttl is not taken by sdkit ls \(only by sdkit register\)/,
    );
    expect(usage('watch', 'etcd:///x', '--timeout', '5s')).toMatch(/--timeout is not taken by sdkit watch/);
  });
});
