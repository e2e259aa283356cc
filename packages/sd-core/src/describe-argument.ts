/**
 * A short description of a bad argument for the endpointer's error messages: `null`, `an array`, strings quoted
 * after their type, numbers and booleans with their value, anything else by its `typeof`.
 * @internal
 */
export function describeArgument(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `string ${JSON.stringify(value)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${value}`;
  return typeof value;
}
