import type { Instancer, Logger, Registrar } from '@sdkit/sd-core';
import type { CliFlags, CommandName, FlagName } from './parse-command-line.js';
import type { CliTarget } from './parse-target.js';

/** What a backend gets to prepare a target. */
export interface BackendRequest {
  readonly command: CommandName;
  readonly target: CliTarget;
  readonly flags: CliFlags;
  /** `--dial-timeout`, when given. */
  readonly dialTimeoutMs: number | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Reads a text file named by a flag (`--password-file`). */
  readonly readTextFile: (path: string) => string;
  /** For the backend's clients and instancers (warnings go to stderr). */
  readonly logger: Logger;
}

/**
 * One discovery backend of the CLI: the schemes it serves and how it turns a target into an Instancer (through
 * its client's own target mapping, sd-core's `instancerForTarget`) and, if it can, a Registrar. Its package is
 * loaded with a dynamic `import()` of the package entry only when a target of its scheme is used, so the CLI
 * imports no backend up front. Adding one is a new `Backend` and a line in `BACKENDS` (backends.ts).
 */
export interface Backend {
  /** The URI schemes it serves, lower case (`etcd`, `etcd+http`). */
  readonly schemes: readonly string[];
  /** The package it loads, named in the error when that package is not installed. */
  readonly packageName: string;
  /** The connection flags it takes (besides the common ones); others are refused for its targets. */
  readonly flags: readonly FlagName[];
  /** Target forms for `--help` and error messages. */
  readonly forms: readonly string[];
  /** Whether `sdkit register` works on its targets. */
  readonly registers: boolean;
  /**
   * Checks the target and the flags and loads the package, before any I/O.
   * @throws a usage `CliError` for a malformed target or flags; a `'missing-backend'` one when the package is
   *   not installed.
   */
  prepare(request: BackendRequest): Promise<PreparedTarget>;
}

/** A checked target, not connected yet. */
export interface PreparedTarget {
  /** What will be followed, for humans: `etcd 127.0.0.1:2379 (gRPC), keys under "my-service/"`. */
  readonly description: string;
  /**
   * Said when the target has no instances, if there is a likely mistake to point at (etcd: a prefix without its
   * leading `/`).
   */
  readonly emptyHint: string | undefined;
  /**
   * Connects; resolves once the source has answered.
   * @throws a usage `CliError` for settings the backend refuses (an unreadable CA file), an `'unavailable'` one
   *   when the source cannot be reached or refuses the credentials.
   */
  connect(): Promise<ConnectedTarget>;
}

/** Options of {@link ConnectedTarget.registrar}. */
export interface RegistrationOptions {
  /** The lease TTL, in seconds (etcd's unit). */
  readonly ttlSeconds: number;
  readonly metadata: Readonly<Record<string, unknown>> | undefined;
}

/** A registration `sdkit register` keeps alive. */
export interface Registration {
  /** The key written. */
  readonly key: string;
  /** The value written. */
  readonly value: string;
  readonly registrar: Registrar;
}

/** A connected target; disposing it closes it. */
export interface ConnectedTarget extends Disposable {
  /** A new Instancer following the target; the caller stops it. */
  follow(): Instancer;
  /** A Registrar announcing `address` under the target; only where {@link Backend.registers}. */
  registrar?(address: string, options: RegistrationOptions): Registration;
  /** Closes the client: every instancer on it stops. Idempotent. */
  close(): void;
}
