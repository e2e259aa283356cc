import { describe, expect, it } from 'vitest';
import {
  decodeCancelReason,
  decodeDeleteIfLease,
  decodeErrorBody,
  decodeEvent,
  decodeHeader,
  decodeKeepAliveTtl,
  decodeLeaseGrant,
  decodeRange,
  decodeStreamError,
  decodeToken,
  decodeWatchResponse,
  deleteIfLeaseBody,
  fromBase64,
  int64,
  putBody,
  rangeBody,
  toBase64,
  watchBody,
} from './http-wire.js';

const utf8 = new TextEncoder();
const text = (b: Uint8Array) => new TextDecoder().decode(b);

// Bodies as etcd 3.4.23's gateway sent them (captured with curl), zero values omitted.
const HEADER = {
  cluster_id: '15118495548433857066',
  member_id: '13668033151171901709',
  revision: '5',
  raft_term: '2',
};

describe('base64', () => {
  it('round-trips every byte value, empty input and inputs longer than one conversion chunk', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect(fromBase64(toBase64(all))).toEqual(all);
    expect(toBase64(new Uint8Array(0))).toBe('');
    const big = Uint8Array.from({ length: 100_003 }, (_, i) => (i * 7919) & 0xff);
    expect(fromBase64(toBase64(big))).toEqual(big);
  });

  it('matches the encoding the gateway uses', () => {
    expect(toBase64(utf8.encode('foo'))).toBe('Zm9v');
    expect(toBase64(Uint8Array.of(0))).toBe('AA==');
    expect(text(fromBase64('YmFy'))).toBe('bar');
  });

  it('reads an omitted bytes field as empty and refuses what is not base64', () => {
    expect(fromBase64(undefined)).toEqual(new Uint8Array(0));
    expect(fromBase64('')).toEqual(new Uint8Array(0));
    expect(() => fromBase64('*not base64*')).toThrow();
    expect(() => fromBase64(42)).toThrow(/base64 string/);
  });
});

describe('decoding gateway answers with omitted zero values', () => {
  it('int64: strings stay exact, omitted is "0"', () => {
    expect(int64('9223372036854775807')).toBe('9223372036854775807');
    expect(int64(undefined)).toBe('0');
    expect(int64(12)).toBe('12');
  });

  it('an empty range: no kvs, no more, no count', () => {
    expect(decodeRange({ header: HEADER })).toEqual({
      header: { revision: '5', clusterId: '15118495548433857066' },
      kvs: [],
      more: false,
      count: '0',
    });
  });

  it('a range page: kvs (a value omitted when empty), more, count', () => {
    const res = decodeRange({
      header: HEADER,
      kvs: [
        { key: 'YQ==', create_revision: '2', mod_revision: '4', version: '2', value: 'eA==' },
        { key: 'Yg==', create_revision: '3', mod_revision: '3', version: '1' },
      ],
      more: true,
      count: '7',
    });
    expect(res.more).toBe(true);
    expect(res.count).toBe('7');
    expect(res.kvs.map((kv) => [text(kv.key), text(kv.value), kv.modRevision])).toEqual([
      ['a', 'x', '4'],
      ['b', '', '3'],
    ]);
  });

  it('a header without revision (the compaction cancel) or cluster id', () => {
    expect(decodeHeader({ cluster_id: '1', raft_term: '2' })).toEqual({ revision: '0', clusterId: '1' });
    expect(decodeHeader(undefined)).toEqual({ revision: '0', clusterId: '' });
  });

  it('watch events: no type is a put, "DELETE" a delete (its kv has no value); an unknown type throws', () => {
    const put = decodeEvent({ kv: { key: 'YQ==', create_revision: '6', mod_revision: '6', version: '1' } });
    expect(put.type).toBe('put');
    expect(put.kv.value).toEqual(new Uint8Array(0));
    const del = decodeEvent({ type: 'DELETE', kv: { key: 'YQ==', mod_revision: '7' } });
    expect(del).toEqual({
      type: 'delete',
      kv: { key: utf8.encode('a'), value: new Uint8Array(0), modRevision: '7' },
    });
    expect(decodeEvent({ type: 'PUT', kv: {} }).type).toBe('put');
    expect(() => decodeEvent({ type: 'TOUCH', kv: {} })).toThrow(/unknown watch event type "TOUCH"/);
  });

  it('watch responses: created; compaction cancel; refused at creation; a fragment', () => {
    expect(decodeWatchResponse({ header: HEADER, created: true })).toEqual({
      header: { revision: '5', clusterId: HEADER.cluster_id },
      created: true,
      canceled: false,
      cancelReason: '',
      compactRevision: '0',
      fragment: false,
      events: [],
    });
    const compacted = decodeWatchResponse({
      header: { cluster_id: '1', member_id: '2', raft_term: '2' },
      canceled: true,
      compact_revision: '3',
    });
    expect([
      compacted.created,
      compacted.canceled,
      compacted.compactRevision,
      compacted.header.revision,
    ]).toEqual([false, true, '3', '0']);
    const refused = decodeWatchResponse({
      header: HEADER,
      watch_id: '-1',
      created: true,
      canceled: true,
      cancel_reason: 'rpc error: code = Unauthenticated desc = etcdserver: invalid auth token',
    });
    expect(refused.cancelReason).toMatch(/Unauthenticated/);
    const fragment = decodeWatchResponse({
      header: HEADER,
      fragment: true,
      events: [{ kv: { key: 'YQ==' } }],
    });
    expect(fragment.fragment).toBe(true);
    expect(fragment.events).toHaveLength(1);
  });

  it('lease answers: grant; keep-alive of a lease gone has no TTL (0)', () => {
    expect(decodeLeaseGrant({ header: HEADER, ID: '4111120241220541446', TTL: '60' })).toEqual({
      id: '4111120241220541446',
      ttlSeconds: 60,
    });
    expect(() => decodeLeaseGrant({ header: HEADER })).toThrow(/no lease id/);
    expect(decodeKeepAliveTtl({ header: HEADER, ID: '12345' })).toBe(0);
    expect(decodeKeepAliveTtl({ header: HEADER, ID: '12345', TTL: '9' })).toBe(9);
  });

  it('the delete-if-lease txn: no `succeeded` is false; succeeded with deleted 0 is false too', () => {
    expect(decodeDeleteIfLease({ header: HEADER })).toBe(false);
    expect(
      decodeDeleteIfLease({
        header: HEADER,
        succeeded: true,
        responses: [{ response_delete_range: { header: { revision: '3' }, deleted: '1' } }],
      }),
    ).toBe(true);
    expect(
      decodeDeleteIfLease({ header: HEADER, succeeded: true, responses: [{ response_delete_range: {} }] }),
    ).toBe(false);
  });

  it('authenticate: the token, or an error if there is none', () => {
    expect(decodeToken({ header: HEADER, token: 'etzHRQEbNzrRtJmf.23' })).toBe('etzHRQEbNzrRtJmf.23');
    expect(() => decodeToken({ header: HEADER })).toThrow(/without a token/);
  });
});

describe('gateway errors', () => {
  it('unary error bodies, and bodies that are not JSON', () => {
    expect(
      decodeErrorBody(
        '{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}',
      ),
    ).toEqual({ code: 5, message: 'etcdserver: requested lease not found' });
    expect(decodeErrorBody('Not Found\n')).toEqual({ code: undefined, message: 'Not Found' });
    expect(decodeErrorBody('')).toEqual({ code: undefined, message: undefined });
  });

  it('the error line that ends a stream', () => {
    expect(
      decodeStreamError({
        grpc_code: 14,
        http_code: 503,
        message: 'transport is closing',
        http_status: 'Service Unavailable',
      }),
    ).toEqual({ code: 14, message: 'transport is closing', httpCode: 503 });
  });

  it('a cancel reason that is an rpc error, and one that is not', () => {
    expect(
      decodeCancelReason('rpc error: code = PermissionDenied desc = etcdserver: permission denied'),
    ).toEqual({
      code: 7,
      message: 'etcdserver: permission denied',
    });
    expect(
      decodeCancelReason('rpc error: code = InvalidArgument desc = etcdserver: user name is empty'),
    ).toEqual({
      code: 3,
      message: 'etcdserver: user name is empty',
    });
    expect(decodeCancelReason('')).toBeUndefined();
    expect(decodeCancelReason('mvcc: required revision has been compacted')).toBeUndefined();
  });
});

describe('request bodies', () => {
  it('range: range_end only when given; revision, limit (int64 as string), count_only only when set', () => {
    expect(rangeBody({ key: utf8.encode('foo'), rangeEnd: new Uint8Array(0) })).toEqual({ key: 'Zm9v' });
    expect(
      rangeBody({
        key: utf8.encode('a'),
        rangeEnd: Uint8Array.of(0),
        revision: '12',
        limit: 3,
        countOnly: true,
      }),
    ).toEqual({ key: 'YQ==', range_end: 'AA==', revision: '12', limit: '3', count_only: true });
  });

  it('put: the lease only when given', () => {
    expect(putBody(utf8.encode('k'), utf8.encode('v'), undefined)).toEqual({ key: 'aw==', value: 'dg==' });
    expect(putBody(utf8.encode('k'), new Uint8Array(0), '7')).toEqual({ key: 'aw==', value: '', lease: '7' });
  });

  it('delete-if-lease: the enum names the gateway accepts', () => {
    expect(deleteIfLeaseBody(utf8.encode('k'), '42')).toEqual({
      compare: [{ target: 'LEASE', result: 'EQUAL', key: 'aw==', lease: '42' }],
      success: [{ request_delete_range: { key: 'aw==' } }],
    });
  });

  it('watch: one create request with progress notifications and fragments', () => {
    expect(watchBody({ key: utf8.encode('/s/'), rangeEnd: utf8.encode('/s0'), startRevision: '9' })).toEqual({
      create_request: {
        key: 'L3Mv',
        range_end: 'L3Mw',
        start_revision: '9',
        progress_notify: true,
        fragment: true,
      },
    });
  });
});
