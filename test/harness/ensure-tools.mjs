#!/usr/bin/env node
// Makes sure the integration tests have the programs they run for real: etcd + etcdctl, BIND 9 (named) + nsupdate,
// and tmux (a real pseudo-terminal for the sdkit command). For each it prints which binaries will be used; when
// some are missing and this runs as root on a system with apt-get, it installs their Debian packages in one apt
// run (one `apt-get update`), without letting a package start its service; otherwise it exits 1 saying how to get
// them. Plain Node, no dependencies.
//
//   node test/harness/ensure-tools.mjs [etcd] [dns] [tmux]     (no names: all of them)
//
// Binaries are found as the harness finds them: $ENV_VAR (a path, or a name looked up on PATH) when the tool has
// one and it is set, else the name on PATH, else /usr/sbin and /usr/bin (Debian puts named in /usr/sbin).
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** What each tool needs: its binaries, the Debian packages that ship them, the port its service would take. */
const TOOLS = {
  etcd: {
    bins: [
      { envVar: 'ETCD_BIN', name: 'etcd', versionArgs: ['--version'] },
      { envVar: 'ETCDCTL_BIN', name: 'etcdctl', versionArgs: ['version'] },
    ],
    packages: ['etcd-server', 'etcd-client'],
    port: 2379,
    instructions:
      'Integration tests need etcd and etcdctl (v3.4+).\n' +
      '  Debian/Ubuntu: sudo apt-get install -y etcd-server etcd-client\n' +
      '  Elsewhere: download a release from https://github.com/etcd-io/etcd/releases and put etcd and etcdctl on\n' +
      '  PATH, or set ETCD_BIN and ETCDCTL_BIN to their paths.',
  },
  dns: {
    bins: [
      { envVar: 'NAMED_BIN', name: 'named', versionArgs: ['-v'] },
      { envVar: 'NSUPDATE_BIN', name: 'nsupdate' },
    ],
    packages: ['bind9', 'bind9-dnsutils'],
    port: 53,
    instructions:
      'The DNS integration tests need BIND 9 (named) and nsupdate.\n' +
      '  Debian/Ubuntu: sudo apt-get install -y bind9 bind9-dnsutils (then: sudo systemctl disable --now named)\n' +
      '  Elsewhere: install BIND 9 from your package manager, or set NAMED_BIN and NSUPDATE_BIN to the binaries.',
  },
  tmux: {
    bins: [{ name: 'tmux', versionArgs: ['-V'] }],
    packages: ['tmux'],
    instructions:
      'The terminal tests of the sdkit command need tmux.\n' +
      '  Debian/Ubuntu: sudo apt-get install -y tmux\n' +
      '  macOS: brew install tmux',
  },
};

/** The executable for `bin`, or undefined. */
function find(bin) {
  const wanted = (bin.envVar && process.env[bin.envVar]) || bin.name;
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/bin'];
  const candidates = wanted.includes('/') ? [wanted] : dirs.map((dir) => join(dir, wanted));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

function version(path, args) {
  const r = spawnSync(path, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ETCDCTL_API: '3' },
  });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0].trim() || 'version unknown';
}

/** Prints what `tool` will use and returns true, or returns false when one of its binaries is missing. */
function report(name) {
  const found = TOOLS[name].bins.map((bin) => [bin, find(bin)]);
  if (found.some(([, path]) => path === undefined)) return false;
  const parts = found.map(
    ([bin, path]) => `${bin.name} ${path}${bin.versionArgs ? ` (${version(path, bin.versionArgs)})` : ''}`,
  );
  console.log(`ensure-tools: ${name}: using ${parts.join(' and ')}`);
  return true;
}

function listening(port) {
  const r = spawnSync('ss', ['-ltnu'], { encoding: 'utf8' });
  return r.status === 0 && new RegExp(`[:.]${port}\\s`).test(r.stdout);
}

function fail(message, names) {
  console.error(`ensure-tools: ${message}`);
  for (const name of names) console.error(TOOLS[name].instructions);
  process.exit(1);
}

const asked = process.argv.slice(2);
for (const name of asked) {
  if (!Object.hasOwn(TOOLS, name))
    fail(`unknown tool ${JSON.stringify(name)}; known: ${Object.keys(TOOLS).join(', ')}`, []);
}
const names = asked.length > 0 ? asked : Object.keys(TOOLS);

// A variable naming a binary that is not there is a mistake to report, not something to install over.
for (const name of names) {
  for (const bin of TOOLS[name].bins) {
    const value = bin.envVar && process.env[bin.envVar];
    if (value && !find(bin))
      fail(`${bin.envVar}=${value} is not an executable file (unset it to use PATH).`, [name]);
  }
}

const missing = names.filter((name) => !report(name));
if (missing.length === 0) process.exit(0);

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const hasApt = existsSync('/usr/bin/apt-get');
if (!isRoot || !hasApt) {
  fail(`${missing.join(', ')} not found${hasApt ? ' (not root, so not installing)' : ''}.`, missing);
}

const packages = missing.flatMap((name) => TOOLS[name].packages);
console.log(
  `ensure-tools: ${missing.join(', ')} not found; installing the Debian packages ${packages.join(' ')}.`,
);
const ports = missing.map((name) => TOOLS[name].port).filter((port) => port !== undefined);
const wasListening = new Map(ports.map((port) => [port, listening(port)]));
// Keep the packages from starting their services (etcd on :2379, named on :53): a policy-rc.d that forbids
// service starts (honoured by invoke-rc.d / deb-systemd-invoke), RUNLEVEL=1, and no prompts. An existing
// policy-rc.d is left alone.
const policy = '/usr/sbin/policy-rc.d';
const hadPolicy = existsSync(policy);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive', RUNLEVEL: '1' };
try {
  if (!hadPolicy)
    writeFileSync(policy, '#!/bin/sh\n# written by sdkit ensure-tools\nexit 101\n', { mode: 0o755 });
  for (const args of [['update'], ['install', '-y', '--no-install-recommends', ...packages]]) {
    console.log(`ensure-tools: $ apt-get ${args.join(' ')}`);
    const r = spawnSync('apt-get', args, { stdio: 'inherit', env });
    if (r.status !== 0) fail(`apt-get ${args.join(' ')} failed (exit ${r.status ?? r.signal})`, missing);
  }
} finally {
  if (!hadPolicy) rmSync(policy, { force: true });
}
for (const [port, was] of wasListening) {
  if (!was && listening(port)) {
    console.error(
      `ensure-tools: warning: something now listens on :${port} (a service the packages started?)`,
    );
  }
}
const stillMissing = missing.filter((name) => !report(name));
if (stillMissing.length > 0)
  fail(`installed the packages but still cannot find ${stillMissing.join(', ')}.`, stillMissing);
