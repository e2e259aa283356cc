/**
 * A fresh npm project outside the workspace that installs the packed tarballs, as a user's project would.
 * @module
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanPackageManagerEnv, describeResult, runCommand } from './run-command.js';
import type { WorkspacePackage } from './workspace-packages.js';

/** Packs `pkg` with `pnpm pack` (which turns `workspace:` ranges into versions) into `dir`; the tarball's path. */
export async function packPackage(pkg: WorkspacePackage, dir: string): Promise<string> {
  const result = await runCommand('pnpm', ['pack', '--pack-destination', dir], {
    cwd: pkg.dir,
    env: cleanPackageManagerEnv(),
    timeoutMs: 60_000,
  });
  const tarball = result.stdout
    .trim()
    .split('\n')
    .map((line) => line.trim())
    .findLast((line) => line.endsWith('.tgz'));
  if (result.code !== 0 || tarball === undefined) {
    throw new Error(`pnpm pack of ${pkg.manifest.name} failed (is pnpm on PATH?)\n${describeResult(result)}`);
  }
  return tarball;
}

/**
 * Makes `dir` an ESM npm project (`"type": "module"`) and installs `tarballs` and `extra` specs into it with npm
 * (`--prefer-offline`: third-party dependencies come from npm's cache or the registry).
 */
export async function installConsumer(
  dir: string,
  tarballs: readonly string[],
  extra: readonly string[],
): Promise<void> {
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify({ name: 'sdkit-consumer', version: '1.0.0', private: true, type: 'module' }, null, 2)}\n`,
  );
  const result = await runCommand(
    'npm',
    ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...tarballs, ...extra],
    { cwd: dir, env: cleanPackageManagerEnv(), timeoutMs: 180_000 },
  );
  if (result.code !== 0) throw new Error(`npm install in a fresh project failed\n${describeResult(result)}`);
}
