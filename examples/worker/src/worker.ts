/**
 * A Cloudflare-style module worker that routes each request to a service found in etcd: per request it reads the
 * instances under `env.SERVICE_PREFIX` with `EtcdInstancer` (sdkit's portable entry, `@sdkit/sd-etcd/http`,
 * etcd's HTTP/JSON gateway over `fetch`), picks one round-robin and forwards the request to it, moving on to the
 * next instance if one cannot be reached.
 *
 * Everything that does I/O (the etcd client, its watch, the forwarded fetch) is made and closed within the
 * request: a worker may not use one request's I/O objects from another. Only plain data lives across requests:
 * the round-robin turn.
 * @module
 */
import { type EndpointSource, NoEndpointsError, RetryError, retry, roundRobin } from '@sdkit/lb';
import { type Endpoint, type Endpointer, endpointer, type Instance } from '@sdkit/sd-core';
import { createEtcdClient, EtcdInstancer } from '@sdkit/sd-etcd/http';

/** The worker's bindings (see workerd.capnp). */
export interface Env {
  /** Comma-separated etcd client URLs; default `http://127.0.0.1:2379`. */
  readonly ETCD_ENDPOINTS?: string | null;
  /** The etcd key prefix the service's instances are registered under; default `/services/hello/`. */
  readonly SERVICE_PREFIX?: string | null;
}

/** The part of a worker's execution context this worker uses. */
export interface ExecutionContext {
  waitUntil(promise: Promise<unknown>): void;
}

/** The forwarded request, with its body read once so that a retry on another instance can send it again. */
interface Forward {
  readonly method: string;
  readonly pathAndQuery: string;
  readonly headers: Headers;
  readonly body: ArrayBuffer | undefined;
}

/** Longest a request may take, etcd lookup and every attempt included. */
const REQUEST_TIMEOUT_MS = 10_000;
/** Most instances one request tries. */
const MAX_ATTEMPTS = 3;
/**
 * Response header naming the instance (its etcd key) that answered. (Not exported: workerd takes every export of
 * the main module for an entrypoint.)
 */
const INSTANCE_HEADER = 'x-sdkit-instance';

/** Counts requests in this isolate, so that consecutive requests start at consecutive instances. */
let turn = 0;

/** The base URL of an instance address: `host:port` means `http://host:port`. */
function baseUrl(address: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(address) ? address : `http://${address}`;
}

/** Forwards to one instance; a response of any status is an answer, only an unreachable instance is an error. */
function instanceEndpoint(instance: Instance): { endpoint: Endpoint<Forward, Response> } {
  return {
    endpoint: async (forward, options) => {
      const res = await fetch(new URL(forward.pathAndQuery, baseUrl(instance.address)), {
        method: forward.method,
        headers: forward.headers,
        ...(forward.body ? { body: forward.body } : {}),
        ...(options?.signal ? { signal: options.signal } : {}),
      });
      const answer = new Response(res.body, res);
      answer.headers.set(INSTANCE_HEADER, instance.key);
      return answer;
    },
  };
}

/** `source`'s endpoints, rotated by `by` (so that round-robin starts at endpoint `by mod n`). */
function rotated(source: Endpointer<Forward, Response>, by: number): EndpointSource<Forward, Response> {
  return {
    endpoints: () => {
      const all = source.endpoints();
      const n = all.length;
      return n === 0 ? all : [...all.slice(by % n), ...all.slice(0, by % n)];
    },
    ready: (options) => source.ready(options),
    emptyReason: () => source.emptyReason?.() ?? '',
  };
}

function text(status: number, message: string): Response {
  return new Response(`${message}\n`, { status, headers: { 'content-type': 'text/plain; charset=utf-8' } });
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const endpoints = (env.ETCD_ENDPOINTS || 'http://127.0.0.1:2379').split(',').map((e) => e.trim());
    const prefix = env.SERVICE_PREFIX || '/services/hello/';
    const url = new URL(request.url);
    const forward: Forward = {
      method: request.method,
      pathAndQuery: `${url.pathname}${url.search}`,
      headers: request.headers,
      body: request.method === 'GET' || request.method === 'HEAD' ? undefined : await request.arrayBuffer(),
    };

    const signal = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    let client: Awaited<ReturnType<typeof createEtcdClient>>;
    try {
      client = await createEtcdClient({ endpoints, dialTimeoutMs: 3_000 });
    } catch (err) {
      return text(502, `etcd unreachable (${endpoints.join(', ')}): ${String(err)}`);
    }
    const instancer = new EtcdInstancer(client, { prefix });
    const instances = endpointer(instancer, instanceEndpoint);
    try {
      const call = retry(roundRobin(rotated(instances, turn++)), {
        maxAttempts: MAX_ATTEMPTS,
        timeoutMs: REQUEST_TIMEOUT_MS,
        backoff: false,
        signal,
      });
      return await call(forward);
    } catch (err) {
      const cause = err instanceof RetryError ? err.cause : err;
      if (cause instanceof NoEndpointsError)
        return text(503, `no instance under ${prefix}: ${cause.message}`);
      return text(502, `no instance under ${prefix} answered: ${String(cause)}`);
    } finally {
      ctx.waitUntil(
        instances.close().finally(() => {
          instancer.stop();
          client.close();
        }),
      );
    }
  },
};
