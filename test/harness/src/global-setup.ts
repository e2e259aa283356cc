import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

/** Resolves a binary from an env var (path) or PATH; undefined if not found / not executable. */
function findBinary(envVar: string, name: string): string | undefined {
  const fromEnv = process.env[envVar];
  const candidates = fromEnv
    ? [isAbsolute(fromEnv) || fromEnv.includes('/') ? fromEnv : '', ...pathCandidates(fromEnv)]
    : pathCandidates(name);
  for (const candidate of candidates) {
    if (!candidate) continue;
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

function pathCandidates(name: string): string[] {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter(Boolean)
    .map((dir) => join(dir, name));
}

/**
 * vitest globalSetup for the integration project: fails the run, with instructions, when etcd or etcdctl is
 * missing — integration tests never skip silently.
 */
export default function setup(): void {
  const missing: string[] = [];
  if (!findBinary('ETCD_BIN', 'etcd'))
    missing.push(`etcd (${process.env.ETCD_BIN ? `ETCD_BIN=${process.env.ETCD_BIN}` : 'not on PATH'})`);
  if (!findBinary('ETCDCTL_BIN', 'etcdctl')) {
    missing.push(
      `etcdctl (${process.env.ETCDCTL_BIN ? `ETCDCTL_BIN=${process.env.ETCDCTL_BIN}` : 'not on PATH'})`,
    );
  }
  if (missing.length > 0) {
    throw new Error(
      `Integration tests need a real etcd, but these were not found: ${missing.join(', ')}.\n` +
        'Install them (Debian/Ubuntu): sudo apt-get install -y etcd-server etcd-client\n' +
        '  or run: node test/harness/ensure-tools.mjs etcd\n' +
        'or point ETCD_BIN / ETCDCTL_BIN at the binaries (etcd v3.4+, e.g. from https://github.com/etcd-io/etcd/releases).',
    );
  }
}
