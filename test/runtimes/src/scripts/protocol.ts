/**
 * What a scenario running inside Deno, Bun or workerd reports to the test, one JSON object per line (stdout for
 * Deno and Bun, an NDJSON response body for workerd), and the parameters it is started with. Shared by the
 * runtime-side scripts (bundled) and the Node-side tests.
 * @module
 */

/** One line a scenario prints. */
export type RuntimeRecord =
  /** The scenario started (the runtime loaded the bundle and parsed its parameters). */
  | { readonly type: 'started'; readonly runtime: string }
  /** An instancer event: the whole current set, sorted by key. */
  | {
      readonly type: 'instances';
      readonly keys: readonly string[];
      readonly addresses: readonly string[];
      readonly error?: string;
    }
  /** A registrar state (`registering`, `registered`, `lost`, `deregistered`). */
  | { readonly type: 'state'; readonly state: string }
  /** A no-op line that lets a worker notice a client that went away (workerd only). */
  | { readonly type: 'heartbeat' }
  /** The scenario failed; the process exits (Deno, Bun) or the stream ends (workerd). */
  | { readonly type: 'failed'; readonly message: string };

/** Parameters of the `watch` scenario: follow `prefix` with an instancer. */
export interface WatchParams {
  readonly endpoints: readonly string[];
  readonly prefix: string;
}

/** Parameters of the `register` scenario: keep `key` registered with a lease of `ttlSeconds`. */
export interface RegisterParams {
  readonly endpoints: readonly string[];
  readonly key: string;
  readonly address: string;
  readonly ttlSeconds: number;
}

/** A scenario's invocation: which one, with what. */
export type ScenarioCall =
  | { readonly scenario: 'watch'; readonly params: WatchParams }
  | { readonly scenario: 'register'; readonly params: RegisterParams };

/** Receives a scenario's records. */
export type Emit = (record: RuntimeRecord) => void;

/**
 * One implementation of the scenarios. Each runs until `signal` aborts (then `register` deregisters) or it fails;
 * it reports through `emit` and rejects on failure. An implementation without `register` fails that scenario.
 */
export interface Scenarios {
  /** The implementation's name, for messages. */
  readonly name: string;
  watch(params: WatchParams, emit: Emit, signal: AbortSignal): Promise<void>;
  register?(params: RegisterParams, emit: Emit, signal: AbortSignal): Promise<void>;
}

/** Runs `call` with `scenarios`; rejects if the implementation lacks the scenario. */
export function runScenario(
  scenarios: Scenarios,
  call: ScenarioCall,
  emit: Emit,
  signal: AbortSignal,
): Promise<void> {
  if (call.scenario === 'watch') return scenarios.watch(call.params, emit, signal);
  if (call.scenario === 'register' && scenarios.register)
    return scenarios.register(call.params, emit, signal);
  return Promise.reject(
    new Error(
      `${scenarios.name} has no scenario ${JSON.stringify((call as { scenario?: unknown }).scenario)}`,
    ),
  );
}

/** Resolves when `signal` aborts. */
export function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}
