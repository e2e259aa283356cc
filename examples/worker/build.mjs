#!/usr/bin/env node
/**
 * Bundles the worker (src/worker.ts and what it imports) into one ES module for workerd:
 * `node build.mjs [outfile]`, default dist/worker.mjs. Workspace packages are taken from their TypeScript
 * sources (the `@sdkit/source` export condition), so nothing has to be built first; a Node built-in anywhere in
 * the graph fails the build (platform `neutral`).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const outfile = process.argv[2] ?? join(here, 'dist', 'worker.mjs');

await build({
  entryPoints: [join(here, 'src', 'worker.ts')],
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  mainFields: ['module', 'main'],
  conditions: ['@sdkit/source', 'workerd', 'worker', 'browser'],
  target: 'es2022',
  outfile,
  logLevel: 'warning',
});
