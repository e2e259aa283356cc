import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trackDir, untrackDir } from './cleanup.js';

/** A temp dir, tracked by the harness's safety net until `remove()`. */
export interface TempDir extends AsyncDisposable {
  readonly path: string;
  /** Removes it with everything in it and untracks it. Idempotent; also `[Symbol.asyncDispose]`. */
  remove(): Promise<void>;
}

/** Makes a tracked temp dir named `sdkit-<name>-…`. */
export async function makeTempDir(name: string): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), `sdkit-${name}-`));
  trackDir(path);
  let removing: Promise<void> | undefined;
  const remove = (): Promise<void> => {
    removing ??= rm(path, { recursive: true, force: true }).then(() => untrackDir(path));
    return removing;
  };
  return { path, remove, [Symbol.asyncDispose]: remove };
}
