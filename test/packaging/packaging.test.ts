/**
 * Packages that install anywhere. Every publishable package (every non-private one under packages/, found by
 * glob) is packed with `pnpm pack` and the tarballs are installed into a fresh npm project outside the workspace,
 * then checked as a user gets them: the packed manifests (no `workspace:` ranges left, engines, license, files),
 * types under node16, nodenext (ESM and CommonJS) and bundler resolution with declarations checked, ESM import
 * and require() of every entry under the Node running this test and every Node in
 * test/node-versions/versions.json's `packaging` (the lowest release of each line `engines` allows among them),
 * publint and are-the-types-wrong on each tarball.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { makeTempDir, type TempDir } from '@sdkit/test-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installConsumer, packPackage } from './src/consumer-project.js';
import {
  type ExportsByEntry,
  IMPORT_SCRIPT,
  REQUIRE_SCRIPT,
  RESOLUTION_MODES,
  type ResolutionMode,
  writeLoadScripts,
  writeTypeChecks,
} from './src/consumer-sources.js';
import { describeResult, runCommand } from './src/run-command.js';
import { isThirdParty, parseTscErrors } from './src/tsc-errors.js';
import { type Manifest, publishablePackages, readManifest, workspaceRoot } from './src/workspace-packages.js';

const here = import.meta.dirname;
const bin = (name: string) => join(here, 'node_modules', '.bin', name);
const packages = publishablePackages();
const entries = packages.flatMap((pkg) => pkg.entries);
const rootManifest = JSON.parse(readFileSync(join(workspaceRoot, 'package.json'), 'utf8')) as Manifest & {
  devDependencies: Record<string, string>;
};
const nodeVersions: { packaging: string[] } = JSON.parse(
  readFileSync(join(workspaceRoot, 'test', 'node-versions', 'versions.json'), 'utf8'),
);
/** The Node running this test, then versions.json's `packaging`. */
const NODES = [
  process.version.slice(1),
  ...nodeVersions.packaging.filter((v) => `v${v}` !== process.version),
];

let temp: TempDir;
let consumer: string;
const tarballs = new Map<string, string>();
const nodeBins = new Map<string, string>([[process.version.slice(1), process.execPath]]);
let exportsByEntry: ExportsByEntry;

/** Installs the Node builds of versions.json's `packaging` (test/node-versions/ensure-node.mjs); their paths. */
async function ensureNodes(): Promise<void> {
  const script = join(workspaceRoot, 'test', 'node-versions', 'ensure-node.mjs');
  const result = await runCommand(process.execPath, [script, ...nodeVersions.packaging], {
    cwd: workspaceRoot,
    timeoutMs: 240_000,
  });
  if (result.code !== 0) throw new Error(`could not install the Node builds\n${describeResult(result)}`);
  for (const line of result.stdout.trim().split('\n')) {
    const [version, path] = line.split(' ');
    if (version && path) nodeBins.set(version, path);
  }
}

/** Runs a load script under `node`; the exports it printed, or the failure. */
async function load(node: string, script: string) {
  const result = await runCommand(node, [script, ...entries], { cwd: consumer, timeoutMs: 30_000 });
  return { result, loaded: result.code === 0 ? (JSON.parse(result.stdout) as ExportsByEntry) : undefined };
}

beforeAll(async () => {
  temp = await makeTempDir('packaging');
  const packDir = join(temp.path, 'tarballs');
  consumer = join(temp.path, 'consumer');
  mkdirSync(packDir);
  mkdirSync(consumer);

  // The tarballs hold dist/: build first (turbo: cached, seconds, when `pnpm test` has just built).
  const build = await runCommand(
    join(workspaceRoot, 'node_modules', '.bin', 'turbo'),
    ['run', 'build', '--output-logs=errors-only', ...packages.map((p) => `--filter=${p.manifest.name}`)],
    { cwd: workspaceRoot, env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' }, timeoutMs: 240_000 },
  );
  if (build.code !== 0) throw new Error(`build failed\n${describeResult(build)}`);

  const packAndInstall = async () => {
    for (const pkg of packages) tarballs.set(pkg.manifest.name, await packPackage(pkg, packDir));
    await installConsumer(
      consumer,
      [...tarballs.values()],
      [`@types/node@${rootManifest.devDependencies['@types/node']}`],
    );
  };
  await Promise.all([packAndInstall(), ensureNodes()]);

  writeLoadScripts(consumer);
  const { result, loaded } = await load(process.execPath, IMPORT_SCRIPT);
  if (!loaded) throw new Error(`importing the installed packages failed\n${describeResult(result)}`);
  exportsByEntry = loaded;
  writeTypeChecks(consumer, exportsByEntry);
}, 600_000);

afterAll(async () => {
  await temp?.remove();
});

it('finds the publishable packages under packages/', () => {
  expect(packages.map((p) => p.manifest.name)).toEqual(
    expect.arrayContaining(['@sdkit/sd-core', '@sdkit/lb', '@sdkit/sd-etcd']),
  );
});

describe.each(packages)('$manifest.name', (pkg) => {
  const installedDir = () => join(consumer, 'node_modules', pkg.manifest.name);
  const installed = () => readManifest(installedDir());

  it('installed from its tarball, with every sdkit dependency from the tarballs too (none from the registry)', () => {
    const lock = JSON.parse(readFileSync(join(consumer, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { resolved?: string }>;
    };
    const sdkit = Object.entries(lock.packages).filter(([path]) => /node_modules\/@sdkit\//.test(path));
    expect(sdkit.length).toBeGreaterThanOrEqual(packages.length);
    for (const [path, entry] of sdkit) expect(entry.resolved, path).toMatch(/^file:/);
    expect(installed().version).toBe(pkg.manifest.version);
  });

  it('has a publishable manifest: plain version ranges, the root engines, license, public access', () => {
    const manifest = installed();
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies'] as const) {
      for (const [dep, range] of Object.entries(manifest[field] ?? {})) {
        expect(range, `${field}.${dep}`).not.toMatch(/^(workspace|catalog|link|file):/);
      }
    }
    expect(
      manifest.engines?.node,
      `engines.node must be the root package.json's (${rootManifest.engines?.node}) in every package`,
    ).toBe(rootManifest.engines?.node);
    expect(manifest.license).toBe('MIT');
    expect(
      existsSync(join(installedDir(), 'LICENSE')),
      'a LICENSE in the tarball (pnpm pack adds the root one when the package has none)',
    ).toBe(true);
    expect(existsSync(join(installedDir(), 'README.md')), 'a README.md in the package directory').toBe(true);
    expect(
      manifest.publishConfig?.access,
      'scoped packages publish as restricted unless access is public',
    ).toBe('public');
    expect(manifest.sideEffects).toBeDefined();
  });

  it('ships every file its exports name, and no tests or fixtures', () => {
    const targets: string[] = [];
    const collect = (value: unknown) => {
      if (typeof value === 'string') targets.push(value);
      else if (value && typeof value === 'object') for (const v of Object.values(value)) collect(v);
    };
    collect(installed().exports);
    expect(targets.length).toBeGreaterThan(0);
    for (const target of targets) expect(existsSync(join(installedDir(), target)), target).toBe(true);
    const files = (readdirSync(installedDir(), { recursive: true }) as string[]).map((f) =>
      f.replaceAll('\\', '/'),
    );
    expect(files.filter((f) => /\.test\.|(^|\/)fixtures(\/|$)/.test(f))).toEqual([]);
  });

  it('installs its commands (bin): each a node script that npm linked into node_modules/.bin', () => {
    const { bin: bins = {} } = installed();
    const commands = typeof bins === 'string' ? { [pkg.manifest.name.split('/').pop()!]: bins } : bins;
    for (const [command, file] of Object.entries(commands)) {
      expect(readFileSync(join(installedDir(), file), 'utf8'), file).toMatch(/^#!\/usr\/bin\/env node\n/);
      expect(existsSync(join(consumer, 'node_modules', '.bin', command)), `.bin/${command}`).toBe(true);
    }
  });

  it('passes publint (strict: warnings count)', async () => {
    const result = await runCommand(bin('publint'), ['run', tarballs.get(pkg.manifest.name)!, '--strict'], {
      cwd: here,
      timeoutMs: 60_000,
    });
    expect(result.code, describeResult(result)).toBe(0);
    expect(result.stdout, describeResult(result)).toContain('All good!');
  });

  // cjs-resolves-to-esm is what an ESM-only package is: attw (TypeScript 5.6 inside) predates require() of ES
  // modules (Node ≥ 20.19, TypeScript ≥ 5.8 under nodenext). The require() tests below check it for real.
  it('passes are-the-types-wrong (every entry, every resolution; ESM-only by design)', async () => {
    const result = await runCommand(
      bin('attw'),
      [
        tarballs.get(pkg.manifest.name)!,
        '--no-definitely-typed',
        '--ignore-rules',
        'cjs-resolves-to-esm',
        '--no-color',
        '--no-emoji',
        '--format',
        'table-flipped',
      ],
      { cwd: here, timeoutMs: 60_000 },
    );
    expect(result.code, describeResult(result)).toBe(0);
  });
});

it.concurrent.each(Object.keys(RESOLUTION_MODES) as ResolutionMode[])(
  'types: every runtime export of every entry has a type under %s resolution (strict, declarations checked)',
  async (mode) => {
    const result = await runCommand(
      process.execPath,
      [
        join(here, 'node_modules', 'typescript', 'bin', 'tsc'),
        '-p',
        `tsconfig.${mode}.json`,
        '--pretty',
        'false',
      ],
      { cwd: consumer, timeoutMs: 120_000 },
    );
    const errors = parseTscErrors(result.stdout);
    const own = errors.filter((e) => !isThirdParty(e));
    expect(own.map((e) => e.line)).toEqual([]);
    // Third-party declarations (e.g. @kubernetes/client-node's isomorphic-ws wants @types/ws) are theirs to fix;
    // any other failure of tsc is ours.
    if (result.code !== 0) expect(errors.length, describeResult(result)).toBeGreaterThan(0);
  },
  120_000,
);

it.concurrent.each(NODES)(
  'Node %s imports and require()s every entry, with the same exports, and exits by itself',
  async (version) => {
    const node = nodeBins.get(version)!;
    const imported = await load(node, IMPORT_SCRIPT);
    const required = await load(node, REQUIRE_SCRIPT);
    expect(imported.loaded, describeResult(imported.result)).toEqual(exportsByEntry);
    expect(required.loaded, describeResult(required.result)).toEqual(exportsByEntry);
    for (const entry of entries) expect(exportsByEntry[entry]?.length, entry).toBeGreaterThan(0);
  },
  60_000,
);

it('the checked entries are every export of every package', () => {
  expect(Object.keys(exportsByEntry).sort()).toEqual([...entries].sort());
  expect(entries).toContain('@sdkit/sd-etcd/http');
  expect(
    relative(workspaceRoot, consumer).startsWith('..'),
    'the consumer project is outside the workspace',
  ).toBe(true);
});
