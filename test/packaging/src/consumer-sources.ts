/**
 * The files a consumer project is checked with: scripts that load every entry (ESM import, CommonJS require) and
 * TypeScript sources that use every runtime export, with one tsconfig per module resolution.
 * @module
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Export names of each entry, as `{ "<specifier>": ["name", …] }`, sorted. */
export type ExportsByEntry = Record<string, string[]>;

/** The script that imports each argument and prints {@link ExportsByEntry} as JSON. */
export const IMPORT_SCRIPT = 'load-import.mjs';
/** The script that require()s each argument and prints {@link ExportsByEntry} as JSON. */
export const REQUIRE_SCRIPT = 'load-require.cjs';

/** Writes {@link IMPORT_SCRIPT} and {@link REQUIRE_SCRIPT} into `dir`. */
export function writeLoadScripts(dir: string): void {
  const body = (load: string) =>
    'const loaded = {};\n' +
    `for (const entry of process.argv.slice(2)) loaded[entry] = Object.keys(${load}).sort();\n` +
    'console.log(JSON.stringify(loaded));\n';
  writeFileSync(join(dir, IMPORT_SCRIPT), body('await import(entry)'));
  writeFileSync(join(dir, REQUIRE_SCRIPT), body('require(entry)'));
}

/**
 * How TypeScript resolves the packages in each checked setup. ESM code is checked under all three; CommonJS
 * code (`import x = require(…)`) only under nodenext, the one that models Node's require() of ES modules
 * (TypeScript ≥ 5.8; node16 stands for Node 16, which cannot).
 */
export const RESOLUTION_MODES = {
  node16: { module: 'node16', moduleResolution: 'node16', files: ['esm.ts'] },
  nodenext: { module: 'nodenext', moduleResolution: 'nodenext', files: ['esm.ts', 'cjs.cts'] },
  bundler: { module: 'preserve', moduleResolution: 'bundler', files: ['esm.ts'] },
} as const;

/** One of {@link RESOLUTION_MODES}' names. */
export type ResolutionMode = keyof typeof RESOLUTION_MODES;

/**
 * Writes esm.ts and cjs.cts, which name every runtime export of every entry (so an export without a type fails),
 * and tsconfig.<mode>.json per resolution mode: strict, declaration files checked too (`skipLibCheck: false`).
 */
export function writeTypeChecks(dir: string, exportsByEntry: ExportsByEntry): void {
  let esm = '';
  let cjs = '';
  Object.entries(exportsByEntry).forEach(([entry, names], i) => {
    const uses = `export const uses${i} = [${names.map((name) => `m${i}.${name}`).join(', ')}];\n`;
    esm += `import * as m${i} from '${entry}';\n${uses}`;
    cjs += `import m${i} = require('${entry}');\n${uses}`;
  });
  writeFileSync(join(dir, 'esm.ts'), esm);
  writeFileSync(join(dir, 'cjs.cts'), cjs);
  for (const [mode, { module, moduleResolution, files }] of Object.entries(RESOLUTION_MODES)) {
    const tsconfig = {
      compilerOptions: {
        module,
        moduleResolution,
        target: 'ES2022',
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
      },
      files,
    };
    writeFileSync(join(dir, `tsconfig.${mode}.json`), `${JSON.stringify(tsconfig, null, 2)}\n`);
  }
}
