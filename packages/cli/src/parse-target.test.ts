import { describe, expect, it } from 'vitest';
import { CliError } from './cli-error.js';
import { parseTarget } from './parse-target.js';

const SCHEMES = ['etcd', 'etcd+http', 'kubernetes'];

function usage(text: string): CliError {
  try {
    parseTarget(text, SCHEMES);
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).kind).toBe('usage');
    return err as CliError;
  }
  throw new Error(`parseTarget(${JSON.stringify(text)}) did not throw`);
}

describe('parseTarget', () => {
  it('splits SCHEME://AUTHORITY/PATH?QUERY, keeping the path percent-encoded', () => {
    expect(parseTarget('etcd://127.0.0.1:2379/my-service?codec=naming', SCHEMES)).toEqual({
      text: 'etcd://127.0.0.1:2379/my-service?codec=naming',
      scheme: 'etcd',
      authority: '127.0.0.1:2379',
      path: 'my-service',
      query: [['codec', 'naming']],
    });
    expect(parseTarget('etcd://h1:2379,h2:2379//services/a%20b/', SCHEMES)).toMatchObject({
      authority: 'h1:2379,h2:2379',
      path: '/services/a%20b/',
      query: [],
    });
    expect(parseTarget('ETCD+HTTP:///svc', SCHEMES)).toMatchObject({
      scheme: 'etcd+http',
      authority: '',
      path: 'svc',
    });
  });

  it('tells a missing slash after the authority from an empty path', () => {
    expect(parseTarget('kubernetes://svc.ns:8080', SCHEMES).path).toBeUndefined();
    expect(parseTarget('etcd://h:2379/', SCHEMES).path).toBe('');
  });

  it('decodes query parameters', () => {
    expect(parseTarget('etcd:///x?codec=go%6Bit&a', SCHEMES).query).toEqual([
      ['codec', 'gokit'],
      ['a', ''],
    ]);
    expect(usage('etcd:///x?codec=%zz').message).toMatch(/malformed percent-encoding in its query/);
  });

  it('refuses text that is not SCHEME://…, naming the schemes and showing an example', () => {
    expect(usage('my-service').message).toMatch(
      /is not a URL.*etcd:\/\/127\.0\.0\.1:2379\/my-service.*schemes: etcd, etcd\+http, kubernetes/,
    );
    expect(usage('etcd:my-service').message).toMatch(/must start with "etcd:\/\/".*three slashes/);
  });

  it('refuses credentials in the target without repeating them', () => {
    const err = usage('etcd://root:s3cret-Pa55@127.0.0.1:2379/x');
    expect(err.message).not.toContain('s3cret');
    expect(err.message).not.toContain('root');
    expect(err.message).toMatch(/ETCDCTL_PASSWORD or --password-file/);
  });

  it('refuses a fragment', () => {
    expect(usage('etcd:///x#frag').message).toMatch(/fragment/);
  });
});
