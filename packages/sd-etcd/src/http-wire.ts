/**
 * etcd's HTTP/JSON gateway (grpc-gateway over etcd's protobuf messages) ↔ sdkit's transport types. The gateway
 * writes bytes fields as base64, int64 fields as decimal strings, and omits every field at its zero value (no
 * `kvs` on an empty range, no `type` on a PUT event, no `value` when empty, no `more` / `count` / `succeeded` when
 * false / 0, no `revision` in a header at revision 0). Errors are `{"error","message","code"}` bodies on unary
 * calls and `{"error":{"grpc_code","http_code","message","http_status"}}` lines in streams. Portable (no Buffer).
 * @internal
 * @packageDocumentation
 */
import { GRPC_CODES } from './etcd-http-error.js';
import type {
  EtcdHeader,
  EtcdKeyValue,
  RangeRequest,
  RangeResult,
  WatchEvent,
  WatchRequest,
  WatchResponse,
} from './transport.js';

// --- base64 ---------------------------------------------------------------------------------------------------

const CHUNK = 0x8000;

/** Standard base64 (with padding) of `bytes`, as protobuf's JSON mapping writes bytes fields. */
export function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += CHUNK) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + CHUNK) as unknown as number[]);
  }
  return btoa(binary);
}

const EMPTY = new Uint8Array(0);

/** The bytes of a base64 field; `undefined` / `''` (an omitted bytes field) is empty. Throws on invalid base64. */
export function fromBase64(text: unknown): Uint8Array {
  if (text === undefined || text === null || text === '') return EMPTY;
  if (typeof text !== 'string') throw new TypeError(`expected a base64 string, got ${typeof text}`);
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

// --- scalar fields --------------------------------------------------------------------------------------------

type Json = Record<string, unknown>;

/** An object field, or `{}` when omitted. */
function obj(value: unknown): Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : {};
}

/** An int64 field as a decimal string: `'0'` when omitted. */
export function int64(value: unknown): string {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(Math.trunc(value));
  return '0';
}

/** A bool field: `false` when omitted. */
function bool(value: unknown): boolean {
  return value === true;
}

/** A string field: `''` when omitted. */
function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

// --- requests -------------------------------------------------------------------------------------------------

/** The body of `/v3/kv/range`. */
export function rangeBody(req: RangeRequest): Json {
  const body: Json = { key: toBase64(req.key) };
  if (req.rangeEnd.length > 0) body.range_end = toBase64(req.rangeEnd);
  if (req.revision !== undefined) body.revision = req.revision;
  if (req.limit !== undefined) body.limit = String(req.limit);
  if (req.countOnly) body.count_only = true;
  return body;
}

/** The body of `/v3/kv/put`. */
export function putBody(key: Uint8Array, value: Uint8Array, lease: string | undefined): Json {
  const body: Json = { key: toBase64(key), value: toBase64(value) };
  if (lease !== undefined) body.lease = lease;
  return body;
}

/** The body of `/v3/kv/txn` deleting `key` if (and only if) it is attached to lease `leaseId`. */
export function deleteIfLeaseBody(key: Uint8Array, leaseId: string): Json {
  const k = toBase64(key);
  return {
    compare: [{ target: 'LEASE', result: 'EQUAL', key: k, lease: leaseId }],
    success: [{ request_delete_range: { key: k } }],
  };
}

/** The body of `/v3/watch`: one create request, with progress notifications and fragmented large responses. */
export function watchBody(req: WatchRequest): Json {
  const create: Json = {
    key: toBase64(req.key),
    start_revision: req.startRevision,
    progress_notify: true,
    fragment: true,
  };
  if (req.rangeEnd.length > 0) create.range_end = toBase64(req.rangeEnd);
  return { create_request: create };
}

// --- responses ------------------------------------------------------------------------------------------------

/** A `ResponseHeader`. */
export function decodeHeader(value: unknown): EtcdHeader {
  const h = obj(value);
  return { revision: int64(h.revision), clusterId: h.cluster_id === undefined ? '' : int64(h.cluster_id) };
}

/** A `mvccpb.KeyValue`. */
export function decodeKeyValue(value: unknown): EtcdKeyValue {
  const kv = obj(value);
  return { key: fromBase64(kv.key), value: fromBase64(kv.value), modRevision: int64(kv.mod_revision) };
}

/** A `RangeResponse`. */
export function decodeRange(value: unknown): RangeResult {
  const r = obj(value);
  return {
    header: decodeHeader(r.header),
    kvs: list(r.kvs).map(decodeKeyValue),
    more: bool(r.more),
    count: int64(r.count),
  };
}

/** A `mvccpb.Event`: PUT is the zero value of its type, so an event without `type` is a put. */
export function decodeEvent(value: unknown): WatchEvent {
  const e = obj(value);
  const type = e.type === undefined || e.type === 'PUT' || e.type === 0 ? 'put' : 'delete';
  if (type === 'delete' && e.type !== 'DELETE' && e.type !== 1) {
    throw new TypeError(`unknown watch event type ${JSON.stringify(e.type)}`);
  }
  return { type, kv: decodeKeyValue(e.kv) };
}

/** A `WatchResponse` (the `result` of one line of `/v3/watch`). */
export function decodeWatchResponse(value: unknown): WatchResponse {
  const r = obj(value);
  return {
    header: decodeHeader(r.header),
    created: bool(r.created),
    canceled: bool(r.canceled),
    cancelReason: str(r.cancel_reason),
    compactRevision: int64(r.compact_revision),
    fragment: bool(r.fragment),
    events: list(r.events).map(decodeEvent),
  };
}

/** A `LeaseGrantResponse`. */
export function decodeLeaseGrant(value: unknown): { id: string; ttlSeconds: number } {
  const r = obj(value);
  const id = int64(r.ID);
  if (id === '0') throw new TypeError('etcd granted no lease id');
  return { id, ttlSeconds: Number(int64(r.TTL)) };
}

/** The TTL of a `LeaseKeepAliveResponse` (the `result` of `/v3/lease/keepalive`): omitted (0) for a lease gone. */
export function decodeKeepAliveTtl(value: unknown): number {
  return Number(int64(obj(value).TTL));
}

/** Whether a `TxnResponse` of {@link deleteIfLeaseBody} succeeded and deleted the key. */
export function decodeDeleteIfLease(value: unknown): boolean {
  const r = obj(value);
  if (!bool(r.succeeded)) return false;
  const first = obj(list(r.responses)[0]);
  return int64(obj(first.response_delete_range).deleted) !== '0';
}

/** An `AuthenticateResponse`'s token. */
export function decodeToken(value: unknown): string {
  const token = str(obj(value).token);
  if (token === '') throw new TypeError('etcd answered the authentication without a token');
  return token;
}

// --- errors ---------------------------------------------------------------------------------------------------

/** etcd's answer inside an error: its gRPC code and message, each if present. */
export interface WireError {
  readonly code: number | undefined;
  readonly message: string | undefined;
}

/** The error body of a failed unary call (`{"error","message","code"}`); text that is not such JSON is the message. */
export function decodeErrorBody(text: string): WireError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    const message = text.trim().slice(0, 300);
    return { code: undefined, message: message === '' ? undefined : message };
  }
  const e = obj(parsed);
  const message = str(e.message) || str(e.error);
  return {
    code: typeof e.code === 'number' ? e.code : undefined,
    message: message === '' ? undefined : message,
  };
}

/** The `error` of a stream line (`{"error":{"grpc_code","http_code","message","http_status"}}`). */
export function decodeStreamError(value: unknown): WireError & { readonly httpCode: number | undefined } {
  const e = obj(value);
  const message = str(e.message);
  return {
    code: typeof e.grpc_code === 'number' ? e.grpc_code : undefined,
    message: message === '' ? undefined : message,
    httpCode: typeof e.http_code === 'number' ? e.http_code : undefined,
  };
}

const RPC_ERROR = /^rpc error: code = (\w+) desc = ([\s\S]*)$/;

/**
 * The error in a watch's `cancel_reason` when etcd refused the watch at creation (`rpc error: code =
 * Unauthenticated desc = etcdserver: invalid auth token`); `undefined` for any other reason (or none).
 */
export function decodeCancelReason(reason: string): WireError | undefined {
  const m = RPC_ERROR.exec(reason);
  if (!m) return undefined;
  return { code: GRPC_CODES[m[1]!] ?? 2, message: m[2] };
}
