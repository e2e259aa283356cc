/**
 * One-file ESM bundles of the runtime-side scenario scripts (esbuild), for all three runtimes.
 * @module
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { workspaceRoot } from './workspace-root.js';

const scriptsDir = fileURLToPath(new URL('./scripts/', import.meta.url));

/** Which scenarios a bundle runs: the plain-`fetch` stand-in, or sdkit's `@sdkit/sd-etcd/http`. */
export type Implementation = 'standin' | 'sdkit';

/** Where a bundle runs: a command line (Deno, Bun) or a module worker (workerd). */
export type BundleHost = 'cli' | 'worker';

const IMPLEMENTATION_MODULES: Readonly<Record<Implementation, string>> = {
  standin: './standin.ts',
  sdkit: './sdkit.ts',
};

function bundleEntry(implementation: Implementation, host: BundleHost): string {
  const scenarios = `import { ${implementation} as scenarios } from '${IMPLEMENTATION_MODULES[implementation]}';`;
  return host === 'cli'
    ? `import { runCli } from './cli-host.ts';\n${scenarios}\nvoid runCli(scenarios);\n`
    : `import { scenarioWorker } from './worker-host.ts';\n${scenarios}\nexport default scenarioWorker(scenarios);\n`;
}

/**
 * Throws when a workspace package's `dist` file in the bundle is older than its source: the bundle would test
 * stale code.
 */
function checkFresh(inputs: readonly string[]): void {
  const stale: string[] = [];
  for (const input of inputs) {
    const m = /^(packages\/[^/]+)\/dist\/(.+)\.js$/.exec(input);
    if (!m) continue;
    const source = join(workspaceRoot, m[1]!, 'src', `${m[2]}.ts`);
    try {
      if (statSync(source).mtimeMs > statSync(join(workspaceRoot, input)).mtimeMs) stale.push(input);
    } catch {}
  }
  if (stale.length > 0) {
    throw new Error(
      `the runtime tests bundle the built packages, and these are older than their sources: ${stale.join(', ')}. ` +
        'Run `pnpm turbo run build --filter=@sdkit/test-runtimes...` (or `pnpm build`) first.',
    );
  }
}

/**
 * Bundles the scenarios of `implementation` for `host` into one ESM file `outfile` (esbuild, platform `neutral`:
 * a Node built-in anywhere in the graph fails the build). Workspace packages resolve to their built `dist`, as a
 * user's bundler would see them; a missing or stale `dist` throws, saying to build. Returns `outfile`.
 */
export function bundleScenarios(implementation: Implementation, host: BundleHost, outfile: string): string {
  let result: ReturnType<typeof buildSync<{ metafile: true }>>;
  try {
    result = buildSync({
      stdin: {
        contents: bundleEntry(implementation, host),
        resolveDir: scriptsDir,
        sourcefile: `${implementation}-${host}-entry.ts`,
        loader: 'ts',
      },
      absWorkingDir: workspaceRoot,
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      mainFields: ['module', 'main'],
      conditions: ['workerd', 'worker', 'browser'],
      target: 'es2022',
      outfile,
      metafile: true,
      logLevel: 'silent',
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const hint = /Could not resolve "@sdkit\//.test(message)
      ? '\nThe runtime tests bundle the built packages: run `pnpm turbo run build --filter=@sdkit/test-runtimes...` (or `pnpm build`) first.'
      : '';
    throw new Error(`bundling the ${implementation} scenarios for ${host} failed: ${message}${hint}`);
  }
  checkFresh(Object.keys(result.metafile.inputs));
  return outfile;
}
