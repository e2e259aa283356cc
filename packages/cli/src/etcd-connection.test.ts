import { describe, expect, it } from 'vitest';
import { CliError } from './cli-error.js';
import { type EtcdConnectionInput, etcdConnection } from './etcd-connection.js';

const SECRET = 'Pa55-w0rd-9qx';

function connect(overrides: Partial<EtcdConnectionInput> & { files?: Record<string, string> } = {}) {
  const { files = {}, ...rest } = overrides;
  return etcdConnection({
    transport: 'grpc',
    authority: '',
    flags: {},
    env: {},
    readTextFile(path) {
      const text = files[path];
      if (text === undefined) throw Object.assign(new Error(`ENOENT ${path}`), { code: 'ENOENT' });
      return text;
    },
    ...rest,
  });
}

function usage(overrides: Parameters<typeof connect>[0]): string {
  try {
    connect(overrides);
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).kind).toBe('usage');
    expect((err as CliError).message).not.toContain(SECRET);
    return (err as CliError).message;
  }
  throw new Error('no usage error');
}

describe('etcdConnection: endpoints', () => {
  it("takes the target's authority, with etcd's port when left out", () => {
    expect(connect({ authority: '10.0.0.1:2379,10.0.0.2,[::1]:23790' }).endpoints).toEqual([
      'http://10.0.0.1:2379',
      'http://10.0.0.2:2379',
      'http://[::1]:23790',
    ]);
  });

  it('else --endpoints, else $ETCDCTL_ENDPOINTS, else 127.0.0.1:2379 (etcdctl’s default)', () => {
    const env = { ETCDCTL_ENDPOINTS: 'e1:1,e2:2' };
    expect(connect({ flags: { endpoints: 'https://f1:1, f2:2' }, env }).endpoints).toEqual([
      'https://f1:1',
      'http://f2:2',
    ]);
    expect(connect({ env }).endpoints).toEqual(['http://e1:1', 'http://e2:2']);
    expect(connect().endpoints).toEqual(['http://127.0.0.1:2379']);
  });

  it('uses https for bare endpoints when a TLS file is given', () => {
    const c = connect({ authority: 'h:2379', flags: { cacert: '/ca.pem' } });
    expect(c.endpoints).toEqual(['https://h:2379']);
    expect(c.tls).toEqual({ ca: '/ca.pem' });
    expect(connect({ env: { ETCDCTL_CERT: '/c.pem', ETCDCTL_KEY: '/k.pem' } })).toMatchObject({
      endpoints: ['https://127.0.0.1:2379'],
      tls: { cert: '/c.pem', key: '/k.pem' },
    });
  });

  it('refuses endpoints given twice, malformed endpoints and URLs in the target', () => {
    expect(usage({ authority: 'h:1', flags: { endpoints: 'h:2' } })).toMatch(
      /given twice.*etcd:\/\/\/PREFIX/,
    );
    expect(usage({ authority: 'h:99999' })).toMatch(/"h:99999" in the target has a port outside 1–65535/);
    expect(usage({ authority: 'h:' })).toMatch(/port outside/);
    expect(usage({ authority: 'a,,b' })).toMatch(/"" in the target is empty/);
    expect(usage({ flags: { endpoints: 'ftp://h:1' } })).toMatch(/in --endpoints must be HOST:PORT, http/);
    expect(usage({ authority: 'h_%:1' })).toMatch(/must be HOST:PORT/);
  });
});

describe('etcdConnection: TLS', () => {
  it('refuses --cert without --key, and TLS files with the HTTP transport', () => {
    expect(usage({ flags: { cert: '/c.pem' } })).toMatch(/--cert and --key go together/);
    expect(usage({ transport: 'http', flags: { cacert: '/ca.pem' } })).toMatch(
      /etcd:\/\/ targets \(gRPC\) only/,
    );
  });
});

describe('etcdConnection: auth, never from the command line', () => {
  it('takes the user from --user and the password from $ETCDCTL_PASSWORD', () => {
    expect(connect({ flags: { user: 'alice' }, env: { ETCDCTL_PASSWORD: SECRET } }).auth).toEqual({
      username: 'alice',
      password: SECRET,
    });
  });

  it("takes etcdctl's $ETCDCTL_USER=NAME:PASSWORD", () => {
    expect(connect({ env: { ETCDCTL_USER: `bob:${SECRET}:x` } }).auth).toEqual({
      username: 'bob',
      password: `${SECRET}:x`,
    });
    // That password is bob's only.
    expect(usage({ flags: { user: 'carol' }, env: { ETCDCTL_USER: `bob:${SECRET}` } })).toMatch(
      /etcd user "carol" has no password/,
    );
  });

  it('reads the first line of --password-file, which wins over the environment', () => {
    const files = { '/pw': `${SECRET}\nignored\n` };
    expect(
      connect({ files, flags: { user: 'alice', 'password-file': '/pw' }, env: { ETCDCTL_PASSWORD: 'other' } })
        .auth,
    ).toEqual({ username: 'alice', password: SECRET });
    expect(
      connect({ files: { '/pw': `${SECRET}\r\n` }, flags: { user: 'a', 'password-file': '/pw' } }).auth
        ?.password,
    ).toBe(SECRET);
  });

  it('refuses a password on the command line without repeating it', () => {
    expect(usage({ flags: { user: `alice:${SECRET}` } })).toMatch(
      /--user takes only the user name \("alice"\).*ETCDCTL_PASSWORD or use --password-file/,
    );
  });

  it('refuses a user without a password, a password without a user, and unreadable or empty files', () => {
    expect(usage({ flags: { user: 'alice' } })).toMatch(/"alice" has no password: set \$ETCDCTL_PASSWORD/);
    expect(usage({ flags: { 'password-file': '/pw' } })).toMatch(/--password-file needs a user/);
    expect(usage({ env: { ETCDCTL_PASSWORD: SECRET } })).toMatch(/\$ETCDCTL_PASSWORD is set but no user/);
    expect(usage({ flags: { user: 'a', 'password-file': '/missing' } })).toMatch(
      /"\/missing" cannot be read \(ENOENT\)/,
    );
    expect(usage({ files: { '/pw': '\nx' }, flags: { user: 'a', 'password-file': '/pw' } })).toMatch(
      /first line is empty/,
    );
  });

  it('has no auth when no user is named', () => {
    expect(connect().auth).toBeUndefined();
  });
});

describe('etcdConnection: dial timeout', () => {
  it('takes the flag’s value, else $ETCDCTL_DIAL_TIMEOUT', () => {
    expect(connect({ dialTimeoutMs: 700, env: { ETCDCTL_DIAL_TIMEOUT: '2s' } }).dialTimeoutMs).toBe(700);
    expect(connect({ env: { ETCDCTL_DIAL_TIMEOUT: '2s' } }).dialTimeoutMs).toBe(2000);
    expect(connect().dialTimeoutMs).toBeUndefined();
    expect(usage({ env: { ETCDCTL_DIAL_TIMEOUT: 'soon' } })).toMatch(/\$ETCDCTL_DIAL_TIMEOUT must be/);
  });
});
