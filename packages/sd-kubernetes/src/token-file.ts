import { readFile, stat } from 'node:fs/promises';

/**
 * A bearer token kept in a file that something else rotates: a pod's service-account token (the kubelet
 * replaces the projected token well before it expires, by swapping a symlink) or a kubeconfig user's
 * `tokenFile`.
 *
 * Contract: {@link TokenFile.read} returns the file's current token (trimmed). Every call checks the file's
 * identity and times (`stat`, following symlinks: inode, size, mtime, ctime) and reads it again whenever they
 * changed, so a rotated token is used from the next request on; an unchanged file is not read again.
 * {@link TokenFile.invalidate} forces the next call to read (after a 401: the token may have been replaced within
 * the timestamp granularity). `@kubernetes/client-node` 1.4 re-reads the token of its in-cluster user (a `tokenFile`
 * auth provider) at most once a minute, and ignores a kubeconfig user's `tokenFile` (it reads a `token-file` key
 * instead, once, when the kubeconfig is loaded); this replaces both.
 */
export class TokenFile {
  /** The file's path, absolute. */
  readonly path: string;
  #token: string | undefined;
  #stamp: string | undefined;

  constructor(path: string) {
    this.path = path;
  }

  /**
   * The current token. Rejects with an Error naming the path (never the contents) when the file cannot be read
   * or holds no token.
   */
  async read(): Promise<string> {
    let stamp: string;
    try {
      const s = await stat(this.path, { bigint: true });
      stamp = `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
    } catch (err) {
      throw new Error(`cannot read the token file ${JSON.stringify(this.path)}: ${codeOf(err)}`, {
        cause: err,
      });
    }
    if (stamp === this.#stamp && this.#token !== undefined) return this.#token;
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      throw new Error(`cannot read the token file ${JSON.stringify(this.path)}: ${codeOf(err)}`, {
        cause: err,
      });
    }
    const token = text.trim();
    if (token === '' || /[\r\n]/.test(token)) {
      this.#token = undefined;
      this.#stamp = undefined;
      throw new Error(
        `the token file ${JSON.stringify(this.path)} holds no token (${token === '' ? 'empty' : 'more than one line'})`,
      );
    }
    this.#token = token;
    this.#stamp = stamp;
    return token;
  }

  /** Makes the next {@link read} read the file whatever its times say. */
  invalidate(): void {
    this.#stamp = undefined;
  }
}

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
}
