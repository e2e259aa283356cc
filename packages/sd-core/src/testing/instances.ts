import type { Instance } from '../types.js';

/**
 * Builds an instance whose key is its address, as a `FixedInstancer` does with a `"host:port"` string.
 * `metadata` is included only when given. The result is frozen.
 * @throws TypeError if `address` is empty.
 */
export function instance(address: string, metadata?: Readonly<Record<string, unknown>>): Instance {
  if (typeof address !== 'string' || address === '') {
    throw new TypeError(`instance: address must be a non-empty string (got ${JSON.stringify(address)})`);
  }
  return Object.freeze(
    metadata === undefined ? { key: address, address } : { key: address, address, metadata },
  );
}

/** `instances('a:1', 'b:1')` is `[instance('a:1'), instance('b:1')]`, in the order given. */
export function instances(...addresses: string[]): Instance[] {
  return addresses.map((address) => instance(address));
}

/** @internal Turns `"host:port"` strings into instances; instances pass through unchanged. */
export function toInstance(item: Instance | string): Instance {
  return typeof item === 'string' ? instance(item) : item;
}
