import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from './fixtures/kubeconfig.js';
import { TokenFile } from './token-file.js';

const dirs: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of dirs.splice(0)) cleanup();
});

function dir(): string {
  const { dir, cleanup } = tempDir();
  dirs.push(cleanup);
  return dir;
}

describe('TokenFile', () => {
  it('reads the token, trimmed, and again only when the file changed', async () => {
    const path = join(dir(), 'token');
    writeFileSync(path, 'first\n');
    const file = new TokenFile(path);
    expect(await file.read()).toBe('first');
    expect(await file.read()).toBe('first');
    writeFileSync(path, 'second-and-longer');
    expect(await file.read()).toBe('second-and-longer');
  });

  it('follows a kubelet-style rotation (a symlinked ..data directory swapped atomically)', async () => {
    const root = dir();
    const writeVersion = (name: string, token: string) => {
      const d = join(root, name);
      rmSync(d, { recursive: true, force: true });
      mkdir(d);
      writeFileSync(join(d, 'token'), token);
      symlinkSync(name, join(root, '..data_tmp'));
      renameSync(join(root, '..data_tmp'), join(root, '..data'));
    };
    writeVersion('v1', 'token-one');
    symlinkSync('..data/token', join(root, 'token'));
    const file = new TokenFile(join(root, 'token'));
    expect(await file.read()).toBe('token-one');
    writeVersion('v2', 'token-two'); // same size, maybe the same mtime: the inode differs
    expect(await file.read()).toBe('token-two');
  });

  it('reads again after invalidate()', async () => {
    const path = join(dir(), 'token');
    writeFileSync(path, 'aaaa');
    const file = new TokenFile(path);
    expect(await file.read()).toBe('aaaa');
    file.invalidate();
    expect(await file.read()).toBe('aaaa');
  });

  it('rejects naming the path, never the contents, for a missing or empty file', async () => {
    const path = join(dir(), 'token');
    await expect(new TokenFile(path).read()).rejects.toThrow(/cannot read the token file .*token.*ENOENT/);
    writeFileSync(path, '  \n');
    await expect(new TokenFile(path).read()).rejects.toThrow(/holds no token \(empty\)/);
    writeFileSync(path, 'secret-one\nsecret-two\n');
    const err = await new TokenFile(path).read().catch((e: Error) => e);
    expect(String(err)).toMatch(/more than one line/);
    expect(String(err)).not.toMatch(/secret/);
  });
});

function mkdir(path: string): void {
  mkdirSync(path, { recursive: true });
}
