#!/usr/bin/env node
// Makes sure the terminal tests of the sdkit command have tmux (a real pseudo-terminal): prints which tmux will be
// used and exits 0, or — when missing, running as root on a system with apt-get — installs Debian's tmux, or
// exits 1 with instructions. Plain Node, no dependencies.
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

function find(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

function report() {
  const tmux = find('tmux');
  if (!tmux) return false;
  let version = 'version unknown';
  try {
    version = execFileSync(tmux, ['-V'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {}
  console.log(`ensure-tmux: using ${tmux} (${version})`);
  return true;
}

const instructions =
  'The terminal tests of the sdkit command need tmux.\n' +
  '  Debian/Ubuntu: sudo apt-get install -y tmux\n' +
  '  macOS: brew install tmux';

if (report()) process.exit(0);

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (!isRoot || !existsSync('/usr/bin/apt-get')) {
  console.error(`ensure-tmux: tmux not found${isRoot ? '' : ' (not root, so not installing it)'}.`);
  console.error(instructions);
  process.exit(1);
}

console.log('ensure-tmux: tmux not found; installing the Debian package tmux.');
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
for (const args of [['update'], ['install', '-y', '--no-install-recommends', 'tmux']]) {
  console.log(`ensure-tmux: $ apt-get ${args.join(' ')}`);
  const r = spawnSync('apt-get', args, { stdio: 'inherit', env });
  if (r.status !== 0) {
    console.error(`ensure-tmux: apt-get ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
    console.error(instructions);
    process.exit(1);
  }
}
if (report()) process.exit(0);
console.error('ensure-tmux: installed the package but still cannot find tmux.');
console.error(instructions);
process.exit(1);
