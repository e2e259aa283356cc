/**
 * One complete list of a Service's EndpointSlices, read page by page (`limit`/`continue`) into slices by name.
 * @internal
 * @module
 */
import type { Clock, Logger } from '@sdkit/sd-core';
import type { KubernetesClient } from './client.js';
import type { EndpointSlice, SliceContribution } from './endpoint-slice.js';
import { KubernetesWatchError } from './errors.js';
import type { HttpTransport } from './http-transport.js';
import { parseJson } from './parse-json.js';
import { readBounded } from './read-bounded.js';
import { failureMessage, parseStatus, statusError } from './status-error.js';

/**
 * Consecutive relists after 410 done at once; later ones wait for the backoff. (A list whose continue token
 * expires, a 410 too, is started over at once as many times; once more is a failure.)
 */
export const IMMEDIATE_RELISTS = 2;

/** What {@link listSlices} needs. */
export interface SliceListSettings {
  /** The client: its `requestTimeoutMs` bounds each request, its `user` is named in 401 and 403 messages. */
  readonly client: KubernetesClient;
  /** The client's transport. */
  readonly transport: HttpTransport;
  /** The Service's namespace. */
  readonly namespace: string;
  /** The Service as logs and messages name it: `service "<namespace>/<name>"`. */
  readonly where: string;
  readonly logger: Logger;
  /** Time source for the request timeouts (and, in a `SliceWatch`, retries and the watch's idle bound). */
  readonly clock: Clock;
  /** EndpointSlices per list page (`limit`). */
  readonly pageSize: number;
  /** Reads one EndpointSlice object of a list or watch event; `undefined` skips it. */
  readonly read: (raw: EndpointSlice) => SliceContribution | undefined;
}

/** A complete list. */
export interface SliceList {
  /** Every slice read (see {@link SliceListSettings.read}), by name. */
  readonly slices: Map<string, SliceContribution>;
  /** The list's resourceVersion (the last page's): where a watch of it starts. */
  readonly resourceVersion: string | undefined;
}

/**
 * Lists the EndpointSlices at `basePath` (the Service's, with its label selector), `pageSize` at a time. A
 * continue token that expires (410: the list took longer than etcd keeps its revision) starts the list over, at
 * most {@link IMMEDIATE_RELISTS} times. Resolves `undefined` once `signal` aborts (the list is abandoned).
 * @throws the transport's error, or a `KubernetesWatchError` for any other status than 200 or a body that is not
 *   an EndpointSliceList.
 */
export async function listSlices(
  settings: SliceListSettings,
  basePath: string,
  signal: AbortSignal,
): Promise<SliceList | undefined> {
  const { client, transport, namespace, where, logger, clock, pageSize, read } = settings;
  const slices = new Map<string, SliceContribution>();
  let resourceVersion: string | undefined;
  let next: string | undefined;
  let restarts = 0;
  for (;;) {
    const path = `${basePath}&limit=${pageSize}${next === undefined ? '' : `&continue=${encodeURIComponent(next)}`}`;
    const res = await transport.get(path, { signal, headersTimeoutMs: client.requestTimeoutMs });
    const body = await readBounded(res, client.requestTimeoutMs, clock);
    if (signal.aborted) return undefined;
    const status = res.statusCode ?? 0;
    if (status === 410 && next !== undefined && restarts < IMMEDIATE_RELISTS) {
      // The continue token expired (the list took longer than etcd keeps its revision): start over.
      logger.info({ service: where }, 'sdkit: Kubernetes list continue token expired; listing again');
      restarts++;
      slices.clear();
      next = undefined;
      continue;
    }
    if (status !== 200) {
      throw statusError({ where, namespace, user: client.user }, 'list', status, parseStatus(body), res);
    }
    const list = parseJson(body) as {
      metadata?: { resourceVersion?: unknown; continue?: unknown };
      items?: unknown;
    } | null;
    if (list === null || typeof list !== 'object' || (list.items != null && !Array.isArray(list.items))) {
      throw new KubernetesWatchError(
        failureMessage(where, 'list', 'the API server sent a list that is not an EndpointSliceList'),
      );
    }
    for (const item of (list.items ?? []) as EndpointSlice[]) {
      const slice = read(item);
      if (slice) slices.set(slice.name, slice);
    }
    const rv = list.metadata?.resourceVersion;
    if (typeof rv === 'string' && rv !== '') resourceVersion = rv;
    const cont = list.metadata?.continue;
    next = typeof cont === 'string' && cont !== '' ? cont : undefined;
    if (next === undefined) return { slices, resourceVersion };
  }
}
