/**
 * {@link EtcdTransport} over gRPC, through an `etcd3` client's connection pool (so TLS, auth, token refresh,
 * failover and the host circuit breakers are etcd3's), calling etcd's RPCs directly: etcd3's own Watcher and
 * Lease are not used (see watch-hub.ts and lease-keeper.ts for why). Node only.
 * @internal
 * @packageDocumentation
 */
import {
  ClientClosedError,
  type Etcd3,
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  type IKeyValue,
  type IRangeRequest,
  type IResponseHeader,
  type IWatchRequest,
  type IWatchResponse,
  isRecoverableError,
} from 'etcd3';
import type {
  CallOptions,
  EtcdErrorKind,
  EtcdHeader,
  EtcdKeyValue,
  EtcdTransport,
  WatchHandlers,
  WatchResponse,
} from './transport.js';

/** The bidirectional Watch RPC stream, as etcd3's `WatchClient.watch()` resolves it. */
interface GrpcWatchStream {
  write(req: IWatchRequest): void;
  cancel(): void;
  on(event: 'data', fn: (res: IWatchResponse) => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
  on(event: 'end', fn: () => void): unknown;
}

/** The parts of an `Etcd3` this transport calls (public fields of etcd3's `Namespace`). */
export type GrpcRoot = Pick<Etcd3, 'kv' | 'leaseClient' | 'watchClient' | 'close'>;

const DEFAULT_TIMEOUT_MS = 5000;

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function header(h: IResponseHeader | undefined): EtcdHeader {
  return { revision: String(h?.revision ?? '0'), clusterId: h?.cluster_id ? String(h.cluster_id) : '' };
}

function keyValue(kv: IKeyValue): EtcdKeyValue {
  return { key: kv.key, value: kv.value ?? Buffer.alloc(0), modRevision: String(kv.mod_revision) };
}

function callOptions(options: CallOptions | undefined): { deadline: number } {
  return { deadline: Date.now() + (options?.timeoutMs ?? DEFAULT_TIMEOUT_MS) };
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** Cancels a gRPC call, ignoring one that already ended. */
function cancel(call: { cancel(): void } | undefined): void {
  try {
    call?.cancel();
  } catch {
    // already finished
  }
}

/** Whether `err` is etcd3's open-circuit error (cockatiel's duck type, also thrown by sdkit's host breaker). */
export function isBrokenCircuit(err: unknown): boolean {
  return err instanceof Error && 'isBrokenCircuitError' in err;
}

/** What a gRPC/etcd3 error means (see {@link EtcdErrorKind}). */
export function classifyGrpcError(error: unknown): EtcdErrorKind {
  if (error instanceof ClientClosedError) return 'closed';
  if (error instanceof EtcdLeaseInvalidError) return 'lease-not-found';
  if (error instanceof EtcdPermissionDeniedError) return 'permission-denied';
  const text = error instanceof Error ? error.message : String(error);
  if (/required revision has been compacted/i.test(text)) return 'compacted';
  if (/required revision is a future revision/i.test(text)) return 'future-revision';
  if (
    error instanceof EtcdAuthenticationFailedError ||
    /authentication failed|invalid user ID or password/i.test(text)
  ) {
    return 'authentication-failed';
  }
  if (/user name is empty/i.test(text)) return 'missing-credentials';
  if (error instanceof EtcdInvalidAuthTokenError || /invalid auth token/i.test(text))
    return 'unauthenticated';
  if (isBrokenCircuit(error)) return 'circuit-open';
  if (error instanceof Error && isRecoverableError(error)) return 'unavailable';
  if (/UNAVAILABLE|DEADLINE_EXCEEDED|No connection established|connection reset/i.test(text)) {
    return 'unavailable';
  }
  return 'other';
}

function watchResponse(res: IWatchResponse): WatchResponse {
  return {
    header: header(res.header),
    created: res.created === true,
    canceled: res.canceled === true,
    cancelReason: res.cancel_reason ?? '',
    compactRevision: String(res.compact_revision ?? '0'),
    fragment: res.fragment === true,
    events: (res.events ?? []).map((ev) => ({
      type: ev.type === 'Delete' || (ev.type as unknown) === 1 ? ('delete' as const) : ('put' as const),
      kv: keyValue(ev.kv),
    })),
  };
}

/**
 * The gRPC transport over `root` (an `Etcd3`, not a namespace: keys are absolute). `close()` closes `root`.
 */
export function createGrpcTransport(root: GrpcRoot): EtcdTransport {
  let closed = false;
  return {
    kind: 'grpc',

    async range(req, options) {
      const request: IRangeRequest = { key: asBuffer(req.key), range_end: asBuffer(req.rangeEnd) };
      if (req.revision !== undefined) request.revision = req.revision;
      if (req.limit !== undefined) request.limit = req.limit;
      if (req.countOnly) request.count_only = true;
      const res = await root.kv.range(request, callOptions(options));
      return {
        header: header(res.header),
        kvs: (res.kvs ?? []).map(keyValue),
        more: res.more === true,
        count: String(res.count ?? '0'),
      };
    },

    watch(req, handlers: WatchHandlers) {
      let open = true;
      let stream: GrpcWatchStream | undefined;
      const fail = (err: unknown): void => {
        if (!open) return;
        open = false;
        cancel(stream);
        handlers.failed(asError(err));
      };
      let opened: Promise<GrpcWatchStream>;
      try {
        opened = root.watchClient.watch() as Promise<GrpcWatchStream>;
      } catch (err) {
        opened = Promise.reject(err);
      }
      opened.then((s) => {
        if (!open) {
          cancel(s);
          return;
        }
        stream = s;
        s.on('data', (res) => {
          if (open) handlers.response(watchResponse(res));
        });
        s.on('error', (err) => fail(err));
        s.on('end', () => fail(new Error('etcd ended the watch stream')));
        try {
          s.write({
            create_request: {
              key: asBuffer(req.key),
              range_end: asBuffer(req.rangeEnd),
              start_revision: req.startRevision,
              progress_notify: true,
              fragment: true,
            } as NonNullable<IWatchRequest['create_request']>,
          });
        } catch (err) {
          fail(err);
        }
      }, fail);
      return {
        close() {
          if (!open) return;
          open = false;
          cancel(stream);
        },
      };
    },

    async leaseGrant(ttlSeconds, options) {
      const res = await root.leaseClient.leaseGrant({ TTL: ttlSeconds }, callOptions(options));
      if (res.error) throw new Error(`etcd refused to grant a lease: ${res.error}`);
      return { id: String(res.ID), ttlSeconds: Number(res.TTL) || ttlSeconds };
    },

    async leaseRevoke(leaseId, options) {
      try {
        await root.leaseClient.leaseRevoke({ ID: leaseId }, callOptions(options));
      } catch (error) {
        if (!(error instanceof EtcdLeaseInvalidError)) throw error;
      }
    },

    leaseKeepAlive(leaseId, options) {
      // One short LeaseKeepAlive call per keep-alive, not one stream kept open: grpc-js keeps the process alive
      // while a call is open, and keep-alives are background upkeep (docs/architecture.md, "Process lifetime").
      return new Promise<number>((resolve, reject) => {
        let done = false;
        let call: { cancel(): void } | undefined;
        let cancelTimer: ReturnType<typeof setTimeout> | undefined;
        const finish = (outcome: () => void): void => {
          if (done) return;
          done = true;
          if (cancelTimer) clearTimeout(cancelTimer);
          options?.signal?.removeEventListener('abort', onAbort);
          cancel(call);
          outcome();
        };
        const onAbort = (): void =>
          finish(() => reject(asError(options?.signal?.reason ?? new Error('keep-alive aborted'))));
        if (options?.signal?.aborted) {
          onAbort();
          return;
        }
        options?.signal?.addEventListener('abort', onAbort, { once: true });
        if (options?.timeoutMs !== undefined) {
          cancelTimer = setTimeout(
            () =>
              finish(() =>
                reject(new Error(`etcd did not answer a keep-alive within ${options.timeoutMs} ms`)),
              ),
            options.timeoutMs,
          );
          (cancelTimer as { unref?: () => void }).unref?.();
        }
        root.leaseClient.leaseKeepAlive().then(
          (stream) => {
            call = stream;
            if (done) {
              cancel(stream);
              return;
            }
            stream.on('data', (res) => finish(() => resolve(Number(res.TTL))));
            // A cancelled call still emits 'error'; an unhandled 'error' event would crash the process.
            stream.on('error', (err) => finish(() => reject(asError(err))));
            stream.on('end', () =>
              finish(() => reject(new Error('etcd ended the keep-alive call without an answer'))),
            );
            try {
              stream.write({ ID: leaseId });
            } catch (err) {
              finish(() => reject(asError(err)));
            }
          },
          (err: unknown) => finish(() => reject(asError(err))),
        );
      });
    },

    async put(key, value, options) {
      await root.kv.put(
        {
          key: asBuffer(key),
          value: asBuffer(value),
          ...(options?.lease !== undefined ? { lease: options.lease } : {}),
        },
        callOptions(options),
      );
    },

    async deleteIfLease(key, leaseId, options) {
      const k = asBuffer(key);
      const res = await root.kv.txn(
        {
          compare: [{ key: k, target: 'Lease', result: 'Equal', lease: leaseId }],
          success: [{ request_delete_range: { key: k } }],
        },
        callOptions(options),
      );
      return res.succeeded === true;
    },

    classify: classifyGrpcError,

    close() {
      if (closed) return;
      closed = true;
      root.close();
    },
  };
}
