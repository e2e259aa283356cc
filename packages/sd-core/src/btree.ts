import { createRequire } from 'node:module';

// Internal: sorted-btree's copy-on-write B+ tree, the sorted structure behind InstanceCache and the Endpointer.
// The package is CommonJS with `exports.default`; ESM default-import interop differs between Node (which hands
// over `module.exports`) and bundlers or vitest (which unwrap `default`), so it is required: the same class
// everywhere.

/** A sorted map from string keys, with O(log n) updates and an O(1) copy-on-write `clone()`. */
export const BTree = (createRequire(import.meta.url)('sorted-btree') as typeof import('sorted-btree'))
  .default;
/** An instance of {@link BTree}. */
export type BTree<K, V> = InstanceType<typeof BTree<K, V>>;

/** Code-unit order of strings, the order of every sorted list in sdkit. */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
