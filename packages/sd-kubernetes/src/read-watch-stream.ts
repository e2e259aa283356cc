/**
 * One watch response read as it streams: split into lines (one watch event each), bounded in how long it may
 * stay silent, and told apart by how it ends (broken off, ended at once having sent nothing, ended).
 * @internal
 * @module
 */
import type { IncomingMessage } from 'node:http';
import type { Clock } from '@sdkit/sd-core';
import { errorText } from './describe-value.js';
import { KubernetesWatchError } from './errors.js';
import { TransportError } from './http-transport.js';
import { LineSplitter } from './line-splitter.js';
import { failureMessage } from './status-error.js';

/** One watch event (one EndpointSlice: at most 1000 endpoints) larger than this is refused. */
const MAX_LINE_BYTES = 64 * 1024 * 1024;
/**
 * A watch that ends cleanly sooner than this (or than half its timeoutSeconds) without sending anything counts as
 * a failure, so that a server that ends every watch at once meets the backoff, not a request loop.
 */
const MIN_STREAM_MS = 1000;

/** How {@link readWatchStream} reads. */
export interface WatchStreamOptions {
  readonly clock: Clock;
  /** The Service as messages name it: `service "<namespace>/<name>"`. */
  readonly where: string;
  /** The `timeoutSeconds` the watch asked for. */
  readonly timeoutSeconds: number;
  /** How long the stream may send nothing (no change, no bookmark) before {@link WatchStreamHandler.idle}. */
  readonly idleTimeoutMs: number;
}

/**
 * What {@link readWatchStream} reports, synchronously. Once `current()` is false (the stream was abandoned),
 * nothing more is reported.
 */
export interface WatchStreamHandler {
  /** Whether the stream is still the one followed. */
  current(): boolean;
  /** The complete lines of one read of the response (one watch event each); never empty. */
  lines(lines: string[]): void;
  /** The stream sent nothing for `idleTimeoutMs`: take it for dead. */
  idle(): void;
  /**
   * The stream failed: a line past the size bound, a connection error or a response broken off, or a clean end
   * sooner than {@link MIN_STREAM_MS} having sent nothing.
   */
  fail(err: unknown): void;
  /** The API server ended the stream cleanly (its `timeoutSeconds`). */
  end(): void;
}

/**
 * Reads `res` (a 200 watch response) until it ends, reporting to `handler`. Returns a function that cancels the
 * idle timer (the caller ends the response itself, through its request's signal).
 */
export function readWatchStream(
  res: IncomingMessage,
  options: WatchStreamOptions,
  handler: WatchStreamHandler,
): () => void {
  const { clock, where, idleTimeoutMs } = options;
  const minStreamMs = Math.min(MIN_STREAM_MS, options.timeoutSeconds * 500);
  const splitter = new LineSplitter(MAX_LINE_BYTES);
  const opened = clock.now();
  let received = 0;
  let cancelIdle: (() => void) | undefined;
  const armIdle = (): void => {
    cancelIdle?.();
    cancelIdle = clock.setTimeout(() => {
      if (handler.current()) handler.idle();
    }, idleTimeoutMs);
  };
  armIdle();
  res.on('data', (chunk: Buffer) => {
    if (!handler.current()) return;
    armIdle();
    let lines: string[];
    try {
      lines = splitter.push(chunk);
    } catch (err) {
      handler.fail(
        new KubernetesWatchError(failureMessage(where, 'watch', `the API server sent ${errorText(err)}`)),
      );
      return;
    }
    if (lines.length > 0) {
      received += lines.length;
      handler.lines(lines);
    }
  });
  res.on('error', (err) => {
    if (!handler.current()) return;
    // Node reports a response cut off mid-body (the API server killed, a reset) as a bare "aborted".
    const brokeOff = err.message === 'aborted' || (err as NodeJS.ErrnoException).code === 'ECONNRESET';
    handler.fail(
      brokeOff ? new TransportError('network', 'the watch response broke off', { cause: err }) : err,
    );
  });
  res.on('close', () => {
    if (!handler.current()) return;
    if (!res.complete) {
      handler.fail(new TransportError('network', 'the watch response broke off'));
    } else if (received === 0 && clock.now() - opened < minStreamMs) {
      handler.fail(
        new KubernetesWatchError(
          failureMessage(where, 'watch', 'the API server ended the watch at once, sending nothing'),
        ),
      );
    } else {
      handler.end();
    }
  });
  return () => {
    cancelIdle?.();
    cancelIdle = undefined;
  };
}
