/**
 * The auth token of an HTTP transport with a user: etcd's `/v3/auth/authenticate` answers a token that the
 * gateway wants raw in the `Authorization` header of every call, until etcd refuses it (`Unauthenticated`: it
 * expired) and it is renewed. Portable.
 * @internal
 * @packageDocumentation
 */
import type { Logger } from '@sdkit/sd-core';
import type { CallScope } from './http-transport.js';

/**
 * The token calls send: kept from one authentication to the next, obtained by one authentication shared by
 * every call that needs it meanwhile, and dropped when etcd refuses it so that the next call authenticates again.
 * A token obtained after {@link HttpAuth.close} is handed to the calls waiting for it but not kept.
 */
export class HttpAuth {
  readonly #authenticate: () => Promise<string>;
  readonly #logger: Logger;
  #token: string | undefined;
  #authenticating: Promise<string> | undefined;
  #closed = false;

  /**
   * @param authenticate - one authentication: resolves with the token etcd answered, or rejects with why not.
   * @param logger - where renewals are logged (never a token).
   */
  constructor(authenticate: () => Promise<string>, logger: Logger) {
    this.#authenticate = authenticate;
    this.#logger = logger;
  }

  /**
   * The token to send: the current one, or the one of the authentication in flight (started if none is). Rejects
   * with `scope.failure(undefined)` if `scope` ends first; the authentication goes on for the other callers.
   */
  async tokenFor(scope: CallScope): Promise<string> {
    if (this.#token !== undefined) return this.#token;
    this.#authenticating ??= this.#renew();
    const pending = this.#authenticating;
    if (scope.signal.aborted) throw scope.failure(undefined);
    return await new Promise<string>((resolve, reject) => {
      const onAbort = (): void => reject(scope.failure(undefined));
      scope.signal.addEventListener('abort', onAbort, { once: true });
      pending.then(
        (token) => {
          scope.signal.removeEventListener('abort', onAbort);
          resolve(token);
        },
        (error: unknown) => {
          scope.signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      );
    });
  }

  /** Forgets `token` (etcd refused it on a call of `path`), unless another call already replaced it. */
  drop(token: string, path: string): void {
    if (this.#token !== token) return;
    this.#token = undefined;
    this.#logger.debug({ path }, 'etcd refused the auth token (expired); authenticating again');
  }

  /** Forgets the token, and keeps none obtained later. */
  close(): void {
    this.#closed = true;
    this.#token = undefined;
  }

  async #renew(): Promise<string> {
    try {
      const token = await this.#authenticate();
      if (!this.#closed) this.#token = token;
      return token;
    } finally {
      this.#authenticating = undefined;
    }
  }
}
