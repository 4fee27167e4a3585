import { mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fixtureWorkspace } from '../../test/fixtures/distro.js';
import { commitToOstree } from '../../test/fixtures/base.js';
import { ToolError } from '../errors.js';
import { run } from './exec.js';
import * as ostree from './ostree.js';

const ws = fixtureWorkspace('ce-ostree-test-');
let repo: string;
const x86 = () => ws.distro.commits.x86_64!;

beforeAll(() => {
  repo = ws.distro.ostreeRepo;
});

test('isOstreeRepo', async () => {
  expect(await ostree.isOstreeRepo(repo)).toBe(true);
  expect(await ostree.isOstreeRepo(ws.dir)).toBe(false);
  expect(await ostree.isOstreeRepo(join(ws.dir, 'missing'))).toBe(false);
});

test('revParse: refs, checksums, absent ones', async () => {
  expect(await ostree.revParse(repo, 'fixture/x86_64/base')).toBe(x86());
  expect(await ostree.revParse(repo, x86())).toBe(x86());
  expect(await ostree.revParse(repo, 'fixture/x86_64/nope')).toBeUndefined();
  expect(await ostree.revParse(repo, 'f'.repeat(64))).toBeUndefined();
  // A missing repo is a tool failure, not an absent ref.
  await expect(ostree.revParse(join(ws.dir, 'missing'), 'x')).rejects.toThrow(ToolError);
});

test('commitVersion: present, absent, quoted', async () => {
  expect(await ostree.commitVersion(repo, x86())).toBe('40.20260101.0');
  const root = join(ws.dir, 'tree');
  await mkdir(root);
  await writeFile(join(root, 'f'), 'x');
  const small = join(ws.dir, 'small');
  const odd = `it's "v" \\ 1\ttab`;
  const quoted = await commitToOstree(small, 'quoted', root, odd);
  expect(await ostree.commitVersion(small, quoted)).toBe(odd);
  const { stdout } = await run('ostree', ['--repo=' + small, 'commit', '--branch=plain', '--tree=dir=' + root]);
  expect(await ostree.commitVersion(small, stdout.trim())).toBeUndefined();
});

test('parseGVariantString', () => {
  expect(ostree.parseGVariantString("'1.2'\n")).toBe('1.2');
  expect(ostree.parseGVariantString(`"it's \\"x\\" \\\\ \\n \\u00e9"`)).toBe('it\'s "x" \\ \n é');
  expect(ostree.parseGVariantString('uint32 5\n')).toBe('uint32 5');
});

test('lstat: dir, file, relative symlink, absent; paths normalised', async () => {
  expect(await ostree.lstat(repo, x86(), 'usr/lib/sysimage/rpm/')).toMatchObject({ type: 'dir', path: '/usr/lib/sysimage/rpm' });
  expect(await ostree.lstat(repo, x86(), '/usr/share/rpm')).toEqual({
    type: 'symlink', mode: 0o777, size: 0, path: '/usr/share/rpm', target: '../lib/sysimage/rpm',
  });
  expect(await ostree.lstat(repo, x86(), 'usr//lib/./os-release')).toMatchObject({ type: 'file', mode: 0o644 });
  expect(await ostree.lstat(repo, x86(), 'usr/nope')).toBeUndefined();
  const arm = ws.distro.commits.aarch64!;
  expect(await ostree.lstat(repo, arm, 'usr/lib/sysimage/rpm')).toMatchObject({ type: 'symlink', target: '../../share/rpm' });
});

test('lstat: absolute targets and names containing " -> "', async () => {
  const root = join(ws.dir, 'links');
  await mkdir(root);
  await symlink('/usr/lib/os-release', join(root, 'abs'));
  await symlink('a -> b', join(root, 'x -> y'));
  const r = join(ws.dir, 'links-repo');
  const c = await commitToOstree(r, 'links', root, '1');
  expect(await ostree.lstat(r, c, 'abs')).toMatchObject({ type: 'symlink', target: '/usr/lib/os-release' });
  expect(await ostree.lstat(r, c, 'x -> y')).toMatchObject({ type: 'symlink', path: '/x -> y', target: 'a -> b' });
});

test('ls and cat', async () => {
  const entries = await ostree.ls(repo, x86(), 'usr/lib');
  expect(entries.map((e) => e.path).sort()).toEqual(['/usr/lib/os-release', '/usr/lib/sysimage']);
  expect(await ostree.cat(repo, x86(), 'usr/lib/os-release')).toContain('ID="fixture"');
  await expect(ostree.cat(repo, x86(), 'usr/nope')).rejects.toThrow(ToolError);
});

test('checkoutSubpath copies (no hardlinks into a bare-user repo)', async () => {
  const bare = join(ws.dir, 'bare-user');
  await run('ostree', ['--repo=' + bare, 'init', '--mode=bare-user']);
  await run('ostree', ['--repo=' + bare, 'pull-local', repo, 'fixture/x86_64/base']);
  const dest = join(ws.dir, 'checkout');
  await ostree.checkoutSubpath(bare, x86(), 'usr/lib/sysimage/rpm', dest);
  const files = await readdir(dest);
  expect(files.length).toBeGreaterThan(0);
  for (const f of files) expect((await stat(join(dest, f))).nlink).toBe(1);
  await ostree.checkoutSubpath(repo, x86(), '/usr/lib', join(ws.dir, 'lib'));
  expect(await readFile(join(ws.dir, 'lib/os-release'), 'utf8')).toContain('VERSION_ID="40"');
});

describe('lsPaths: several lookups in one ostree run', () => {
  test('entries as lstat gives them, directory listings, and where an absent path stops', async () => {
    const found = await ostree.lsPaths(repo, x86(), ['/usr/lib/sysimage', 'usr/lib/os-release', 'usr/share/rpm/', '/usr/lib/sysimage/rpm', 'usr/nope/deeper', 'etc/os-release']);
    for (const p of ['/usr/lib/os-release', '/usr/share/rpm', '/usr/lib/sysimage/rpm', '/etc/os-release']) {
      expect(found.get(p)?.entry).toEqual(await ostree.lstat(repo, x86(), p));
    }
    expect(found.get('/usr/lib/sysimage')).toMatchObject({ entry: { type: 'dir' }, empty: false });
    expect(found.get('/usr/lib/sysimage/rpm')).toMatchObject({ entry: { type: 'dir' }, empty: false });
    expect(found.get('/usr/lib/os-release')!.empty).toBeUndefined();
    // Absent, and so is its parent: the next round asked.
    expect(found.get('/usr/nope/deeper')).toEqual({ entry: undefined });
    expect(found.get('/usr/nope')).toEqual({ entry: undefined });
    expect(found.size).toBe(7);
  });

  test('empty directories, and names ostree ls cannot print unambiguously', async () => {
    const root = join(ws.dir, 'odd-names');
    await mkdir(join(root, 'empty'), { recursive: true });
    await mkdir(join(root, 'odd'), { recursive: true });
    await writeFile(join(root, 'odd', 'two\nlines'), '');
    await writeFile(join(root, 'f'), '');
    const r = join(ws.dir, 'odd-names-repo');
    const c = await commitToOstree(r, 'odd', root, '1');
    const found = await ostree.lsPaths(r, c, ['/empty', '/f']);
    expect(found.get('/empty')).toMatchObject({ entry: { type: 'dir' }, empty: true });
    expect(found.get('/f')).toMatchObject({ entry: { type: 'file' } });
    // A newline in a name makes the output unreadable: nothing is settled, lstat and ls remain.
    const odd = await ostree.lsPaths(r, c, ['/f', '/odd']);
    expect(odd.size).toBe(0);
    expect(await ostree.lstat(r, c, '/odd')).toMatchObject({ type: 'dir' });
  });

  test('a partially pulled commit: directories that cannot be listed are found, not listed', async () => {
    const partial = join(ws.dir, 'partial');
    const ost = (args: string[]) => run('ostree', ['--repo=' + partial, ...args]);
    await ost(['init', '--mode=archive']);
    await ost(['remote', 'add', '--no-gpg-verify', 'origin', 'file://' + repo]);
    await ost(['pull', '--subpath=/usr/lib/os-release', 'origin', 'fixture/x86_64/base']);
    const found = await ostree.lsPaths(partial, x86(), ['/usr/lib/os-release', '/usr', '/etc/os-release', '/usr/lib/sysimage/rpm']);
    expect(found.get('/usr/lib/os-release')).toMatchObject({ entry: { type: 'file' } });
    // `ostree ls /usr` prints /usr/lib, then fails on /usr/share (not pulled): not empty, for sure.
    expect(found.get('/usr')).toMatchObject({ entry: { type: 'dir' }, empty: false });
    // Not pulled reads as absent, as lstat says.
    expect(found.get('/etc/os-release')).toEqual({ entry: undefined });
    expect(await ostree.lstat(partial, x86(), '/etc/os-release')).toBeUndefined();
    expect(found.get('/usr/lib/sysimage/rpm')).toEqual({ entry: undefined });
  });
});
