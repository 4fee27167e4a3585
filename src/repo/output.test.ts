import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ComposeError, escapeControl } from '../errors.js';
import { limiter, type Limiter } from '../tools/limit.js';
import type { FetchedPackage } from '../download/fetch.js';
import { buildRpms } from '../../test/fixtures/rpms.js';
import { CHECKSUM_CACHE_MIN_MEAN, commitArches, discardStaged, inside, JOURNAL, packageFilename, recoverOutput, stageArch, writeJson } from './output.js';

describe('packageFilename', () => {
  const good = { name: 'kernel-devel', version: '5.0', release: '1.fc40', arch: 'x86_64' };

  test('is name-version-release.arch.rpm, whatever location_href the repo gave', () => {
    expect(packageFilename(good)).toBe('kernel-devel-5.0-1.fc40.x86_64.rpm');
    expect(packageFilename({ name: 'libstdc++', version: '1.0~rc1^git2', release: '0_1.el9', arch: 'noarch' })).toBe(
      'libstdc++-1.0~rc1^git2-0_1.el9.noarch.rpm',
    );
  });

  const hostile = ['..', '.', '', '/', '../../etc/cron.d/x', 'a/b', 'a\\b', 'a b', 'a\nb', 'a\0b', '$HOME', '%{x}', 'é', '*', "a'b"];
  for (const field of ['name', 'version', 'release', 'arch'] as const) {
    test.each(hostile.map((v) => [JSON.stringify(v), v]))(`rejects ${field} %s`, (_shown, value) => {
      expect(() => packageFilename({ ...good, [field]: value })).toThrow(ComposeError);
      // Printed with control characters escaped: the name comes from repo metadata.
      expect(() => packageFilename({ ...good, [field]: value })).toThrow(`refusing package with unsafe name component "${escapeControl(value)}" in its metadata`);
    });
  }
});

describe('inside', () => {
  test('joins names that stay inside', () => {
    expect(inside('/out', 'x86_64')).toBe('/out/x86_64');
    expect(inside('/out/', 'a/../metadata.json')).toBe('/out/metadata.json');
    expect(inside('out', 'x')).toBe(join(process.cwd(), 'out/x'));
  });

  test.each(['..', '../x', '../out2/x', '/etc/passwd', '', '.', 'a/../..'])('rejects %j', (name) => {
    expect(() => inside('/out', name)).toThrow(ComposeError);
    expect(() => inside('/out', name)).toThrow(`path ${name} escapes /out`);
  });
});

describe('staging and committing', () => {
  let dir: string;
  let rpms: Record<string, string>;
  let n = 0;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ce-output-test-'));
    const built = await buildRpms(
      ['alpha', 'beta', 'gamma'].map((name) => ({ name, version: '1.0', release: '1', noarch: true })),
      ['x86_64'],
      join(dir, 'rpms'),
    );
    rpms = Object.fromEntries(built['x86_64']!.map((f) => [basename(f).split('-')[0]!, f]));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** A fetched package as the download stage returns it: a file outside the output (cache or repo). */
  async function fetched(name: string, overrides: Partial<FetchedPackage> = {}): Promise<FetchedPackage> {
    const file = rpms[name]!;
    const sha256 = createHash('sha256').update(await readFile(file)).digest('hex');
    return {
      name, epoch: 0, version: '1.0', release: '1', arch: 'noarch', nevra: `${name}-1.0-1.noarch`, repo: 'r',
      location: `../../evil/${name}.rpm`, checksum: { type: 'sha256', value: sha256 }, size: 0, extensions: [name],
      file, sha256, ...overrides,
    };
  }

  async function primaryNames(repoDir: string): Promise<string[]> {
    const repomd = await readFile(join(repoDir, 'repodata/repomd.xml'), 'utf8');
    const href = /<data type="primary">[\s\S]*?<location href="([^"]+)"/.exec(repomd)![1]!;
    const xml = gunzipSync(await readFile(join(repoDir, href))).toString();
    return [...xml.matchAll(/<name>([^<]+)<\/name>/g)].map((m) => m[1]!).sort();
  }

  /** name → pkgid, from the staged repo's primary.xml. */
  async function primaryChecksums(repoDir: string): Promise<Record<string, string>> {
    const repomd = await readFile(join(repoDir, 'repodata/repomd.xml'), 'utf8');
    const href = /<data type="primary">[\s\S]*?<location href="([^"]+)"/.exec(repomd)![1]!;
    const xml = gunzipSync(await readFile(join(repoDir, href))).toString();
    return Object.fromEntries(
      [...xml.matchAll(/<name>([^<]+)<\/name>[\s\S]*?<checksum type="sha256" pkgid="YES">([0-9a-f]+)<\/checksum>/g)].map((m) => [m[1]!, m[2]!]),
    );
  }

  const fresh = () => join(dir, `out-${n++}`);

  test("stages packages under their NEVRA names with repodata: cached files linked, a repo's files copied", async () => {
    const output = fresh();
    // beta is read in place from a file:// repo (path set), alpha comes from the download cache.
    const staged = await stageArch(output, 'x86_64', [await fetched('alpha'), await fetched('beta', { path: rpms['beta'] })]);
    expect(staged.arch).toBe('x86_64');
    expect(basename(staged.dir)).toMatch(/^\.staging-x86_64-/);
    expect([...staged.filenames]).toEqual([
      ['alpha-1.0-1.noarch', 'alpha-1.0-1.noarch.rpm'],
      ['beta-1.0-1.noarch', 'beta-1.0-1.noarch.rpm'],
    ]);
    expect((await readdir(staged.dir)).sort()).toEqual(['alpha-1.0-1.noarch.rpm', 'beta-1.0-1.noarch.rpm', 'repodata']);
    expect(await primaryNames(staged.dir)).toEqual(['alpha', 'beta']);
    const [linked, cached] = await Promise.all([stat(join(staged.dir, 'alpha-1.0-1.noarch.rpm')), stat(rpms['alpha']!)]);
    expect(linked.ino).toBe(cached.ino);
    const [copy, source] = await Promise.all([stat(join(staged.dir, 'beta-1.0-1.noarch.rpm')), stat(rpms['beta']!)]);
    expect(copy.ino).not.toBe(source.ino);
    expect(source.nlink).toBe(1);
    // The linked cache file is read-only from now on; the copy is the output's own, readable by all.
    expect([linked.mode & 0o777, cached.mode & 0o777, copy.mode & 0o777]).toEqual([0o444, 0o444, 0o644]);
    expect((await stat(staged.dir)).mode & 0o777).toBe(0o755);
    // Nothing was written where the hostile location_href points.
    expect(await readdir(dir)).not.toContain('evil');
    await discardStaged([staged]);
  });

  test('createrepo_c runs through the limiter it is given: architectures staged together take turns', async () => {
    const one = limiter(1);
    let running = 0;
    let most = 0;
    let calls = 0;
    const counting: Limiter = (work) => one(async () => {
      calls++;
      most = Math.max(most, ++running);
      try {
        return await work();
      } finally {
        running--;
      }
    });
    const output = fresh();
    const staged = await Promise.all(['x86_64', 'aarch64', 's390x'].map(async (arch) => stageArch(output, arch, [await fetched('alpha')], { indexing: counting })));
    expect([calls, most]).toEqual([3, 1]);
    for (const s of staged) expect(await primaryNames(s.dir)).toEqual(['alpha']);
    await discardStaged(staged);
  });

  // The repo's sizes decide whether the cache is used: these fixture packages are a few KiB, and claim more.
  const large = { size: CHECKSUM_CACHE_MIN_MEAN };

  test("a package staged again takes its checksum from createrepo_c's cache instead of reading the file", async () => {
    const checksumCache = join(dir, `checksums-${n++}`);
    const alpha = await fetched('alpha', large);
    const first = await stageArch(fresh(), 'x86_64', [alpha], { checksumCache });
    expect(await primaryChecksums(first.dir)).toEqual({ alpha: alpha.sha256 });
    const entries = await readdir(checksumCache);
    expect(entries).toEqual([expect.stringMatching(/^alpha-1\.0-1\.noarch\.rpm-/)]);
    expect(await readFile(join(checksumCache, entries[0]!), 'utf8')).toBe(alpha.sha256);
    // An entry edited in the cache shows in the next repo: createrepo_c took it and did not read the package.
    await writeFile(join(checksumCache, entries[0]!), 'f'.repeat(64));
    const second = await stageArch(fresh(), 'x86_64', [alpha], { checksumCache });
    expect(await primaryChecksums(second.dir)).toEqual({ alpha: 'f'.repeat(64) });
    await discardStaged([first, second]);
  });

  test("a package copied from a file:// repo keeps the source's mtime, so its checksum cache entry is found again", async () => {
    const checksumCache = join(dir, `checksums-${n++}`);
    const beta = await fetched('beta', { ...large, path: rpms['beta'] });
    const old = new Date('2020-02-02T02:02:02Z');
    await utimes(rpms['beta']!, old, old);
    const first = await stageArch(fresh(), 'x86_64', [beta], { checksumCache });
    const second = await stageArch(fresh(), 'x86_64', [beta], { checksumCache });
    const [copy, source] = await Promise.all([stat(join(second.dir, 'beta-1.0-1.noarch.rpm')), stat(rpms['beta']!)]);
    expect(copy.ino).not.toBe(source.ino);
    expect(copy.mtime).toEqual(old);
    expect(await readdir(checksumCache)).toHaveLength(1);
    await discardStaged([first, second]);
  });

  test('small packages on average are read again rather than cached: recording a checksum would cost more', async () => {
    const checksumCache = join(dir, `checksums-${n++}`);
    const mixed = [await fetched('alpha', { size: 2 * CHECKSUM_CACHE_MIN_MEAN - 2048 }), await fetched('beta', { size: 1024 })];
    const below = await stageArch(fresh(), 'x86_64', mixed, { checksumCache });
    await expect(readdir(checksumCache)).rejects.toThrow('ENOENT');
    mixed[1]!.size = 2048; // now exactly the mean that pays
    const at = await stageArch(fresh(), 'x86_64', mixed, { checksumCache });
    expect(await readdir(checksumCache)).toHaveLength(2);
    await discardStaged([below, at]);
  });

  test('commitArches replaces a previous output completely and leaves no staging directory', async () => {
    const output = fresh();
    const first = await stageArch(output, 'x86_64', [await fetched('alpha'), await fetched('beta')]);
    await writeJson(first.dir, 'metadata.json', '{"run":1}\n');
    expect(await commitArches(output, [first])).toEqual([join(output, 'x86_64')]);
    expect((await readdir(join(output, 'x86_64'))).sort()).toEqual(['alpha-1.0-1.noarch.rpm', 'beta-1.0-1.noarch.rpm', 'metadata.json', 'repodata']);

    const x86 = await stageArch(output, 'x86_64', [await fetched('gamma')]);
    const arm = await stageArch(output, 'aarch64', [await fetched('alpha')]);
    expect(await commitArches(output, [x86, arm])).toEqual([join(output, 'x86_64'), join(output, 'aarch64')]);
    expect((await readdir(join(output, 'x86_64'))).sort()).toEqual(['gamma-1.0-1.noarch.rpm', 'repodata']);
    expect(await primaryNames(join(output, 'x86_64'))).toEqual(['gamma']);
    expect(await primaryNames(join(output, 'aarch64'))).toEqual(['alpha']);
    expect((await readdir(output)).sort()).toEqual(['aarch64', 'x86_64']);
  });

  test('a failure moving the second architecture undoes the first: the previous output of both stays, no leftover', async () => {
    const output = fresh();
    const first = [await stageArch(output, 'x86_64', [await fetched('alpha')]), await stageArch(output, 'aarch64', [await fetched('alpha')])];
    await commitArches(output, first);
    const x86 = await stageArch(output, 'x86_64', [await fetched('gamma')]);
    // A directory that cannot be renamed into place (its parent is missing).
    const unmovable = { ...(await stageArch(output, 'aarch64', [await fetched('beta')])), arch: 'gone/aarch64' };
    await expect(commitArches(output, [x86, unmovable])).rejects.toThrow('ENOENT');
    expect(await primaryNames(join(output, 'x86_64'))).toEqual(['alpha']);
    expect(await primaryNames(join(output, 'aarch64'))).toEqual(['alpha']);
    // The staged directories are back in place for the caller to discard (the engine does).
    expect((await readdir(output)).sort()).toEqual([basename(unmovable.dir), basename(x86.dir), 'aarch64', 'x86_64'].sort());
    await discardStaged([x86, unmovable]);
    expect((await readdir(output)).sort()).toEqual(['aarch64', 'x86_64']);
  });

  test('discardStaged keeps staged directories while a commit journal exists: the next run needs them', async () => {
    const output = fresh();
    const staged = await stageArch(output, 'x86_64', [await fetched('alpha')]);
    await writeFile(join(output, JOURNAL), '{}');
    await discardStaged([staged]);
    expect((await readdir(output)).sort()).toEqual([JOURNAL, basename(staged.dir)].sort());
    await rm(join(output, JOURNAL));
    await discardStaged([staged]);
    expect(await readdir(output)).toEqual([]);
  });

  test("a source file's mode does not reach the output: a file:// package readable only by its owner is copied 0644", async () => {
    const private_ = join(dir, 'private-beta.rpm');
    await writeFile(private_, await readFile(rpms['beta']!));
    await chmod(private_, 0o600);
    const staged = await stageArch(fresh(), 'x86_64', [await fetched('beta', { file: private_, path: private_ })]);
    expect((await stat(join(staged.dir, 'beta-1.0-1.noarch.rpm'))).mode & 0o777).toBe(0o644);
    await discardStaged([staged]);
  });

  test('discardStaged removes the staging directory and leaves the previous output untouched', async () => {
    const output = fresh();
    const first = await stageArch(output, 'x86_64', [await fetched('alpha')]);
    await writeJson(first.dir, 'metadata.json', '{"run":1}\n');
    await commitArches(output, [first]);
    const before = await readdir(join(output, 'x86_64'), { recursive: true });
    const repomd = await readFile(join(output, 'x86_64/repodata/repomd.xml'));

    const second = await stageArch(output, 'x86_64', [await fetched('beta'), await fetched('gamma')]);
    expect((await readdir(output)).length).toBe(2);
    await discardStaged([second]);
    expect(await readdir(output)).toEqual(['x86_64']);
    expect(await readdir(join(output, 'x86_64'), { recursive: true })).toEqual(before);
    expect(await readFile(join(output, 'x86_64/repodata/repomd.xml'))).toEqual(repomd);
    expect(await readFile(join(output, 'x86_64/metadata.json'), 'utf8')).toBe('{"run":1}\n');
  });

  test.each([
    ['an unsafe name', async () => [await fetched('alpha'), await fetched('beta', { name: '../beta' })], 'unsafe name component "../beta"'],
    ['two packages with one file name', async () => [await fetched('alpha'), await fetched('alpha', { epoch: 1, nevra: 'alpha-1:1.0-1.noarch' })], 'two packages would be written as alpha-1.0-1.noarch.rpm'],
    ['a missing file', async () => [await fetched('alpha', { file: join(dir, 'gone.rpm') })], 'ENOENT'],
  ])('a failed stage (%s) leaves no staging directory behind', async (_what, packages, message) => {
    const output = fresh();
    await expect(stageArch(output, 'x86_64', await packages())).rejects.toThrow(message);
    expect(await readdir(output)).toEqual([]);
  });

  test('writeJson refuses names outside the directory', async () => {
    const output = fresh();
    const staged = await stageArch(output, 'x86_64', []);
    await expect(writeJson(staged.dir, '../metadata.json', '{}')).rejects.toThrow(ComposeError);
    expect((await readdir(output)).length).toBe(1);
    await discardStaged([staged]);
  });
});

describe('recoverOutput', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ce-recover-test-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  async function tree(spec: Record<string, string>): Promise<string> {
    const output = await mkdtemp(join(dir, 'out-'));
    for (const [path, text] of Object.entries(spec)) {
      await mkdir(join(output, path, '..'), { recursive: true });
      await writeFile(join(output, path), text);
    }
    return output;
  }
  const read = (output: string, path: string) => readFile(join(output, path), 'utf8');
  /** The journal of a commit of these architectures (x86_64 staged as …-aaaaaa, aarch64 as …-bbbbbb), in this order. */
  const writeJournal = (output: string, arches: ('x86_64' | 'aarch64')[]) => {
    const id = { x86_64: 'aaaaaa', aarch64: 'bbbbbb' };
    const moves = arches.map((arch) => ({ arch, staged: `.staging-${arch}-${id[arch]}`, previous: `.previous-${arch}-${id[arch]}` }));
    return writeFile(join(output, JOURNAL), JSON.stringify({ version: 1, holder: { pid: 1, started: '' }, moves }));
  };

  test('completes an interrupted commit from its journal: one architecture set aside, one not yet', async () => {
    const output = await tree({
      '.previous-x86_64-aaaaaa/metadata.json': 'old x86',
      '.staging-x86_64-aaaaaa/metadata.json': 'new x86',
      'aarch64/metadata.json': 'old arm',
      '.staging-aarch64-bbbbbb/metadata.json': 'new arm',
    });
    await writeJournal(output, ['x86_64', 'aarch64']);
    expect(await recoverOutput(output)).toEqual({ completed: ['x86_64', 'aarch64'], restored: [], removed: ['.previous-aarch64-bbbbbb', '.previous-x86_64-aaaaaa'] });
    expect([await read(output, 'x86_64/metadata.json'), await read(output, 'aarch64/metadata.json')]).toEqual(['new x86', 'new arm']);
    expect((await readdir(output)).sort()).toEqual(['aarch64', 'x86_64']);
  });

  test("restores what an earlier version's interrupted swap set aside, and removes other leftovers", async () => {
    const output = await tree({
      '.staging-x86_64-Ab12Cd.previous/metadata.json': 'old x86',
      '.staging-x86_64-Ef34Gh/metadata.json': 'half-staged',
      '.staging-aarch64-Ij56Kl.previous/metadata.json': 'older arm',
      'aarch64/metadata.json': 'current arm',
      '.commit-journal.json.4242.tmp': '{"ver',
      'diff.json': '{}',
    });
    expect(await recoverOutput(output)).toEqual({
      completed: [], restored: ['x86_64'], removed: ['.commit-journal.json.4242.tmp', '.staging-aarch64-Ij56Kl.previous', '.staging-x86_64-Ef34Gh'],
    });
    expect([await read(output, 'x86_64/metadata.json'), await read(output, 'aarch64/metadata.json')]).toEqual(['old x86', 'current arm']);
    expect((await readdir(output)).sort()).toEqual(['aarch64', 'diff.json', 'x86_64']);
  });

  test('after a kill while undoing (one architecture moved back, its staged directory kept), the commit is completed', async () => {
    const output = await tree({
      'x86_64/metadata.json': 'old x86',
      '.staging-x86_64-aaaaaa/metadata.json': 'new x86',
      'aarch64/metadata.json': 'new arm',
      '.previous-aarch64-bbbbbb/metadata.json': 'old arm',
    });
    await writeJournal(output, ['x86_64', 'aarch64']);
    expect((await recoverOutput(output)).completed).toEqual(['x86_64', 'aarch64']);
    expect([await read(output, 'x86_64/metadata.json'), await read(output, 'aarch64/metadata.json')]).toEqual(['new x86', 'new arm']);
    expect((await readdir(output)).sort()).toEqual(['aarch64', 'x86_64']);
  });

  test('a journal whose moves cannot be completed is undone', async () => {
    const output = await tree({
      '.previous-x86_64-aaaaaa/metadata.json': 'old x86',
      'aarch64/metadata.json': 'new arm',
      '.previous-aarch64-bbbbbb/metadata.json': 'old arm',
    });
    // x86_64's staged directory and x86_64 itself are both gone: it cannot be completed.
    await writeJournal(output, ['aarch64', 'x86_64']);
    expect(await recoverOutput(output)).toEqual({ completed: [], restored: [], removed: ['.staging-aarch64-bbbbbb'] });
    expect([await read(output, 'x86_64/metadata.json'), await read(output, 'aarch64/metadata.json')]).toEqual(['old x86', 'old arm']);
    expect((await readdir(output)).sort()).toEqual(['aarch64', 'x86_64']);
  });

  test('an unreadable journal stops the run, naming it', async () => {
    const output = await tree({ [JOURNAL]: '{"moves": [' });
    await expect(recoverOutput(output)).rejects.toThrow(
      `cannot read the commit journal ${join(output, JOURNAL)} (not valid JSON); restore or remove the directories it names, then remove it`,
    );
  });

  test('a journal of another format too', async () => {
    const output = await tree({ [JOURNAL]: '{"version": 2}' });
    await expect(recoverOutput(output)).rejects.toThrow(`cannot read the commit journal ${join(output, JOURNAL)} (unknown format)`);
  });

  test('nothing to do in a clean or missing output', async () => {
    expect(await recoverOutput(await tree({ 'x86_64/metadata.json': 'x' }))).toEqual({ completed: [], restored: [], removed: [] });
    expect(await recoverOutput(join(dir, 'absent'))).toEqual({ completed: [], restored: [], removed: [] });
  });
});
