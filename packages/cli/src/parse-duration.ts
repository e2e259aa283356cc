import { usageError } from './cli-error.js';

const UNITS_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION = /^(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h)?$/;

/**
 * Reads a duration given to `what` (`--timeout`, `$ETCDCTL_DIAL_TIMEOUT`) as etcdctl and kubectl take them: a number with a unit (`500ms`, `5s`,
 * `1.5m`, `1h`), or a bare number of seconds (`10`). Returns milliseconds (rounded up to whole ms), > 0.
 * @throws a usage {@link CliError} naming `what` and showing the accepted forms.
 */
export function parseDuration(what: string, text: string): number {
  const match = DURATION.exec(text.trim());
  const ms = match ? Math.ceil(Number(match[1]) * UNITS_MS[match[2] ?? 's']!) : Number.NaN;
  if (!(ms > 0) || !Number.isSafeInteger(ms)) {
    throw usageError(
      `${what} must be a positive duration such as 500ms, 5s, 1m or a number of seconds, got ${JSON.stringify(text)}`,
    );
  }
  return ms;
}

/**
 * Reads `--ttl`: a whole number of seconds (etcd's lease unit), `10` or `10s`, at least 1.
 * @throws a usage {@link CliError} otherwise.
 */
export function parseTtlSeconds(text: string): number {
  const match = /^(\d+)s?$/.exec(text.trim());
  const seconds = match ? Number(match[1]) : Number.NaN;
  if (!(seconds >= 1) || !Number.isSafeInteger(seconds)) {
    throw usageError(
      `--ttl must be a whole number of seconds, at least 1 (e.g. --ttl 10), got ${JSON.stringify(text)}`,
    );
  }
  return seconds;
}
