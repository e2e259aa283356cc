import { type ChannelOptions, experimental, Metadata, type ServiceConfig, status } from '@grpc/grpc-js';
import { validateServiceConfig } from '@grpc/grpc-js/build/src/service-config.js';
import { type Instancer, type InstancerEvent, type Logger, silentLogger } from '@sdkit/sd-core';
import type { Subscription } from 'rxjs';
import { formatGrpcAddress, parseGrpcAddress } from './address.js';
import { describeValue } from './describe-value.js';

/**
 * A parsed gRPC channel target, as grpc-js hands it to a resolver (`experimental.GrpcUri`):
 * `etcd:///my-service` is `{ scheme: 'etcd', authority: '', path: 'my-service' }`,
 * `etcd://host/my-service` is `{ scheme: 'etcd', authority: 'host', path: 'my-service' }`, and — grpc-js splits off
 * an authority only when a `/` follows it — `etcd://my-service` is `{ scheme: 'etcd', path: '//my-service' }`.
 */
export type GrpcTarget = experimental.GrpcUri;

/**
 * Maps a channel target to the {@link Instancer} whose instances the channel should connect to. Called when the
 * channel first needs addresses (and again after grpc-js destroyed an idle channel's resolver and wakes it up).
 * The resolver owns what it returns and calls `stop()` on it when the channel no longer needs it. Throwing (e.g.
 * for a target it cannot read) fails the resolution with `UNAVAILABLE` and the error's message; it is not retried
 * until grpc-js restarts the resolver.
 */
export type InstancerForTarget = (target: GrpcTarget) => Instancer;

/** Options of {@link registerInstancerScheme}. */
export interface InstancerSchemeOptions {
  /**
   * The service config reported with every resolution: a JSON string or an object in gRPC's service-config JSON
   * form (validated by grpc-js at registration). Default {@link DEFAULT_SERVICE_CONFIG} (`round_robin`). Not with
   * `loadBalancingPolicy`. A channel created with its own `grpc.service_config` option (or with
   * `grpc.service_config_disable_resolution: 1`) keeps that one: the resolver then reports none.
   */
  readonly serviceConfig?: string | object;
  /** Shorthand for `serviceConfig: { loadBalancingConfig: [{ [policy]: {} }] }`, e.g. `'pick_first'`. */
  readonly loadBalancingPolicy?: string;
  /**
   * Logs skipped addresses (`warn`, once per instance and address), source errors (`warn`, on change) and
   * factory failures (`error`). Default `silentLogger`.
   */
  readonly logger?: Logger;
  /**
   * The default `:authority` of channels with this scheme (grpc-js's `getDefaultAuthority`; a channel option
   * `grpc.default_authority` still overrides it per channel, and it is the TLS server name unless
   * `grpc.ssl_target_name_override` is set). Default {@link defaultAuthorityForTarget}: the target's path without
   * leading and trailing `/` (`etcd:///my-service/` → `my-service`), sanitized into a valid authority
   * (`etcd:////services/foo` → `services.foo`). What it returns must be a valid authority
   * ({@link isValidAuthority}: no `/`, `%`, `@`, spaces, non-ASCII); otherwise grpc-js gets a `TypeError` naming
   * the value, so `new Client(target, …)` throws instead of every call failing with `RST_STREAM`.
   */
  readonly defaultAuthority?: (target: GrpcTarget) => string;
}

/** What {@link registerInstancerScheme} returns: call it (or dispose it) to retire the scheme. */
export interface SchemeRegistration extends Disposable {
  /** The scheme, e.g. `etcd`. */
  readonly scheme: string;
  /**
   * Retires this registration. grpc-js has no way to remove a resolver, so the scheme stays claimed: every
   * resolver of this registration, live or future, stops its instancer and reports `UNAVAILABLE` ("scheme …
   * was unregistered") until another `registerInstancerScheme` for the same scheme replaces it. Idempotent.
   */
  (): void;
}

/** The service config reported by default: `{"loadBalancingConfig":[{"round_robin":{}}]}`. */
export const DEFAULT_SERVICE_CONFIG: Readonly<ServiceConfig> = Object.freeze(
  validateServiceConfig({ loadBalancingConfig: [{ round_robin: {} }] }),
);

const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*$/;

/** A host (reg-name of unreserved and sub-delim characters, or a bracketed IPv6 literal), an optional port. */
const AUTHORITY = /^(?:[A-Za-z0-9._~!$&'()*+,;=-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?$/;

/**
 * Whether `text` can be a channel's HTTP/2 `:authority`: a host — letters, digits and `-._~!$&'()*+,;=`, or a
 * bracketed IPv6 literal — and an optional port (0–65535), such that `http://<text>` is a URL. That is what HTTP/2
 * servers accept (Node's, over nghttp2, reset a stream whose `:authority` has a `/`, a space or non-ASCII) and
 * what grpc-js can open its HTTP/2 session with (it connects to `http://<authority>`, which must parse: no `%`,
 * no `@`, and no name ending in a number that is not an IPv4 address, such as `svc.1`).
 */
export function isValidAuthority(text: string): boolean {
  const m = typeof text === 'string' ? AUTHORITY.exec(text) : null;
  return m !== null && (m[1] === undefined || Number(m[1]) <= 65535) && URL.canParse(`http://${text}`);
}

/**
 * The default `:authority` of a channel whose target is `target` (what {@link registerInstancerScheme} reports
 * unless given `defaultAuthority`). It is the target's path without leading and trailing `/` when that is a valid
 * authority ({@link isValidAuthority}): `x:///my-service` and `x:///my-service/` → `my-service`,
 * `x:///svc.ns:8080` → `svc.ns:8080`. Otherwise a sanitized form of it: percent-decoded, the path's segments
 * joined with `.` (`x:////services/foo` → `services.foo`), each run of other characters outside `A-Za-z0-9-._~`
 * replaced by `-` (`x:///my%20svc` → `my-svc`), a trailing `:port` kept; if that is still no valid authority (a
 * name ending in a number, `x:///svc/1`), with `-` for `.` too (`svc-1`); `localhost` when no host is left
 * (`x:///`). Always a valid authority; never throws.
 */
export function defaultAuthorityForTarget(target: GrpcTarget): string {
  const trimmed = target.path.replace(/^\/+|\/+$/g, '');
  if (isValidAuthority(trimmed)) return trimmed;
  let text: string;
  try {
    text = decodeURIComponent(trimmed);
  } catch {
    text = trimmed;
  }
  let port = '';
  const portMatch = /:([0-9]{1,5})$/.exec(text);
  if (portMatch !== null && Number(portMatch[1]) <= 65535) {
    port = portMatch[0];
    text = text.slice(0, portMatch.index);
  }
  const host = text
    .split('/')
    .filter((segment) => segment !== '')
    .join('.')
    .replace(/[^A-Za-z0-9._~-]+/g, '-');
  for (const candidate of [host, host.replaceAll('.', '-')]) {
    if (candidate !== '' && isValidAuthority(`${candidate}${port}`)) return `${candidate}${port}`;
  }
  return `localhost${port}`;
}

interface Registration {
  readonly scheme: string;
  readonly forTarget: InstancerForTarget;
  readonly serviceConfig: ServiceConfig;
  readonly logger: Logger;
  disposed: boolean;
  readonly live: Set<InstancerResolver>;
}

/**
 * Registers a grpc-js name resolver for `scheme` (`experimental.registerResolver`), so that a channel target
 * `scheme:///…` follows the {@link Instancer} that `forTarget` returns. grpc-js then connects to every instance
 * and balances over them (round robin by default).
 *
 * What the channel sees:
 * - before the instancer's first event: no resolution (calls wait, up to their deadline);
 * - a set of instances: their addresses (see {@link parseGrpcAddress}; unreadable ones are skipped and logged,
 *   never fatal; duplicate addresses are reported once);
 * - an empty set: an empty address list — a *successful* resolution with the note `no instances of <target>` —
 *   so calls without `waitForReady` fail at once with `UNAVAILABLE`, and succeed again as soon as an instance
 *   appears;
 * - a source error while last-known instances exist: those instances, unchanged (the channel keeps working);
 *   a source error with no instance: a failed resolution, `UNAVAILABLE` with the error's message.
 *
 * `updateResolution()` starts the instancer the first time and otherwise only re-reports a state grpc-js has not
 * accepted yet, or an empty address list (grpc-js 1.14's round_robin goes IDLE after one and asks again on the
 * next call; answering is what fails that call fast). It is cheap and idempotent and never starts a new watch. `destroy()` stops the instancer; a later
 * `updateResolution()` (grpc-js does this when an idle channel wakes up) starts a new one.
 *
 * Registering a scheme again replaces the previous registration for new channels (grpc-js keeps one resolver per
 * scheme). Schemes grpc-js handles itself (`dns`, `ipv4`, `ipv6`, `unix`…) can be overridden too; choose your own.
 *
 * @throws TypeError for a scheme that is not a URI scheme, a non-function `forTarget`, or invalid options.
 */
export function registerInstancerScheme(
  scheme: string,
  forTarget: InstancerForTarget,
  options: InstancerSchemeOptions = {},
): SchemeRegistration {
  if (typeof scheme !== 'string' || !SCHEME.test(scheme)) {
    throw new TypeError(
      `registerInstancerScheme: scheme must be a URI scheme like "etcd", got ${describeValue(scheme)}`,
    );
  }
  if (typeof forTarget !== 'function') {
    throw new TypeError(
      `registerInstancerScheme: forTarget must be a function, got ${describeValue(forTarget)}`,
    );
  }
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`registerInstancerScheme: options must be an object, got ${describeValue(options)}`);
  }
  const reg: Registration = {
    scheme,
    forTarget,
    serviceConfig: serviceConfigFrom(options),
    logger: options.logger ?? silentLogger,
    disposed: false,
    live: new Set(),
  };
  const authority = options.defaultAuthority;
  if (authority !== undefined && typeof authority !== 'function') {
    throw new TypeError(
      `registerInstancerScheme: defaultAuthority must be a function, got ${describeValue(authority)}`,
    );
  }

  class Resolver extends InstancerResolver {
    constructor(target: GrpcTarget, listener: experimental.ResolverListener, channelOptions: ChannelOptions) {
      super(reg, target, listener, channelOptions);
    }
    static getDefaultAuthority(target: GrpcTarget): string {
      if (authority === undefined) return defaultAuthorityForTarget(target);
      const value = authority(target);
      if (!isValidAuthority(value)) {
        throw new TypeError(
          `${scheme} resolver: defaultAuthority(${JSON.stringify(experimental.uriToString(target))}) returned ${describeValue(value)}, not a valid :authority (a host with an optional port; no "/", "%", "@", spaces or non-ASCII)`,
        );
      }
      return value;
    }
  }
  experimental.registerResolver(scheme, Resolver);

  const dispose = (): void => {
    if (reg.disposed) return;
    reg.disposed = true;
    for (const r of [...reg.live]) r.retire();
  };
  return Object.assign(dispose, {
    scheme,
    [Symbol.dispose]: dispose,
  }) as SchemeRegistration;
}

function serviceConfigFrom(options: InstancerSchemeOptions): ServiceConfig {
  const { serviceConfig, loadBalancingPolicy } = options;
  if (serviceConfig !== undefined && loadBalancingPolicy !== undefined) {
    throw new TypeError('registerInstancerScheme: pass serviceConfig or loadBalancingPolicy, not both');
  }
  let raw: unknown;
  if (loadBalancingPolicy !== undefined) {
    if (typeof loadBalancingPolicy !== 'string' || loadBalancingPolicy === '') {
      throw new TypeError(
        `registerInstancerScheme: loadBalancingPolicy must be a non-empty string, got ${describeValue(loadBalancingPolicy)}`,
      );
    }
    raw = { loadBalancingConfig: [{ [loadBalancingPolicy]: {} }] };
  } else if (serviceConfig === undefined) {
    return DEFAULT_SERVICE_CONFIG;
  } else if (typeof serviceConfig === 'string') {
    try {
      raw = JSON.parse(serviceConfig);
    } catch (err) {
      throw new TypeError(
        `registerInstancerScheme: serviceConfig is not valid JSON: ${(err as Error).message}`,
      );
    }
  } else {
    raw = serviceConfig;
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new TypeError(
      `registerInstancerScheme: serviceConfig must be a JSON object, got ${describeValue(raw)}`,
    );
  }
  let config: ServiceConfig;
  try {
    config = validateServiceConfig(raw);
  } catch (err) {
    throw new TypeError(`registerInstancerScheme: invalid serviceConfig: ${(err as Error).message}`);
  }
  const names = config.loadBalancingConfig.flatMap((c) => Object.keys(c));
  if (names.length > 0 && !names.some((n) => experimental.isLoadBalancerNameRegistered(n))) {
    throw new TypeError(
      `registerInstancerScheme: no load balancing policy in ${JSON.stringify(names)} is known to grpc-js`,
    );
  }
  return config;
}

/** Why a resolution failed: the source's error or the registration's state, with the target named. */
function failure(target: GrpcTarget, message: string): experimental.StatusOr<experimental.Endpoint[]> {
  return experimental.statusOrFromError({
    code: status.UNAVAILABLE,
    details: `${experimental.uriToString(target)}: ${message}`,
    metadata: new Metadata(),
  });
}

/**
 * One resolver per channel. State machine: idle (no instancer) → watching (subscribed) → idle on destroy. Reports
 * are deferred to the next tick (grpc-js forbids synchronous listener calls) and coalesced; a report carries the
 * latest event, so a burst of events gives one report.
 */
class InstancerResolver implements experimental.Resolver {
  readonly #reg: Registration;
  readonly #target: GrpcTarget;
  readonly #listener: experimental.ResolverListener;
  readonly #serviceConfig: experimental.StatusOr<ServiceConfig> | null;
  readonly #name: string;
  #instancer: Instancer | undefined;
  #subscription: Subscription | undefined;
  /** The latest event to report (a synthetic error event when the instancer could not be made). */
  #latest: InstancerEvent | undefined;
  /** The event grpc-js last accepted; `updateResolution` re-reports only when it differs from `#latest`. */
  #accepted: InstancerEvent | undefined;
  /** Whether the accepted report was a successful, empty address list (see `updateResolution`). */
  #acceptedEmpty = false;
  #scheduled = false;
  /** Bumped by `destroy`, so that a report scheduled before it is dropped. */
  #generation = 0;
  /** Instances whose address was refused, by key → address, so each is logged once. */
  #refused = new Map<string, string>();
  #lastErrorMessage: string | undefined;

  constructor(
    reg: Registration,
    target: GrpcTarget,
    listener: experimental.ResolverListener,
    channelOptions: ChannelOptions,
  ) {
    this.#reg = reg;
    this.#target = target;
    this.#listener = listener;
    this.#name = experimental.uriToString(target);
    const ownConfig =
      channelOptions['grpc.service_config'] !== undefined ||
      channelOptions['grpc.service_config_disable_resolution'] === 1;
    this.#serviceConfig = ownConfig ? null : experimental.statusOrFromValue(reg.serviceConfig);
  }

  updateResolution(): void {
    if (this.#subscription === undefined && this.#latest === undefined) this.#start();
    // An empty address list is re-reported on request: grpc-js 1.14's round_robin turns IDLE right after one (with
    // a queueing picker that asks for re-resolution on the next call); answering again is what makes that call
    // fail fast with UNAVAILABLE instead of waiting for its deadline. One report per request, so no loop.
    if (this.#latest !== undefined && (this.#latest !== this.#accepted || this.#acceptedEmpty))
      this.#schedule();
  }

  destroy(): void {
    this.#generation++;
    this.#scheduled = false;
    this.#stopWatching();
    this.#latest = undefined;
    this.#accepted = undefined;
    this.#acceptedEmpty = false;
    this.#refused.clear();
    this.#lastErrorMessage = undefined;
    this.#reg.live.delete(this);
  }

  /** The registration was disposed: stop watching and report that, if the channel is listening. */
  retire(): void {
    const listening = this.#latest !== undefined || this.#subscription !== undefined;
    this.#stopWatching();
    this.#reg.live.delete(this);
    if (listening) {
      this.#latest = this.#unregistered();
      this.#schedule();
    }
  }

  #unregistered(): InstancerEvent {
    return { instances: [], error: new Error(`scheme "${this.#reg.scheme}" was unregistered`) };
  }

  #start(): void {
    if (this.#reg.disposed) {
      this.#latest = this.#unregistered();
      return;
    }
    let instancer: Instancer;
    try {
      instancer = this.#reg.forTarget(this.#target);
      if (
        instancer === null ||
        typeof instancer !== 'object' ||
        typeof instancer.events$?.subscribe !== 'function'
      ) {
        throw new TypeError(`the instancer factory returned ${describeValue(instancer)}, not an Instancer`);
      }
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.#reg.logger.error(
        { target: this.#name, err: error.message },
        'sdkit grpc resolver: cannot make an instancer for the target',
      );
      this.#latest = { instances: [], error };
      this.#lastErrorMessage = error.message;
      return;
    }
    this.#reg.live.add(this);
    this.#instancer = instancer;
    const generation = this.#generation;
    this.#subscription = instancer.events$.subscribe({
      next: (event) => {
        if (generation !== this.#generation) return;
        this.#latest = event;
        this.#schedule();
      },
      complete: () => {
        if (generation !== this.#generation || this.#instancer !== instancer) return;
        // Stopped by someone else: keep reporting the last state; the next destroy/update starts afresh.
        this.#reg.logger.warn({ target: this.#name }, 'sdkit grpc resolver: the instancer stopped');
        this.#subscription = undefined;
        this.#instancer = undefined;
      },
    });
  }

  #stopWatching(): void {
    const sub = this.#subscription;
    const instancer = this.#instancer;
    this.#subscription = undefined;
    this.#instancer = undefined;
    sub?.unsubscribe();
    try {
      instancer?.stop();
    } catch (err) {
      this.#reg.logger.warn(
        { target: this.#name, err: String(err) },
        'sdkit grpc resolver: instancer.stop threw',
      );
    }
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    const generation = this.#generation;
    process.nextTick(() => {
      if (generation !== this.#generation) return;
      this.#scheduled = false;
      this.#report();
    });
  }

  #report(): void {
    const event = this.#latest;
    if (event === undefined) return;
    this.#logError(event.error);
    let accepted: boolean;
    let empty = false;
    if (event.error !== undefined && event.instances.length === 0) {
      accepted = this.#listener(failure(this.#target, event.error.message), {}, this.#serviceConfig, '');
    } else {
      const endpoints = this.#endpoints(event);
      const notes: string[] = [];
      if (event.instances.length === 0) notes.push(`no instances of ${this.#name}`);
      else if (endpoints.length === 0) notes.push(`no instance of ${this.#name} has a usable address`);
      if (event.error !== undefined) {
        notes.push(`source failing (${event.error.message}); keeping ${event.instances.length} last-known`);
      }
      empty = endpoints.length === 0;
      accepted = this.#listener(
        experimental.statusOrFromValue(endpoints),
        {},
        this.#serviceConfig,
        notes.join('; '),
      );
    }
    this.#accepted = accepted ? event : undefined;
    this.#acceptedEmpty = accepted && empty;
  }

  #endpoints(event: InstancerEvent): experimental.Endpoint[] {
    const seen = new Set<string>();
    const out: experimental.Endpoint[] = [];
    const refused = new Map<string, string>();
    for (const instance of event.instances) {
      const parsed = parseGrpcAddress(instance.address);
      if (!parsed.ok) {
        refused.set(instance.key, instance.address);
        if (this.#refused.get(instance.key) !== instance.address) {
          this.#reg.logger.warn(
            { target: this.#name, key: instance.key, address: instance.address, reason: parsed.reason },
            'sdkit grpc resolver: skipping an instance whose address gRPC cannot dial',
          );
        }
        continue;
      }
      const text = formatGrpcAddress(parsed.address);
      if (seen.has(text)) continue;
      seen.add(text);
      out.push({ addresses: [{ host: parsed.address.host, port: parsed.address.port }] });
    }
    this.#refused = refused;
    return out;
  }

  #logError(error: Error | undefined): void {
    const message = error?.message;
    if (message === this.#lastErrorMessage) return;
    this.#lastErrorMessage = message;
    if (message !== undefined) {
      this.#reg.logger.warn(
        { target: this.#name, err: message },
        'sdkit grpc resolver: the source is failing',
      );
    }
  }
}
