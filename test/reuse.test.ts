// Unchanged inputs skip the base read and the solve; any change to them is noticed. Real ostree,
// dnf and createrepo_c, and a repo served over http whose requests are counted.
import { createHash } from 'node:crypto';
import { cp, mkdtemp, open, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compose, type ComposeOptions } from '../src/engine.js';
import type { Metadata } from '../src/metadata/metadata.js';
import { BASE_REF, buildFixtureDistro, FIXTURE_ARCHES, type FixtureDistro } from './fixtures/distro.js';
import { serveDirectory, type StaticServer } from './fixtures/http.js';
import { buildRpms, createRepo } from './fixtures/rpms.js';

let distro: FixtureDistro;
let dir: string;
let web: string;
let server: StaticServer;
beforeAll(async () => {
  distro = await buildFixtureDistro();
  dir = await mkdtemp(join(tmpdir(), 'ce-reuse-'));
  // A private copy of `extras`, served over http: the tests change it.
  web = join(dir, 'web');
  await cp(distro.repos.extras, web, { recursive: true });
  server = await serveDirectory(web);
});
afterAll(async () => {
  await server?.close();
  await distro?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

const CONFIG = `
repos: [fedora]
extensions:
  usbguard:
    packages: [usbguard]
  extra:
    packages: [extra-tool]
    repos: [web]
  kernel-devel:
    kind: development
    match-base-evr: kernel
    packages: [kernel-devel]
`;

let n = 0;
async function options(text = CONFIG, extra: Partial<ComposeOptions> = {}): Promise<ComposeOptions> {
  const config = join(dir, `extensions-${n++}.yaml`);
  await writeFile(config, text);
  return {
    config,
    base: { kind: 'ostree', repo: distro.ostreeRepo, ref: BASE_REF },
    arches: [...FIXTURE_ARCHES],
    reposDir: distro.reposDir,
    repoPairs: [`web=${server.url}/$basearch`],
    weakDeps: true,
    cacheDir: join(dir, 'cache'),
    previousState: [],
    output: join(dir, `out-${n}`),
    ...extra,
  };
}

const metadataOf = async (output: string, arch: string): Promise<Metadata> => JSON.parse(await readFile(join(output, arch, 'metadata.json'), 'utf8'));
const requestsSince = (before: number) => server.requests.slice(before).sort();

describe('one cache, several runs', () => {
  let first: Awaited<ReturnType<typeof compose>>;
  let firstOptions: ComposeOptions;

  test('a rerun with unchanged inputs asks only for repomd.xml, runs no dnf, and gives the same output', async () => {
    firstOptions = await options();
    first = await compose(firstOptions);
    expect(first.arches.map((a) => a.reused)).toEqual([false, false]);
    // The fixture's packages are a few KiB: createrepo_c reads them again rather than cache their checksums.
    expect(await readdir(firstOptions.cacheDir)).not.toContain('createrepo');

    const before = server.requests.length;
    const again = await compose({ ...firstOptions, output: join(dir, 'again') });
    expect(again.arches.map((a) => a.reused)).toEqual([true, true]);
    // dnf (metadata_expire=0) would have asked for repomd.xml too: one request per arch is ours alone.
    expect(requestsSince(before)).toEqual(['/aarch64/repodata/repomd.xml', '/x86_64/repodata/repomd.xml']);
    expect(again.stateChecksum).toBe(first.stateChecksum);
    for (const arch of FIXTURE_ARCHES) {
      const [a, b] = [await metadataOf(firstOptions.output, arch), await metadataOf(join(dir, 'again'), arch)];
      expect(b.inputFingerprint).toBe(a.inputFingerprint);
      expect(b.stateChecksum).toBe(a.stateChecksum);
      expect(b.base).toEqual(a.base);
      expect(b.extensions).toEqual(a.extensions);
      expect(b.packages).toEqual(a.packages);
    }
  });

  test('the fingerprint names the inputs, not the cache: a fresh cache solves and records the same one', async () => {
    const fresh = await compose({ ...firstOptions, cacheDir: join(dir, 'other-cache'), output: join(dir, 'fresh') });
    expect(fresh.arches.map((a) => a.reused)).toEqual([false, false]);
    expect(fresh.arches.map((a) => a.inputFingerprint)).toEqual(first.arches.map((a) => a.inputFingerprint));
    expect(fresh.stateChecksum).toBe(first.stateChecksum);
  });

  test('with the previous state as well, an unchanged rerun writes nothing at all', async () => {
    const before = server.requests.length;
    const again = await compose({ ...firstOptions, previousState: [first.stateChecksum] });
    expect(again.changed).toBe(false);
    expect(again.arches.map((a) => a.reused)).toEqual([true, true]);
    expect(requestsSince(before)).toHaveLength(2);
  });

  test('the same extensions in another file order, and comments, are the same inputs', async () => {
    const reordered = `# nightly\n${CONFIG.replace('  usbguard:\n    packages: [usbguard]\n', '')}  usbguard:\n    packages: [usbguard]\n`;
    const again = await compose(await options(reordered, { cacheDir: firstOptions.cacheDir }));
    expect(again.arches.map((a) => a.reused)).toEqual([true, true]);
    expect(again.stateChecksum).toBe(first.stateChecksum);
  });

  test('a changed config is solved again', async () => {
    const fewer = await compose(await options(CONFIG.replace('[usbguard]', '[usbguard, usbguard-selinux]'), { cacheDir: firstOptions.cacheDir }));
    expect(fewer.arches.map((a) => a.reused)).toEqual([false, false]);
    expect(fewer.arches[0]!.inputFingerprint).not.toBe(first.arches[0]!.inputFingerprint);
  });

  test('a damaged record is ignored: the run solves again and records anew', async () => {
    const records = join(firstOptions.cacheDir, 'resolved');
    for (const name of await readdir(records)) await writeFile(join(records, name), '{"kind": "compose-extensions/resolved/v1", "key": 1');
    const again = await compose({ ...firstOptions, output: join(dir, 'after-damage') });
    expect(again.arches.map((a) => a.reused)).toEqual([false, false]);
    expect(again.stateChecksum).toBe(first.stateChecksum);
    const next = await compose({ ...firstOptions, output: join(dir, 'after-damage-2') });
    expect(next.arches.map((a) => a.reused)).toEqual([true, true]);
  });

  test('an output file changed in place does not reach the next run, though it shares the cached file', async () => {
    const file = (output: string) => join(output, 'x86_64', 'extra-tool-1.0-1.x86_64.rpm');
    const sha256 = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');
    const linked = join(dir, 'linked');
    await compose({ ...firstOptions, output: linked });
    // The package came over http: staged as a hard link to the download cache, not a second copy.
    expect((await stat(file(linked))).nlink).toBeGreaterThan(1);
    const good = await sha256(file(linked));
    const handle = await open(file(linked), 'r+');
    await handle.write(Buffer.from('edited in place'), 0, 15, 0);
    await handle.close();

    const next = join(dir, 'after-edit');
    const again = await compose({ ...firstOptions, output: next });
    expect(await sha256(file(next))).toBe(good);
    expect((await metadataOf(next, 'x86_64')).packages.find((p) => p.name === 'extra-tool')!.sha256).toBe(good);
    expect(again.stateChecksum).toBe(first.stateChecksum);
  });

  test('a new version in a repo changes its repomd.xml: solved again, and the new version is taken', async () => {
    // As if the last run were this very second (or its clock ran ahead): dnf4 counts metadata as
    // fresh while its age is not above metadata_expire=0, so the age alone must not decide.
    const ahead = new Date(Date.now() + 60_000);
    const touchAll = async (path: string): Promise<void> => {
      for (const entry of await readdir(path, { withFileTypes: true })) {
        const child = join(path, entry.name);
        if (entry.isDirectory()) await touchAll(child);
        await utimes(child, ahead, ahead);
      }
    };
    await touchAll(firstOptions.cacheDir);
    await buildRpms([{ name: 'extra-tool', version: '2.0', release: '1', requires: ['libc.so.6'] }], [...FIXTURE_ARCHES], web);
    for (const arch of FIXTURE_ARCHES) await createRepo(join(web, arch));
    const updated = await compose({ ...firstOptions, output: join(dir, 'updated') });
    expect(updated.arches.map((a) => a.reused)).toEqual([false, false]);
    for (const a of updated.arches) {
      expect(a.extensions['extra']!.packages).toEqual([`extra-tool-2.0-1.${a.arch}`]);
      expect(a.inputFingerprint).not.toBe(first.arches.find((f) => f.arch === a.arch)!.inputFingerprint);
    }
  });
});

test('a root filesystem directory has no identity to compare: every run reads it and solves', async () => {
  const opts = await options('repos: [fedora]\nextensions:\n  usbguard:\n    packages: [usbguard]\n', {
    base: { kind: 'rootfs', path: distro.rootfs['x86_64']! },
    arches: ['x86_64'],
    cacheDir: join(dir, 'rootfs-cache'),
  });
  const one = await compose(opts);
  const two = await compose({ ...opts, output: join(dir, 'rootfs-2') });
  expect([one.arches[0]!.reused, two.arches[0]!.reused]).toEqual([false, false]);
  // Still a fingerprint of what was resolved from: the base's packages stand in for its name.
  expect(two.arches[0]!.inputFingerprint).toBe(one.arches[0]!.inputFingerprint);
});
