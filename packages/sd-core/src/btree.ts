import sortedBtree from 'sorted-btree';

// Internal: sorted-btree's copy-on-write B+ tree, the sorted structure behind InstanceCache and the Endpointer.
// The package is CommonJS with `exports.default`; what an ESM default import of it yields differs: Node and Deno
// hand over `module.exports` (the class is its `default`), bundlers, vitest and Bun unwrap `default` (the class
// itself). Both are accepted, so no runtime needs `createRequire` (Node-only).

type BTreeClass = typeof import('sorted-btree').default;
const loaded = sortedBtree as unknown as BTreeClass | { default: BTreeClass };

/** A sorted map from string keys, with O(log n) updates and an O(1) copy-on-write `clone()`. */
export const BTree: BTreeClass = typeof loaded === 'function' ? loaded : loaded.default;
/** An instance of {@link BTree}. */
export type BTree<K, V> = InstanceType<typeof BTree<K, V>>;

/** Code-unit order of strings, the order of every sorted list in sdkit. */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
