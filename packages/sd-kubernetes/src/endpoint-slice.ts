/**
 * `discovery.k8s.io/v1` EndpointSlices as the API server sends them, and how one becomes instances: which
 * endpoints are served, on which port, under which key, with which metadata.
 * @module
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { Instance } from '@sdkit/sd-core';

/** The fields of a `discovery.k8s.io/v1` EndpointSlice this package reads (everything is optional on the wire). */
export interface EndpointSlice {
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly resourceVersion?: string;
    readonly labels?: Readonly<Record<string, string>>;
  };
  /** `IPv4`, `IPv6` or `FQDN`. */
  readonly addressType?: string;
  readonly endpoints?: readonly SliceEndpoint[] | null;
  readonly ports?: readonly SlicePort[] | null;
}

/** One endpoint of an {@link EndpointSlice}. */
export interface SliceEndpoint {
  readonly addresses?: readonly string[] | null;
  readonly conditions?: {
    readonly ready?: boolean | null;
    readonly serving?: boolean | null;
    readonly terminating?: boolean | null;
  } | null;
  readonly hostname?: string | null;
  readonly nodeName?: string | null;
  readonly zone?: string | null;
  readonly targetRef?: {
    readonly kind?: string;
    readonly name?: string;
    readonly namespace?: string;
    readonly uid?: string;
  } | null;
  readonly hints?: { readonly forZones?: readonly { readonly name?: string }[] | null } | null;
}

/** One port of an {@link EndpointSlice}. */
export interface SlicePort {
  readonly name?: string | null;
  readonly port?: number | null;
  readonly protocol?: string | null;
  readonly appProtocol?: string | null;
}

/**
 * Which port an instance is dialled on: a number (dialled as given, whatever the slices list), a port name
 * (looked up in each slice's ports), or absent (each slice's first port, as kuberesolver does).
 */
export type PortSelector =
  | { readonly kind: 'number'; readonly number: number }
  | { readonly kind: 'name'; readonly name: string }
  | undefined;

/** How {@link readSlice} turns endpoints into instances. */
export interface ReadSliceOptions {
  readonly port: PortSelector;
  /**
   * Also serve endpoints that are `serving` and `terminating` (a pod draining during a rollout, still answering).
   * By default only ready endpoints are served (`conditions.ready` true or unset).
   */
  readonly servingTerminating: boolean;
}

/**
 * Metadata of an instance from an EndpointSlice, for balancers (zone-aware routing, spreading over nodes). Keys
 * are present only when the slice gave them, except `conditions`, which is always complete (unset conditions
 * normalised as the API defines them: `ready` unset is true, `serving` unset is `ready`, `terminating` unset is
 * false).
 */
export type EndpointMetadata = {
  readonly zone?: string;
  readonly nodeName?: string;
  readonly hostname?: string;
  /** The object behind the endpoint, normally its Pod. */
  readonly targetRef?: {
    readonly kind?: string;
    readonly name?: string;
    readonly namespace?: string;
    readonly uid?: string;
  };
  /** Topology hints: the zones this endpoint should serve (topology-aware routing). */
  readonly hints?: { readonly forZones: readonly string[] };
  readonly conditions: { readonly ready: boolean; readonly serving: boolean; readonly terminating: boolean };
};

/** What one slice contributes: its served instances by key, and what the port checks need. */
export interface SliceContribution {
  readonly name: string;
  /** The slice's resourceVersion, to skip a slice that did not change (on a relist). */
  readonly resourceVersion: string | undefined;
  /** `IPv4`, `IPv6`, or what else the slice said (those contribute nothing). */
  readonly addressType: string;
  /** Served instances by key (`ip:port`, `[ip]:port` for IPv6). Frozen instances. */
  readonly instances: ReadonlyMap<string, Instance>;
  /** Whether the slice has the selected port (always true for a port number). */
  readonly hasPort: boolean;
  /** The slice's ports, described for messages (`"grpc" 50051/TCP`), in the slice's order. */
  readonly ports: readonly string[];
}

const EMPTY = new Map<string, Instance>();

/**
 * Reads one EndpointSlice into its {@link SliceContribution}: O(endpoints in the slice).
 *
 * - Only `IPv4` and `IPv6` slices contribute (an `FQDN` slice holds host names, which gRPC and kuberesolver do
 *   not dial from a slice; the caller warns).
 * - An endpoint is served when `conditions.ready` is true or unset, or, with `servingTerminating`, when it is
 *   both `serving` and `terminating`. Every address of a served endpoint is an instance (the EndpointSlice
 *   controller writes exactly one); addresses that are not IPs of the slice's type are skipped.
 * - The port: a number is used as given; a name is looked up in the slice's ports (a slice without it contributes
 *   nothing); no selector takes the slice's first port. A port without a number ("all ports") cannot be dialled.
 * - Key and address are `ip:port`, or `[ip]:port` for IPv6. Within a slice the first endpoint with a key wins.
 */
export function readSlice(slice: EndpointSlice, options: ReadSliceOptions): SliceContribution {
  const name = slice.metadata?.name ?? '';
  const resourceVersion = slice.metadata?.resourceVersion;
  const addressType = slice.addressType ?? '';
  const ports = Array.isArray(slice.ports) ? slice.ports : [];
  const described = ports.map(describePort);
  const selected = options.port;
  let port: number | undefined;
  if (selected?.kind === 'number') port = selected.number;
  else if (selected?.kind === 'name') port = validPort(ports.find((p) => p?.name === selected.name)?.port);
  else port = validPort(ports[0]?.port);
  const base = { name, resourceVersion, addressType, hasPort: port !== undefined, ports: described };
  if ((addressType !== 'IPv4' && addressType !== 'IPv6') || port === undefined) {
    return { ...base, instances: EMPTY };
  }
  const isIP = addressType === 'IPv4' ? isIPv4 : isIPv6;
  const instances = new Map<string, Instance>();
  const endpoints = Array.isArray(slice.endpoints) ? slice.endpoints : [];
  for (const endpoint of endpoints) {
    if (endpoint === null || typeof endpoint !== 'object' || !isServed(endpoint, options.servingTerminating))
      continue;
    const addresses = Array.isArray(endpoint.addresses) ? endpoint.addresses : [];
    let metadata: EndpointMetadata | undefined;
    for (const ip of addresses) {
      if (typeof ip !== 'string' || !isIP(ip)) continue;
      const key = addressType === 'IPv6' ? `[${ip}]:${port}` : `${ip}:${port}`;
      if (instances.has(key)) continue;
      metadata ??= endpointMetadata(endpoint);
      instances.set(key, Object.freeze({ key, address: key, metadata }));
    }
  }
  return { ...base, instances };
}

/** Whether an endpoint is served (see {@link readSlice}). */
export function isServed(endpoint: SliceEndpoint, servingTerminating: boolean): boolean {
  const c = endpoint.conditions;
  if (c?.ready !== false) return true; // true or unset: "nil should be interpreted as true"
  return servingTerminating && c.serving === true && c.terminating === true;
}

/** The frozen {@link EndpointMetadata} of an endpoint. */
export function endpointMetadata(endpoint: SliceEndpoint): EndpointMetadata {
  const c = endpoint.conditions;
  const ready = c?.ready !== false;
  const metadata: {
    zone?: string;
    nodeName?: string;
    hostname?: string;
    targetRef?: NonNullable<EndpointMetadata['targetRef']>;
    hints?: NonNullable<EndpointMetadata['hints']>;
    conditions: EndpointMetadata['conditions'];
  } = {
    conditions: Object.freeze({
      ready,
      serving: typeof c?.serving === 'boolean' ? c.serving : ready,
      terminating: c?.terminating === true,
    }),
  };
  if (typeof endpoint.zone === 'string' && endpoint.zone !== '') metadata.zone = endpoint.zone;
  if (typeof endpoint.nodeName === 'string' && endpoint.nodeName !== '')
    metadata.nodeName = endpoint.nodeName;
  if (typeof endpoint.hostname === 'string' && endpoint.hostname !== '')
    metadata.hostname = endpoint.hostname;
  const ref = endpoint.targetRef;
  if (ref && typeof ref === 'object') {
    const targetRef: { kind?: string; name?: string; namespace?: string; uid?: string } = {};
    for (const field of ['kind', 'name', 'namespace', 'uid'] as const) {
      const value = ref[field];
      if (typeof value === 'string' && value !== '') targetRef[field] = value;
    }
    metadata.targetRef = Object.freeze(targetRef);
  }
  const forZones = endpoint.hints?.forZones;
  if (Array.isArray(forZones)) {
    const zones = forZones.map((z) => z?.name).filter((z): z is string => typeof z === 'string' && z !== '');
    metadata.hints = Object.freeze({ forZones: Object.freeze(zones) });
  }
  return Object.freeze(metadata);
}

function validPort(port: unknown): number | undefined {
  return typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535 ? port : undefined;
}

function describePort(port: SlicePort | null | undefined): string {
  const name =
    typeof port?.name === 'string' && port.name !== '' ? `${JSON.stringify(port.name)} ` : '(unnamed) ';
  const number = validPort(port?.port) ?? 'all ports';
  return `${name}${number}/${port?.protocol ?? 'TCP'}`;
}
