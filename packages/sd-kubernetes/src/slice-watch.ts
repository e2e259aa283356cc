/**
 * The list-and-watch protocol behind `KubernetesInstancer`, for one Service's EndpointSlices: a paginated list,
 * then a watch from its resourceVersion with bookmarks, resumed from the last resourceVersion seen whenever it
 * ends, a fresh list after `410 Gone`, and retries with backoff while the API server fails. What the API server
 * sends, and whether it is failing, goes to a {@link SliceWatchListener}.
 * @internal
 * @module
 */
import type { IncomingMessage } from 'node:http';
import type { Backoff, SourceTelemetry } from '@sdkit/sd-core';
import { errorText } from './describe-value.js';
import type { EndpointSlice, SliceContribution } from './endpoint-slice.js';
import { KubernetesWatchError } from './errors.js';
import { parseJson } from './parse-json.js';
import { readBounded } from './read-bounded.js';
import { readWatchStream } from './read-watch-stream.js';
import { IMMEDIATE_RELISTS, listSlices, type SliceList, type SliceListSettings } from './slice-list.js';
import {
  failureMessage,
  isGone,
  type KubeStatus,
  parseStatus,
  retryAfterMs,
  type SliceRequest,
  statusError,
} from './status-error.js';

/**
 * What a {@link SliceWatch} tells its owner. Calls are synchronous and in order. `reset`, `change` and `delete`
 * hand over what the API server sent; `healthy` follows every good answer (a list, each batch of watch events
 * read together, a resumed watch that stayed open) and is when to publish everything handed over since the last
 * one: each batch thus becomes at most one event. Nothing is called after {@link SliceWatch.stop}.
 */
export interface SliceWatchListener {
  /**
   * A fresh list, complete at `resourceVersion`: `slices` (name → slice, the listener's to keep) is every slice of
   * the Service, replacing everything known before (apply it as a diff). `healthy` follows.
   */
  reset(slices: ReadonlyMap<string, SliceContribution>, resourceVersion: string | undefined): void;
  /** A watch event added or modified this slice. */
  change(slice: SliceContribution): void;
  /** A watch event deleted the slice of this name. */
  delete(name: string): void;
  /** The API server answered well; any error is over. Publish what was handed over since the last call. */
  healthy(): void;
  /**
   * The list or watch is failing (keep the last set); the watch keeps retrying. Reported once per failure, and
   * again when its message changes.
   */
  error(error: KubernetesWatchError): void;
}

/** What a {@link SliceWatch} follows, and how. */
export interface SliceWatchSettings extends SliceListSettings {
  /** The Service's name. */
  readonly service: string;
  /** Retry timing while the API server fails. */
  readonly backoff: Backoff;
  /** `timeoutSeconds` of each watch request (each asks for a random time between 80 % and 100 % of it). */
  readonly watchTimeoutSeconds: number;
  /** A watch that sends nothing for this long is taken for dead and resumed. */
  readonly idleTimeoutMs: number;
  /** Counts relists and reconnects (`sdkit.source.resyncs`, `sdkit.source.reconnects`). */
  readonly telemetry: SourceTelemetry;
}

/**
 * A watch resumed after a failure is taken as healthy (the error cleared) at its first event, or after this long
 * without an error event: an API server refuses a too-old resourceVersion at once (410, or an ERROR event).
 */
const RESUME_CONFIRM_MS = 1000;

type Phase = 'listing' | 'watching' | 'waiting' | 'stopped';

interface WatchEvent {
  readonly type?: string;
  readonly object?: EndpointSlice & KubeStatus;
}

/**
 * Lists and watches the EndpointSlices labelled `kubernetes.io/service-name=<service>` until {@link stop}:
 * - a list paginated with `limit`/`continue` (started over, at most twice at once, when a continue token
 *   expires), then a watch from the list's resourceVersion with bookmarks;
 * - when a watch ends (the server's `timeoutSeconds`, a network error, nothing sent for `idleTimeoutMs`) it
 *   resumes from the last resourceVersion seen, of objects or bookmarks; one that ends at once having sent
 *   nothing counts as a failure;
 * - `410 Gone` (as a status or an ERROR event) means a fresh list, at once for the first two in a row;
 * - any other failure is reported (a 401 also drops the cached token) and retried after the backoff delay, at
 *   least the server's `Retry-After`, forever. The first good answer ends it: a list, an event on a resumed watch,
 *   or a resumed watch that stayed open for a second.
 */
export class SliceWatch {
  readonly #settings: SliceWatchSettings;
  readonly #listener: SliceWatchListener;
  readonly #basePath: string;

  #phase: Phase = 'waiting';
  /** Bumped by every new request, retry and stop: callbacks of an older generation do nothing. */
  #generation = 0;
  #abort: AbortController | undefined;
  #cancelTimer: (() => void) | undefined;
  #cancelIdle: (() => void) | undefined;
  #cancelConfirm: (() => void) | undefined;
  /** The last resourceVersion seen: the list's, then each event's and bookmark's. */
  #resourceVersion: string | undefined;
  #listed = false;
  #needList = true;
  #attempt = 0;
  #relists = 0;
  /** The list or watch failure reported last, until a good answer. */
  #error: KubernetesWatchError | undefined;

  constructor(settings: SliceWatchSettings, listener: SliceWatchListener) {
    this.#settings = settings;
    this.#listener = listener;
    this.#basePath =
      `/apis/discovery.k8s.io/v1/namespaces/${settings.namespace}/endpointslices` +
      `?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${settings.service}`)}`;
  }

  /** Starts with the first list. Called once. */
  start(): void {
    void this.#list();
  }

  /** Ends the list or watch request in flight and every timer; the listener hears nothing more. Idempotent. */
  stop(): void {
    if (this.#phase === 'stopped') return;
    this.#begin('stopped');
  }

  // --- requests ---------------------------------------------------------------------------------------------

  /** Starts a new phase: everything of the previous one (request, timers) ends. Returns its generation. */
  #begin(phase: Phase): number {
    this.#generation++;
    this.#abort?.abort();
    this.#abort = phase === 'listing' || phase === 'watching' ? new AbortController() : undefined;
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    this.#cancelIdle?.();
    this.#cancelIdle = undefined;
    this.#cancelConfirm?.();
    this.#cancelConfirm = undefined;
    this.#phase = phase;
    return this.#generation;
  }

  async #list(): Promise<void> {
    const gen = this.#begin('listing');
    let list: SliceList | undefined;
    try {
      list = await listSlices(this.#settings, this.#basePath, this.#abort!.signal);
    } catch (err) {
      if (gen === this.#generation) this.#fail(err, 'list');
      return;
    }
    if (list === undefined || gen !== this.#generation) return;
    this.#listener.reset(list.slices, list.resourceVersion);
    this.#resourceVersion = list.resourceVersion;
    if (this.#listed) this.#settings.telemetry.resynced();
    this.#listed = true;
    this.#needList = false;
    // After a 410 the next watch must show progress first: a server that keeps refusing its own list's
    // resourceVersion must meet a growing backoff, not a relist loop.
    if (this.#relists === 0) this.#attempt = 0;
    this.#healthy();
    if (gen === this.#generation) void this.#watch();
  }

  async #watch(): Promise<void> {
    const gen = this.#begin('watching');
    const signal = this.#abort!.signal;
    const { client, transport, watchTimeoutSeconds } = this.#settings;
    const timeoutSeconds = Math.max(1, Math.round(watchTimeoutSeconds * (0.8 + 0.2 * Math.random())));
    const path =
      `${this.#basePath}&watch=true&allowWatchBookmarks=true&timeoutSeconds=${timeoutSeconds}` +
      (this.#resourceVersion === undefined
        ? ''
        : `&resourceVersion=${encodeURIComponent(this.#resourceVersion)}`);
    let res: IncomingMessage;
    try {
      res = await transport.get(path, { signal, headersTimeoutMs: client.requestTimeoutMs });
    } catch (err) {
      if (gen === this.#generation) this.#fail(err, 'watch');
      return;
    }
    if (gen !== this.#generation) {
      res.destroy();
      return;
    }
    const status = res.statusCode ?? 0;
    if (status !== 200) {
      let body: Buffer;
      try {
        body = await readBounded(res, client.requestTimeoutMs, this.#settings.clock);
      } catch (err) {
        if (gen === this.#generation) this.#fail(err, 'watch');
        return;
      }
      if (gen !== this.#generation) return;
      const st = parseStatus(body);
      if (status === 410 || isGone(st)) this.#gone(st);
      else this.#fail(this.#statusError('watch', status, st, res), 'watch');
      return;
    }
    if (this.#error !== undefined) this.#settings.telemetry.reconnected(); // resumed while failing
    this.#follow(gen, res, timeoutSeconds);
  }

  /** Follows a watch response until it ends; every batch of complete lines becomes at most one event. */
  #follow(gen: number, res: IncomingMessage, timeoutSeconds: number): void {
    const { clock, logger, where, idleTimeoutMs } = this.#settings;
    this.#cancelIdle = readWatchStream(
      res,
      { clock, where, timeoutSeconds, idleTimeoutMs },
      {
        current: () => gen === this.#generation,
        lines: (lines) => this.#onLines(gen, lines),
        idle: () => {
          logger.info(
            { service: where, idleMs: idleTimeoutMs, resourceVersion: this.#resourceVersion },
            'sdkit: the Kubernetes watch sent nothing for too long; resuming it',
          );
          void this.#watch();
        },
        fail: (err) => this.#fail(err, 'watch'),
        end: () => {
          logger.debug(
            { service: where, resourceVersion: this.#resourceVersion },
            'sdkit: the Kubernetes watch ended; resuming it',
          );
          void this.#watch();
        },
      },
    );
    if (this.#error !== undefined) {
      this.#cancelConfirm = clock.setTimeout(() => {
        this.#cancelConfirm = undefined;
        if (gen === this.#generation && this.#error !== undefined) {
          this.#attempt = 0;
          this.#healthy();
        }
      }, RESUME_CONFIRM_MS);
    }
  }

  #onLines(gen: number, lines: readonly string[]): void {
    const { logger, where, read } = this.#settings;
    let progressed = false;
    for (const line of lines) {
      const event = parseJson(line) as WatchEvent | null;
      if (event === null || typeof event !== 'object' || typeof event.type !== 'string') {
        if (progressed) this.#healthy();
        this.#fail(
          new KubernetesWatchError(
            failureMessage(where, 'watch', 'the API server sent a line that is not a watch event'),
          ),
          'watch',
        );
        return;
      }
      const object = event.object;
      if (event.type === 'ERROR') {
        if (progressed) this.#healthy();
        if (gen !== this.#generation) return;
        if (isGone(object)) this.#gone(object);
        else this.#fail(this.#statusError('watch', object?.code ?? 0, object, undefined), 'watch');
        return;
      }
      const rv = object?.metadata?.resourceVersion;
      if (typeof rv === 'string' && rv !== '') this.#resourceVersion = rv;
      progressed = true;
      if (event.type === 'ADDED' || event.type === 'MODIFIED') {
        const slice = object === undefined ? undefined : read(object);
        if (slice) this.#listener.change(slice);
      } else if (event.type === 'DELETED') {
        const name = object?.metadata?.name;
        if (typeof name === 'string') this.#listener.delete(name);
      } else if (event.type !== 'BOOKMARK') {
        logger.debug({ service: where, type: event.type }, 'sdkit: unknown watch event type; ignored');
      }
    }
    if (progressed) {
      this.#attempt = 0;
      this.#relists = 0;
      this.#healthy();
    }
  }

  // --- state ------------------------------------------------------------------------------------------------

  /** The API server answered well: the failure (if any) is over, and the listener publishes. */
  #healthy(): void {
    if (this.#phase === 'stopped') return;
    if (this.#error !== undefined) {
      this.#settings.logger.info(
        { service: this.#settings.where },
        'sdkit: Kubernetes list/watch works again',
      );
      this.#error = undefined;
      this.#cancelConfirm?.();
      this.#cancelConfirm = undefined;
    }
    this.#listener.healthy();
  }

  /** `410 Gone`: the resourceVersion is no longer in the server's history; list again and apply the diff. */
  #gone(status: KubeStatus | undefined): void {
    this.#needList = true;
    this.#relists++;
    this.#settings.logger.info(
      { service: this.#settings.where, resourceVersion: this.#resourceVersion, message: status?.message },
      'sdkit: the Kubernetes watch resourceVersion is too old (410 Gone); listing again',
    );
    if (this.#relists <= IMMEDIATE_RELISTS) void this.#list();
    else this.#retry(0);
  }

  #fail(err: unknown, during: SliceRequest): void {
    if (this.#phase === 'stopped') return;
    const { transport, logger, where } = this.#settings;
    const error =
      err instanceof KubernetesWatchError
        ? err
        : new KubernetesWatchError(failureMessage(where, during, errorText(err)), { cause: err });
    if (error.status === 401) transport.invalidateToken();
    if (this.#error?.message !== error.message) {
      this.#error = error;
      logger.warn({ service: where, err: error.message }, 'sdkit: Kubernetes list/watch failing; retrying');
      this.#listener.error(error);
    }
    this.#retry(retryAfterMs(err));
  }

  /** Abandons the current request and tries again after the backoff delay (at least `minDelayMs`). */
  #retry(minDelayMs: number): void {
    if (this.#phase === 'stopped') return;
    this.#begin('waiting');
    const delay = Math.max(this.#settings.backoff.delay(this.#attempt), minDelayMs);
    this.#attempt++;
    this.#cancelTimer = this.#settings.clock.setTimeout(() => {
      this.#cancelTimer = undefined;
      if (this.#phase !== 'waiting') return;
      if (this.#needList || !this.#listed) void this.#list();
      else void this.#watch();
    }, delay);
  }

  #statusError(
    during: SliceRequest,
    code: number,
    status: KubeStatus | undefined,
    res: IncomingMessage | undefined,
  ): KubernetesWatchError {
    const { where, namespace, client } = this.#settings;
    return statusError({ where, namespace, user: client.user }, during, code, status, res);
  }
}
