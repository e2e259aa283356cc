import { describe, expect, it } from 'vitest';
import { EtcdHttpError, kindOf } from './etcd-http-error.js';
import type { EtcdErrorKind } from './index.js';

describe('kindOf: etcd answers as sdkit error kinds', () => {
  // [gRPC code, HTTP status, etcd message, kind]: the answers etcd 3.4.23's gateway gave (plus proxies' bare statuses).
  const cases: Array<[number | undefined, number | undefined, string, EtcdErrorKind]> = [
    [5, 404, 'etcdserver: requested lease not found', 'lease-not-found'],
    [5, 404, 'etcdserver: key not found', 'other'],
    [7, 403, 'etcdserver: permission denied', 'permission-denied'],
    [11, 400, 'etcdserver: mvcc: required revision has been compacted', 'compacted'],
    [11, 400, 'etcdserver: mvcc: required revision is a future revision', 'future-revision'],
    [16, 401, 'etcdserver: invalid auth token', 'unauthenticated'],
    [3, 400, 'etcdserver: authentication failed, invalid user ID or password', 'authentication-failed'],
    [3, 400, 'etcdserver: user name is empty', 'missing-credentials'],
    [9, 412, 'etcdserver: authentication is not enabled', 'other'],
    [14, 503, 'transport is closing', 'unavailable'],
    // A stopping etcd's gateway, about one time in 25: its own client connection closed first (gRPC Canceled).
    [1, 503, 'grpc: the client connection is closing', 'unavailable'],
    [14, 503, 'etcdserver: no leader', 'unavailable'],
    [14, 503, 'etcdserver: request timed out', 'unavailable'],
    [4, 504, 'context deadline exceeded', 'unavailable'],
    [3, 400, 'unknown value "Lease" for enum etcdserverpb.Compare_CompareTarget', 'other'],
    [undefined, 503, 'Service Unavailable', 'unavailable'],
    [undefined, 502, '', 'unavailable'],
    [undefined, 401, '', 'unauthenticated'],
    [undefined, 403, '', 'permission-denied'],
    [undefined, 404, 'Not Found', 'not-served'],
    [undefined, 405, 'Method Not Allowed', 'not-served'],
  ];
  for (const [code, status, message, kind] of cases) {
    it(`${code ?? '-'} / ${status ?? '-'} / ${message || '(no message)'} → ${kind}`, () => {
      expect(kindOf(code, status, message)).toBe(kind);
    });
  }
});

describe('EtcdHttpError', () => {
  it('carries the kind, etcd answer and call; the cause only when given', () => {
    const e = new EtcdHttpError('m', {
      kind: 'permission-denied',
      code: 7,
      status: 403,
      etcdMessage: 'etcdserver: permission denied',
      endpoint: 'http://127.0.0.1:2379',
      path: '/v3/kv/put',
    });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('EtcdHttpError');
    expect([e.kind, e.code, e.status, e.etcdMessage, e.endpoint, e.path]).toEqual([
      'permission-denied',
      7,
      403,
      'etcdserver: permission denied',
      'http://127.0.0.1:2379',
      '/v3/kv/put',
    ]);
    expect('cause' in e).toBe(false);
    expect(new EtcdHttpError('m', { kind: 'other', cause: 'x' }).cause).toBe('x');
  });
});
