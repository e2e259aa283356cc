/**
 * A short description of a bad argument for error messages: strings quoted, other primitives as they print,
 * objects by kind only (never their contents, which may hold credentials).
 * @internal
 */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || typeof value !== 'object') return String(value);
  if (typeof (value as { then?: unknown }).then === 'function') {
    return 'a Promise (did you forget `await` before createKubernetesClient(…)?)';
  }
  return Array.isArray(value) ? 'an array' : 'an object';
}

/**
 * The message of a caught error, to quote in one of ours: `message` (or `String(err)`), on one line, cut to 400
 * characters so that a pathological answer cannot flood a log line or an event.
 * @internal
 */
export function errorText(err: unknown): string {
  const text = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').trim();
  return text.length > 400 ? `${text.slice(0, 400)}…` : text;
}
