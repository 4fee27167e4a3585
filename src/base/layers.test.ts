import { mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../tools/exec.js';
import { LayeredTree, normaliseEntryPath } from './layers.js';

let tmp: string;
let n = 0;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ce-layers-test-'));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** `path: content` a file, `path/` a directory, `path -> target` a symlink, `path => source` a hardlink; in this order. */
type Entry = string;

/** A gzip layer with exactly these entries in this order (Python's tarfile: GNU tar reorders and rewrites names). */
async function layer(entries: Entry[]): Promise<string> {
  const file = join(tmp, `layer-${n++}.tar.gz`);
  const script = `
import io, json, sys, tarfile
with tarfile.open(sys.argv[1], 'w:gz', format=tarfile.PAX_FORMAT) as t:
    for e in json.load(sys.stdin):
        if ' -> ' in e:
            name, target = e.split(' -> ', 1); i = tarfile.TarInfo(name); i.type = tarfile.SYMTYPE; i.linkname = target; t.addfile(i)
        elif ' => ' in e:
            name, target = e.split(' => ', 1); i = tarfile.TarInfo(name); i.type = tarfile.LNKTYPE; i.linkname = target; t.addfile(i)
        elif e.endswith('/'):
            i = tarfile.TarInfo(e.rstrip('/')); i.type = tarfile.DIRTYPE; i.mode = 0o755; t.addfile(i)
        else:
            name, content = e.split(': ', 1) if ': ' in e else (e, ''); data = content.encode()
            i = tarfile.TarInfo(name); i.size = len(data); i.mode = 0o644; t.addfile(i, io.BytesIO(data))
`;
  await run('/usr/bin/python3', ['-c', script, file], { input: JSON.stringify(entries) });
  return file;
}

async function index(...layers: Entry[][]): Promise<LayeredTree> {
  const files = [];
  for (const l of layers) files.push(await layer(l));
  return LayeredTree.index(files, join(tmp, `scratch-${n++}`));
}

async function copied(tree: LayeredTree, dir: string): Promise<Record<string, string>> {
  const dest = join(tmp, `copy-${n++}`);
  await tree.copyDir(dir, dest);
  const out: Record<string, string> = {};
  for (const rel of (await readdir(dest, { recursive: true })).map(String).sort()) {
    const path = join(dest, rel);
    out[rel] = await readlink(path).then((t) => `-> ${t}`, () => readFile(path, 'utf8').catch(() => '/'));
  }
  return out;
}

test('entry paths: ./ and / prefixes, trailing slashes; .. is never followed', () => {
  expect(normaliseEntryPath('./usr/lib/')).toEqual(['usr', 'lib']);
  expect(normaliseEntryPath('/etc//os-release')).toEqual(['etc', 'os-release']);
  expect(normaliseEntryPath('./')).toBeUndefined();
  expect(normaliseEntryPath('usr/../../etc/passwd')).toBeUndefined();
});

test('later layers replace files, whiteouts delete, an opaque directory hides what lower layers had', async () => {
  const tree = await index(
    ['./usr/', './usr/db/', './usr/db/a: lower a', './usr/db/b: lower b', './usr/db/sub/', './usr/db/sub/c: c', './etc/', './etc/keep: k', './etc/gone: g'],
    ['./usr/db/a: upper a', './etc/.wh.gone', './usr/db/.wh.sub'],
    // The opaque marker after an entry of its own layer: that entry stays.
    ['./usr/db/new: new', './usr/db/.wh..wh..opq', './etc/.wh..wh.plnk'],
  );
  expect(await copied(tree, 'usr/db')).toEqual({ new: 'new' });
  expect(await tree.lstat('etc/gone')).toBeUndefined();
  expect(await tree.read('etc/keep')).toBe('k');
  expect(await tree.lstat('etc/.wh..wh.plnk')).toBeUndefined();

  const two = await index(['usr/db/a: lower a', 'usr/db/sub/c: c'], ['usr/db/a: upper a', 'usr/db/.wh.sub']);
  expect(await copied(two, 'usr/db')).toEqual({ a: 'upper a' });
});

test('a deleted directory comes back empty but for what the later layer adds', async () => {
  const tree = await index(['var/lib/rpm/Packages: old', 'var/lib/rpm/Index: old'], ['var/lib/.wh.rpm'], ['var/lib/rpm/Packages: new']);
  expect(await copied(tree, 'var/lib/rpm')).toEqual({ Packages: 'new' });
});

test('a file replaces a directory and a directory replaces a symlink', async () => {
  const tree = await index(['a/b/c: c', 'link -> a', 'x/y: y'], ['a: now a file', 'link/', 'link/z: z']);
  expect(await tree.lstat('a')).toEqual({ type: 'file', target: undefined });
  expect(await tree.read('a')).toBe('now a file');
  expect(await copied(tree, 'link')).toEqual({ z: 'z' });
  expect(await tree.isEmptyDir('x')).toBe(false);
});

test('hardlinks, as ostree-native container layers write them, within a layer and into a lower one', async () => {
  const tree = await index(
    ['sysroot/ostree/repo/objects/ab/cdef.file: rpmdb contents', 'usr/share/rpm/rpmdb.sqlite => sysroot/ostree/repo/objects/ab/cdef.file'],
    ['usr/share/rpm/Index => sysroot/ostree/repo/objects/ab/cdef.file', 'usr/share/rpm/dangling => no/such/file'],
  );
  expect(await copied(tree, 'usr/share/rpm')).toEqual({ Index: 'rpmdb contents', 'rpmdb.sqlite': 'rpmdb contents' });
});

test('symlinks are kept verbatim and never written through; unsafe names are skipped', async () => {
  const tree = await index(['db/escape -> /etc/passwd', 'db/file: f', '../outside: evil', 'db/../../also: evil']);
  expect(await copied(tree, 'db')).toEqual({ escape: '-> /etc/passwd', file: 'f' });
  expect(await tree.lstat('outside')).toBeUndefined();
  expect(await tree.lstat('also')).toBeUndefined();
  await expect(tree.read('db')).rejects.toThrow(/not a regular file/);
  await expect(tree.copyDir('db/file', join(tmp, 'nope'))).rejects.toThrow(/not a directory/);
});

test('a path that occurs twice in one layer: the later entry counts', async () => {
  const tree = await index(['db/a: first', 'db/b: b', 'db/a: second']);
  expect(await tree.read('db/a')).toBe('second');
  expect(await copied(tree, 'db')).toEqual({ a: 'second', b: 'b' });
});
