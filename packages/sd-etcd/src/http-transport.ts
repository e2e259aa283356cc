/**
 * {@link EtcdTransport} over etcd's HTTP/JSON gateway (`/v3/…`, etcd >= 3.4), with nothing but `fetch`,
 * `AbortController`, `TextDecoder`, `btoa` / `atob` and the injected {@link Clock}: it runs in Node, Deno, Bun and
 * Cloudflare workerd alike (no `node:*` module, no `Buffer`, no `process`).
 *
 * How the gateway is used (etcd 3.4): every call is one POST; int64s travel as decimal strings and zero
 * values are omitted (see `http-wire.ts`). A watch is one POST per watch (the gateway is not full duplex: the one
 * create request is the request body) answered by a stream of JSON lines; a keep-alive is one POST answered by
 * one line, after which the response is dropped. With auth, the token from `/v3/auth/authenticate` goes raw in the
 * `Authorization` header, and a call refused with `Unauthenticated` (the token expired) authenticates again and
 * is retried once.
 *
 * Here: the calls, their endpoint and their scope (deadline, caller's signal, close). Elsewhere: the token
 * (`http-auth.ts`), the watch (`http-watch.ts`), reading answers and making their errors (`http-answer.ts`).
 * @internal
 * @packageDocumentation
 */
import type { Clock, Logger } from '@sdkit/sd-core';
import { EtcdHttpError } from './etcd-http-error.js';
import {
  closedError,
  decoded,
  describeCall,
  errorFromBody,
  firstLine,
  parseJson,
  toEtcdError,
} from './http-answer.js';
import { HttpAuth } from './http-auth.js';
import { HttpWatch, type HttpWatchContext } from './http-watch.js';
import {
  decodeDeleteIfLease,
  decodeKeepAliveTtl,
  decodeLeaseGrant,
  decodeRange,
  decodeToken,
  deleteIfLeaseBody,
  putBody,
  rangeBody,
} from './http-wire.js';
import type {
  CallOptions,
  EtcdErrorKind,
  EtcdTransport,
  RangeRequest,
  RangeResult,
  WatchHandlers,
  WatchRequest,
  WatchStream,
} from './transport.js';

export { EtcdHttpError, type EtcdHttpErrorInit } from './etcd-http-error.js';

/** Settings of {@link createHttpTransport}. */
export interface HttpTransportOptions {
  /** etcd client URLs, `http(s)://host:port` (validated by the caller). Calls stick to one that answers. */
  readonly endpoints: readonly string[];
  /** etcd user; without it no token is sent (etcd then refuses calls if it has auth enabled). */
  readonly auth?: { readonly username: string; readonly password: string } | undefined;
  /** The `fetch` to use; default `globalThis.fetch`, looked up at each call. TLS is whatever it does for https. */
  readonly fetch?: typeof fetch | undefined;
  /** Times every deadline and the watches' idle bound. */
  readonly clock: Clock;
  /** Failovers and re-authentications are logged here (never a token or password). */
  readonly logger: Logger;
  /**
   * Watch liveness. etcd sends nothing on a watch while no key in its range changes (progress notifications come
   * every 10 minutes by default), and a stalled HTTP stream cannot be told from a quiet one, so: a watch that
   * received no bytes for `timeMs` is closed and reported `quiet()` (the caller opens a new one from its
   * revision), and a watch not answered with its `created` response within `timeoutMs` fails. A silently stalled
   * connection is thereby noticed within `timeMs + timeoutMs`. `false`: no idle bound (a stall goes unnoticed,
   * or until the runtime's fetch gives up on it), and the created-timeout is `requestTimeoutMs`.
   */
  readonly keepAlive: { readonly timeMs: number; readonly timeoutMs: number } | false;
  /** Deadline of calls that give no `timeoutMs` (and of authentication), in ms. Default 5000. */
  readonly requestTimeoutMs?: number | undefined;
}

/** Default of {@link HttpTransportOptions.requestTimeoutMs}. */
export const DEFAULT_HTTP_REQUEST_TIMEOUT_MS = 5000;

/**
 * Makes the HTTP/JSON {@link EtcdTransport}. Every call is a POST to the current endpoint; a failure classified
 * `unavailable` (no answer, timeout, etcd stopping or without leader) moves the next call to the next endpoint
 * (round robin); the failing call itself is not retried. Errors are {@link EtcdHttpError}s whose `kind` is what
 * `classify` returns. Watches report as {@link WatchHandlers} say; a watch refused at creation (the create response
 * is also canceled with an `rpc error` reason: permission denied, missing credentials…) is reported as `failed`
 * with that error classified, not as a response — except an expired token, which is renewed and the watch
 * re-opened once, unseen by the caller.
 */
export function createHttpTransport(options: HttpTransportOptions): EtcdTransport {
  return new HttpTransport(options);
}

// ---------------------------------------------------------------------------------------------------------------

type FailureWhy = 'timeout' | 'caller' | 'closed';

/** One call's cancellation: its deadline, the caller's signal and the transport's close, as one AbortSignal. */
export interface CallScope {
  readonly signal: AbortSignal;
  /** The error the call ends with once `signal` aborted (`endpoint`: where it was sent, if it was). */
  failure(endpoint: string | undefined): EtcdHttpError;
  /** Cancels the deadline (a watch, once created, is bounded by its idle timer instead). */
  disarm(): void;
  /** Ends the scope: the deadline and listeners are dropped and whatever is still open is aborted. */
  dispose(): void;
}

const NOOP = (): void => {};
const AUTHENTICATE_PATH = '/v3/auth/authenticate';

class HttpTransport implements EtcdTransport {
  readonly kind = 'http' as const;
  readonly #endpoints: readonly string[];
  /** Index of the endpoint calls go to. */
  #current = 0;
  readonly #fetch: typeof fetch | undefined;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #requestTimeoutMs: number;
  #closed = false;
  /** What `close()` must end: open calls and watches. */
  readonly #closers = new Set<() => void>();
  /** The token source; `undefined` without auth. */
  readonly #auth: HttpAuth | undefined;
  /** What the watches use of this transport. */
  readonly #watchContext: HttpWatchContext;

  constructor(options: HttpTransportOptions) {
    if (!Array.isArray(options.endpoints) || options.endpoints.length === 0) {
      throw new TypeError('createHttpTransport: endpoints must be a non-empty array');
    }
    this.#endpoints = options.endpoints.map((e) => e.replace(/\/+$/, ''));
    this.#fetch = options.fetch;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_HTTP_REQUEST_TIMEOUT_MS;
    const auth = options.auth;
    this.#auth = auth && new HttpAuth(() => this.#authenticate(auth), this.#logger);
    this.#watchContext = {
      clock: this.#clock,
      logger: this.#logger,
      keepAlive: options.keepAlive,
      requestTimeoutMs: this.#requestTimeoutMs,
      auth: this.#auth,
      closers: this.#closers,
      closed: () => this.#closed,
      scope: (path, timeoutMs, missing) => this.#scope(path, timeoutMs, undefined, missing),
      target: () => this.#target(),
      send: (endpoint, path, body, token, signal) => this.#send(endpoint, path, body, token, signal),
      failover: (index, failure) => this.#failover(index, failure),
    };
  }

  // --- the operations -------------------------------------------------------------------------------------------

  range(req: RangeRequest, options?: CallOptions): Promise<RangeResult> {
    return this.#call('/v3/kv/range', rangeBody(req), options, 'json', decodeRange);
  }

  leaseGrant(ttlSeconds: number, options?: CallOptions): Promise<{ id: string; ttlSeconds: number }> {
    return this.#call('/v3/lease/grant', { TTL: String(ttlSeconds) }, options, 'json', decodeLeaseGrant);
  }

  async leaseRevoke(leaseId: string, options?: CallOptions): Promise<void> {
    try {
      await this.#call('/v3/lease/revoke', { ID: leaseId }, options, 'json', NOOP);
    } catch (error) {
      if (!(error instanceof EtcdHttpError && error.kind === 'lease-not-found')) throw error;
    }
  }

  leaseKeepAlive(leaseId: string, options?: CallOptions): Promise<number> {
    return this.#call('/v3/lease/keepalive', { ID: leaseId }, options, 'first-line', decodeKeepAliveTtl);
  }

  async put(
    key: Uint8Array,
    value: Uint8Array,
    options?: CallOptions & { readonly lease?: string },
  ): Promise<void> {
    await this.#call('/v3/kv/put', putBody(key, value, options?.lease), options, 'json', NOOP);
  }

  deleteIfLease(key: Uint8Array, leaseId: string, options?: CallOptions): Promise<boolean> {
    return this.#call('/v3/kv/txn', deleteIfLeaseBody(key, leaseId), options, 'json', decodeDeleteIfLease);
  }

  watch(req: WatchRequest, handlers: WatchHandlers): WatchStream {
    return new HttpWatch(this.#watchContext, req, handlers);
  }

  classify(error: unknown): EtcdErrorKind {
    return error instanceof EtcdHttpError ? error.kind : 'other';
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#auth?.close();
    const closers = [...this.#closers];
    this.#closers.clear();
    for (const close of closers) close();
  }

  // --- unary calls ----------------------------------------------------------------------------------------------

  /** One call: authenticates if needed, POSTs, and on `Unauthenticated` authenticates again and retries once. */
  async #call<T>(
    path: string,
    body: object,
    options: CallOptions | undefined,
    read: 'json' | 'first-line',
    decode: (value: unknown) => T,
  ): Promise<T> {
    if (this.#closed) throw closedError(path);
    const scope = this.#scope(path, options?.timeoutMs ?? this.#requestTimeoutMs, options?.signal);
    try {
      let token = await this.#auth?.tokenFor(scope);
      try {
        return await this.#post(path, body, token, scope, read, decode);
      } catch (error) {
        if (token === undefined || !(error instanceof EtcdHttpError) || error.kind !== 'unauthenticated') {
          throw error;
        }
        this.#auth?.drop(token, path);
        token = await this.#auth?.tokenFor(scope);
        return await this.#post(path, body, token, scope, read, decode);
      }
    } finally {
      scope.dispose();
    }
  }

  /** The authentication of {@link HttpAuth}: one call, without a token, bounded by `requestTimeoutMs`. */
  async #authenticate(auth: { readonly username: string; readonly password: string }): Promise<string> {
    const scope = this.#scope(AUTHENTICATE_PATH, this.#requestTimeoutMs, undefined);
    try {
      const body = { name: auth.username, password: auth.password };
      const subject = ` (user ${JSON.stringify(auth.username)})`;
      return await this.#post(AUTHENTICATE_PATH, body, undefined, scope, 'json', decodeToken, subject);
    } finally {
      scope.dispose();
    }
  }

  /** POSTs `body` to the current endpoint and decodes the answer (the whole body, or its first JSON line). */
  async #post<T>(
    path: string,
    body: object,
    token: string | undefined,
    scope: CallScope,
    read: 'json' | 'first-line',
    decode: (value: unknown) => T,
    subject = '',
  ): Promise<T> {
    const { index, endpoint } = this.#target();
    const where = `etcd ${endpoint}: POST ${path}${subject}`;
    try {
      const res = await this.#send(endpoint, path, body, token, scope.signal);
      if (!res.ok) throw errorFromBody(res.status, await res.text(), endpoint, path, where);
      let value: unknown;
      if (read === 'json') {
        value = parseJson(await res.text(), endpoint, path, where);
      } else {
        value = await firstLine(res, endpoint, path, where);
      }
      return decoded(decode, value, endpoint, path, where);
    } catch (error) {
      const failure = scope.signal.aborted
        ? scope.failure(endpoint)
        : toEtcdError(error, endpoint, path, where);
      if (failure.kind === 'unavailable') this.#failover(index, failure);
      throw failure;
    }
  }

  /** The endpoint calls go to now, and its index. */
  #target(): { readonly index: number; readonly endpoint: string } {
    const index = this.#current;
    return { index, endpoint: this.#endpoints[index]! };
  }

  #send(
    endpoint: string,
    path: string,
    body: object,
    token: string | undefined,
    signal: AbortSignal,
  ): Promise<Response> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token !== undefined) headers.authorization = token; // raw, not "Bearer …": etcd's gateway wants it so
    const fetchFn = this.#fetch ?? globalThis.fetch;
    return fetchFn(`${endpoint}${path}`, { method: 'POST', headers, body: JSON.stringify(body), signal });
  }

  /** After an `unavailable` failure at `index`: the next call goes to the next endpoint (once per failure). */
  #failover(index: number, failure: EtcdHttpError): void {
    if (this.#endpoints.length < 2 || this.#current !== index || this.#closed) return;
    this.#current = (index + 1) % this.#endpoints.length;
    this.#logger.warn(
      { endpoint: this.#endpoints[index], next: this.#endpoints[this.#current], err: failure.message },
      'etcd endpoint unavailable; the next call goes to the next endpoint',
    );
  }

  // --- call scopes ----------------------------------------------------------------------------------------------

  /**
   * The scope of one call of `path`: it ends at `timeoutMs` (unless disarmed; its error then says `<missing>
   * within <timeoutMs> ms`), when `callerSignal` aborts, or when the transport closes.
   */
  #scope(
    path: string,
    timeoutMs: number,
    callerSignal: AbortSignal | undefined,
    missing = 'no answer',
  ): CallScope {
    const controller = new AbortController();
    let why: FailureWhy | undefined;
    const abort = (reason: FailureWhy): void => {
      if (why !== undefined) return;
      why = reason;
      controller.abort();
    };
    let disarm =
      Number.isFinite(timeoutMs) && timeoutMs > 0
        ? this.#clock.setTimeout(() => abort('timeout'), timeoutMs)
        : NOOP;
    const onCallerAbort = (): void => abort('caller');
    if (callerSignal?.aborted) abort('caller');
    else callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
    const onClose = (): void => abort('closed');
    this.#closers.add(onClose);
    return {
      signal: controller.signal,
      failure: (endpoint) => {
        const init = { endpoint, path };
        switch (why) {
          case 'closed':
            return closedError(path);
          case 'caller':
            return new EtcdHttpError(`${describeCall(endpoint, path)}: aborted by the caller`, {
              ...init,
              kind: 'other',
              cause: callerSignal?.reason,
            });
          default:
            return new EtcdHttpError(`${describeCall(endpoint, path)}: ${missing} within ${timeoutMs} ms`, {
              ...init,
              kind: 'unavailable',
            });
        }
      },
      disarm: () => {
        disarm();
        disarm = NOOP;
      },
      dispose: () => {
        disarm();
        callerSignal?.removeEventListener('abort', onCallerAbort);
        this.#closers.delete(onClose);
        if (!controller.signal.aborted) controller.abort(); // drops a response still streaming
      },
    };
  }
}
