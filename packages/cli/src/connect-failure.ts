import { CliError } from './cli-error.js';

/**
 * The {@link CliError} for a backend client that could not be created: a usage error for settings it refused
 * (`TypeError`: an unreadable CA file, a bad endpoint) or a configuration it could not find (`reason: 'config'`,
 * e.g. no kubeconfig), else `'unavailable'` (unreachable, credentials refused). The backend's message is kept;
 * sdkit's backends never put a credential in one.
 */
export function connectFailure(err: unknown): CliError {
  if (err instanceof CliError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const reason = (err as { reason?: unknown } | null)?.reason;
  const kind = err instanceof TypeError || reason === 'config' ? 'usage' : 'unavailable';
  return new CliError(kind, message, { cause: err });
}
