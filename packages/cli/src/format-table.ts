import type { Instance } from '@sdkit/sd-core';
import { printable } from './printable.js';

/** The columns of `sdkit ls` and `sdkit watch`. */
export const TABLE_HEADER = Object.freeze(['KEY', 'ADDRESS', 'METADATA'] as const);

const GAP = '   ';

/** The cells of one instance: key, address, metadata as compact JSON (`''` when none); terminal-safe. */
export function instanceCells(instance: Instance): readonly [string, string, string] {
  const { metadata } = instance;
  const meta = metadata !== undefined && Object.keys(metadata).length > 0 ? JSON.stringify(metadata) : '';
  return [printable(instance.key), printable(instance.address), printable(meta)];
}

/**
 * The table of `instances` as lines (without newlines): the header, then one line per instance in the given
 * order, columns padded to their widest cell. With `width`, each line is cut to that many characters (ending in
 * `…`), so a terminal never wraps it.
 */
export function formatTable(instances: readonly Instance[], options: { width?: number } = {}): string[] {
  const rows = [TABLE_HEADER as readonly string[], ...instances.map(instanceCells)];
  const widths = [0, 1].map((c) => Math.max(...rows.map((r) => r[c]!.length)));
  const lines = rows.map((r) =>
    `${r[0]!.padEnd(widths[0]!)}${GAP}${r[1]!.padEnd(widths[1]!)}${GAP}${r[2]}`.trimEnd(),
  );
  return options.width === undefined ? lines : lines.map((l) => clipLine(l, options.width!));
}

/** `line` cut to `width` characters, ending in `…` when cut. */
export function clipLine(line: string, width: number): string {
  if (line.length <= width) return line;
  return width <= 1 ? line.slice(0, Math.max(0, width)) : `${line.slice(0, width - 1)}…`;
}
