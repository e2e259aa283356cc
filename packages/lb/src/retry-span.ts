import {
  type Attributes,
  type Context,
  context,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { type Endpoint, type EndpointOptions, endpointEntryOf, errorType } from '@sdkit/sd-core';
import { statsOf } from './call-meter.js';
import type { RetryError } from './errors.js';

/** The span of one call through `retry`. */
export const RETRY_SPAN_NAME = 'sdkit.retry';
/** The event recorded on it for each attempt. */
export const ATTEMPT_EVENT_NAME = 'sdkit.retry.attempt';

/**
 * The span of one call through {@link retry} (`sdkit.retry`, kind INTERNAL: the endpoint's own client span, if it
 * makes one, becomes its child). Started in the caller's active context; each attempt runs with it active
 * ({@link run}), and ends with an `sdkit.retry.attempt` event (attempt number, endpoint key, error). The span ends
 * when the call settles — or, when it gives up with an attempt in flight (a timeout, an abort), as soon as that
 * attempt has recorded its event.
 * @internal
 */
export class RetrySpan {
  readonly #span: Span;
  /** The caller's context with this span: active during the attempts. */
  readonly #context: Context;
  readonly #recording: boolean;
  /** Attempts started and not ended. */
  #open = 0;
  /** The call settled while an attempt was open: end once it is closed. */
  #endPending = false;

  constructor(tracer: Tracer, attributes: Attributes) {
    const parent = context.active();
    this.#span = tracer.startSpan(RETRY_SPAN_NAME, { kind: SpanKind.INTERNAL, attributes }, parent);
    this.#context = trace.setSpan(parent, this.#span);
    this.#recording = this.#span.isRecording();
  }

  /** Calls `endpoint(request, options)` with this span active, so spans made inside become its children. */
  run<Req, Res>(endpoint: Endpoint<Req, Res>, request: Req, options: EndpointOptions): Promise<Res> {
    return context.with(this.#context, endpoint, undefined, request, options);
  }

  /** An attempt starts. */
  attemptStarted(): void {
    this.#open++;
  }

  /** Attempt `attempt` (from 1) ended, on `endpoint` if one was picked; `error` if it failed. */
  attemptEnded(attempt: number, endpoint: Endpoint<never, unknown> | undefined, error?: Error): void {
    if (this.#recording) {
      const attributes: Attributes = { 'sdkit.retry.attempt.number': attempt };
      const key =
        endpoint === undefined
          ? undefined
          : (endpointEntryOf(endpoint)?.key ?? statsOf(endpoint)?.instance.key);
      if (key !== undefined) attributes['sdkit.endpoint.key'] = key;
      if (error !== undefined) {
        attributes['error.type'] = errorType(error);
        attributes['error.message'] = error.message;
      }
      this.#span.addEvent(ATTEMPT_EVENT_NAME, attributes);
    }
    this.#open--;
    if (this.#endPending && this.#open === 0) this.#span.end();
  }

  /** The call resolved after `attempts` attempts. */
  succeeded(attempts: number): void {
    this.#span.setAttribute('sdkit.retry.attempt_count', attempts);
    this.#end();
  }

  /** The call rejected with `error`: status ERROR, its reason and the cause's `error.type`. */
  failed(error: RetryError): void {
    this.#span.setAttributes({
      'sdkit.retry.attempt_count': error.attempts,
      'sdkit.retry.reason': error.reason,
      'error.type': errorType(error.cause),
    });
    this.#span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
    this.#end();
  }

  #end(): void {
    if (this.#open === 0) this.#span.end();
    else this.#endPending = true;
  }
}
