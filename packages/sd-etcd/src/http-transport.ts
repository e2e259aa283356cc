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
 * @internal
 * @packageDocumentation
 */
import type { Clock, Logger } from '@sdkit/sd-core';
import { EtcdHttpError, kindOf } from './etcd-http-error.js';
import {
  decodeCancelReason,
  decodeDeleteIfLease,
  decodeErrorBody,
  decodeKeepAliveTtl,
  decodeLeaseGrant,
  decodeRange,
  decodeStreamError,
  decodeToken,
  decodeWatchResponse,
  deleteIfLeaseBody,
  putBody,
  rangeBody,
  watchBody,
} from './http-wire.js';
import { NdjsonReader } from './ndjson-reader.js';
import type {
  CallOptions,
  EtcdErrorKind,
  EtcdTransport,
  RangeRequest,
  RangeResult,
  WatchHandlers,
  WatchRequest,
  WatchResponse,
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
interface CallScope {
  readonly signal: AbortSignal;
  /** The error the call ends with once `signal` aborted (`endpoint`: where it was sent, if it was). */
  failure(endpoint: string | undefined): EtcdHttpError;
  /** Cancels the deadline (a watch, once created, is bounded by its idle timer instead). */
  disarm(): void;
  /** Ends the scope: the deadline and listeners are dropped and whatever is still open is aborted. */
  dispose(): void;
}

/** Per-watch state shared by its attempts. */
interface WatchState {
  done: boolean;
  /** Aborts the current attempt's request, if any. */
  abort: () => void;
  cancelIdle: () => void;
}

const NOOP = (): void => {};
const WATCH_PATH = '/v3/watch';

class HttpTransport implements EtcdTransport {
  readonly kind = 'http' as const;
  readonly #endpoints: readonly string[];
  /** Index of the endpoint calls go to. */
  #current = 0;
  readonly #auth: { readonly username: string; readonly password: string } | undefined;
  readonly #fetch: typeof fetch | undefined;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #keepAlive: { readonly timeMs: number; readonly timeoutMs: number } | false;
  readonly #requestTimeoutMs: number;
  #closed = false;
  /** What `close()` must end: open calls and watches. */
  readonly #closers = new Set<() => void>();
  #token: string | undefined;
  #authenticating: Promise<string> | undefined;

  constructor(options: HttpTransportOptions) {
    if (!Array.isArray(options.endpoints) || options.endpoints.length === 0) {
      throw new TypeError('createHttpTransport: endpoints must be a non-empty array');
    }
    this.#endpoints = options.endpoints.map((e) => e.replace(/\/+$/, ''));
    this.#auth = options.auth;
    this.#fetch = options.fetch;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#keepAlive = options.keepAlive;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_HTTP_REQUEST_TIMEOUT_MS;
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

  classify(error: unknown): EtcdErrorKind {
    return error instanceof EtcdHttpError ? error.kind : 'other';
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#token = undefined;
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
    if (this.#closed) throw this.#closedError(path);
    const scope = this.#scope(path, options?.timeoutMs ?? this.#requestTimeoutMs, options?.signal);
    try {
      let token = await this.#tokenFor(scope);
      try {
        return await this.#post(path, body, token, scope, read, decode);
      } catch (error) {
        if (token === undefined || !(error instanceof EtcdHttpError) || error.kind !== 'unauthenticated') {
          throw error;
        }
        this.#dropToken(token, path);
        token = await this.#tokenFor(scope);
        return await this.#post(path, body, token, scope, read, decode);
      }
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
    const index = this.#current;
    const endpoint = this.#endpoints[index]!;
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
      try {
        return decode(value);
      } catch (error) {
        throw new EtcdHttpError(`${where}: unexpected answer: ${messageOf(error)}`, {
          kind: 'other',
          endpoint,
          path,
          cause: error,
        });
      }
    } catch (error) {
      const failure = scope.signal.aborted
        ? scope.failure(endpoint)
        : toEtcdError(error, endpoint, path, where);
      if (failure.kind === 'unavailable') this.#failover(index, failure);
      throw failure;
    }
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

  #scope(path: string, timeoutMs: number, callerSignal: AbortSignal | undefined): CallScope {
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
            return this.#closedError(path);
          case 'caller':
            return new EtcdHttpError(`${describeCall(endpoint, path)}: aborted by the caller`, {
              ...init,
              kind: 'other',
              cause: callerSignal?.reason,
            });
          default: {
            const what = path === WATCH_PATH ? 'no watch created' : 'no answer';
            return new EtcdHttpError(`${describeCall(endpoint, path)}: ${what} within ${timeoutMs} ms`, {
              ...init,
              kind: 'unavailable',
            });
          }
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

  #closedError(path: string): EtcdHttpError {
    return new EtcdHttpError(`etcd client closed: POST ${path} not done`, { kind: 'closed', path });
  }

  // --- auth -----------------------------------------------------------------------------------------------------

  /** The token to send (undefined without auth): the current one, or one authentication shared by all callers. */
  async #tokenFor(scope: CallScope): Promise<string | undefined> {
    if (this.#auth === undefined) return undefined;
    if (this.#token !== undefined) return this.#token;
    this.#authenticating ??= this.#authenticate(this.#auth);
    const pending = this.#authenticating;
    if (scope.signal.aborted) throw scope.failure(undefined);
    return await new Promise<string>((resolve, reject) => {
      const onAbort = (): void => reject(scope.failure(undefined));
      scope.signal.addEventListener('abort', onAbort, { once: true });
      pending.then(
        (token) => {
          scope.signal.removeEventListener('abort', onAbort);
          resolve(token);
        },
        (error: unknown) => {
          scope.signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      );
    });
  }

  async #authenticate(auth: { readonly username: string; readonly password: string }): Promise<string> {
    const path = '/v3/auth/authenticate';
    const scope = this.#scope(path, this.#requestTimeoutMs, undefined);
    try {
      const body = { name: auth.username, password: auth.password };
      const subject = ` (user ${JSON.stringify(auth.username)})`;
      const token = await this.#post(path, body, undefined, scope, 'json', decodeToken, subject);
      if (!this.#closed) this.#token = token;
      return token;
    } finally {
      scope.dispose();
      this.#authenticating = undefined;
    }
  }

  /** Forgets `token` (etcd refused it), unless another call already replaced it. */
  #dropToken(token: string, path: string): void {
    if (this.#token !== token) return;
    this.#token = undefined;
    this.#logger.debug({ path }, 'etcd refused the auth token (expired); authenticating again');
  }

  // --- watch ----------------------------------------------------------------------------------------------------

  watch(req: WatchRequest, handlers: WatchHandlers): WatchStream {
    const state: WatchState = { done: false, abort: NOOP, cancelIdle: NOOP };
    const stop = (): void => {
      if (state.done) return;
      state.done = true;
      this.#closers.delete(stop);
      state.cancelIdle();
      state.abort();
    };
    const stream: WatchStream = { close: stop };
    if (this.#closed) {
      const error = this.#closedError(WATCH_PATH);
      void Promise.resolve().then(() => {
        if (state.done) return;
        state.done = true;
        this.#report(() => handlers.failed(error), 'failed');
      });
      return stream;
    }
    this.#closers.add(stop); // close(): the watch ends silently
    void this.#runWatch(req, handlers, state, stop);
    return stream;
  }

  async #runWatch(
    req: WatchRequest,
    handlers: WatchHandlers,
    state: WatchState,
    stop: () => void,
  ): Promise<void> {
    await Promise.resolve(); // handlers are never called from inside watch()
    const fail = (error: EtcdHttpError): void => {
      if (state.done) return;
      stop();
      this.#logger.debug({ err: error.message, kind: error.kind }, 'etcd watch failed');
      this.#report(() => handlers.failed(error), 'failed');
    };
    const quiet = (): void => {
      if (state.done) return;
      stop();
      this.#report(() => handlers.quiet(), 'quiet');
    };
    // A watch created with an expired token is refused (created + canceled, Unauthenticated): authenticate
    // again and open it once more before the caller hears anything.
    for (let attempt = 1; attempt <= 2; attempt++) {
      const again = await this.#watchAttempt(req, handlers, state, fail, quiet, attempt === 1);
      if (!again || state.done) return;
    }
  }

  /** One POST of a watch; resolves `true` if the watch must be re-opened after a renewed authentication. */
  async #watchAttempt(
    req: WatchRequest,
    handlers: WatchHandlers,
    state: WatchState,
    fail: (error: EtcdHttpError) => void,
    quiet: () => void,
    mayRenewToken: boolean,
  ): Promise<boolean> {
    const createdTimeoutMs = this.#keepAlive ? this.#keepAlive.timeoutMs : this.#requestTimeoutMs;
    const scope = this.#scope(WATCH_PATH, createdTimeoutMs, undefined);
    state.abort = scope.dispose;
    let endpoint: string | undefined;
    let index = -1;
    let token: string | undefined;
    try {
      token = await this.#tokenFor(scope);
      if (state.done) return false;
      index = this.#current;
      endpoint = this.#endpoints[index]!;
      const where = `etcd ${endpoint}: POST ${WATCH_PATH}`;
      const res = await this.#send(endpoint, WATCH_PATH, watchBody(req), token, scope.signal);
      if (!res.ok) throw errorFromBody(res.status, await res.text(), endpoint, WATCH_PATH, where);
      if (!res.body) {
        throw new EtcdHttpError(`${where}: answer without a body`, {
          kind: 'other',
          endpoint,
          path: WATCH_PATH,
        });
      }
      const reader = res.body.getReader();
      const lines = new NdjsonReader();
      let created = false;
      let lastByteAt = this.#clock.now();
      const armIdle = (ms: number): void => {
        if (!this.#keepAlive) return;
        const timeMs = this.#keepAlive.timeMs;
        state.cancelIdle = this.#clock.setTimeout(() => {
          const idle = this.#clock.now() - lastByteAt;
          if (idle >= timeMs) quiet();
          else armIdle(timeMs - idle);
        }, ms);
      };
      const onLine = (line: string): void => {
        const message = parseJson(line, endpoint!, WATCH_PATH, where) as Record<string, unknown>;
        if (message.error !== undefined) throw streamFailure(message.error, endpoint!, WATCH_PATH, where);
        let res: WatchResponse;
        try {
          res = decodeWatchResponse(message.result);
        } catch (error) {
          throw new EtcdHttpError(`${where}: unexpected answer: ${messageOf(error)}`, {
            kind: 'other',
            endpoint,
            path: WATCH_PATH,
            cause: error,
          });
        }
        if (!created && res.created) {
          created = true;
          if (res.canceled) {
            const refused = decodeCancelReason(res.cancelReason);
            if (refused) {
              const kind = kindOf(refused.code, undefined, refused.message);
              throw new EtcdHttpError(
                `${where}: etcd refused the watch: ${refused.message} (gRPC code ${refused.code})${hint(kind)}`,
                { kind, code: refused.code, etcdMessage: refused.message, endpoint, path: WATCH_PATH },
              );
            }
          }
          scope.disarm();
          armIdle(this.#keepAlive ? this.#keepAlive.timeMs : 0);
        }
        this.#report(() => handlers.response(res), 'response');
      };
      for (;;) {
        const { done, value } = await reader.read();
        if (state.done) return false;
        if (done) break;
        lastByteAt = this.#clock.now();
        for (const line of lines.push(value)) {
          onLine(line);
          if (state.done) return false;
        }
      }
      const last = lines.end();
      if (last !== undefined) onLine(last);
      throw new EtcdHttpError(`${where}: etcd ended the watch stream`, {
        kind: 'unavailable',
        endpoint,
        path: WATCH_PATH,
      });
    } catch (error) {
      if (state.done) return false;
      const failure = scope.signal.aborted
        ? scope.failure(endpoint)
        : toEtcdError(error, endpoint, WATCH_PATH, `etcd ${endpoint}: POST ${WATCH_PATH}`);
      if (failure.kind === 'unavailable' && endpoint !== undefined) this.#failover(index, failure);
      if (failure.kind === 'unauthenticated' && mayRenewToken && token !== undefined) {
        this.#dropToken(token, WATCH_PATH);
        return true;
      }
      fail(failure);
      return false;
    } finally {
      scope.dispose();
    }
  }

  /** Calls a handler; one that throws is logged, never taken for a failure of the stream. */
  #report(call: () => void, which: string): void {
    try {
      call();
    } catch (error) {
      this.#logger.error({ err: messageOf(error) }, `etcd watch handler ${which}() threw`);
    }
  }
}

// --- answers and errors ---------------------------------------------------------------------------------------

function describeCall(endpoint: string | undefined, path: string): string {
  return `etcd ${endpoint ?? '(not sent)'}: POST ${path}`;
}

/** What a person can do about errors of some kinds. */
function hint(kind: EtcdErrorKind): string {
  switch (kind) {
    case 'missing-credentials':
      return '; etcd has authentication enabled: give a username and password';
    case 'authentication-failed':
      return '; wrong username or password';
    case 'permission-denied':
      return "; the user's roles do not allow this";
    default:
      return '';
  }
}

/** The error of a failed unary answer (status >= 300) from its body. */
function errorFromBody(
  status: number,
  text: string,
  endpoint: string,
  path: string,
  where: string,
): EtcdHttpError {
  const { code, message } = decodeErrorBody(text);
  const kind = kindOf(code, status, message);
  const codes = code === undefined ? `HTTP ${status}` : `gRPC code ${code}, HTTP ${status}`;
  return new EtcdHttpError(`${where}: ${message ?? 'no message'} (${codes})${hint(kind)}`, {
    kind,
    code,
    status,
    etcdMessage: message,
    endpoint,
    path,
  });
}

/** The error of a `{"error":{…}}` line in a stream (e.g. `transport is closing` when etcd shuts down). */
function streamFailure(value: unknown, endpoint: string, path: string, where: string): EtcdHttpError {
  const { code, message, httpCode } = decodeStreamError(value);
  const kind = kindOf(code, httpCode, message);
  const codes = code === undefined ? '' : ` (gRPC code ${code})`;
  return new EtcdHttpError(
    `${where}: etcd ended the stream: ${message ?? 'no message'}${codes}${hint(kind)}`,
    {
      kind,
      code,
      status: undefined,
      etcdMessage: message,
      endpoint,
      path,
    },
  );
}

function parseJson(text: string, endpoint: string, path: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const shown = text.length > 200 ? `${text.slice(0, 200)}…` : text;
    throw new EtcdHttpError(`${where}: answer is not JSON: ${JSON.stringify(shown)}`, {
      kind: 'other',
      endpoint,
      path,
      cause: error,
    });
  }
}

/** The `result` of the first JSON line of a streamed answer; the rest of the answer is dropped. */
async function firstLine(res: Response, endpoint: string, path: string, where: string): Promise<unknown> {
  if (!res.body)
    throw new EtcdHttpError(`${where}: answer without a body`, { kind: 'other', endpoint, path });
  const reader = res.body.getReader();
  const lines = new NdjsonReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      const line = done ? lines.end() : lines.push(value)[0];
      if (line !== undefined) {
        const message = parseJson(line, endpoint, path, where) as Record<string, unknown>;
        if (message.error !== undefined) throw streamFailure(message.error, endpoint, path, where);
        return message.result;
      }
      if (done) {
        throw new EtcdHttpError(`${where}: etcd ended the answer without a message`, {
          kind: 'unavailable',
          endpoint,
          path,
        });
      }
    }
  } finally {
    reader.cancel().catch(NOOP);
  }
}

/** Any failure of a call as an {@link EtcdHttpError}: anything `fetch` or a body read threw means no answer. */
function toEtcdError(
  error: unknown,
  endpoint: string | undefined,
  path: string,
  where: string,
): EtcdHttpError {
  if (error instanceof EtcdHttpError) return error;
  const detail = describeFetchError(error);
  return new EtcdHttpError(`${endpoint === undefined ? describeCall(endpoint, path) : where}: ${detail}`, {
    kind: 'unavailable',
    endpoint,
    path,
    cause: error,
  });
}

/** `fetch failed (connect ECONNREFUSED 127.0.0.1:2379)`: the error and what its causes say. */
function describeFetchError(error: unknown): string {
  const parts: string[] = [];
  let e: unknown = error;
  for (let depth = 0; depth < 4 && e !== undefined && e !== null; depth++) {
    const text = messageOf(e);
    if (text !== '' && !parts.includes(text)) parts.push(text);
    e = typeof e === 'object' ? (e as { cause?: unknown }).cause : undefined;
  }
  if (parts.length === 0) return 'no answer';
  return parts.length === 1 ? parts[0]! : `${parts[0]} (${parts.slice(1).join(': ')})`;
}

/** A one-line text for any thrown value: its message, else its code, else the messages of an AggregateError. */
function messageOf(error: unknown): string {
  if (typeof error !== 'object' || error === null) return String(error);
  const e = error as { message?: unknown; code?: unknown; errors?: unknown };
  if (typeof e.message === 'string' && e.message !== '') return e.message;
  if (Array.isArray(e.errors) && e.errors.length > 0) return e.errors.map(messageOf).join('; ');
  if (typeof e.code === 'string') return e.code;
  return String(error);
}
