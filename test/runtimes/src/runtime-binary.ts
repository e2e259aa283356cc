/**
 * Where the Deno, Bun and workerd binaries are: the npm packages `deno`, `bun` and `workerd`, through their
 * per-platform packages, so no install script has to run.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** The runtimes this package runs. */
export type RuntimeName = 'deno' | 'bun' | 'workerd';

/** A runtime binary that answered `--version`. */
export interface RuntimeBinary {
  readonly runtime: RuntimeName;
  readonly path: string;
  /** First line of `--version`. */
  readonly version: string;
}

interface BinarySpec {
  readonly title: string;
  readonly envVar: string;
  /** The npm package (a devDependency of this package) whose optional dependencies carry the binaries. */
  readonly npmPackage: string;
  /** The per-platform package for `platform` and `arch` (one of {@link PLATFORMS}), in the npm package's naming. */
  readonly platformPackage: (platform: string, arch: string) => string;
  /** The binary's path inside its platform package. */
  readonly binPath: string;
}

/** The `platform-arch`s the runtime tests run on. */
const PLATFORMS: ReadonlySet<string> = new Set(['linux-x64', 'linux-arm64', 'darwin-x64', 'darwin-arm64']);

const BINARIES: Readonly<Record<RuntimeName, BinarySpec>> = {
  // @deno/linux-x64-glibc, @deno/darwin-arm64, …
  deno: {
    title: 'Deno',
    envVar: 'DENO_BIN',
    npmPackage: 'deno',
    platformPackage: (platform, arch) => `@deno/${platform}-${arch}${platform === 'linux' ? '-glibc' : ''}`,
    binPath: 'deno',
  },
  // @oven/bun-linux-x64, @oven/bun-darwin-aarch64, …
  bun: {
    title: 'Bun',
    envVar: 'BUN_BIN',
    npmPackage: 'bun',
    platformPackage: (platform, arch) => `@oven/bun-${platform}-${arch === 'arm64' ? 'aarch64' : arch}`,
    binPath: 'bin/bun',
  },
  // @cloudflare/workerd-linux-64, @cloudflare/workerd-darwin-arm64, …
  workerd: {
    title: 'workerd',
    envVar: 'WORKERD_BIN',
    npmPackage: 'workerd',
    platformPackage: (platform, arch) => `@cloudflare/workerd-${platform}-${arch === 'x64' ? '64' : arch}`,
    binPath: 'bin/workerd',
  },
};

const require = createRequire(import.meta.url);
const found = new Map<RuntimeName, RuntimeBinary>();

function howToGet(spec: BinarySpec, platformPackage: string | undefined): string {
  const carrier = platformPackage
    ? `its platform package ${platformPackage} carries the binary`
    : `it has no binary for ${process.platform}-${process.arch} here`;
  return (
    `Get it with \`pnpm install\` at the workspace root: @sdkit/test-runtimes depends on the npm package ` +
    `\`${spec.npmPackage}\`, and ${carrier} (no install script needs to run). ` +
    `Or point ${spec.envVar} at a ${spec.title} binary.`
  );
}

/**
 * The binary of `runtime`: `$DENO_BIN` / `$BUN_BIN` / `$WORKERD_BIN` if set, else the one in the npm package's
 * per-platform package (resolved from this package, bypassing the npm package's `bin` wrapper, so the process
 * tests start and kill is the runtime itself). Throws, saying how to get it, when there is none or it does not
 * run. Checked once per process.
 */
export function runtimeBinary(runtime: RuntimeName): RuntimeBinary {
  const cached = found.get(runtime);
  if (cached) return cached;
  const spec = BINARIES[runtime];
  const platformPackage = PLATFORMS.has(`${process.platform}-${process.arch}`)
    ? spec.platformPackage(process.platform, process.arch)
    : undefined;
  let path = process.env[spec.envVar];
  if (!path) {
    if (!platformPackage) {
      throw new Error(`${spec.title} is needed by the runtime tests. ${howToGet(spec, undefined)}`);
    }
    try {
      const npmPackageJson = require.resolve(`${spec.npmPackage}/package.json`);
      const platformJson = createRequire(npmPackageJson).resolve(`${platformPackage}/package.json`);
      path = join(dirname(platformJson), spec.binPath);
    } catch (err) {
      throw new Error(
        `${spec.title} is needed by the runtime tests, but ${platformPackage} is not installed ` +
          `(${err instanceof Error ? err.message.split('\n')[0] : String(err)}). ${howToGet(spec, platformPackage)}`,
      );
    }
  }
  let version: string;
  try {
    version = execFileSync(path, ['--version'], { encoding: 'utf8', timeout: 20_000, stdio: 'pipe' }).split(
      '\n',
    )[0]!;
  } catch (err) {
    throw new Error(
      `${spec.title} is needed by the runtime tests, but ${path} --version failed: ` +
        `${err instanceof Error ? err.message.split('\n')[0] : String(err)}. ${howToGet(spec, platformPackage)}`,
    );
  }
  const binary = { runtime, path, version: version.trim() };
  found.set(runtime, binary);
  return binary;
}
