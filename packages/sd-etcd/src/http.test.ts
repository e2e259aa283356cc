/**
 * The portable entry `@sdkit/sd-etcd/http` must import nothing Node-only, through any of its imports: this walks
 * its import graph from the sources (and sd-core's), and checks every module reached.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as portable from './http.js';

const here = dirname(fileURLToPath(import.meta.url));
const coreSrc = resolve(here, '../../sd-core/src');

/** Every sdkit module `entry` reaches, and every bare package it imports. */
function importGraph(entry: string): { modules: Map<string, string>; packages: Set<string> } {
  const modules = new Map<string, string>();
  const packages = new Set<string>();
  const visit = (file: string): void => {
    if (modules.has(file)) return;
    const code = readFileSync(file, 'utf8');
    modules.set(file, code);
    // Type-only imports vanish at runtime; everything else is followed.
    for (const m of code.matchAll(/^(?:import|export)\s+(?!type\s)[^;]*?from\s+'([^']+)'/gms)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) visit(join(dirname(file), spec.replace(/\.js$/, '.ts')));
      else if (spec === '@sdkit/sd-core') visit(join(coreSrc, 'index.ts'));
      else packages.add(spec);
    }
  };
  visit(entry);
  return { modules, packages };
}

describe('@sdkit/sd-etcd/http (the portable entry)', () => {
  const { modules, packages } = importGraph(join(here, 'http.ts'));

  it('reaches only portable packages: no etcd3, no grpc, no node: modules', () => {
    // @opentelemetry/api (sd-core's telemetry) is portable: it keeps its globals on `globalThis` and imports nothing;
    // test/runtimes bundles it for Deno, Bun and workerd with esbuild's neutral platform, where a Node built-in fails.
    expect([...packages].sort()).toEqual(['@opentelemetry/api', 'rxjs', 'sorted-btree']);
  });

  it('uses no Node-only global in any module it reaches', () => {
    expect(modules.size).toBeGreaterThan(10);
    const offenders: string[] = [];
    for (const [file, code] of modules) {
      // Comments and string literals may mention them; code may not.
      const stripped = code
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/^\s*\/\/.*$/gm, '')
        .replace(/'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"/g, "''");
      if (/\bBuffer\b|\brequire\(|\b__dirname\b|\bsetImmediate\b|\bprocess\.(?!emitWarning)/.test(stripped)) {
        offenders.push(file);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('exports what the portable contract names', () => {
    expect(typeof portable.createEtcdClient).toBe('function');
    expect(typeof portable.EtcdInstancer).toBe('function');
    expect(typeof portable.EtcdRegistrar).toBe('function');
    expect(typeof portable.codecs.auto.decode).toBe('function');
  });

  it('createEtcdClient there takes no gRPC option: tls is a TypeError naming fetch', async () => {
    await expect(
      portable.createEtcdClient({ endpoints: ['https://127.0.0.1:2379'], tls: {} } as never),
    ).rejects.toThrow(TypeError);
  });
});
