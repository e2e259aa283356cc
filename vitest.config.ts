import { defineConfig } from 'vitest/config';

// One vitest run for the whole workspace: unit tests (no servers) and integration tests (real etcd, gRPC…).
// Sources are resolved through the "@sdkit/source" export condition, so tests need no build.
const conditions = ['@sdkit/source', 'node', 'import', 'module', 'default'];
// vitest passes ssr.resolve.conditions to the workers as `node --conditions …`; with 'import' among them Node's
// require() picks packages' ESM entries (e.g. require('long') in protobufjs fails, so etcd3 decodes int64 lease ids
// as imprecise numbers). Vite adds 'import'/'require' per request itself, so only the custom condition is needed.
const nodeConditions = ['@sdkit/source', 'node', 'default'];
// Extra exclude globs, comma-separated (vitest's --exclude does not reach the projects); test/node-versions/run.mjs
// leaves test/packaging out of its runs this way.
const extraExclude = (process.env.SDKIT_TEST_EXCLUDE ?? '').split(',').filter(Boolean);

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions: nodeConditions, externalConditions: nodeConditions } },
  test: {
    reporters: ['default', './test/harness/src/summary-reporter.ts'],
    teardownTimeout: 10_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['packages/*/src/**/*.test.ts', 'examples/*/src/**/*.test.ts'],
          exclude: ['**/*.integration.test.ts', '**/node_modules/**', ...extraExclude],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: [
            'packages/*/src/**/*.integration.test.ts',
            'test/**/*.test.ts',
            'examples/*/src/**/*.integration.test.ts',
          ],
          exclude: ['**/node_modules/**', ...extraExclude],
          globalSetup: ['./test/harness/src/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // Real servers: keep the two cores for the processes under test. Runs after the unit project.
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
