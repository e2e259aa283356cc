#!/usr/bin/env node
// Makes sure the integration tests have a real etcd: prints which etcd/etcdctl will be used and exits 0, or — when
// missing, running as root on a system with apt-get — installs Debian's etcd-server + etcd-client without letting
// the package start an etcd service, or exits 1 with instructions. Plain Node, no dependencies.
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

function find(envVar, name) {
  // Like the harness: $ENV_VAR (a path, or a name looked up on PATH) when set, else `name` on PATH.
  const wanted = process.env[envVar] || name;
  const candidates = wanted.includes('/')
    ? [wanted]
    : (process.env.PATH ?? '')
        .split(delimiter)
        .filter(Boolean)
        .map((dir) => join(dir, wanted));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

function version(bin, args) {
  try {
    return execFileSync(bin, args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, ETCDCTL_API: '3' },
    })
      .split('\n')[0]
      .trim();
  } catch {
    return 'version unknown';
  }
}

function report() {
  const etcd = find('ETCD_BIN', 'etcd');
  const etcdctl = find('ETCDCTL_BIN', 'etcdctl');
  if (etcd && etcdctl) {
    console.log(
      `ensure-etcd: using etcd ${etcd} (${version(etcd, ['--version'])}) and etcdctl ${etcdctl} (${version(etcdctl, ['version'])})`,
    );
    return true;
  }
  return false;
}

function listeningOn2379() {
  const r = spawnSync('ss', ['-ltn'], { encoding: 'utf8' });
  return r.status === 0 && /[:.]2379\s/.test(r.stdout);
}

function run(cmd, args, env) {
  console.log(`ensure-etcd: $ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
}

const instructions =
  'Integration tests need etcd and etcdctl (v3.4+).\n' +
  '  Debian/Ubuntu: sudo apt-get install -y etcd-server etcd-client\n' +
  '  Elsewhere: download a release from https://github.com/etcd-io/etcd/releases and put etcd and etcdctl on\n' +
  '  PATH, or set ETCD_BIN and ETCDCTL_BIN to their paths.';

if (report()) process.exit(0);

for (const envVar of ['ETCD_BIN', 'ETCDCTL_BIN']) {
  const value = process.env[envVar];
  if (value && !find(envVar, value)) {
    console.error(`ensure-etcd: ${envVar}=${value} is not an executable file (unset it to use PATH).`);
    console.error(instructions);
    process.exit(1);
  }
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const hasApt = existsSync('/usr/bin/apt-get');
if (!isRoot || !hasApt) {
  console.error(
    `ensure-etcd: etcd/etcdctl not found${!hasApt ? '' : ' (not root, so not installing them)'}.`,
  );
  console.error(instructions);
  process.exit(1);
}

console.log('ensure-etcd: etcd/etcdctl not found; installing Debian packages etcd-server and etcd-client.');
const wasListening = listeningOn2379();
// Keep the package from starting an etcd service on :2379: a policy-rc.d that forbids service starts (honoured
// by invoke-rc.d / deb-systemd-invoke), RUNLEVEL=1, and no interactive prompts.
const policy = '/usr/sbin/policy-rc.d';
const hadPolicy = existsSync(policy);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive', RUNLEVEL: '1' };
try {
  if (!hadPolicy)
    writeFileSync(policy, '#!/bin/sh\n# written by sdkit ensure-etcd\nexit 101\n', { mode: 0o755 });
  run('apt-get', ['update'], env);
  run('apt-get', ['install', '-y', '--no-install-recommends', 'etcd-server', 'etcd-client'], env);
} catch (err) {
  console.error(`ensure-etcd: ${err.message}`);
  console.error(instructions);
  process.exit(1);
} finally {
  if (!hadPolicy) rmSync(policy, { force: true });
}
if (!wasListening && listeningOn2379()) {
  console.error('ensure-etcd: warning: something now listens on :2379 (an etcd service?); stop it with');
  console.error('  systemctl stop etcd || service etcd stop');
}
if (report()) process.exit(0);
console.error('ensure-etcd: installed the packages but still cannot find etcd/etcdctl.');
console.error(instructions);
process.exit(1);
