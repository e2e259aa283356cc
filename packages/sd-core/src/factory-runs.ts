import { describeArgument } from './describe-argument.js';
import { rememberEntry } from './endpoint-entries.js';
import type { ReadySet } from './ready-set.js';
import type { Clock, EndpointEntry, Factory, FactoryResult, Instance, Logger } from './types.js';

/**
 * Where a {@link Slot} stands: `pending` while its factory call runs, `ready` once it gave an endpoint, `failed`
 * when it threw, rejected or gave no endpoint (until it is tried again), `retired` once the slot's instance is
 * gone (final).
 */
export type SlotState = 'pending' | 'ready' | 'failed' | 'retired';

/** One instance version an endpointer wants an endpoint for. Made by {@link slotFor}; changed only by {@link FactoryRuns}. */
export interface Slot<Req, Res> {
  readonly instance: Instance;
  state: SlotState;
  /** What the factory returned, once `ready`. */
  result: FactoryResult<Req, Res> | undefined;
  /** The entry `entries()` lists for this slot: made once, when it becomes `ready`. */
  entry: EndpointEntry<Req, Res> | undefined;
}

/** A new `pending` slot for `instance`, not started yet (see {@link FactoryRuns.start}). */
export function slotFor<Req, Res>(instance: Instance): Slot<Req, Res> {
  return { instance, state: 'pending', result: undefined, entry: undefined };
}

/** What {@link FactoryRuns} needs from its endpointer. */
export interface FactoryRunsOptions<Req, Res> {
  readonly factory: Factory<Req, Res>;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Where ready endpoints are put and retired ones deleted. */
  readonly ready: ReadySet<Req, Res>;
  /** Called after a slot became `ready` (its entry is in `ready` then). */
  readonly onReady: () => void;
  /** Called after an asynchronous factory call settled, whatever its outcome. */
  readonly onSettled: () => void;
}

/**
 * Runs the factory for slots and closes what it made: the slot state machine.
 *
 * - {@link start} calls the factory once; a synchronous result is applied before it returns, an asynchronous one
 *   when it settles. A result that is not `{ endpoint: function }`, a throw or a rejection makes the slot
 *   `failed` (logged as a warning with its key, kept in {@link failed} for a retry).
 * - A `ready` slot gets its {@link EndpointEntry} (frozen, made once) and is put in the {@link ReadySet}.
 * - {@link retire} is final: a `ready` slot leaves the set and its result is closed; a `pending` one has its
 *   result closed when it arrives, never published. Every result is closed exactly once; close errors are
 *   logged, never thrown.
 * - {@link drain} waits for factory calls and closes still in flight, within a timeout.
 */
export class FactoryRuns<Req, Res> {
  readonly #options: FactoryRunsOptions<Req, Res>;
  /** Slots whose factory failed, in order of failure. */
  readonly #failed = new Set<Slot<Req, Res>>();
  /** Factory calls in flight, with the key each is for. */
  readonly #pendingFactories = new Map<Promise<void>, string>();
  /** Endpoint closes in flight, with the key each is for. */
  readonly #pendingCloses = new Map<Promise<void>, string>();
  #lastError: { readonly key: string; readonly err: unknown } | undefined;

  constructor(options: FactoryRunsOptions<Req, Res>) {
    this.#options = options;
  }

  /** The slots whose factory failed and that were not retried or retired since. */
  get failed(): ReadonlySet<Slot<Req, Res>> {
    return this.#failed;
  }

  /** How many factory calls are in flight. */
  get pendingFactories(): number {
    return this.#pendingFactories.size;
  }

  /** The last factory failure, with its instance key. */
  get lastError(): { readonly key: string; readonly err: unknown } | undefined {
    return this.#lastError;
  }

  /** Calls the factory for `slot` (new, or `failed` and tried again); `slot` is `pending` until it settles. */
  start(slot: Slot<Req, Res>): void {
    slot.state = 'pending';
    this.#failed.delete(slot);
    let out: FactoryResult<Req, Res> | Promise<FactoryResult<Req, Res>>;
    try {
      out = this.#options.factory(slot.instance);
    } catch (err) {
      this.#fail(slot, err);
      return;
    }
    if (!isThenable(out)) {
      this.#settle(slot, out);
      return;
    }
    const settled = Promise.resolve(out).then(
      (result) => this.#settle(slot, result),
      (err: unknown) => this.#fail(slot, err),
    );
    this.#pendingFactories.set(settled, slot.instance.key);
    void settled.finally(() => {
      this.#pendingFactories.delete(settled);
      this.#options.onSettled();
    });
  }

  /** Retires `slot` for good: out of the ready set and closed if `ready`; closed on arrival if `pending`. */
  retire(slot: Slot<Req, Res>): void {
    const was = slot.state;
    slot.state = 'retired';
    if (was === 'failed') this.#failed.delete(slot);
    else if (was === 'ready') {
      this.#options.ready.delete(slot.instance.key);
      this.#close(slot.instance.key, slot.result!);
    }
    // 'pending': #settle sees 'retired' and closes the result when it arrives.
  }

  /** Forgets the failed slots (they are being retired with the whole set). */
  clearFailed(): void {
    this.#failed.clear();
  }

  /**
   * Waits until no factory call or close is in flight (a settling factory may start a close), or until
   * `timeoutMs` has passed (`Infinity`: no limit); then logs what is still pending. Never rejects.
   */
  async drain(timeoutMs: number): Promise<void> {
    const pending = () => this.#pendingFactories.size > 0 || this.#pendingCloses.size > 0;
    if (!pending()) return;
    let timedOut = false;
    let cancel: (() => void) | undefined;
    const deadline =
      timeoutMs === Infinity
        ? undefined
        : new Promise<void>((resolve) => {
            cancel = this.#options.clock.setTimeout(() => {
              timedOut = true;
              resolve();
            }, timeoutMs);
          });
    try {
      while (pending() && !timedOut) {
        const all = Promise.allSettled([...this.#pendingFactories.keys(), ...this.#pendingCloses.keys()]);
        await (deadline ? Promise.race([all, deadline]) : all);
      }
    } finally {
      cancel?.();
    }
    if (timedOut && pending()) {
      this.#options.logger.warn(
        {
          closeTimeoutMs: timeoutMs,
          pendingFactories: this.#pendingFactories.size,
          pendingCloses: this.#pendingCloses.size,
          // The first few keys, to say which; a huge list would only flood the log.
          keys: [...new Set([...this.#pendingFactories.values(), ...this.#pendingCloses.values()])].slice(
            0,
            10,
          ),
        },
        'sdkit endpointer: close() stopped waiting for factory calls or endpoint closes still running; ' +
          'what they return is closed when they settle',
      );
    }
  }

  #settle(slot: Slot<Req, Res>, result: FactoryResult<Req, Res>): void {
    const endpoint = (result as Partial<FactoryResult<Req, Res>> | undefined)?.endpoint;
    if (typeof endpoint !== 'function') {
      this.#fail(
        slot,
        new TypeError(
          typeof result === 'function'
            ? 'factory returned a function; return { endpoint: yourFunction } (and optionally close) instead'
            : `factory returned ${describeArgument(result)}, not { endpoint: function, close? }`,
        ),
      );
      return;
    }
    if (slot.state === 'retired') {
      // Removed, replaced, invalidated or closed while the factory ran: never publish it.
      this.#close(slot.instance.key, result);
      return;
    }
    const { instance } = slot;
    slot.state = 'ready';
    slot.result = result;
    slot.entry = Object.freeze({ key: instance.key, instance, endpoint });
    rememberEntry(slot.entry);
    this.#options.ready.put(slot.entry);
    this.#options.onReady();
  }

  #fail(slot: Slot<Req, Res>, err: unknown): void {
    const { key, address } = slot.instance;
    if (slot.state === 'retired') {
      this.#options.logger.debug({ key, err }, 'sdkit endpointer: factory of a removed instance failed');
      return;
    }
    slot.state = 'failed';
    this.#failed.add(slot);
    this.#lastError = { key, err };
    this.#options.logger.warn(
      { key, address, err },
      'sdkit endpointer: factory failed; skipping the instance until the next instancer event',
    );
  }

  #close(key: string, result: FactoryResult<Req, Res>): void {
    const { close } = result;
    if (typeof close !== 'function') return;
    const failed = (err: unknown) =>
      this.#options.logger.warn({ key, err }, 'sdkit endpointer: closing an endpoint failed (ignored)');
    let out: void | Promise<void>;
    try {
      out = close.call(result);
    } catch (err) {
      failed(err);
      return;
    }
    if (isThenable(out)) {
      const done = Promise.resolve(out).then(undefined, failed);
      this.#pendingCloses.set(done, key);
      void done.finally(() => this.#pendingCloses.delete(done));
    }
  }
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
