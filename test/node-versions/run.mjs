#!/usr/bin/env node
// Runs the whole test suite (`vitest run`) again under each Node version in versions.json's `suite` (the Node
// that runs this script has already run it in `pnpm test`). Each run has that Node first on PATH, so every child
// process the tests start with `node` or `process.execPath` runs on it too. test/packaging is left out of these
// runs: it loads the packed packages under every version in versions.json's `packaging` itself.
//
//   node test/node-versions/run.mjs [vitest args…]        e.g. --project unit
//   SDKIT_NODE_VERSIONS=24.21.0 node test/node-versions/run.mjs   other versions than versions.json's `suite`
//
// Exits 1 if any run failed (all versions run regardless), after one summary line per version.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureNode, versions } from './ensure-node.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const wanted = process.env.SDKIT_NODE_VERSIONS
  ? process.env.SDKIT_NODE_VERSIONS.split(',')
      .map((v) => v.trim())
      .filter(Boolean)
  : versions.suite;

const results = [];
for (const version of wanted) {
  let node;
  try {
    node = ensureNode(version);
  } catch (err) {
    console.error(err.message);
    results.push({ version, ok: false, seconds: 0, note: 'Node not installed' });
    continue;
  }
  console.log(`\nnode-versions: vitest run on Node ${version} (${node})`);
  const started = performance.now();
  const run = spawnSync(node, [vitest, 'run', ...process.argv.slice(2)], {
    cwd: root,
    stdio: 'inherit',
    env: {
      ...process.env,
      PATH: `${dirname(node)}:${process.env.PATH ?? ''}`,
      SDKIT_TEST_EXCLUDE: 'test/packaging/**',
    },
  });
  const seconds = (performance.now() - started) / 1000;
  const ok = run.status === 0;
  results.push({ version, ok, seconds, note: ok ? 'passed' : `failed (exit ${run.status ?? run.signal})` });
}

console.log('');
for (const r of results) {
  console.log(`node-versions: Node ${r.version}: ${r.note} in ${r.seconds.toFixed(0)} s`);
}
process.exit(results.every((r) => r.ok) ? 0 : 1);
