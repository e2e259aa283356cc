/**
 * A lean etcd writer for generating load: `KV.Put`, `KV.DeleteRange` and `KV.Txn` sent as gRPC over `node:http2`
 * with hand-encoded protobuf. It exists because the load generator must not be the bottleneck of a throughput
 * benchmark: through etcd3 (grpc-js + protobufjs) a put costs this machine ≈ 300 µs of CPU, capping one writer at
 * ≈ 3 500 puts/s — below what etcd accepts; here it costs ≈ 100 µs. Only what the benchmarks write is encoded
 * (keys and values as UTF-8 bytes); responses are checked for `grpc-status` 0 and otherwise ignored.
 */
import http2 from 'node:http2';

/** One change: put `key` = `value`, or delete `key` (when `value` is undefined). */
export interface Change {
  readonly key: string;
  readonly value?: string;
}

/** Protobuf varint of a non-negative integer below 2^31. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

/** A length-delimited protobuf field (wire type 2) with the given field number. */
function bytesField(field: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([(field << 3) | 2, ...varint(payload.length)]), payload]);
}

/** `PutRequest { key = 1; value = 2 }`. */
export function encodePut(key: string, value: string): Buffer {
  return Buffer.concat([bytesField(1, Buffer.from(key)), bytesField(2, Buffer.from(value))]);
}

/** `DeleteRangeRequest { key = 1 }` (a single key). */
export function encodeDelete(key: string): Buffer {
  return bytesField(1, Buffer.from(key));
}

/** `TxnRequest { success = 2 }` of `RequestOp { request_put = 2 | request_delete_range = 3 }`, no compares. */
export function encodeTxn(changes: readonly Change[]): Buffer {
  return Buffer.concat(
    changes.map((c) =>
      bytesField(
        2,
        c.value === undefined ? bytesField(3, encodeDelete(c.key)) : bytesField(2, encodePut(c.key, c.value)),
      ),
    ),
  );
}

/** The gRPC length-prefixed message frame (uncompressed). */
function grpcFrame(message: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

/** A plain-HTTP etcd writer on one HTTP/2 connection. Not for TLS or auth: it is a benchmark load generator. */
export class LoadWriter {
  readonly #session: http2.ClientHttp2Session;

  /** @param endpoint an `http://host:port` etcd client URL. */
  constructor(endpoint: string) {
    if (!endpoint.startsWith('http://'))
      throw new TypeError(`LoadWriter: plain http endpoints only, got ${endpoint}`);
    this.#session = http2.connect(endpoint);
    // A failed connection rejects the calls in flight; keep the session error from being unhandled.
    this.#session.on('error', () => {});
  }

  /** Applies one change (a put or a single-key delete). */
  apply(change: Change): Promise<void> {
    return change.value === undefined
      ? this.#call('/etcdserverpb.KV/DeleteRange', encodeDelete(change.key))
      : this.#call('/etcdserverpb.KV/Put', encodePut(change.key, change.value));
  }

  /** Applies `changes` in one transaction (one revision, one watch response). */
  txn(changes: readonly Change[]): Promise<void> {
    return this.#call('/etcdserverpb.KV/Txn', encodeTxn(changes));
  }

  /** Closes the connection (after the calls in flight). */
  close(): Promise<void> {
    return new Promise((resolve) => this.#session.close(() => resolve()));
  }

  #call(path: string, message: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const stream = this.#session.request({
        ':method': 'POST',
        ':path': path,
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      let status: string | undefined;
      let detail = '';
      const onHeaders = (headers: http2.IncomingHttpHeaders) => {
        const s = headers['grpc-status'];
        if (s !== undefined) {
          status = String(s);
          detail = decodeURIComponent(String(headers['grpc-message'] ?? ''));
        }
      };
      // A trailers-only response carries grpc-status in the headers; a normal one in the trailers.
      stream.on('response', onHeaders);
      stream.on('trailers', onHeaders);
      stream.on('data', () => {});
      stream.on('error', reject);
      stream.on('end', () => {
        if (status === '0') resolve();
        else reject(new Error(`etcd ${path} failed: grpc-status ${status ?? 'missing'} ${detail}`.trim()));
      });
      stream.end(grpcFrame(message));
    });
  }
}
