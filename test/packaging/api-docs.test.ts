/**
 * The API reference (`pnpm docs:api`, TypeDoc over every package under packages/, typedoc.json) builds with no
 * warning: every exported name documented, no link to a name the reference does not show, no public signature
 * naming a type that is not exported (typedoc.json treats warnings as errors).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir } from '@sdkit/test-harness';
import { expect, it } from 'vitest';
import { describeResult, runCommand } from './src/run-command.js';
import { publishablePackages, workspaceRoot } from './src/workspace-packages.js';

it('pnpm docs:api builds the API reference of every package with no warning', async () => {
  await using out = await makeTempDir('api-docs');
  const result = await runCommand(
    join(workspaceRoot, 'node_modules', '.bin', 'typedoc'),
    ['--out', out.path, '--logLevel', 'Warn'],
    { cwd: workspaceRoot, timeoutMs: 180_000 },
  );
  expect(result.code, describeResult(result)).toBe(0);
  expect(`${result.stdout}${result.stderr}`, describeResult(result)).not.toMatch(/\[(warning|error)\]/);
  expect(existsSync(join(out.path, 'index.html'))).toBe(true);
  for (const pkg of publishablePackages()) {
    const page = join(out.path, 'modules', `${pkg.manifest.name.replace('@', '_').replace('/', '_')}.html`);
    expect(existsSync(page), `${pkg.manifest.name}'s page (${page})`).toBe(true);
  }
}, 180_000);
