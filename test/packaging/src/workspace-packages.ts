/**
 * The packages sdkit publishes: every package under packages/ that is not private.
 * @module
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The workspace's root directory. */
export const workspaceRoot: string = fileURLToPath(new URL('../../../', import.meta.url));

/** The part of a package.json these checks read. */
export interface Manifest {
  readonly name: string;
  readonly version: string;
  readonly private?: boolean;
  readonly license?: string;
  readonly engines?: { readonly node?: string };
  readonly exports?: Record<string, unknown>;
  readonly main?: string;
  readonly bin?: string | Record<string, string>;
  readonly sideEffects?: boolean | readonly string[];
  readonly publishConfig?: { readonly access?: string };
  readonly dependencies?: Record<string, string>;
  readonly peerDependencies?: Record<string, string>;
  readonly optionalDependencies?: Record<string, string>;
}

/** A publishable workspace package. */
export interface WorkspacePackage {
  /** Its directory, absolute. */
  readonly dir: string;
  readonly manifest: Manifest;
  /** Its import specifiers: `name` and `name/sub` for each `exports` key (only `name` if just `main`). */
  readonly entries: readonly string[];
}

/** Reads a package.json. */
export function readManifest(dir: string): Manifest {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
}

/** Every non-private package under packages/, sorted by name. */
export function publishablePackages(): WorkspacePackage[] {
  const base = join(workspaceRoot, 'packages');
  return readdirSync(base)
    .map((name) => join(base, name))
    .filter((dir) => existsSync(join(dir, 'package.json')))
    .map((dir) => ({ dir, manifest: readManifest(dir) }))
    .filter(({ manifest }) => manifest.private !== true)
    .map(({ dir, manifest }) => ({ dir, manifest, entries: entriesOf(manifest) }))
    .sort((a, b) => a.manifest.name.localeCompare(b.manifest.name));
}

function entriesOf(manifest: Manifest): string[] {
  const keys = Object.keys(manifest.exports ?? (manifest.main ? { '.': manifest.main } : {})).filter(
    (key) => key !== './package.json',
  );
  return keys.map((key) => (key === '.' ? manifest.name : `${manifest.name}/${key.replace(/^\.\//, '')}`));
}
