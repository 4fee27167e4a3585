import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ComposeError } from '../errors.js';
import { limiter, type Limiter } from '../tools/limit.js';
import type { FetchedPackage } from '../download/fetch.js';
import { buildRpms } from '../../test/fixtures/rpms.js';
import { CHECKSUM_CACHE_MIN_MEAN, commitArches, discardStaged, inside, packageFilename, stageArch, writeJson } from './output.js';

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
      expect(() => packageFilename({ ...good, [field]: value })).toThrow(`refusing package with unsafe name component "${value}" in its metadata`);
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
