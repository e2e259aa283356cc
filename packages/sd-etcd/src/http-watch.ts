/**
 * One watch over etcd's HTTP gateway. The gateway is not full duplex: a watch is one POST to `/v3/watch` whose
 * body is the one create request, answered by a stream of JSON lines (one watch response each) that etcd never
 * ends while the watch lives. Portable.
 * @internal
 * @packageDocumentation
 */
import type { Clock, Logger } from '@sdkit/sd-core';
import { EtcdHttpError } from './etcd-http-error.js';
import {
  bodyOf,
  closedError,
  decoded,
  errorFromBody,
  messageOf,
  resultOf,
  toEtcdError,
  watchRefusal,
} from './http-answer.js';
import type { HttpAuth } from './http-auth.js';
import type { CallScope, HttpTransportOptions } from './http-transport.js';
import { decodeCancelReason, decodeWatchResponse, watchBody } from './http-wire.js';
import { NdjsonReader } from './ndjson-reader.js';
import type { WatchHandlers, WatchRequest, WatchResponse, WatchStream } from './transport.js';

/** The gateway path of watches. */
const WATCH_PATH = '/v3/watch';

/** What an {@link HttpWatch} uses of its transport: the machinery of its unary calls. */
export interface HttpWatchContext {
  readonly clock: Clock;
  /** Failures are logged here at debug level, handlers that throw at error level. */
  readonly logger: Logger;
  /** The idle bound (`timeMs`) and created-timeout (`timeoutMs`); `false`: no idle bound. */
  readonly keepAlive: HttpTransportOptions['keepAlive'];
  /** The created-timeout without `keepAlive`. */
  readonly requestTimeoutMs: number;
  /** The token source; `undefined` without auth. */
  readonly auth: HttpAuth | undefined;
  /** What the transport's close must end; a watch is in it while it runs. */
  readonly closers: Set<() => void>;
  /** Whether the transport is closed. */
  closed(): boolean;
  /** A scope ending at `timeoutMs` (its error then says `<missing> within <timeoutMs> ms`) or at close. */
  scope(path: string, timeoutMs: number, missing: string): CallScope;
  /** The endpoint calls go to now, and its index (for {@link HttpWatchContext.failover}). */
  target(): { readonly index: number; readonly endpoint: string };
  /** POSTs `body` as JSON, with the token if any. */
  send(
    endpoint: string,
    path: string,
    body: object,
    token: string | undefined,
    signal: AbortSignal,
  ): Promise<Response>;
  /** Reports an `unavailable` failure of the endpoint at `index`: the next call goes to the next one. */
  failover(index: number, failure: EtcdHttpError): void;
}

const NOOP = (): void => {};

/**
 * A watch, reporting to its {@link WatchHandlers} asynchronously (never from inside the constructor):
 * - every response etcd sends, as it sent it;
 * - `failed` when the stream fails or ends, when etcd refuses the watch at creation (its create response
 *   canceled with an `rpc error` reason), or when no create response came within the created-timeout; except
 *   a refusal for an expired token, after which the token is renewed and the watch re-opened once, unseen;
 * - `quiet` when no byte came for `keepAlive.timeMs` once created: the stream is closed, nothing is known to be
 *   wrong.
 * A failure classified `unavailable` moves the transport's next call to the next endpoint. {@link close} and the
 * transport's close end the watch silently. A handler that throws is logged, never taken for a failure.
 */
export class HttpWatch implements WatchStream {
  readonly #context: HttpWatchContext;
  readonly #handlers: WatchHandlers;
  /** Closed, failed or quiet: nothing more is reported. */
  #done = false;
  /** Aborts the current attempt's request, if any. */
  #abort = NOOP;
  #cancelIdle = NOOP;

  constructor(context: HttpWatchContext, req: WatchRequest, handlers: WatchHandlers) {
    this.#context = context;
    this.#handlers = handlers;
    if (context.closed()) {
      const error = closedError(WATCH_PATH);
      void Promise.resolve().then(() => {
        if (this.#done) return;
        this.#done = true;
        this.#report(() => handlers.failed(error), 'failed');
      });
      return;
    }
    context.closers.add(this.close); // the transport's close(): the watch ends silently
    void this.#run(req);
  }

  /** Ends the watch; no handler is called afterwards. Idempotent; callable unbound. */
  readonly close = (): void => {
    if (this.#done) return;
    this.#done = true;
    this.#context.closers.delete(this.close);
    this.#cancelIdle();
    this.#abort();
  };

  async #run(req: WatchRequest): Promise<void> {
    await Promise.resolve(); // handlers are never called from inside the constructor
    // A watch created with an expired token is refused (created + canceled, Unauthenticated): authenticate
    // again and open it once more before the caller hears anything.
    for (let attempt = 1; attempt <= 2; attempt++) {
      const again = await this.#attempt(req, attempt === 1);
      if (!again || this.#done) return;
    }
  }

  #fail(error: EtcdHttpError): void {
    if (this.#done) return;
    this.close();
    this.#context.logger.debug({ err: error.message, kind: error.kind }, 'etcd watch failed');
    this.#report(() => this.#handlers.failed(error), 'failed');
  }

  #quiet(): void {
    if (this.#done) return;
    this.close();
    this.#report(() => this.#handlers.quiet(), 'quiet');
  }

  /** One POST of the watch; resolves `true` if the watch must be re-opened after a renewed authentication. */
  async #attempt(req: WatchRequest, mayRenewToken: boolean): Promise<boolean> {
    const { clock, keepAlive, auth } = this.#context;
    const createdTimeoutMs = keepAlive ? keepAlive.timeoutMs : this.#context.requestTimeoutMs;
    const scope = this.#context.scope(WATCH_PATH, createdTimeoutMs, 'no watch created');
    this.#abort = scope.dispose;
    let endpoint: string | undefined;
    let index = -1;
    let token: string | undefined;
    try {
      token = await auth?.tokenFor(scope);
      if (this.#done) return false;
      ({ index, endpoint } = this.#context.target());
      const where = `etcd ${endpoint}: POST ${WATCH_PATH}`;
      const res = await this.#context.send(endpoint, WATCH_PATH, watchBody(req), token, scope.signal);
      if (!res.ok) throw errorFromBody(res.status, await res.text(), endpoint, WATCH_PATH, where);
      const reader = bodyOf(res, endpoint, WATCH_PATH, where).getReader();
      const lines = new NdjsonReader();
      let created = false;
      let lastByteAt = clock.now();
      const armIdle = (ms: number): void => {
        if (!keepAlive) return;
        const timeMs = keepAlive.timeMs;
        this.#cancelIdle = clock.setTimeout(() => {
          const idle = clock.now() - lastByteAt;
          if (idle >= timeMs) this.#quiet();
          else armIdle(timeMs - idle);
        }, ms);
      };
      const onLine = (line: string): void => {
        const result = resultOf(line, endpoint!, WATCH_PATH, where);
        const response: WatchResponse = decoded(decodeWatchResponse, result, endpoint!, WATCH_PATH, where);
        if (!created && response.created) {
          created = true;
          if (response.canceled) {
            const refused = decodeCancelReason(response.cancelReason);
            if (refused) throw watchRefusal(refused, endpoint!, WATCH_PATH, where);
          }
          scope.disarm();
          armIdle(keepAlive ? keepAlive.timeMs : 0);
        }
        this.#report(() => this.#handlers.response(response), 'response');
      };
      for (;;) {
        const { done, value } = await reader.read();
        if (this.#done) return false;
        if (done) break;
        lastByteAt = clock.now();
        for (const line of lines.push(value)) {
          onLine(line);
          if (this.#done) return false;
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
      if (this.#done) return false;
      const failure = scope.signal.aborted
        ? scope.failure(endpoint)
        : toEtcdError(error, endpoint, WATCH_PATH, `etcd ${endpoint}: POST ${WATCH_PATH}`);
      if (failure.kind === 'unavailable' && endpoint !== undefined) this.#context.failover(index, failure);
      if (failure.kind === 'unauthenticated' && mayRenewToken && token !== undefined) {
        auth?.drop(token, WATCH_PATH);
        return true;
      }
      this.#fail(failure);
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
      this.#context.logger.error({ err: messageOf(error) }, `etcd watch handler ${which}() threw`);
    }
  }
}
