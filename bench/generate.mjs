#!/usr/bin/env node
// Generates the benchmark distro: a seeded random dependency DAG of N packages per architecture,
// built with rpmbuild for four architectures, one repo per architecture, a base of ~800 packages
// plus an installonly kernel committed to OSTree, and an extensions.yaml whose 12 os-extensions
// each pull 20–120 packages from outside the base. Cached under bench/.work/<key>/.
//
//   node bench/generate.mjs [--packages 10000] [--seed 1] [--payload KiB] [--force]
//
// --payload gives every package some pipeline downloads an incompressible file of about that many
// KiB on average (default 0: empty packages, so copying costs next to nothing).
import { execFile as execFileCb, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { createCipheriv, createHash } from 'node:crypto';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';

const execFile = promisify(execFileCb);
const HERE = dirname(fileURLToPath(import.meta.url));
/** Bump when the generated distro changes shape, so cached ones are rebuilt. */
const GENERATOR_VERSION = 4;
export const ARCHES = ['x86_64', 'aarch64', 'ppc64le', 's390x'];
export const EXTENSION_COUNTS = [12, 24, 48];
const BASE_TARGET = 800;
const CORE = 120;
const WINDOW = 1500;
const SPEC_BATCH = 2000;
const KERNEL_OLD = { version: '6.1.0', release: '100.bench' };
const KERNEL_NEW = { version: '6.2.0', release: '100.bench' };
export const OS_RELEASE = { NAME: 'Bench Linux', ID: 'bench', VERSION_ID: '1', VERSION: '1.20260101.0' };
const SOURCE_DATE_EPOCH = '1700000000';

/** mulberry32: small, fast and the same on every Node version. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function workDirFor(packages, seed, payloadKiB = 0) {
  return join(HERE, '.work', `n${packages}-s${seed}${payloadKiB ? `-p${payloadKiB}` : ''}-g${GENERATOR_VERSION}`);
}

/** Deterministic incompressible bytes for a package's payload file: AES-CTR keyed by its name. */
function payloadBytes(name, size) {
  const key = createHash('sha256').update(name).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(size));
}

/**
 * The distro as data: packages (name, version, noarch, requires, recommends, provides), the base
 * names and the extensions. Dependencies only point to lower-numbered packages, so it is a DAG;
 * they are unversioned, so every version of a name has the same closure.
 */
export function planDistro(total, seed, payloadKiB = 0) {
  const rand = prng(seed);
  const pick = (n) => Math.floor(rand() * n);
  const kernelCount = 8;
  const updates = Math.round(total * 0.04);
  const unique = total - kernelCount - updates;
  if (unique < CORE + BASE_TARGET * 2) throw new Error(`--packages ${total} is too small`);
  const width = String(unique).length;
  const name = (i) => `bench${String(i).padStart(width, '0')}`;
  const lib = (i) => `lib${name(i)}.so.1`;

  const pkgs = [];
  for (let i = 0; i < unique; i++) {
    const noarch = i >= CORE && rand() < 0.15;
    const deps = new Set();
    const weak = new Set();
    if (i < CORE) {
      for (let k = pick(3); k > 0 && i > 0; k--) deps.add(pick(i));
    } else {
      deps.add(pick(CORE));
      if (rand() < 0.5) deps.add(pick(CORE));
      // Mean slightly above one: closures stay finite but have a long tail to choose from.
      const r = rand();
      const local = r < 0.35 ? 0 : r < 0.7 ? 1 : r < 0.9 ? 2 : 3;
      const lo = Math.max(CORE, i - WINDOW);
      for (let k = 0; k < local && i > lo; k++) deps.add(lo + pick(i - lo));
      if (rand() < 0.05 && i > lo) weak.add(lo + pick(i - lo));
    }
    pkgs.push({ i, name: name(i), noarch, deps: [...deps], weak: [...weak].filter((d) => !deps.has(d)) });
  }
  // A dependency on an arch package is by its library provide half of the time, as in a distro.
  const dep = (d) => (!pkgs[d].noarch && rand() < 0.5 ? lib(d) : pkgs[d].name);
  for (const p of pkgs) {
    p.requires = p.deps.map(dep);
    p.recommends = p.weak.map((d) => pkgs[d].name);
    p.provides = p.noarch ? [] : [lib(p.i)];
  }

  const closure = (roots, stop = new Set(), withWeak = false) => {
    const seen = new Set();
    const todo = [...roots];
    while (todo.length) {
      const i = todo.pop();
      if (seen.has(i) || stop.has(i)) continue;
      seen.add(i);
      todo.push(...pkgs[i].deps);
      if (withWeak) todo.push(...pkgs[i].weak);
    }
    return seen;
  };

  // The base: the core plus packages from the lower part of the distro, closed under Requires.
  const base = closure(Array.from({ length: CORE }, (_, i) => i));
  const lowerHalf = Math.floor(unique / 2);
  while (base.size < BASE_TARGET - 3) {
    const more = closure([CORE + pick(lowerHalf - CORE)], base);
    if (base.size + more.size > BASE_TARGET + 20) continue;
    for (const i of more) base.add(i);
  }

  // Newer versions of some names, base ones included, so the lock has something to hold back.
  const updated = new Set();
  while (updated.size < updates) updated.add(pick(unique));

  // os-extensions: roots outside the base whose closure outside the base (weak deps included,
  // as dnf installs them) is 20–120 packages. Candidates are tried in a seeded order.
  const order = Array.from({ length: unique - CORE }, (_, k) => CORE + k).filter((i) => !base.has(i));
  for (let k = order.length - 1; k > 0; k--) {
    const j = pick(k + 1);
    [order[k], order[j]] = [order[j], order[k]];
  }
  const maxExt = Math.max(...EXTENSION_COUNTS);
  const extensions = [];
  const used = new Set();
  for (const root of order) {
    if (extensions.length >= maxExt) break;
    if (used.has(root)) continue;
    const size = closure([root], base, true).size;
    if (size < 20 || size > 120) continue;
    const roots = [root];
    // A third of them ask for two packages, as real extensions often do.
    if (rand() < 0.33) {
      const second = order.find((j) => !used.has(j) && j !== root && closure([root, j], base, true).size <= 120);
      if (second !== undefined) roots.push(second);
    }
    roots.forEach((r) => used.add(r));
    extensions.push({
      name: `ext${String(extensions.length + 1).padStart(2, '0')}`,
      roots,
      packages: roots.map((r) => pkgs[r].name),
      closureSize: closure(roots, base, true).size,
    });
  }
  if (extensions.length < maxExt) throw new Error(`only ${extensions.length} extension roots found; try another --seed`);

  // Payloads only where some measured pipeline downloads the package: every other package is only
  // ever read as metadata, which is the same whatever its payload.
  const downloaded = closure(extensions.flatMap((e) => e.roots), base, true);
  // Log-uniform between 1/8 and 3 times the mean (whose mean is about 0.9 times it), by name.
  const payloadOf = (p) => {
    if (!payloadKiB || !downloaded.has(p.i)) return 0;
    const u = prng(seed * 1000003 + p.i)();
    return Math.round(payloadKiB * 1024 * (1 / 8) * Math.exp(u * Math.log(24)));
  };
  const rpms = [];
  for (const p of pkgs) {
    const common = { name: p.name, noarch: p.noarch, requires: p.requires, recommends: p.recommends, provides: p.provides, payload: payloadOf(p) };
    rpms.push({ ...common, version: '1.0', release: '1.bench', batch: 'main' });
    if (updated.has(p.i)) rpms.push({ ...common, version: '1.1', release: '1.bench', batch: 'updates' });
  }
  for (const [evr, batch] of [[KERNEL_OLD, 'kernel-old'], [KERNEL_NEW, 'kernel-new']]) {
    const full = `${evr.version}-${evr.release}`;
    const k = { ...evr, batch, noarch: false, recommends: [], payload: 0 };
    rpms.push({ ...k, name: 'kernel', requires: [`kernel-core = ${full}`, `kernel-modules = ${full}`], provides: [] });
    rpms.push({ ...k, name: 'kernel-core', requires: [pkgs[0].name], provides: ['installonlypkg(kernel)'] });
    rpms.push({ ...k, name: 'kernel-modules', requires: [`kernel-core = ${full}`], provides: ['installonlypkg(kernel-module)'] });
    rpms.push({ ...k, name: 'kernel-devel', requires: [], provides: ['installonlypkg(kernel)'], payload: payloadKiB * 1024 * 4 });
  }

  return {
    total: rpms.length,
    unique,
    rpms,
    baseNames: [...base].sort((a, b) => a - b).map((i) => pkgs[i].name),
    extensions,
    stats: {
      meanRequires: pkgs.reduce((n, p) => n + p.requires.length, 0) / pkgs.length,
      noarch: pkgs.filter((p) => p.noarch).length,
      updates,
    },
  };
}

const REPRODUCIBLE = [
  '--define', 'use_source_date_epoch_as_buildtime 1',
  '--define', 'clamp_mtime_to_source_date_epoch 1',
  '--define', '_buildhost bench.invalid',
  // Stored, not compressed: the benchmark measures composing, not decompressing.
  '--define', '_binary_payload w0.ufdio',
  '--define', 'debug_package %{nil}',
  '--define', '__os_install_post %{nil}',
];

export function specText(batch, noarch, payloadDir) {
  const lines = ['Name: bench-batch', 'Version: 1.0', 'Release: 1', 'Summary: benchmark packages', 'License: MIT'];
  if (noarch) lines.push('BuildArch: noarch');
  lines.push('%description', 'Benchmark packages for compose-extensions.');
  for (const p of batch) {
    lines.push(`%package -n ${p.name}`, `Summary: benchmark package ${p.name}`, `Version: ${p.version}`, `Release: ${p.release}`);
    for (const r of p.requires) lines.push(`Requires: ${r}`);
    for (const r of p.recommends) lines.push(`Recommends: ${r}`);
    for (const r of p.provides) lines.push(`Provides: ${r}`);
    lines.push(`%description -n ${p.name}`, p.name);
  }
  // Files only for payloads: a file in every package makes rpmbuild ten times slower (file
  // classification), and every pipeline loads the same filelists anyway.
  const withPayload = batch.filter((p) => p.payload > 0);
  if (withPayload.length > 0) {
    lines.push('%install', 'mkdir -p %{buildroot}/usr/share/bench', `cd ${payloadDir}`);
    for (let k = 0; k < withPayload.length; k += 200) {
      lines.push('cp ' + withPayload.slice(k, k + 200).map((p) => `${p.name}-${p.version}`).join(' ') + ' %{buildroot}/usr/share/bench/');
    }
  }
  for (const p of batch) lines.push(`%files -n ${p.name}`, ...(p.payload > 0 ? [`/usr/share/bench/${p.name}-${p.version}`] : []));
  return lines.join('\n') + '\n';
}

/** Runs jobs with at most `limit` at once. */
async function pool(jobs, limit) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, async () => {
    while (next < jobs.length) await jobs[next++]();
  }));
}

async function buildAll(plan, dir, log) {
  const build = join(dir, 'build');
  rmSync(build, { recursive: true, force: true });
  const groups = new Map();
  for (const p of plan.rpms) {
    const key = `${p.batch}:${p.noarch ? 'noarch' : 'arch'}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(p);
  }
  const jobs = [];
  let n = 0;
  for (const [key, list] of groups) {
    const noarch = key.endsWith(':noarch');
    for (let k = 0; k < list.length; k += SPEC_BATCH) {
      const batch = list.slice(k, k + SPEC_BATCH);
      for (const arch of noarch ? ['noarch'] : ARCHES) {
        const top = join(build, `b${n++}`);
        jobs.push(async () => {
          const t0 = Date.now();
          const payloadDir = join(top, 'payload');
          mkdirSync(payloadDir, { recursive: true });
          for (const p of batch) if (p.payload > 0) writeFileSync(join(payloadDir, `${p.name}-${p.version}`), payloadBytes(`${p.name}-${p.version}`, p.payload));
          writeFileSync(join(top, 'bench.spec'), specText(batch, noarch, payloadDir));
          await execFile('rpmbuild', ['--define', `_topdir ${top}`, ...REPRODUCIBLE, '--target', noarch ? 'x86_64' : arch, '-bb', join(top, 'bench.spec')], {
            env: { ...process.env, SOURCE_DATE_EPOCH, HOME: top, LC_ALL: 'C' },
            maxBuffer: 1 << 30,
          });
          for (const sub of readdirSync(join(top, 'RPMS'))) {
            for (const file of readdirSync(join(top, 'RPMS', sub))) {
              const targets = sub === 'noarch' ? ARCHES : [arch];
              for (const t of targets) copyFileSync(join(top, 'RPMS', sub, file), join(dir, 'repo', t, file));
            }
          }
          rmSync(top, { recursive: true, force: true });
          log(`  built ${batch.length} ${noarch ? 'noarch' : arch} packages (${key.split(':')[0]}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        });
      }
    }
  }
  rmSync(join(dir, 'repo'), { recursive: true, force: true });
  for (const arch of ARCHES) mkdirSync(join(dir, 'repo', arch), { recursive: true });
  await pool(jobs, Math.max(1, cpus().length));
  rmSync(build, { recursive: true, force: true });
}

function makeRootfs(root, rpms) {
  const real = 'usr/lib/sysimage/rpm';
  mkdirSync(join(root, real), { recursive: true });
  mkdirSync(join(root, 'etc'), { recursive: true });
  mkdirSync(join(root, 'usr/share'), { recursive: true });
  symlinkSync('../lib/sysimage/rpm', join(root, 'usr/share/rpm'));
  writeFileSync(join(root, 'usr/lib/os-release'), Object.entries(OS_RELEASE).map(([k, v]) => `${k}="${v}"`).join('\n') + '\n');
  symlinkSync('../usr/lib/os-release', join(root, 'etc/os-release'));
  const rpm = ['--root', root, '--dbpath', `/${real}`];
  const env = { ...process.env, HOME: root, LC_ALL: 'C' };
  execFileSync('rpm', [...rpm, '--initdb'], { env });
  execFileSync('rpm', [...rpm, '-i', '--justdb', '--nodeps', '--noscripts', '--notriggers', '--ignorearch', '--nosignature', ...rpms], { env, maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe'] });
}

function extensionsYaml(plan, count) {
  const lines = ['# Generated by bench/generate.mjs', 'repos:', '  - bench', 'extensions:'];
  for (const e of plan.extensions.slice(0, count)) {
    lines.push(`  ${e.name}:`, '    packages:', ...e.packages.map((p) => `      - ${p}`));
  }
  lines.push('  kernel-devel:', '    kind: development', '    match-base-evr: kernel', '    packages:', '      - kernel-devel');
  return lines.join('\n') + '\n';
}

export async function generate({ packages = 10000, seed = 1, payload = 0, force = false, log = (m) => console.error(m) } = {}) {
  const dir = workDirFor(packages, seed, payload);
  const manifestPath = join(dir, 'distro.json');
  if (!force && existsSync(manifestPath)) {
    log(`distro ${dir} already generated`);
    return JSON.parse(readFileSync(manifestPath, 'utf8'));
  }
  const started = Date.now();
  const phase = (name, since) => log(`${name}: ${((Date.now() - since) / 1000).toFixed(1)} s`);
  if (force) rmSync(dir, { recursive: true, force: true });
  for (const stale of ['ostree', 'rootfs', 'build']) rmSync(join(dir, stale), { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });

  let t = Date.now();
  const plan = planDistro(packages, seed, payload);
  phase(`planned ${plan.total} packages per arch, base ${plan.baseNames.length}+3, ${plan.extensions.length} extension candidates`, t);

  // The repos are the slow part: kept when only a later stage failed or changed.
  const built = join(dir, 'repo', '.built');
  if (existsSync(built)) {
    log('repos already built');
  } else {
    t = Date.now();
    await buildAll(plan, dir, log);
    phase('rpmbuild', t);
    t = Date.now();
    await pool(ARCHES.map((arch) => () => execFile('createrepo_c', ['--quiet', '--no-database', '--workers', '1', join(dir, 'repo', arch)])), cpus().length);
    phase('createrepo_c', t);
    writeFileSync(built, '');
  }

  t = Date.now();
  const ostreeRepo = join(dir, 'ostree');
  execFileSync('ostree', [`--repo=${ostreeRepo}`, 'init', '--mode=archive']);
  const baseSet = new Set(plan.baseNames);
  const baseRpms = plan.rpms.filter((p) => (baseSet.has(p.name) && p.version === '1.0') || (p.batch === 'kernel-old' && p.name !== 'kernel-devel'));
  const commits = {};
  for (const arch of ARCHES) {
    const root = join(dir, 'rootfs', arch);
    rmSync(root, { recursive: true, force: true });
    const files = baseRpms.map((p) => join(dir, 'repo', arch, `${p.name}-${p.version}-${p.release}.${p.noarch ? 'noarch' : arch}.rpm`));
    makeRootfs(root, files);
    commits[arch] = execFileSync('ostree', [
      `--repo=${ostreeRepo}`, 'commit', `--branch=bench/${arch}/base`, `--tree=dir=${root}`,
      `--add-metadata-string=version=${OS_RELEASE.VERSION}`, '--owner-uid=0', '--owner-gid=0', '--no-xattrs', '--canonical-permissions',
    ], { encoding: 'utf8' }).trim();
    rmSync(root, { recursive: true, force: true });
  }
  phase('base rootfs + ostree commits', t);

  writeFileSync(join(dir, 'extensions.yaml'), extensionsYaml(plan, 12));
  for (const count of EXTENSION_COUNTS) writeFileSync(join(dir, `extensions-${count}.yaml`), extensionsYaml(plan, count));
  const manifest = {
    generatorVersion: GENERATOR_VERSION,
    packages,
    seed,
    payloadKiB: payload,
    payloadPackages: plan.rpms.filter((p) => p.payload > 0).length,
    payloadBytesPerArch: plan.rpms.reduce((n, p) => n + p.payload, 0),
    rpmsPerArch: plan.total,
    arches: ARCHES,
    dir,
    repoDir: join(dir, 'repo'),
    ostreeRepo,
    baseRef: 'bench/${basearch}/base',
    commits,
    basePackageCount: baseRpms.length,
    kernel: { base: `${KERNEL_OLD.version}-${KERNEL_OLD.release}`, newer: `${KERNEL_NEW.version}-${KERNEL_NEW.release}` },
    osRelease: OS_RELEASE,
    extensions: plan.extensions.map(({ name, packages: p, closureSize }) => ({ name, packages: p, closureSize })),
    stats: plan.stats,
    generateSeconds: (Date.now() - started) / 1000,
  };
  writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
  phase(`generated ${dir}`, started);
  return manifest;
}

if (resolve(process.argv[1] ?? '') === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      packages: { type: 'string', default: '10000' },
      seed: { type: 'string', default: '1' },
      payload: { type: 'string', default: '0' },
      force: { type: 'boolean', default: false },
      'plan-only': { type: 'boolean', default: false },
    },
  });
  const packages = Number(values.packages);
  const seed = Number(values.seed);
  if (values['plan-only']) {
    const plan = planDistro(packages, seed, Number(values.payload));
    console.log(JSON.stringify({ payloadPackages: plan.rpms.filter((p) => p.payload > 0).length, payloadMiB: plan.rpms.reduce((n, p) => n + p.payload, 0) / 1048576, total: plan.total, base: plan.baseNames.length, stats: plan.stats, extensions: plan.extensions.map((e) => [e.name, e.packages.join('+'), e.closureSize]) }));
  } else {
    await generate({ packages, seed, payload: Number(values.payload), force: values.force });
  }
}
