#!/usr/bin/env node
// Makes sure the Node versions the tests run on are at hand: each official build comes from npm
// (`node-<platform>-<arch>@<version>`, the package the `node` package installs), and only its `bin/node` is kept in
// ~/.cache/sdkit/node/<version>/bin (or $XDG_CACHE_HOME/sdkit/…). Plain Node, no dependencies.
//
//   node test/node-versions/ensure-node.mjs [version…]   prints "<version> <path of node>" per version
//                                                        (default: every version in versions.json)
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** versions.json: `suite` (the whole test suite runs on these too) and `packaging` (packed packages are loaded). */
export const versions = JSON.parse(readFileSync(new URL('./versions.json', import.meta.url), 'utf8'));

/** Where Node builds are kept: ~/.cache/sdkit/node (or $XDG_CACHE_HOME/sdkit/node). */
export const cacheDir = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'sdkit', 'node');

/** The npm package that carries the official Node build for this machine. */
function buildPackage() {
  const platform = { linux: 'linux', darwin: 'darwin' }[process.platform];
  if (!platform || !['x64', 'arm64'].includes(process.arch)) {
    throw new Error(
      `ensure-node: no Node build package for ${process.platform}-${process.arch} (linux and darwin, x64 and arm64 only).`,
    );
  }
  return `node-${platform}-${process.arch}`;
}

function versionOf(bin) {
  try {
    return execFileSync(bin, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/** The path of Node `version`'s binary, installing it from npm into the cache first if needed. */
export function ensureNode(version) {
  const home = join(cacheDir, version);
  const bin = join(home, 'bin', 'node');
  if (existsSync(bin) && versionOf(bin) === `v${version}`) return bin;

  const spec = `${buildPackage()}@${version}`;
  console.error(`ensure-node: installing Node ${version} from npm (${spec}) into ${home}`);
  mkdirSync(cacheDir, { recursive: true });
  const staging = mkdtempSync(join(cacheDir, `.${version}-`));
  try {
    execFileSync(
      'npm',
      ['install', '--no-save', '--no-audit', '--no-fund', '--ignore-scripts', '--prefix', staging, spec],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const installed = join(staging, 'node_modules', buildPackage(), 'bin', 'node');
    if (versionOf(installed) !== `v${version}`) {
      throw new Error(`ensure-node: ${spec} did not give a working node ${version} at ${installed}`);
    }
    const kept = join(staging, 'keep');
    mkdirSync(join(kept, 'bin'), { recursive: true });
    renameSync(installed, join(kept, 'bin', 'node'));
    chmodSync(join(kept, 'bin', 'node'), 0o755);
    rmSync(home, { recursive: true, force: true });
    try {
      renameSync(kept, home);
    } catch (err) {
      // Another process installed the same version meanwhile: use its copy.
      if (versionOf(bin) !== `v${version}`) throw err;
    }
  } catch (err) {
    throw new Error(
      `ensure-node: could not install Node ${version} (${spec}) from npm: ${err.message}\n` +
        '  It needs the npm registry; with a Node build at hand, put it at ' +
        `${bin} instead.`,
    );
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return bin;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const wanted = process.argv.slice(2);
  const list = wanted.length > 0 ? wanted : [...new Set([...versions.suite, ...versions.packaging])];
  try {
    for (const version of list) console.log(`${version} ${ensureNode(version)}`);
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
