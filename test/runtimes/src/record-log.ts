import { DEFAULT_WAIT_MS, describeValue, type SubscribableLike, waitFor } from '@sdkit/test-harness';
import type { RuntimeRecord } from './scripts/protocol.js';

/**
 * The records a scenario reported, in order. `from(i)` replays the records from index `i` and then follows new
 * ones, so a test can take `count` before it acts and wait for the reaction without a race.
 */
export class RecordLog {
  private readonly list: RuntimeRecord[] = [];
  private readonly listeners = new Set<{ next: (r: RuntimeRecord) => void; complete: () => void }>();
  private endedWith: string | undefined;

  constructor(
    /** What produced the records, for messages. */
    readonly source: string,
    /** Context appended to a failed wait (e.g. a log tail). */
    private readonly context: () => Promise<string> = async () => '',
  ) {}

  /** Number of records so far. */
  get count(): number {
    return this.list.length;
  }

  /** Every record so far. */
  all(): readonly RuntimeRecord[] {
    return this.list;
  }

  /** Why the source ended, if it did. */
  get ended(): string | undefined {
    return this.endedWith;
  }

  push(record: RuntimeRecord): void {
    if (this.endedWith !== undefined) return;
    this.list.push(record);
    for (const l of [...this.listeners]) l.next(record);
  }

  end(reason: string): void {
    if (this.endedWith !== undefined) return;
    this.endedWith = reason;
    for (const l of [...this.listeners]) l.complete();
    this.listeners.clear();
  }

  /** Records from index `from` on, then new ones; completes when the source ends. */
  from(from = 0): SubscribableLike<RuntimeRecord> {
    return {
      subscribe: (observer) => {
        let closed = false;
        const listener = {
          next: (r: RuntimeRecord) => {
            if (!closed) observer.next(r);
          },
          complete: () => {
            if (!closed) observer.complete();
          },
        };
        for (const r of this.list.slice(from)) {
          if (closed) break;
          listener.next(r);
        }
        if (this.endedWith !== undefined) listener.complete();
        else this.listeners.add(listener);
        return {
          unsubscribe: () => {
            closed = true;
            this.listeners.delete(listener);
          },
        };
      },
    };
  }

  /**
   * The first record at index `from` or later that matches; rejects after `timeoutMs`, or when the source ends or
   * reports `failed` first, with the records seen and the source's context (log tail) in the message.
   */
  async waitFor<R extends RuntimeRecord>(
    predicate: (r: RuntimeRecord) => r is R,
    what: string,
    options?: { from?: number; timeoutMs?: number },
  ): Promise<R>;
  async waitFor(
    predicate: (r: RuntimeRecord) => boolean,
    what: string,
    options?: { from?: number; timeoutMs?: number },
  ): Promise<RuntimeRecord>;
  async waitFor(
    predicate: (r: RuntimeRecord) => boolean,
    what: string,
    options: { from?: number; timeoutMs?: number } = {},
  ): Promise<RuntimeRecord> {
    const from = options.from ?? 0;
    try {
      const record = await waitFor(
        this.from(from),
        (r) => r.type === 'failed' || predicate(r),
        `${what} from ${this.source}`,
        options.timeoutMs ?? DEFAULT_WAIT_MS,
      );
      if (record.type === 'failed' && !predicate(record)) {
        throw new Error(`${this.source} failed while waiting for ${what}: ${record.message}`);
      }
      return record;
    } catch (err) {
      const seen = this.list
        .slice(from)
        .slice(-12)
        .map((r) => JSON.stringify(r))
        .join('\n');
      const ended = this.endedWith !== undefined ? `\n${this.source} ended: ${this.endedWith}` : '';
      throw new Error(
        `${err instanceof Error ? err.message : String(err)}${ended}\n--- records since index ${from} (last 12) ---\n` +
          `${seen || '(none)'}\n${await this.context()}`,
        { cause: err },
      );
    }
  }

  /** The next `instances` record (from `from`) whose keys are exactly `keys` (sorted). */
  waitForInstances(
    keys: readonly string[],
    options: { from?: number; timeoutMs?: number } = {},
  ): Promise<Extract<RuntimeRecord, { type: 'instances' }>> {
    const want = [...keys].sort();
    return this.waitFor(
      (r): r is Extract<RuntimeRecord, { type: 'instances' }> =>
        r.type === 'instances' && r.keys.length === want.length && r.keys.every((k, i) => k === want[i]),
      `an instancer event with keys ${describeValue(want)}`,
      options,
    );
  }

  /** The next `state` record `state` (from `from`). */
  waitForState(state: string, options: { from?: number; timeoutMs?: number } = {}): Promise<RuntimeRecord> {
    return this.waitFor(
      (r) => r.type === 'state' && r.state === state,
      `registrar state '${state}'`,
      options,
    );
  }
}
