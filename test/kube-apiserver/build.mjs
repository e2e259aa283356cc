#!/usr/bin/env node
// Builds sdkit's test Kubernetes API server (test/kube-apiserver/server, on the real k8s.io/apiserver library)
// and fetches an etcd 3.5 to run it on, from Debian sid's packages only:
//   private apt state (own sources.list, lists, cache, empty dpkg status; the machine's apt and dpkg are never
//   touched) -> `apt-get download` of the pinned packages (packages.lock) -> `dpkg-deb -x` into a scratch root
//   -> openapi-gen -> `go build` in GOPATH mode with the Go toolchain from the same packages.
// Outputs are cached under $SDKIT_KUBE_CACHE (default ~/.cache/sdkit/kube-apiserver)/<key>/bin, where <key> is a
// hash of the server sources and packages.lock; a second run finds them and takes well under a second.
//
//   node test/kube-apiserver/build.mjs               build if needed; last line: the bin directory
//   node test/kube-apiserver/build.mjs --print-path  print the bin directory; exit 0 if built, 2 if not
//   node test/kube-apiserver/build.mjs --repin       resolve the package closure anew from sid, rewrite
//                                                    packages.lock, then build
//   options: --force (rebuild even if cached), --keep-scratch (keep the scratch dir for debugging)
//
// Plain Node, no dependencies. Needs apt-get and dpkg-deb (Debian/Ubuntu), network access to the Debian
// mirror that /etc/apt/sources.list.d/debian.sources (or /etc/apt/sources.list) names, ~4.5 GB of free disk
// during a cold build and ~1.2 GB of memory.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const SERVER_DIR = join(HERE, 'server');
const LOCK_FILE = join(HERE, 'packages.lock');
/** Bump when the build steps change in a way that changes the outputs. Part of the cache key. */
const RECIPE = 'sdkit-kube-apiserver build recipe 1';
/** What the closure is resolved from. golang-go pulls in the default Go toolchain (golang-1.NN-go). */
const ROOT_PACKAGES = ['golang-k8s-apiserver-dev', 'golang-k8s-kube-openapi-dev', 'golang-go', 'etcd-server'];
/** From the resolved closure, keep Go sources (-dev), the Go toolchain and etcd-server; drop C libraries etc. */
const KEEP = (name) =>
  /^golang-.+-dev$/.test(name) || /^golang-\d+\.\d+-(go|src)$/.test(name) || name === 'etcd-server';
const GO_IMPORT_PATH = 'sdkit.local/kube-apiserver';
const OPENAPI_PACKAGES = [
  'k8s.io/api/core/v1',
  'k8s.io/api/discovery/v1',
  'k8s.io/apimachinery/pkg/apis/meta/v1',
  'k8s.io/apimachinery/pkg/runtime',
  'k8s.io/apimachinery/pkg/util/intstr',
  'k8s.io/apimachinery/pkg/api/resource',
  'k8s.io/apimachinery/pkg/version',
];
const MIN_ETCD = [3, 5, 13]; // the watch cache needs RequestWatchProgress

const REPIN_HINT =
  'Re-pin with: node test/kube-apiserver/build.mjs --repin   (then commit test/kube-apiserver/packages.lock)';

// ---------------------------------------------------------------------------------------------------------------
// small helpers

const t0 = Date.now();
let quiet = false;

function secs(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}

function log(msg) {
  if (!quiet) console.error(`[kube-apiserver build +${secs(Date.now() - t0)}] ${msg}`);
}

class BuildError extends Error {}

function fail(msg) {
  throw new BuildError(msg);
}

async function step(name, fn) {
  const start = Date.now();
  log(`${name} …`);
  const result = await fn();
  const took = Date.now() - start;
  timings[name] = Math.round(took / 100) / 10;
  log(`${name} done in ${secs(took)}`);
  return result;
}
const timings = {};

const liveChildren = new Set();
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    for (const child of liveChildren) child.kill('SIGTERM');
    console.error(`[kube-apiserver build] interrupted (${sig}); the next run starts the scratch over`);
    process.exit(130);
  });
}

/** Runs a command, capturing output; rejects with the tail of its output on failure. */
function run(cmd, args, opts = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    liveChildren.add(child);
    child.on('exit', () => liveChildren.delete(child));
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', (e) => reject(new BuildError(`${cmd}: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0 || opts.allowFailure) resolvePromise({ code, stdout: out, stderr: err });
      else {
        const tail = `${out}\n${err}`.trim().split('\n').slice(-40).join('\n');
        reject(
          new BuildError(
            `${cmd} ${args.slice(0, 6).join(' ')}${args.length > 6 ? ' …' : ''} failed (${signal ?? `exit ${code}`}):\n${tail}`,
          ),
        );
      }
    });
  });
}

function which(name) {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** An environment variable (looked up by name: these are inputs of this script, not of a turbo task). */
function envVar(name) {
  return process.env[name] || undefined;
}

function listFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(p));
    else if (entry.isFile()) out.push(p);
  }
  return out.sort();
}

function dirSize(dir) {
  const r = spawnSync('du', ['-sb', dir], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.split(/\s/)[0]) : undefined;
}

function mb(bytes) {
  return bytes === undefined ? '?' : `${Math.round(bytes / 1e6)} MB`;
}

/** Debian version comparison is not needed here; this compares dotted upstream versions. */
function versionAtLeast(version, min) {
  const parts = version.split(/[.+~-]/).map((x) => Number.parseInt(x, 10));
  for (let i = 0; i < min.length; i++) {
    const p = Number.isNaN(parts[i]) ? 0 : (parts[i] ?? 0);
    if (p !== min[i]) return p > min[i];
  }
  return true;
}

/** `1:0.36.4-2` -> `0.36.4` (no epoch, no Debian revision, no +ds suffix). */
function upstream(version) {
  return version
    .replace(/^\d+:/, '')
    .replace(/-[^-]*$/, '')
    .replace(/[+~].*$/, '');
}

// ---------------------------------------------------------------------------------------------------------------
// lock file and cache key

function readLock() {
  if (!existsSync(LOCK_FILE)) return undefined;
  const pins = [];
  for (const raw of readFileSync(LOCK_FILE, 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-z0-9][a-z0-9+.-]+)=(\S+)$/.exec(line);
    if (!m) fail(`${LOCK_FILE}: bad line ${JSON.stringify(line)} (expected name=version)`);
    pins.push({ name: m[1], version: m[2] });
  }
  if (pins.length === 0) fail(`${LOCK_FILE} lists no packages. ${REPIN_HINT}`);
  return pins;
}

function writeLock(pins) {
  const header = [
    '# Debian sid packages the test Kubernetes API server is built from: the closure of',
    `#   ${ROOT_PACKAGES.join(' ')}`,
    '# (Go sources, the Go toolchain and etcd-server; C libraries left out: the build uses CGO_ENABLED=0).',
    `# Resolved ${new Date().toISOString().slice(0, 10)} from sid on this machine's Debian mirror by \`node test/kube-apiserver/build.mjs --repin\`.`,
    '# sid moves: when a pinned version leaves the archive the build fails naming it; re-pin then.',
  ];
  const body = pins.map((p) => `${p.name}=${p.version}`).sort();
  writeFileSync(LOCK_FILE, `${[...header, ...body].join('\n')}\n`);
}

function arch() {
  const r = spawnSync('dpkg', ['--print-architecture'], { encoding: 'utf8' });
  if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  return { x64: 'amd64', arm64: 'arm64' }[process.arch] ?? process.arch;
}

function cacheRoot() {
  return resolve(envVar('SDKIT_KUBE_CACHE') || join(homedir(), '.cache', 'sdkit', 'kube-apiserver'));
}

function cacheKey(lockText, debArch) {
  const h = createHash('sha256');
  h.update(`${RECIPE}\n${debArch}\n`);
  for (const file of listFiles(SERVER_DIR)) {
    h.update(`${relative(SERVER_DIR, file)}\0`);
    h.update(readFileSync(file));
    h.update('\0');
  }
  h.update(lockText);
  return h.digest('hex').slice(0, 16);
}

function outputDir(debArch) {
  if (!existsSync(LOCK_FILE)) return undefined;
  return join(cacheRoot(), cacheKey(readFileSync(LOCK_FILE, 'utf8'), debArch));
}

function isComplete(dir) {
  return (
    existsSync(join(dir, 'manifest.json')) &&
    existsSync(join(dir, 'bin', 'sdkit-kube-apiserver')) &&
    existsSync(join(dir, 'bin', 'etcd'))
  );
}

// ---------------------------------------------------------------------------------------------------------------
// private apt state

/** The Debian mirror this machine uses (never a hard-coded host), and the keyring that signs it. */
function findMirror() {
  const override = envVar('SDKIT_DEBIAN_MIRROR');
  if (override) {
    return {
      uri: override.replace(/\/+$/, ''),
      keyring: undefined,
      from: 'SDKIT_DEBIAN_MIRROR',
    };
  }
  const deb822 = '/etc/apt/sources.list.d/debian.sources';
  if (existsSync(deb822)) {
    for (const stanza of readFileSync(deb822, 'utf8').split(/\n\s*\n/)) {
      const fields = {};
      let current;
      for (const line of stanza.split('\n')) {
        if (line.startsWith('#')) continue;
        const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
        if (m) {
          current = m[1].toLowerCase();
          fields[current] = m[2];
        } else if (current && /^\s/.test(line)) fields[current] += `\n${line.trim()}`;
      }
      const types = (fields.types ?? '').split(/\s+/);
      const uris = (fields.uris ?? '').split(/\s+/).filter(Boolean);
      const suites = (fields.suites ?? '').split(/\s+/).filter(Boolean);
      if (fields.enabled?.trim() === 'no' || !types.includes('deb') || uris.length === 0) continue;
      if (suites.every((s) => /-security$/.test(s)) || /security/.test(uris[0])) continue;
      const signedBy = fields['signed-by']?.trim();
      const keyring = signedBy && !signedBy.includes('\n') && existsSync(signedBy) ? signedBy : undefined;
      return { uri: uris[0].replace(/\/+$/, ''), keyring, from: deb822 };
    }
  }
  const list = '/etc/apt/sources.list';
  if (existsSync(list)) {
    for (const raw of readFileSync(list, 'utf8').split('\n')) {
      const m = /^deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(raw.trim());
      if (!m || /security/.test(m[2]) || /-security$/.test(m[3])) continue;
      const signed = /signed-by=(\S+?)[\s\]]/.exec(m[1] ?? '');
      return { uri: m[2].replace(/\/+$/, ''), keyring: signed?.[1], from: list };
    }
  }
  fail(
    'Could not find the Debian mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list.\n' +
      'Set SDKIT_DEBIAN_MIRROR to a Debian archive URL that serves sid (e.g. the one your apt uses).',
  );
}

class PrivateApt {
  constructor(dir, mirror, debArch) {
    this.dir = dir;
    this.mirror = mirror;
    this.arch = debArch;
    for (const d of [
      'lists/partial',
      'archives/partial',
      'cache',
      'state',
      'log',
      'etc/sources.list.d',
      'etc/preferences.d',
    ]) {
      mkdirSync(join(dir, d), { recursive: true });
    }
    writeFileSync(join(dir, 'state', 'status'), ''); // empty dpkg status: resolve the whole closure
    const keyring =
      mirror.keyring ??
      [
        '/usr/share/keyrings/debian-archive-keyring.gpg',
        '/etc/apt/trusted.gpg.d/debian-archive-keyring.gpg',
      ].find((k) => existsSync(k));
    const signedBy = keyring ? `[signed-by=${keyring}] ` : '';
    writeFileSync(join(dir, 'etc', 'sources.list'), `deb ${signedBy}${mirror.uri} sid main\n`);
    const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    const o = {
      'Dir::Etc::SourceList': join(dir, 'etc', 'sources.list'),
      'Dir::Etc::SourceParts': join(dir, 'etc', 'sources.list.d'),
      'Dir::Etc::Preferences': join(dir, 'etc', 'preferences'),
      'Dir::Etc::PreferencesParts': join(dir, 'etc', 'preferences.d'),
      'Dir::State': join(dir, 'state'),
      'Dir::State::Lists': join(dir, 'lists'),
      'Dir::State::status': join(dir, 'state', 'status'),
      'Dir::Cache': join(dir, 'cache'),
      'Dir::Cache::archives': join(dir, 'archives'),
      'Dir::Cache::pkgcache': '',
      'Dir::Cache::srcpkgcache': '',
      'Dir::Log': join(dir, 'log'),
      'APT::Architecture': debArch,
      'APT::Architectures': debArch,
      'APT::Install-Recommends': 'false',
      'APT::Install-Suggests': 'false',
      'APT::Get::List-Cleanup': 'false',
      'Acquire::Languages': 'none',
      'Debug::NoLocking': 'true',
      // Downloads land in a directory the _apt sandbox user may not reach (e.g. under /root/.cache).
      ...(isRoot ? { 'APT::Sandbox::User': 'root' } : {}),
    };
    this.opts = Object.entries(o).flatMap(([k, v]) => ['-o', `${k}=${v}`]);
    this.env = { ...process.env, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' };
    delete this.env.APT_CONFIG;
  }

  update() {
    return run('apt-get', [...this.opts, 'update'], { env: this.env });
  }

  /** Resolves the closure of `roots` against sid as if nothing were installed: [{name, version}]. */
  async resolve(roots) {
    const { stdout } = await run(
      'apt-get',
      [...this.opts, 'install', '--simulate', '--no-install-recommends', ...roots],
      {
        env: this.env,
      },
    );
    const pins = [];
    for (const line of stdout.split('\n')) {
      const m = /^Inst (\S+) \((\S+) /.exec(line);
      if (m) pins.push({ name: m[1].replace(/:.*$/, ''), version: m[2] });
    }
    if (pins.length === 0) fail(`apt-get resolved nothing for ${roots.join(' ')}:\n${stdout.slice(-2000)}`);
    return pins;
  }

  /** The versions sid serves now for these names (name -> version), for error messages. */
  async candidates(names) {
    const { stdout } = await run('apt-cache', [...this.opts, 'policy', ...names], {
      env: this.env,
      allowFailure: true,
    });
    const out = {};
    let current;
    for (const line of stdout.split('\n')) {
      const pkg = /^(\S+):$/.exec(line);
      if (pkg) current = pkg[1];
      const cand = /^\s+Candidate:\s+(\S+)/.exec(line);
      if (cand && current) out[current] = cand[1];
    }
    return out;
  }

  /** Which of the pins sid no longer serves (`apt-cache show` lists every version the archive has). */
  async missing(pins) {
    const { stdout } = await run('apt-cache', [...this.opts, 'show', ...new Set(pins.map((p) => p.name))], {
      env: this.env,
      allowFailure: true,
    });
    const available = new Set();
    let name;
    for (const line of stdout.split('\n')) {
      const pkg = /^Package: (\S+)/.exec(line);
      if (pkg) name = pkg[1];
      const ver = /^Version: (\S+)/.exec(line);
      if (ver && name) available.add(`${name}=${ver[1]}`);
    }
    return pins.filter((p) => !available.has(`${p.name}=${p.version}`));
  }

  download(pins, intoDir) {
    return run('apt-get', [...this.opts, 'download', ...pins.map((p) => `${p.name}=${p.version}`)], {
      env: this.env,
      cwd: intoDir,
    });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// build

function debFileFor(debsDir, files, pin) {
  // apt-get download names files name_version_arch.deb with ':' (epoch) escaped as %3a.
  const prefix = `${pin.name}_${pin.version.replace(/:/g, '%3a')}_`;
  const file = files.find((f) => f.startsWith(prefix) && f.endsWith('.deb'));
  return file ? join(debsDir, file) : undefined;
}

async function parallel(items, limit, fn) {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++];
      await fn(item);
    }
  });
  await Promise.all(workers);
}

function preflight() {
  if (process.platform !== 'linux')
    fail(`this build needs Linux with apt (Debian/Ubuntu); this is ${process.platform}.`);
  const missing = ['apt-get', 'apt-cache', 'dpkg-deb'].filter((c) => !which(c));
  if (missing.length > 0) {
    fail(
      `missing ${missing.join(', ')}: the test Kubernetes API server is built from Debian packages with apt.\n` +
        'Run this on Debian/Ubuntu (as CI does), or build the server elsewhere and point SDKIT_KUBE_BIN_DIR at a\n' +
        'directory holding sdkit-kube-apiserver and etcd (3.5.13+).',
    );
  }
}

async function build({ repin, force, keepScratch }) {
  preflight();
  const debArch = arch();
  const root = cacheRoot();
  mkdirSync(root, { recursive: true });

  let pins = repin ? undefined : readLock();
  if (!repin && pins) {
    const out = outputDir(debArch);
    if (!force && isComplete(out)) {
      log(`cached: ${out}`);
      return join(out, 'bin');
    }
  }

  const debsDir = join(root, 'debs');
  mkdirSync(debsDir, { recursive: true });
  const mirror = findMirror();
  const apt = new PrivateApt(join(root, 'apt'), mirror, debArch);
  let aptUpdated = false;
  const ensureAptUpdated = async () => {
    if (aptUpdated) return;
    log(`private apt state in ${apt.dir}; mirror ${mirror.uri} (from ${mirror.from}), suite sid`);
    await step('apt-get update (private state)', () => apt.update());
    aptUpdated = true;
  };

  if (!pins) {
    await ensureAptUpdated();
    const resolved = await step('resolve package closure', () => apt.resolve(ROOT_PACKAGES));
    pins = resolved.filter((p) => KEEP(p.name));
    const etcd = pins.find((p) => p.name === 'etcd-server');
    if (!etcd || !versionAtLeast(upstream(etcd.version), MIN_ETCD)) {
      fail(
        `sid's etcd-server is ${etcd?.version ?? 'missing'}; the watch cache needs etcd >= ${MIN_ETCD.join('.')}.`,
      );
    }
    writeLock(pins);
    log(
      `pinned ${pins.length} packages in ${LOCK_FILE} (left out: ${resolved.length - pins.length} non-Go packages)`,
    );
  }
  const lockText = readFileSync(LOCK_FILE, 'utf8');
  const key = cacheKey(lockText, debArch);
  const out = join(root, key);
  if (!force && isComplete(out)) {
    log(`cached: ${out}`);
    return join(out, 'bin');
  }

  // Download what the .deb cache lacks.
  let files = readdirSync(debsDir);
  const toFetch = pins.filter((p) => !debFileFor(debsDir, files, p));
  if (toFetch.length > 0) {
    await ensureAptUpdated();
    const gone = await apt.missing(toFetch);
    if (gone.length > 0) {
      const now = await apt.candidates(gone.map((p) => p.name));
      const lines = gone.map(
        (p) => `  ${p.name}=${p.version} (sid now has ${now[p.name] ?? 'no such package'})`,
      );
      fail(
        `Debian sid no longer serves ${gone.length} pinned package version(s):\n${lines.join('\n')}\n${REPIN_HINT}`,
      );
    }
    await step(`download ${toFetch.length} .debs`, () => apt.download(toFetch, debsDir));
    files = readdirSync(debsDir);
  } else {
    log(`all ${pins.length} .debs cached in ${debsDir}`);
  }
  const debs = pins.map((p) => {
    const f = debFileFor(debsDir, files, p);
    if (!f) fail(`apt-get download did not produce a .deb for ${p.name}=${p.version}`);
    return f;
  });

  const scratch = join(root, `scratch-${key}`);
  rmSync(scratch, { recursive: true, force: true });
  const sysroot = join(scratch, 'root');
  mkdirSync(sysroot, { recursive: true });
  const tmpOut = join(root, `${key}.tmp-${process.pid}`);
  rmSync(tmpOut, { recursive: true, force: true });
  mkdirSync(join(tmpOut, 'bin'), { recursive: true });

  try {
    await step(`unpack ${debs.length} .debs`, () =>
      parallel(debs, 4, (deb) => run('dpkg-deb', ['-x', deb, sysroot])),
    );

    const goVersions = readdirSync(join(sysroot, 'usr', 'lib')).filter((d) => /^go-\d+\.\d+$/.test(d));
    if (goVersions.length !== 1)
      fail(`expected one Go toolchain in the packages, found ${goVersions.join(', ') || 'none'}`);
    const goroot = join(sysroot, 'usr', 'lib', goVersions[0]);
    const goBin = join(goroot, 'bin', 'go');
    const gopath = join(scratch, 'gopath');
    const pkgDir = join(gopath, 'src', ...GO_IMPORT_PATH.split('/'));
    mkdirSync(join(pkgDir, 'openapi'), { recursive: true });
    cpSync(SERVER_DIR, pkgDir, { recursive: true });
    const env = {};
    for (const [k, v] of Object.entries(process.env)) if (!/^(GO|CGO_)/.test(k)) env[k] = v;
    Object.assign(env, {
      PATH: `${join(goroot, 'bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      GOPATH: `${gopath}:${join(sysroot, 'usr', 'share', 'gocode')}`,
      GO111MODULE: 'off',
      GOPROXY: 'off',
      GOTOOLCHAIN: 'local',
      GOFLAGS: '',
      GOENV: 'off',
      GOWORK: 'off',
      GOTELEMETRY: 'off',
      GOCACHE: join(scratch, 'gocache'),
      GOTMPDIR: '',
      CGO_ENABLED: '0',
    });
    const goVersion = (await run(goBin, ['version'], { env })).stdout.trim();
    log(`toolchain: ${goVersion}`);

    await step('build openapi-gen', () =>
      run(
        goBin,
        [
          'build',
          '-p',
          '2',
          '-trimpath',
          '-o',
          join(scratch, 'openapi-gen'),
          'k8s.io/kube-openapi/cmd/openapi-gen',
        ],
        {
          env,
        },
      ),
    );
    const header = join(scratch, 'boilerplate.go.txt');
    writeFileSync(header, '');
    await step('openapi-gen', () =>
      run(
        join(scratch, 'openapi-gen'),
        [
          '--output-dir',
          join(pkgDir, 'openapi'),
          '--output-pkg',
          `${GO_IMPORT_PATH}/openapi`,
          '--output-file',
          'zz_generated.openapi.go',
          '--go-header-file',
          header,
          '--report-filename',
          join(scratch, 'api-rule-violations.txt'),
          ...OPENAPI_PACKAGES,
        ],
        { env },
      ),
    );

    const apiserverPin = pins.find((p) => p.name === 'golang-k8s-apiserver-dev');
    const k8sVersion = apiserverPin ? upstream(apiserverPin.version).replace(/^0\./, '1.') : '0.0.0';
    const [major, minor] = k8sVersion.split('.');
    const ldflags = [
      '-s',
      '-w',
      `-X k8s.io/component-base/version.gitVersion=v${k8sVersion}`,
      `-X k8s.io/component-base/version.gitMajor=${major}`,
      `-X k8s.io/component-base/version.gitMinor=${minor}`,
      `-X k8s.io/component-base/version.gitTreeState=clean`,
      `-X k8s.io/component-base/version.gitCommit=debian-golang-k8s-apiserver-dev-${apiserverPin?.version ?? 'unknown'}`,
    ].join(' ');
    await step('go build sdkit-kube-apiserver', () =>
      run(
        goBin,
        [
          'build',
          '-p',
          '2',
          '-trimpath',
          '-ldflags',
          ldflags,
          '-o',
          join(tmpOut, 'bin', 'sdkit-kube-apiserver'),
          GO_IMPORT_PATH,
        ],
        { env },
      ),
    );

    const etcdSrc = join(sysroot, 'usr', 'bin', 'etcd');
    if (!existsSync(etcdSrc)) fail('etcd-server did not contain usr/bin/etcd');
    cpSync(etcdSrc, join(tmpOut, 'bin', 'etcd'));
    const etcdVersionOut = (await run(join(tmpOut, 'bin', 'etcd'), ['--version'])).stdout;
    const etcdVersion = /etcd Version:\s*(\S+)/.exec(etcdVersionOut)?.[1] ?? 'unknown';
    if (!versionAtLeast(etcdVersion, MIN_ETCD))
      fail(`etcd ${etcdVersion} is too old: the watch cache needs >= ${MIN_ETCD.join('.')}`);
    const help = await run(join(tmpOut, 'bin', 'sdkit-kube-apiserver'), ['--help'], { allowFailure: true });
    if (!/-token-auth-file/.test(help.stderr + help.stdout))
      fail(`the built server does not run:\n${help.stderr}`);

    const scratchBytes = dirSize(scratch);
    const manifest = {
      key,
      builtAt: new Date().toISOString(),
      kubernetesVersion: `v${k8sVersion}`,
      go: goVersion,
      etcd: etcdVersion,
      packages: pins.length,
      pinned: Object.fromEntries(
        [
          'golang-k8s-apiserver-dev',
          'golang-k8s-api-dev',
          'golang-k8s-apimachinery-dev',
          'golang-k8s-kube-openapi-dev',
          `${goVersions[0].replace('go-', 'golang-')}-go`,
          'etcd-server',
        ].map((n) => [n, pins.find((p) => p.name === n)?.version ?? null]),
      ),
      timingsSeconds: timings,
      scratchBytes,
    };
    writeFileSync(join(tmpOut, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    rmSync(out, { recursive: true, force: true });
    renameSync(tmpOut, out);
    log(`scratch used ${mb(scratchBytes)}; output ${mb(dirSize(out))} in ${out}`);
  } catch (err) {
    rmSync(tmpOut, { recursive: true, force: true });
    if (!keepScratch) rmSync(scratch, { recursive: true, force: true });
    else log(`kept scratch ${scratch}`);
    throw err;
  }
  if (keepScratch) log(`kept scratch ${scratch}`);
  else rmSync(scratch, { recursive: true, force: true });
  prune(root, key, debsDir, pins);
  return join(out, 'bin');
}

/** Keeps the .debs of the current pins and the newest three builds; removes the rest. */
function prune(root, key, debsDir, pins) {
  const wanted = new Set(pins.map((p) => `${p.name}_${p.version.replace(/:/g, '%3a')}_`));
  for (const f of readdirSync(debsDir)) {
    const prefix = f.replace(/[^_]+\.deb$/, '');
    if (!wanted.has(prefix)) rmSync(join(debsDir, f), { force: true });
  }
  const builds = readdirSync(root)
    .filter((d) => /^[0-9a-f]{16}$/.test(d) && d !== key)
    .map((d) => ({ d, m: statSync(join(root, d)).mtimeMs }))
    .sort((a, b) => b.m - a.m);
  for (const { d } of builds.slice(2)) rmSync(join(root, d), { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------------------------

function usage() {
  return readFileSync(fileURLToPath(import.meta.url), 'utf8')
    .split('\n')
    .slice(1, 18)
    .map((l) => l.replace(/^\/\/ ?/, ''))
    .join('\n');
}

async function main(argv) {
  const flags = new Set(argv);
  for (const f of flags) {
    if (!['--repin', '--print-path', '--force', '--keep-scratch', '--help', '-h'].includes(f)) {
      console.error(`unknown option ${f}\n\n${usage()}`);
      return 1;
    }
  }
  if (flags.has('--help') || flags.has('-h')) {
    console.log(usage());
    return 0;
  }
  if (flags.has('--print-path')) {
    quiet = true;
    const out = outputDir(arch());
    if (!out) {
      console.error(`no ${LOCK_FILE}. ${REPIN_HINT}`);
      return 1;
    }
    console.log(join(out, 'bin'));
    if (!isComplete(out)) {
      console.error(
        `not built yet: run node ${relative(process.cwd(), fileURLToPath(import.meta.url)) || basename(fileURLToPath(import.meta.url))}`,
      );
      return 2;
    }
    return 0;
  }
  const bin = await build({
    repin: flags.has('--repin'),
    force: flags.has('--force'),
    keepScratch: flags.has('--keep-scratch'),
  });
  log(`ready in ${secs(Date.now() - t0)}; binaries:`);
  console.log(bin);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`[kube-apiserver build] FAILED: ${err instanceof BuildError ? err.message : err.stack}`);
    process.exit(1);
  },
);
