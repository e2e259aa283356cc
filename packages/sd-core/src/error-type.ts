/** A short, low-cardinality code: what `error.type` may take from an error's `code`. */
const CODE = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * The `error.type` attribute sdkit's telemetry records for `error` (OpenTelemetry's convention: a low-cardinality
 * type or code): its `code` when that is a short string of letters, digits, `_`, `.` or `-` (Node's system errors:
 * `'ECONNREFUSED'`), else its `name` (`'TimeoutError'`, `'EtcdWatchError'`), else `'_OTHER'` (a non-Error).
 */
export function errorType(error: unknown): string {
  if (typeof error !== 'object' || error === null) return '_OTHER';
  const { code, name } = error as { code?: unknown; name?: unknown };
  if (typeof code === 'string' && CODE.test(code)) return code;
  return typeof name === 'string' && name !== '' ? name : '_OTHER';
}
