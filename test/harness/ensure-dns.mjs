#!/usr/bin/env node
// Makes sure the DNS integration tests have a real DNS server: prints which named/nsupdate will be used and exits 0,
// or — when missing, running as root on a system with apt-get — installs Debian's bind9 (named) and
// bind9-dnsutils (nsupdate) without letting the package start a DNS service, or exits 1 with instructions. Plain
// Node, no dependencies. Like the harness: $NAMED_BIN / $NSUPDATE_BIN, else PATH, else /usr/sbin and /usr/bin.
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

function find(envVar, name) {
  const wanted = process.env[envVar] || name;
  const candidates = wanted.includes('/')
    ? [wanted]
    : [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/bin'].map((dir) =>
        join(dir, wanted),
      );
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
    const r = spawnSync(bin, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return `${r.stdout}${r.stderr}`.split('\n')[0].trim() || 'version unknown';
  } catch {
    return 'version unknown';
  }
}

function report() {
  const named = find('NAMED_BIN', 'named');
  const nsupdate = find('NSUPDATE_BIN', 'nsupdate');
  if (named && nsupdate) {
    console.log(`ensure-dns: using named ${named} (${version(named, ['-v'])}) and nsupdate ${nsupdate}`);
    return true;
  }
  return false;
}

function run(cmd, args, env) {
  console.log(`ensure-dns: $ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
}

function listeningOn53() {
  try {
    return /[:.]53\s/.test(
      execFileSync('ss', ['-ltnu'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }),
    );
  } catch {
    return false;
  }
}

const instructions =
  'The DNS integration tests need BIND 9 (named) and nsupdate.\n' +
  '  Debian/Ubuntu: sudo apt-get install -y bind9 bind9-dnsutils (then: sudo systemctl disable --now named)\n' +
  '  Elsewhere: install BIND 9 from your package manager, or set NAMED_BIN and NSUPDATE_BIN to the binaries.';

if (report()) process.exit(0);

for (const envVar of ['NAMED_BIN', 'NSUPDATE_BIN']) {
  const value = process.env[envVar];
  if (value && !find(envVar, value)) {
    console.error(`ensure-dns: ${envVar}=${value} is not an executable file (unset it to use PATH).`);
    console.error(instructions);
    process.exit(1);
  }
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const hasApt = existsSync('/usr/bin/apt-get');
if (!isRoot || !hasApt) {
  console.error(
    `ensure-dns: named/nsupdate not found${!hasApt ? '' : ' (not root, so not installing them)'}.`,
  );
  console.error(instructions);
  process.exit(1);
}

console.log('ensure-dns: named/nsupdate not found; installing Debian packages bind9 and bind9-dnsutils.');
const wasListening = listeningOn53();
// Keep the package from starting a DNS service on :53: a policy-rc.d that forbids service starts (honoured by
// invoke-rc.d / deb-systemd-invoke), RUNLEVEL=1, and no interactive prompts. An existing policy-rc.d is left alone.
const policy = '/usr/sbin/policy-rc.d';
const hadPolicy = existsSync(policy);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive', RUNLEVEL: '1' };
try {
  if (!hadPolicy)
    writeFileSync(policy, '#!/bin/sh\n# written by sdkit ensure-dns\nexit 101\n', { mode: 0o755 });
  run('apt-get', ['update'], env);
  run('apt-get', ['install', '-y', '--no-install-recommends', 'bind9', 'bind9-dnsutils'], env);
} catch (err) {
  console.error(`ensure-dns: ${err.message}`);
  console.error(instructions);
  process.exit(1);
} finally {
  if (!hadPolicy) rmSync(policy, { force: true });
}
if (!wasListening && listeningOn53()) {
  console.error('ensure-dns: warning: something now listens on :53 (a named service?); stop it with');
  console.error('  systemctl disable --now named || service named stop');
}
if (report()) process.exit(0);
console.error('ensure-dns: installed the packages but still cannot find named/nsupdate.');
console.error(instructions);
process.exit(1);
