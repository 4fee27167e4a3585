import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BASE_REF, FIXTURE_ARCHES, fixtureWorkspace } from '../../test/fixtures/distro.js';
import { commitToOstree, makeRootfs } from '../../test/fixtures/base.js';
import { run } from '../tools/exec.js';
import { revParse } from '../tools/ostree.js';
import { baseArchError, baseArchMismatch, readBase } from './base.js';
import { parseOsRelease, resolveInTree } from './tree.js';
import { BaseError, substituteBasearch, type BaseInfo } from './types.js';
import { prepareBase } from './remote.js';

const ws = fixtureWorkspace('ce-base-test-');
let n = 0;
const work = () => join(ws.dir, `work-${n++}`);
const rpmsFor = async (arch: string, names: string[]) =>
  (await readdir(join(ws.distro.repos.main, arch))).filter((f) => names.some((n) => f.startsWith(n + '-'))).map((f) => join(ws.distro.repos.main, arch, f));
/** sha256 of every file under dir (path → hash), to prove nothing was written. */
const hashes = (dir: string) => execFileSync('sh', ['-c', 'cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum', 'sh', dir]).toString();


const nevras = (info: BaseInfo) => info.packages.map((p) => p.nevra);

describe.each(FIXTURE_ARCHES)('ostree base %s', (arch) => {
  let info: BaseInfo;
  beforeAll(async () => {
    info = await readBase({ kind: 'ostree', repo: ws.distro.ostreeRepo, ref: BASE_REF }, arch, work());
  });

  test('resolves ${basearch} and the commit', () => {
    expect(info.source).toBe('ostree');
    expect(info.ref).toBe(`fixture/${arch}/base`);
    expect(info.commit).toBe(ws.distro.commits[arch]);
  });

  test('version and os-release', () => {
    expect(info.version).toBe('40.20260101.0');
    expect(info.osRelease).toMatchObject({ ID: 'fixture', VERSION_ID: '40', NAME: 'Fixture Linux' });
  });

  test('packages: kernel, epoch formatting, sorted', () => {
    expect(nevras(info)).toContain(`kernel-5.0-1.fc40.${arch}`);
    expect(nevras(info)).not.toContain(`kernel-6.0-1.fc40.${arch}`);
    const ssl = info.packages.find((p) => p.name === 'openssl-libs')!;
    expect(ssl).toEqual({ name: 'openssl-libs', epoch: 1, version: '3.1', release: '1', arch, nevra: `openssl-libs-1:3.1-1.${arch}` });
    expect(info.packages.find((p) => p.name === 'bash')!.epoch).toBe(0);
    expect(info.packages).toHaveLength(9);
    const names = info.packages.map((p) => p.name);
    expect(names).toEqual([...names].sort());
  });

  test('the private root has a copied rpmdb (link count 1)', async () => {
    const dbdir = join(info.root, 'usr/lib/sysimage/rpm');
    const files = await readdir(dbdir);
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect((await stat(join(dbdir, f))).nlink).toBe(1);
  });
});

test('a ref given as a commit checksum', async () => {
  const info = await readBase({ kind: 'ostree', repo: ws.distro.ostreeRepo, ref: ws.distro.commits.aarch64! }, 'aarch64', work());
  expect(info.commit).toBe(ws.distro.commits.aarch64);
  expect(info.ref).toBe(ws.distro.commits.aarch64);
  expect(nevras(info)).toContain('kernel-5.0-1.fc40.aarch64');
});

describe('a base of another architecture', () => {
  test('an x86_64 commit composed for aarch64 (a forgotten ${basearch}) is refused, naming both', async () => {
    const err = await readBase({ kind: 'ostree', repo: ws.distro.ostreeRepo, ref: 'fixture/x86_64/base' }, 'aarch64', work()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BaseError);
    expect(err).toMatchObject({
      reason: 'wrong-arch',
      message: 'the base fixture/x86_64/base is for x86_64, not aarch64 (its rpmdb has 9 x86_64 packages and none for aarch64): check ${basearch} in --base-rev',
    });
    const rootfs = await readBase({ kind: 'rootfs', path: ws.distro.rootfs['aarch64']! }, 'x86_64', work()).catch((e: unknown) => e);
    expect((rootfs as Error).message).toBe(
      `the base ${ws.distro.rootfs['aarch64']} is for aarch64, not x86_64 (its rpmdb has 9 aarch64 packages and none for x86_64): pass a root filesystem for x86_64`,
    );
  });

  test('baseArchMismatch: the family counts, noarch does not', () => {
    const pkgs = (...arches: string[]) => arches.map((arch) => ({ arch }));
    expect(baseArchMismatch(pkgs('x86_64', 'noarch'), 'x86_64')).toBeUndefined();
    expect(baseArchMismatch(pkgs('i686', 'noarch'), 'x86_64')).toBeUndefined(); // multilib family
    expect(baseArchMismatch(pkgs('x86_64', 'x86_64', 'i686', 'noarch'), 'aarch64')).toEqual({ basearch: 'x86_64', count: 3 });
    expect(baseArchMismatch(pkgs('aarch64', 'x86_64', 'x86_64'), 'aarch64')).toBeUndefined(); // some of its own: not ours to judge
    expect(baseArchMismatch(pkgs('s390x', 'ppc64le', 'ppc64le'), 'riscv64')).toEqual({ basearch: 'ppc64le', count: 2 });
    expect(baseArchMismatch(pkgs('noarch', 'noarch'), 'aarch64')).toBeUndefined(); // says nothing
    expect(baseArchMismatch(pkgs('(none)', 'sparc64'), 'aarch64')).toBeUndefined(); // unknown arches say nothing
    expect(baseArchMismatch([], 's390x')).toBeUndefined();
  });

  test('baseArchError: the hint fits the kind of base', () => {
    const found = { basearch: 'x86_64', count: 812 };
    expect(baseArchError({ source: 'ostree', ref: 'acme/x86_64/base' }, 'aarch64', found).message).toBe(
      'the base acme/x86_64/base is for x86_64, not aarch64 (its rpmdb has 812 x86_64 packages and none for aarch64): check ${basearch} in --base-rev',
    );
    expect(baseArchError({ source: 'image', ref: 'quay.io/acme/os:x86' }, 'aarch64', found).message).toBe(
      'the base quay.io/acme/os:x86 is for x86_64, not aarch64 (its rpmdb has 812 x86_64 packages and none for aarch64): use the aarch64 image, or an index that has one',
    );
  });
});

test('the OSTree repo is never written, even a bare-user one that checkout could hardlink from', async () => {
  // archive repos always copy on checkout; bare-user ones hardlink unless --force-copy.
  const repo = join(ws.dir, 'bare-user');
  await run('ostree', ['--repo=' + repo, 'init', '--mode=bare-user']);
  await run('ostree', ['--repo=' + repo, 'pull-local', ws.distro.ostreeRepo, 'fixture/x86_64/base']);
  const before = [hashes(join(repo, 'objects')), hashes(join(ws.distro.ostreeRepo, 'objects'))];
  for (const r of [repo, ws.distro.ostreeRepo]) {
    const dir = work();
    const info = await readBase({ kind: 'ostree', repo: r, ref: 'fixture/x86_64/base' }, 'x86_64', dir);
    // Write through the copy as dnf would: rebuild the db and import a key.
    await run('rpm', ['--root', info.root, '--dbpath', '/usr/lib/sysimage/rpm', '--rebuilddb'], { env: { HOME: dir } });
    await run('rpm', ['--root', info.root, '--dbpath', '/usr/lib/sysimage/rpm', '--import', ws.distro.key.publicKey], { env: { HOME: dir } });
    for (const f of await readdir(join(info.root, 'usr/lib/sysimage/rpm'))) {
      expect((await stat(join(info.root, 'usr/lib/sysimage/rpm', f))).nlink).toBe(1);
    }
    // gpg-pubkey pseudo-packages are not listed.
    const again = await readBase({ kind: 'rootfs', path: info.root }, 'x86_64', work());
    expect(again.packages.some((p) => p.name === 'gpg-pubkey')).toBe(false);
    expect(again.packages).toHaveLength(9);
  }
  expect([hashes(join(repo, 'objects')), hashes(join(ws.distro.ostreeRepo, 'objects'))]).toEqual(before);
});

test('readBase can run twice in the same workDir', async () => {
  const dir = work();
  await readBase({ kind: 'ostree', repo: ws.distro.ostreeRepo, ref: BASE_REF }, 'x86_64', dir);
  const info = await readBase({ kind: 'ostree', repo: ws.distro.ostreeRepo, ref: BASE_REF }, 'aarch64', dir);
  expect(nevras(info)).toContain('kernel-5.0-1.fc40.aarch64');
});

describe.each(FIXTURE_ARCHES)('rootfs base %s', (arch) => {
  test('reads packages and os-release, and leaves the rootfs untouched', async () => {
    const root = ws.distro.rootfs[arch]!;
    const before = hashes(root);
    const info = await readBase({ kind: 'rootfs', path: root }, arch, work());
    expect(info).toMatchObject({ source: 'rootfs', ref: root, version: '40.20260101.0', osRelease: { ID: 'fixture', VERSION_ID: '40' } });
    expect(info.commit).toBeUndefined();
    expect(nevras(info)).toContain(`openssl-libs-1:3.1-1.${arch}`);
    expect(nevras(info)).toContain(`kernel-5.0-1.fc40.${arch}`);
    expect(hashes(root)).toBe(before);
  });
});

describe('symlinks resolve inside the tree, as in a chroot', () => {
  let root: string;
  let repo: string;
  beforeAll(async () => {
    root = join(ws.dir, 'tricky');
    await makeRootfs(root, { rpms: await rpmsFor('x86_64', ['bash', 'glibc']), rpmdbAt: 'share' });
    // Absolute target: must mean <root>/usr/share/rpm, not the host's.
    await unlink(join(root, 'usr/lib/sysimage/rpm'));
    await symlink('/usr/share/rpm', join(root, 'usr/lib/sysimage/rpm'));
    // Climbs above the root: `..` at the root stays at the root, so this is <root>/etc/real-os-release.
    await unlink(join(root, 'usr/lib/os-release'));
    await symlink('../../../../../../../etc/real-os-release', join(root, 'usr/lib/os-release'));
    await writeFile(join(root, 'etc/real-os-release'), 'ID=tricky\nVERSION="1 (Tricky)"\n');
    repo = join(ws.dir, 'tricky-repo');
    await commitToOstree(repo, 'tricky', root, 'commit-version');
  });

  test('rootfs', async () => {
    const info = await readBase({ kind: 'rootfs', path: root }, 'x86_64', work());
    expect(info.osRelease).toEqual({ ID: 'tricky', VERSION: '1 (Tricky)' });
    expect(info.version).toBe('1 (Tricky)');
    expect(nevras(info)).toEqual(['bash-5.2-1.x86_64', 'glibc-2.39-1.x86_64']);
  });

  test('ostree (commit version wins over os-release VERSION)', async () => {
    const info = await readBase({ kind: 'ostree', repo, ref: 'tricky' }, 'x86_64', work());
    expect(info.osRelease.ID).toBe('tricky');
    expect(info.version).toBe('commit-version');
    expect(nevras(info)).toEqual(['bash-5.2-1.x86_64', 'glibc-2.39-1.x86_64']);
  });

  test('resolveInTree: loops and paths under a file are absent', async () => {
    const tree: Record<string, { type: 'file' | 'dir' | 'symlink'; target?: string }> = {
      a: { type: 'symlink', target: 'b' },
      b: { type: 'symlink', target: '/a' },
      f: { type: 'file' },
      d: { type: 'dir' },
      'd/up': { type: 'symlink', target: '../../../f' },
    };
    const lstat = async (p: string) => tree[p];
    expect(await resolveInTree('a', lstat)).toBeUndefined();
    expect(await resolveInTree('f/x', lstat)).toBeUndefined();
    expect(await resolveInTree('d/up', lstat)).toEqual({ path: 'f', type: 'file' });
    expect(await resolveInTree('/d/./up', lstat)).toEqual({ path: 'f', type: 'file' });
  });
});

/**
 * Runs `fn` with a PATH whose `ostree` is a wrapper that logs its arguments and then runs the real
 * binary (nothing is mocked); returns fn's result and each run's arguments after --repo, in the
 * order they started.
 */
async function ostreeRuns<T>(fn: () => Promise<T>): Promise<{ result: T; runs: string[] }> {
  const real = (process.env.PATH ?? '').split(':').map((d) => join(d, 'ostree')).find((f) => existsSync(f))!;
  const bin = await mkdtemp(join(ws.dir, 'bin-'));
  const log = join(bin, 'log');
  await writeFile(join(bin, 'ostree'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexec '${real}' "$@"\n`);
  await chmod(join(bin, 'ostree'), 0o755);
  await writeFile(log, '');
  const path = process.env.PATH;
  process.env.PATH = `${bin}:${path}`;
  let result: T;
  try {
    result = await fn();
  } finally {
    process.env.PATH = path;
  }
  // Every run here starts with --repo=<path>: drop it.
  const runs = (await readFile(log, 'utf8')).split('\n').filter(Boolean).map((line) => line.slice(line.indexOf(' ') + 1));
  return { result, runs };
}
const subcommands = (runs: string[]) => runs.map((r) => r.split(' ')[0]).sort();

describe('ostree processes per base', () => {
  // Each one is a process start and a repo open, for every architecture at once: keep them few.
  test.each(FIXTURE_ARCHES)('%s: one ls answers every lookup of the tree and the rpmdb listing', async (arch) => {
    const { result, runs } = await ostreeRuns(() => readBase({ kind: 'ostree', repo: ws.distro.ostreeRepo, ref: BASE_REF }, arch, work()));
    expect(subcommands(runs)).toEqual(['cat', 'checkout', 'ls', 'rev-parse', 'show']);
    expect(result.packages).toHaveLength(9);
  });

  test('a base without usr/lib/sysimage costs one more ls, not one per path component', async () => {
    const root = await makeRootfs(join(ws.dir, 'old-layout'), { rpms: await rpmsFor('x86_64', ['bash']), rpmdbAt: 'share' });
    await rm(join(root, 'usr/lib/sysimage'), { recursive: true });
    const repo = join(ws.dir, 'old-layout-repo');
    await commitToOstree(repo, 'old', root, '1');
    const { result, runs } = await ostreeRuns(() => readBase({ kind: 'ostree', repo, ref: 'old' }, 'x86_64', work()));
    expect(nevras(result)).toEqual(['bash-5.2-1.x86_64']);
    expect(subcommands(runs)).toEqual(['cat', 'checkout', 'ls', 'ls', 'rev-parse', 'show']);
  });
});

describe('a base pinned by prepareBase', () => {
  test('reads the commit its ref named then, with no rev-parse, even after the ref moved', async () => {
    const repo = join(ws.dir, 'moving-ref');
    const root = await makeRootfs(join(ws.dir, 'moving-ref-v1'), { rpms: await rpmsFor('x86_64', ['bash']) });
    const first = await commitToOstree(repo, 'stream/x86_64', root, '1');
    const pinned = await prepareBase({ kind: 'ostree', repo, ref: 'stream/${basearch}' }, ['x86_64', 'aarch64'], { cacheDir: join(ws.dir, 'pin-cache') });
    // aarch64 has no such ref: left unpinned, so reading it reports the ref as missing.
    expect(pinned).toMatchObject({ kind: 'ostree', repo, commits: { x86_64: first } });
    expect(Object.keys((pinned as { commits: object }).commits)).toEqual(['x86_64']);

    const moved = await makeRootfs(join(ws.dir, 'moving-ref-v2'), { rpms: await rpmsFor('x86_64', ['bash', 'glibc']) });
    const second = await commitToOstree(repo, 'stream/x86_64', moved, '2');
    expect(second).not.toBe(first);
    const { result, runs } = await ostreeRuns(() => readBase(pinned, 'x86_64', work()));
    expect(result).toMatchObject({ ref: 'stream/x86_64', commit: first, version: '1' });
    expect(nevras(result)).toEqual(['bash-5.2-1.x86_64']);
    expect(subcommands(runs)).toEqual(['cat', 'checkout', 'ls', 'show']);
    await expect(readBase(pinned, 'aarch64', work())).rejects.toMatchObject({ reason: 'ref-not-found' });
  });
});

describe('an OSTree base reads as the same tree as a root filesystem would', () => {
  const rpms = () => rpmsFor('x86_64', ['bash', 'glibc']);
  const replaceWithDir = async (root: string, rel: string) => {
    await rm(join(root, rel), { recursive: true });
    await mkdir(join(root, rel), { recursive: true });
  };
  const relink = async (root: string, rel: string, target: string) => {
    await rm(join(root, rel), { recursive: true, force: true });
    await symlink(target, join(root, rel));
  };
  type Outcome = { osRelease?: Record<string, string>; nevras?: string[]; error?: string };
  const cases: [string, 'sysimage' | 'share', (root: string) => Promise<unknown>, Outcome][] = [
    ['an empty placeholder at usr/lib/sysimage/rpm, the rpmdb at usr/share/rpm', 'share',
      (root) => replaceWithDir(root, 'usr/lib/sysimage/rpm'),
      { nevras: ['bash-5.2-1.x86_64', 'glibc-2.39-1.x86_64'] }],
    ['an empty placeholder at usr/share/rpm', 'sysimage',
      (root) => replaceWithDir(root, 'usr/share/rpm'),
      { nevras: ['bash-5.2-1.x86_64', 'glibc-2.39-1.x86_64'] }],
    ['two empty rpmdb directories: the first one is used', 'sysimage',
      async (root) => Promise.all([replaceWithDir(root, 'usr/share/rpm'), replaceWithDir(root, 'usr/lib/sysimage/rpm')]),
      { error: 'empty-rpmdb: the rpmdb at usr/lib/sysimage/rpm in WHERE lists no packages' }],
    ['no usr/lib/sysimage (an older layout)', 'share',
      (root) => rm(join(root, 'usr/lib/sysimage'), { recursive: true }),
      { nevras: ['bash-5.2-1.x86_64', 'glibc-2.39-1.x86_64'], osRelease: { ID: 'edge' } }],
    ['no /etc', 'sysimage',
      (root) => rm(join(root, 'etc'), { recursive: true }),
      { osRelease: { ID: 'edge' } }],
    ['os-release only in /etc', 'sysimage',
      async (root) => {
        await unlink(join(root, 'usr/lib/os-release'));
        await unlink(join(root, 'etc/os-release'));
        await writeFile(join(root, 'etc/os-release'), 'ID=from-etc\n');
      },
      { osRelease: { ID: 'from-etc' } }],
    ['a directory on the way is a symlink (usr/lib/sysimage -> ../sysimage-real)', 'sysimage',
      async (root) => {
        await rename(join(root, 'usr/lib/sysimage'), join(root, 'usr/sysimage-real'));
        await symlink('../sysimage-real', join(root, 'usr/lib/sysimage'));
      },
      { nevras: ['bash-5.2-1.x86_64', 'glibc-2.39-1.x86_64'] }],
    ['a file on the way (usr/lib/sysimage is a file)', 'share',
      async (root) => {
        await rm(join(root, 'usr/lib/sysimage'), { recursive: true });
        await writeFile(join(root, 'usr/lib/sysimage'), 'not a directory\n');
      },
      { nevras: ['bash-5.2-1.x86_64', 'glibc-2.39-1.x86_64'] }],
    ['symlink loops: os-release is absent, and so is the rpmdb', 'sysimage',
      async (root) => {
        await relink(root, 'usr/lib/os-release', '/etc/os-release');
        await relink(root, 'usr/lib/sysimage/rpm', '/usr/share/rpm');
      },
      { error: 'no-rpmdb: no rpmdb found at usr/lib/sysimage/rpm or usr/share/rpm in WHERE' }],
    ['a symlink loop for os-release only', 'share',
      (root) => relink(root, 'usr/lib/os-release', '../../etc/os-release'),
      { osRelease: {}, nevras: ['bash-5.2-1.x86_64', 'glibc-2.39-1.x86_64'] }],
  ];

  test.each(cases)('%s', async (name, rpmdbAt, edit, expected) => {
    const slug = name.replace(/[^a-z]+/g, '-');
    const root = await makeRootfs(join(ws.dir, `edge-${slug}`), { rpms: await rpms(), rpmdbAt, osRelease: { ID: 'edge' } });
    await edit(root);
    const repo = join(ws.dir, `edge-repo-${slug}`);
    await commitToOstree(repo, 'edge', root, '1');
    const outcome = async (spec: Parameters<typeof readBase>[0], where: string): Promise<Outcome> => {
      try {
        const info = await readBase(spec, 'x86_64', work());
        return { osRelease: info.osRelease, nevras: nevras(info) };
      } catch (e) {
        if (!(e instanceof BaseError)) throw e;
        return { error: `${e.reason}: ${e.message.replace(where, 'WHERE')}` };
      }
    };
    const fromRootfs = await outcome({ kind: 'rootfs', path: root }, root);
    const where = `edge (commit ${await revParse(repo, 'edge')})`;
    const { result: fromOstree, runs } = await ostreeRuns(() => outcome({ kind: 'ostree', repo, ref: 'edge' }, where));
    // However the symlinks go (loops included), no lookup runs twice.
    expect(new Set(runs).size).toBe(runs.length);
    expect(fromOstree).toEqual(fromRootfs);
    const { error, ...rest } = expected;
    expect(fromOstree).toMatchObject(rest);
    if (error) expect(fromOstree.error).toContain(error);
    else expect(fromOstree.error).toBeUndefined();
  });

  test('a partially pulled commit (only the paths a base is read from, as from a remote repo)', async () => {
    const root = await makeRootfs(join(ws.dir, 'partial'), { rpms: await rpms(), osRelease: { ID: 'edge' } });
    await mkdir(join(root, 'usr/lib/other/deep'), { recursive: true });
    await writeFile(join(root, 'usr/lib/other/deep/f'), 'x');
    await writeFile(join(root, 'etc/hostname'), 'x');
    await mkdir(join(root, 'var/lib'), { recursive: true });
    const source = join(ws.dir, 'partial-source');
    await commitToOstree(source, 'edge', root, '1');
    const repo = join(ws.dir, 'partial-repo');
    const ost = (args: string[]) => run('ostree', ['--repo=' + repo, ...args]);
    await ost(['init', '--mode=archive']);
    await ost(['remote', 'add', '--no-gpg-verify', 'origin', 'file://' + source]);
    await ost(['pull', '--subpath=/usr/lib/sysimage/rpm', '--subpath=/usr/share/rpm', '--subpath=/usr/lib/os-release', '--subpath=/etc/os-release', 'origin', 'edge']);
    // The listings around what was pulled are incomplete: `ostree ls /usr/lib` fails on this repo.
    const commit = (await revParse(repo, 'origin:edge'))!;
    expect((await run('ostree', ['--repo=' + repo, 'ls', commit, '/usr/lib'], { allowFailure: true })).exitCode).not.toBe(0);
    const { result: info, runs } = await ostreeRuns(() => readBase({ kind: 'ostree', repo, ref: 'origin:edge' }, 'x86_64', work()));
    expect(subcommands(runs)).toEqual(['cat', 'checkout', 'ls', 'rev-parse', 'show']);
    expect(info.osRelease).toEqual({ ID: 'edge' });
    expect(nevras(info)).toEqual(['bash-5.2-1.x86_64', 'glibc-2.39-1.x86_64']);
  });
});

describe('errors', () => {
  const ostreeErr = (repo: string, ref: string) => readBase({ kind: 'ostree', repo, ref }, 'x86_64', work());

  test('ref not found names the substituted ref and the repo', async () => {
    const p = ostreeErr(ws.distro.ostreeRepo, 'fixture/${basearch}/nope');
    await expect(p).rejects.toThrow(BaseError);
    await expect(p).rejects.toThrow(`ref fixture/x86_64/nope not found in OSTree repo ${ws.distro.ostreeRepo}`);
    await expect(p).rejects.toMatchObject({ reason: 'ref-not-found' });
  });

  test('a checksum that is not in the repo', async () => {
    await expect(ostreeErr(ws.distro.ostreeRepo, '0'.repeat(64))).rejects.toThrow(`ref ${'0'.repeat(64)} not found in OSTree repo`);
  });

  test('not an OSTree repo', async () => {
    const dir = join(ws.dir, 'not-a-repo');
    await mkdir(dir);
    await expect(ostreeErr(dir, BASE_REF)).rejects.toThrow(`${dir} is not an OSTree repo`);
    await expect(ostreeErr(join(ws.dir, 'missing'), BASE_REF)).rejects.toMatchObject({ reason: 'not-ostree-repo' });
  });

  test('no rpmdb (rootfs and ostree)', async () => {
    const root = join(ws.dir, 'no-rpmdb');
    await mkdir(join(root, 'usr/lib'), { recursive: true });
    await writeFile(join(root, 'usr/lib/os-release'), 'ID=x\n');
    await expect(readBase({ kind: 'rootfs', path: root }, 'x86_64', work())).rejects.toThrow(
      `no rpmdb found at usr/lib/sysimage/rpm or usr/share/rpm in ${root}`,
    );
    const repo = join(ws.dir, 'no-rpmdb-repo');
    await commitToOstree(repo, 'norpm', root, '1');
    const p = ostreeErr(repo, 'norpm');
    await expect(p).rejects.toThrow(/^no rpmdb found at usr\/lib\/sysimage\/rpm or usr\/share\/rpm in norpm \(commit [0-9a-f]{64}\)$/);
    await expect(p).rejects.toMatchObject({ reason: 'no-rpmdb' });
  });

  test('a dangling rpmdb symlink is no rpmdb', async () => {
    const root = join(ws.dir, 'dangling');
    await mkdir(join(root, 'usr/lib/sysimage'), { recursive: true });
    await symlink('/nowhere', join(root, 'usr/lib/sysimage/rpm'));
    await expect(readBase({ kind: 'rootfs', path: root }, 'x86_64', work())).rejects.toMatchObject({ reason: 'no-rpmdb' });
  });

  test('an empty rpmdb says the dbpath is probably wrong', async () => {
    const root = await makeRootfs(join(ws.dir, 'empty-db'), { rpms: [] });
    const p = readBase({ kind: 'rootfs', path: root }, 'x86_64', work());
    await expect(p).rejects.toThrow(`the rpmdb at usr/lib/sysimage/rpm in ${root} lists no packages: almost certainly the wrong database`);
    await expect(p).rejects.toMatchObject({ reason: 'empty-rpmdb' });
  });

  test('missing os-release is not fatal', async () => {
    const root = await makeRootfs(join(ws.dir, 'no-os-release'), { rpms: await rpmsFor('aarch64', ['bash']) });
    await unlink(join(root, 'usr/lib/os-release'));
    const info = await readBase({ kind: 'rootfs', path: root }, 'aarch64', work());
    expect(info.osRelease).toEqual({});
    expect(info.version).toBeUndefined();
    expect(nevras(info)).toEqual(['bash-5.2-1.aarch64']);
  });

  test('rootfs path missing or not a directory', async () => {
    const missing = join(ws.dir, 'nope');
    await expect(readBase({ kind: 'rootfs', path: missing }, 'x86_64', work())).rejects.toThrow(`root filesystem ${missing} does not exist`);
    const file = join(ws.dir, 'a-file');
    await writeFile(file, '');
    const p = readBase({ kind: 'rootfs', path: file }, 'x86_64', work());
    await expect(p).rejects.toThrow(`root filesystem ${file} is not a directory`);
    await expect(p).rejects.toMatchObject({ reason: 'rootfs-missing' });
  });
});

test('substituteBasearch', () => {
  expect(substituteBasearch('fedora/${basearch}/coreos/stable', 'aarch64')).toBe('fedora/aarch64/coreos/stable');
  expect(substituteBasearch('a/${basearch}/${basearch}', 's390x')).toBe('a/s390x/s390x');
  expect(substituteBasearch('abc', 'x86_64')).toBe('abc');
});

test('parseOsRelease', () => {
  const text = [
    '# a comment',
    '',
    'NAME="Fedora Linux"',
    "ID=fedora",
    "VERSION_ID='40'",
    'PRETTY_NAME="Fedora \\"CoreOS\\" \\$x \\\\ done"',
    "SINGLE='no \\escape'",
    'EMPTY=',
    '  INDENTED=yes  ',
    'not a key value line',
    'CONCAT="a"\'b\'c',
  ].join('\n');
  expect(parseOsRelease(text)).toEqual({
    NAME: 'Fedora Linux',
    ID: 'fedora',
    VERSION_ID: '40',
    PRETTY_NAME: 'Fedora "CoreOS" $x \\ done',
    SINGLE: 'no \\escape',
    EMPTY: '',
    INDENTED: 'yes',
    CONCAT: 'abc',
  });
  expect(parseOsRelease('')).toEqual({});
});
