/**
 * What went wrong, as a discriminant: `'usage'` — the command line or the configuration it names is wrong (fix
 * the invocation); `'missing-backend'` — the package for a target's scheme is not installed; `'unavailable'` —
 * the source could not be reached or refused the credentials; `'timeout'` — nothing usable within `--timeout`;
 * `'failed'` — the source answered with an error (a failing read, a registration refused or lost).
 */
export type CliErrorKind = 'usage' | 'missing-backend' | 'unavailable' | 'timeout' | 'failed';

/** The exit statuses of `sdkit`: 0 success, 1 the source failed (retrying may help), 2 a usage error. */
export const EXIT_CODES = Object.freeze({ ok: 0, failure: 1, usage: 2, interrupted: 130 });

/**
 * An error `sdkit` reports as one line on stderr (`sdkit: <message>`) and turns into its exit status
 * ({@link exitCodeOf}). Its message never contains a credential.
 */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    /** Why, as a discriminant (see {@link CliErrorKind}). */
    readonly kind: CliErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A {@link CliError} of kind `'usage'`: the command line is wrong. */
export function usageError(message: string): CliError {
  return new CliError('usage', message);
}

/** The exit status for `kind`: 2 for usage errors, 1 for everything else. */
export function exitCodeOf(kind: CliErrorKind): number {
  return kind === 'usage' ? EXIT_CODES.usage : EXIT_CODES.failure;
}
