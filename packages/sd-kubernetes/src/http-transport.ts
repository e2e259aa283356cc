/**
 * GET requests to the Kubernetes API server: node's `http`/`https` with the agent, TLS material and headers that
 * `@kubernetes/client-node` derives from the kubeconfig (`KubeConfig.applyToHTTPSOptions`, once per request, so
 * that exec plugins and other expiring credentials are refreshed as client-node refreshes them), plus the token
 * file, read again whenever it changes.
 *
 * Why node's `http` and not client-node's `Watch` (node-fetch) or `fetch`: a watch is one long streamed response
 * that must end cleanly when the instancer stops or the client closes (`request.destroy()`), whose status code
 * decides what happens next (410 → relist, 403 → an RBAC message), and whose bytes must be timed to notice a
 * silent connection; `fetch` cannot take client-node's agent (client certificates, CA, proxies), and node-fetch
 * would add a layer over the same streams without giving any of this.
 * @internal
 * @module
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Clock } from '@sdkit/sd-core';
import { errorText } from './describe-value.js';
import type { ResolvedKubeConfig } from './kube-config.js';

/** What kind of failure a {@link TransportError} is. */
export type TransportErrorKind =
  /** The credentials could not be obtained (exec plugin, token file, client certificate file). */
  | 'credentials'
  /** No response: connection refused or reset, DNS, TLS, a timeout. */
  | 'network'
  /** The caller's signal aborted the request. */
  | 'aborted';

/** A request that got no HTTP response. `cause` is the underlying error. */
export class TransportError extends Error {
  override readonly name = 'TransportError';
  constructor(
    readonly kind: TransportErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const USER_AGENT = 'sdkit-sd-kubernetes';

/** Options of one {@link HttpTransport.get}. */
export interface GetOptions {
  /** Ends the request (and its response, if it already came) when it aborts. */
  readonly signal: AbortSignal;
  /** Bound on the time until the response headers arrive (not on reading the body). */
  readonly headersTimeoutMs: number;
}

/** Makes the GET requests of one client. */
export class HttpTransport {
  readonly #config: ResolvedKubeConfig;
  readonly #clock: Clock;
  readonly #base: URL;

  constructor(config: ResolvedKubeConfig, clock: Clock) {
    this.#config = config;
    this.#clock = clock;
    this.#base = new URL(config.server);
  }

  /** After a 401: the next request reads the token file again, whatever its times say. */
  invalidateToken(): void {
    this.#config.tokenFile?.invalidate();
  }

  /**
   * GETs `path` (with its query, relative to the server URL, whose own path is kept as a prefix) and resolves with
   * the response as soon as its headers arrived, whatever its status; the caller reads (or destroys) the body.
   * Rejects with a {@link TransportError} when there is no response.
   */
  async get(path: string, options: GetOptions): Promise<IncomingMessage> {
    const { signal, headersTimeoutMs } = options;
    if (signal.aborted) throw new TransportError('aborted', 'request aborted', { cause: signal.reason });
    const opts: https.RequestOptions = {};
    try {
      await this.#config.requestConfig.applyToHTTPSOptions(opts);
    } catch (err) {
      throw new TransportError('credentials', this.#credentialsMessage(err), { cause: err });
    }
    const tokenFile = this.#config.tokenFile;
    if (tokenFile) {
      let token: string;
      try {
        token = await tokenFile.read();
      } catch (err) {
        throw new TransportError('credentials', this.#credentialsMessage(err), { cause: err });
      }
      opts.headers = { ...opts.headers, Authorization: `Bearer ${token}` };
    }
    if (signal.aborted) throw new TransportError('aborted', 'request aborted', { cause: signal.reason });
    const url = this.#url(path);
    const send = url.protocol === 'http:' ? http.request : https.request;
    return new Promise<IncomingMessage>((resolve, reject) => {
      let settled = false;
      const req = send(url, {
        ...opts,
        method: 'GET',
        headers: { ...opts.headers, Accept: 'application/json', 'User-Agent': USER_AGENT },
      });
      const onAbort = (): void => {
        req.destroy(new TransportError('aborted', 'request aborted', { cause: signal.reason }));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const cancelTimer = this.#clock.setTimeout(() => {
        req.destroy(
          new TransportError(
            'network',
            `no answer from the Kubernetes API server at ${this.#base.origin} within ${headersTimeoutMs} ms`,
          ),
        );
      }, headersTimeoutMs);
      req.on('response', (res) => {
        settled = true;
        cancelTimer();
        res.on('close', () => signal.removeEventListener('abort', onAbort));
        resolve(res);
      });
      req.on('error', (err) => {
        cancelTimer();
        if (settled) return; // the response's own stream reports what happens after the headers
        signal.removeEventListener('abort', onAbort);
        reject(
          err instanceof TransportError
            ? err
            : new TransportError('network', describeNetworkError(err, this.#base.origin), { cause: err }),
        );
      });
      req.end();
    });
  }

  #url(path: string): URL {
    const base = this.#base;
    const prefix = base.pathname.replace(/\/+$/, '');
    return new URL(`${prefix}${path}`, base.origin);
  }

  #credentialsMessage(err: unknown): string {
    const user =
      this.#config.user === undefined ? '' : ` of kubeconfig user ${JSON.stringify(this.#config.user)}`;
    return `could not get the credentials${user} (${this.#config.source}): ${errorText(err)}`;
  }
}

/** TLS failures that waiting will not cure, with what they usually mean. */
const TLS_HINTS: Readonly<Record<string, string>> = {
  DEPTH_ZERO_SELF_SIGNED_CERT:
    "the server's certificate is not signed by the kubeconfig's certificate-authority",
  SELF_SIGNED_CERT_IN_CHAIN:
    "the server's certificate is not signed by the kubeconfig's certificate-authority",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    "the server's certificate is not signed by the kubeconfig's certificate-authority",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    "the server's certificate is not signed by the kubeconfig's certificate-authority",
  CERT_HAS_EXPIRED: "the server's certificate has expired",
  ERR_TLS_CERT_ALTNAME_INVALID:
    "the server's certificate does not name the host in the kubeconfig's server URL",
  EPROTO: 'TLS handshake failed (is the server URL https:// on a plain HTTP port, or the reverse?)',
};

/** Whether `err` (from {@link HttpTransport.get}) is a TLS failure that will not pass by waiting. */
export function isTlsFailure(err: unknown): boolean {
  const code = ((err as { cause?: { code?: unknown } }).cause?.code ?? '') as string;
  return typeof code === 'string' && Object.hasOwn(TLS_HINTS, code);
}

function describeNetworkError(err: unknown, origin: string): string {
  const code = (err as { code?: unknown } | null)?.code;
  const hint = typeof code === 'string' && Object.hasOwn(TLS_HINTS, code) ? ` (${TLS_HINTS[code]})` : '';
  return `cannot reach the Kubernetes API server at ${origin}: ${errorText(err)}${hint}`;
}

/**
 * Reads a whole response body, up to `maxBytes` (then rejects: a list page or a Status is far smaller). Rejects
 * with a {@link TransportError} (`'network'`) if the connection breaks on the way.
 */
export function readBody(res: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    res.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length > maxBytes) {
        res.destroy(new TransportError('network', `response larger than ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => resolve(Buffer.concat(chunks, length)));
    res.on('error', (err) =>
      reject(
        err instanceof TransportError
          ? err
          : new TransportError('network', `the response broke off: ${errorText(err)}`, { cause: err }),
      ),
    );
    res.on('close', () => {
      if (!res.complete) reject(new TransportError('network', 'the response broke off'));
    });
  });
}
