// The engine end to end on the fixture distro: real rpm, dnf, createrepo_c and ostree.
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compose, type ComposeOptions } from '../src/engine.js';
import { ComposeError, ConfigError } from '../src/errors.js';
import { run } from '../src/tools/exec.js';
import type { Metadata } from '../src/metadata/metadata.js';
import { LOCK_FILE } from '../src/repo/lock.js';
import { BACKENDS } from './fixtures/backends.js';
import { BASE_REF, buildFixtureDistro, type FixtureDistro } from './fixtures/distro.js';

let distro: FixtureDistro;
let dir: string;
beforeAll(async () => {
  distro = await buildFixtureDistro();
  dir = await mkdtemp(join(tmpdir(), 'ce-compose-'));
});
afterAll(async () => {
  await distro?.cleanup();
});

const GOOD = `
repos: [fedora]
extensions:
  usbguard:
    packages: [usbguard]
  tools:
    packages: [tool-a, needs-epochy]
  extra:
    packages: [extra-tool]
    repos: [extras]
  firmware:
    architectures: [x86_64]
    packages: [x86-firmware]
  signed:
    packages: [signed-good]
    repos: [signed]
  kernel-devel:
    kind: development
    match-base-evr: kernel
    packages: [kernel-devel, kernel-headers]
  devtools:
    kind: development
    packages: [devtool, libfoo]
`;

let n = 0;
async function configFile(text: string): Promise<string> {
  const file = join(dir, `extensions-${n++}.yaml`);
  await writeFile(file, text);
  return file;
}

async function options(text: string, extra: Partial<ComposeOptions> = {}): Promise<ComposeOptions> {
  return {
    config: await configFile(text),
    base: { kind: 'ostree', repo: distro.ostreeRepo, ref: BASE_REF },
    arches: ['x86_64', 'aarch64'],
    reposDir: distro.reposDir,
    repoPairs: [],
    weakDeps: true,
    cacheDir: join(dir, 'cache'),
    previousState: [],
    output: join(dir, `out-${n}`),
    ...extra,
  };
}

async function emptyFile(): Promise<string> {
  const file = join(dir, 'empty.conf');
  await writeFile(file, '[main]\n');
  return file;
}

async function metadataOf(output: string, arch: string): Promise<Metadata> {
  return JSON.parse(await readFile(join(output, arch, 'metadata.json'), 'utf8'));
}

async function composeError(opts: ComposeOptions): Promise<ComposeError> {
  const err = await compose(opts).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ComposeError);
  return err as ComposeError;
}

describe('a good config on two architectures', () => {
  let opts: ComposeOptions;
  beforeAll(async () => {
    opts = await options(GOOD);
  });

  test('composes both architectures with closures, pins and no foreign packages', async () => {
    const result = await compose(opts);
    expect(result.arches.map((a) => a.arch)).toEqual(['x86_64', 'aarch64']);
    expect(result.changed).toBe(true);
    for (const arch of ['x86_64', 'aarch64']) {
      const m = await metadataOf(opts.output, arch);
      expect(m.arch).toBe(arch);
      expect(m.base).toMatchObject({ source: 'ostree', ref: `fixture/${arch}/base`, commit: distro.commits[arch], version: '40.20260101.0' });
      expect(m.base.osRelease).toEqual({ ID: 'fixture', VERSION_ID: '40' });
      expect(m.extensions['usbguard']!.packages).toEqual([
        `libqb-2.0.8-1.${arch}`, `usbguard-1.1.3-1.${arch}`, 'usbguard-selinux-1.1.3-1.noarch',
      ]);
      // File dependency, rich dependency and an epoch that outranks a higher version.
      expect(m.extensions['tools']!.packages).toEqual(
        expect.arrayContaining([`helper-x-1.0-1.${arch}`, 'backend-b-1.0-1.noarch', `epochy-2:1.0-1.${arch}`]),
      );
      expect(m.extensions['extra']!.packages).toEqual([`extra-tool-1.0-1.${arch}`]);
      // Development: pinned to the base kernel, newest otherwise, even when the base has it.
      expect(m.extensions['kernel-devel']!.specs).toEqual(['kernel-devel-5.0-1.fc40', 'kernel-headers-5.0-1.fc40']);
      expect(m.extensions['kernel-devel']!.packages).toEqual([`kernel-devel-5.0-1.fc40.${arch}`, 'kernel-headers-5.0-1.fc40.noarch']);
      expect(m.extensions['devtools']!.packages).toEqual([`devtool-2.0-1.${arch}`, `libfoo-2.0-1.${arch}`]);
      for (const p of m.packages) expect([arch, 'noarch']).toContain(p.arch);
      // Nothing that would change the base slipped in.
      expect(m.packages.map((p) => p.name)).not.toContain('kernel-core');
      const files = await readdir(join(opts.output, arch));
      expect(files).toEqual(expect.arrayContaining(['repodata', 'metadata.json', 'extensions.json', `usbguard-1.1.3-1.${arch}.rpm`]));
      expect(files.filter((f) => f.endsWith('.rpm')).sort()).toEqual(m.packages.map((p) => p.filename).sort());
      const sha = (await run('sha256sum', [join(opts.output, arch, `usbguard-1.1.3-1.${arch}.rpm`)])).stdout.split(' ')[0];
      expect(m.packages.find((p) => p.name === 'usbguard')!.sha256).toBe(sha);
    }
    const x86 = await metadataOf(opts.output, 'x86_64');
    const arm = await metadataOf(opts.output, 'aarch64');
    expect(Object.keys(x86.extensions)).toContain('firmware');
    expect(Object.keys(arm.extensions)).not.toContain('firmware');
    const extensionsJson = JSON.parse(await readFile(join(opts.output, 'aarch64', 'extensions.json'), 'utf8'));
    expect(extensionsJson.extensions['kernel-devel']).toEqual({
      packages: ['kernel-devel-5.0-1.fc40', 'kernel-headers-5.0-1.fc40'], 'match-base-evr': 'kernel', kind: 'development',
    });
  });

  test('the written repo is a repo dnf can read', async () => {
    const { stdout } = await run('dnf', [
      '-q', `--config=${await emptyFile()}`, '--setopt=reposdir=', `--repofrompath=ext,${join(opts.output, 'x86_64')}`,
      '--repo=ext', '--forcearch=x86_64', `--setopt=cachedir=${join(dir, 'dnfq')}`, 'repoquery', '--qf', '%{name}',
    ], { env: { HOME: dir } });
    expect(stdout.split('\n')).toEqual(expect.arrayContaining(['usbguard', 'x86-firmware', 'kernel-devel']));
  });

  test('a rerun with the previous state changes nothing; a changed config rewrites', async () => {
    const first = await metadataOf(opts.output, 'x86_64');
    const before = (await stat(join(opts.output, 'x86_64', 'metadata.json'))).mtimeMs;
    const again = await compose({ ...opts, previousState: [first.stateChecksum, (await metadataOf(opts.output, 'aarch64')).stateChecksum] });
    expect(again.changed).toBe(false);
    expect(again.arches.map((a) => a.stateChecksum)).toContain(first.stateChecksum);
    expect((await stat(join(opts.output, 'x86_64', 'metadata.json'))).mtimeMs).toBe(before);
    // The state does not depend on map order: the same extensions in another order give the same sum.
    const reordered = GOOD.replace(/  usbguard:\n    packages: \[usbguard\]\n/, '') + '  usbguard:\n    packages: [usbguard]\n';
    const same = await compose({ ...opts, config: await configFile(reordered), previousState: [first.stateChecksum], arches: ['x86_64'] });
    expect(same.changed).toBe(false);
  });

  test('whileLocked runs on the written output with the lock still held, and the lock goes even when it fails', async () => {
    const lock = join(opts.output, LOCK_FILE);
    const seen: { holder: number; state: string }[] = [];
    const result = await compose({
      ...opts,
      arches: ['x86_64'],
      whileLocked: async (r) => {
        seen.push({ holder: JSON.parse(await readFile(lock, 'utf8')).pid, state: (await metadataOf(opts.output, 'x86_64')).stateChecksum });
        expect(r.arches[0]!.stateChecksum).toBe(seen[0]!.state);
      },
    });
    expect(seen).toEqual([{ holder: process.pid, state: result.arches[0]!.stateChecksum }]);
    expect(existsSync(lock)).toBe(false);
    await expect(compose({ ...opts, arches: ['x86_64'], whileLocked: async () => { throw new Error('upload failed'); } })).rejects.toThrow('upload failed');
    expect(existsSync(lock)).toBe(false);
  });

  test('stale RPMs of an earlier run are not kept', async () => {
    const fewer = await options('repos: [fedora]\nextensions:\n  docs:\n    packages: [docs-only]\n', { output: opts.output, arches: ['x86_64'] });
    await compose(fewer);
    const files = (await readdir(join(opts.output, 'x86_64'))).filter((f) => f.endsWith('.rpm'));
    expect(files).toEqual(['docs-only-1.0-1.noarch.rpm']);
  });
});

test('--no-weak-deps leaves Recommends out', async () => {
  const opts = await options('repos: [fedora]\nextensions:\n  usbguard:\n    packages: [usbguard]\n', { weakDeps: false, arches: ['x86_64'] });
  await compose(opts);
  const m = await metadataOf(opts.output, 'x86_64');
  expect(m.weakDeps).toBe(false);
  expect(m.extensions['usbguard']!.packages).toEqual(['libqb-2.0.8-1.x86_64', 'usbguard-1.1.3-1.x86_64']);
});

test("a weak dependency the base lacks, though one of its packages recommends it, is not added", async () => {
  // dnf's weak-dependency autodetection: the base's owner left it out, so no extension brings it back.
  const opts = await options('repos: [fedora]\nextensions:\n  theme:\n    packages: [shell-theme]\n  color:\n    packages: [prompt-color]\n', { arches: ['x86_64'] });
  await compose(opts);
  const m = await metadataOf(opts.output, 'x86_64');
  expect(m.extensions['theme']!.packages).toEqual(['shell-theme-1.0-1.noarch']);
  expect(m.extensions['color']!.packages).toEqual(['prompt-color-1.0-1.noarch']);
});

test('match-base-evr pins an os-extension too, even where a newer installonly version exists', async () => {
  const opts = await options('repos: [fedora]\nextensions:\n  kdev:\n    match-base-evr: kernel\n    packages: [kernel-devel]\n', { arches: ['aarch64'] });
  await compose(opts);
  const m = await metadataOf(opts.output, 'aarch64');
  expect(m.extensions['kdev']).toMatchObject({ kind: 'os-extension', specs: ['kernel-devel-5.0-1.fc40'], packages: ['kernel-devel-5.0-1.fc40.aarch64'] });
});

test('the dnf helpers leave no byte-code beside themselves', async () => {
  // From a checkout the helpers sit in dist/ (here src/solve/): a __pycache__ there is litter in the user's tree.
  const pycache = fileURLToPath(new URL('../src/solve/__pycache__', import.meta.url));
  await rm(pycache, { recursive: true, force: true });
  const opts = await options('repos: [fedora]\nextensions:\n  usbguard:\n    packages: [usbguard]\n', {
    arches: ['x86_64'], cacheDir: await mkdtemp(join(dir, 'pycache-cache-')),
  });
  // As on a user's machine: Python writes byte-code unless told not to (some shells here set this).
  const saved = process.env['PYTHONDONTWRITEBYTECODE'];
  delete process.env['PYTHONDONTWRITEBYTECODE'];
  try {
    await compose(opts);
  } finally {
    if (saved !== undefined) process.env['PYTHONDONTWRITEBYTECODE'] = saved;
  }
  expect((await metadataOf(opts.output, 'x86_64')).extensions['usbguard']!.packages).toContain('usbguard-1.1.3-1.x86_64');
  expect(existsSync(pycache)).toBe(false);
});

test('a root filesystem base and ID=URL repos', async () => {
  const opts = await options('repos: [mine]\nextensions:\n  usbguard:\n    packages: [usbguard]\n', {
    base: { kind: 'rootfs', path: distro.rootfs['aarch64']! },
    arches: ['aarch64'],
    reposDir: undefined,
    repoPairs: [`mine=${distro.repos.main}/aarch64`],
  });
  await compose(opts);
  const m = await metadataOf(opts.output, 'aarch64');
  expect(m.base.source).toBe('rootfs');
  expect(m.repos.map((r) => r.id)).toEqual(['mine']);
  expect(m.repos[0]!.repomdSha256).toMatch(/^[0-9a-f]{64}$/);
});

describe.each(BACKENDS)('%s: resolve errors name the extension, the package and its repo, in the same words', (dnf) => {
  test('every problem of every architecture at once', async () => {
    const opts = await options(
      `
repos: [fedora]
extensions:
  newer:
    packages: [needs-newer-libfoo]
  kmod:
    packages: [kmod-new]
  obsoleting:
    packages: [newtool]
  inbase:
    packages: [libfoo]
  missing:
    packages: [no-such-package]
  unresolvable:
    packages: [needs-missing]
`,
      { dnf },
    );
    const err = await composeError(opts);
    const text = err.message;
    for (const arch of ['x86_64', 'aarch64']) {
      expect(text).toContain(
        `newer on ${arch}: cannot be installed without changing the base: needs-newer-libfoo requires libfoo >= 2.0; the base has libfoo-1.0-1.${arch} ` +
          `(it would upgrade base package libfoo-1.0-1.${arch} to libfoo-2.0-1.${arch})\n`,
      );
      expect(text).toContain(
        `kmod on ${arch}: cannot be installed without changing the base: kmod-new requires kernel-modules = 6.0-1.fc40; the base has kernel-modules-5.0-1.fc40.${arch} ` +
          `(it would install kernel-core-6.0-1.fc40.${arch} beside the base's kernel-core-5.0-1.fc40.${arch} (a parallel version); ` +
          `install kernel-modules-6.0-1.fc40.${arch} beside the base's kernel-modules-5.0-1.fc40.${arch} (a parallel version))\n`,
      );
      expect(text).toContain(`obsoleting on ${arch}: cannot be installed without changing the base: it would obsolete base package oldtool-1.0-1.${arch} (obsoleted by newtool-2.0-1.${arch})`);
      expect(text).toContain(`inbase on ${arch}: package libfoo already present in base (libfoo-1.0-1.${arch})`);
      expect(text).toContain(`missing on ${arch}: no package matches no-such-package in repos fedora`);
      expect(text).toContain(`unresolvable on ${arch}: nothing provides libmissing.so.1 needed by needs-missing-1.0-1.${arch} from fedora`);
    }
    await expect(readdir(opts.output)).rejects.toThrow('ENOENT'); // nothing landed, not even a staging dir
  });

  test('two extensions that conflict are named together', async () => {
    const opts = await options('repos: [fedora]\nextensions:\n  a:\n    packages: [conflict-a]\n  b:\n    packages: [conflict-b]\n', { arches: ['x86_64'], dnf });
    const err = await composeError(opts);
    expect(err.message).toBe(
      'a on x86_64: extensions a and b cannot be installed together: package conflict-a-1.0-1.x86_64 from fedora conflicts with conflict-b provided by conflict-b-1.0-1.x86_64 from fedora',
    );
  });
});

describe('errors keep the previous output', () => {
  test('a tampered signed package fails gpgcheck and the previous output stays', async () => {
    const good = await options('extensions:\n  s:\n    packages: [signed-good]\n    repos: [signed]\n', { arches: ['x86_64'] });
    await compose(good);
    const before = await readFile(join(good.output, 'x86_64', 'metadata.json'), 'utf8');
    const bad = { ...(await options('extensions:\n  s:\n    packages: [signed-tampered]\n    repos: [signed]\n', { arches: ['x86_64'] })), output: good.output };
    const err = await composeError(bad);
    expect(err.message).toMatch(/signed-tampered-1\.0-1\.noarch from signed has a bad signature \(key [0-9a-f]{8}\): the file was changed after it was signed \(gpgcheck is on\)/);
    expect(await readFile(join(good.output, 'x86_64', 'metadata.json'), 'utf8')).toBe(before);
    expect((await readdir(good.output)).sort()).toEqual(['x86_64']);
  });

  test('unknown repos are config errors listing the known ones', async () => {
    const opts = await options('repos: [fedora]\nextensions:\n  a:\n    packages: [usbguard]\n    repos: [nope]\n');
    const err = await compose(opts).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([
      expect.objectContaining({ line: 5, col: 13, path: 'extensions.a.repos[0]', message: 'unknown repo "nope"; known repos: extras, fedora, signed' }),
    ]);
    const top = await compose(await options('repos:\n  - fedora\n  - nope2\nextensions:\n  a:\n    packages: [usbguard]\n')).catch((e: ConfigError) => e);
    expect((top as ConfigError).problems).toEqual([expect.objectContaining({ line: 3, col: 5, path: 'repos[1]' })]);
  });

  test('match-base-evr naming a package the base lacks', async () => {
    const opts = await options('repos: [fedora]\nextensions:\n  d:\n    kind: development\n    match-base-evr: kernel-rt\n    packages: [kernel-devel]\n', { arches: ['x86_64'] });
    const err = await composeError(opts);
    expect(err.message).toBe('d on x86_64: match-base-evr: package kernel-rt is not in the base');
  });
});
