/**
 * Throws a `TypeError` naming every key of `options` that is not in `known`, with the right name where `hints`
 * knows the mistake (e.g. `{ ttl: 'ttlSeconds' }`). For option objects of constructors and factories, so that a
 * misspelt option fails at once instead of being silently ignored. `who` starts the message (`"EtcdRegistrar"`).
 * Symbol keys and non-objects are left to the caller's other checks.
 */
export function assertKnownOptions(
  who: string,
  options: object,
  known: readonly string[],
  hints: Readonly<Record<string, string>> = {},
): void {
  const unknown = Object.keys(options).filter((key) => !known.includes(key));
  if (unknown.length === 0) return;
  const named = unknown.map((key) => {
    const hint = Object.hasOwn(hints, key) ? hints[key] : undefined;
    return hint === undefined
      ? JSON.stringify(key)
      : `${JSON.stringify(key)} (did you mean ${JSON.stringify(hint)}?)`;
  });
  throw new TypeError(
    `${who}: unknown option${unknown.length > 1 ? 's' : ''} ${named.join(', ')}; the options are ${known.join(', ')}`,
  );
}
