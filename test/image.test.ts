// Bases from container images in a real registry on 127.0.0.1, from oci:/oci-archive: files, from
// URLs (archives, remote OSTree repos), down to the same compose as from the OSTree commit.
import { execFileSync } from 'node:child_process';
import { execa } from 'execa';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { compose, type ComposeOptions } from '../src/engine.js';
import { readBase } from '../src/base/base.js';
import { BaseError, type BaseInfo, type ResolvedImage } from '../src/base/types.js';
import { readImageBase, resolveImage } from '../src/base/image.js';
import { fetchArchive, prepareBase, pullRemoteOstree } from '../src/base/remote.js';
import type { Metadata } from '../src/metadata/metadata.js';
import { checkSchema, type Schema } from '../src/metadata/schema-check.js';
import { run } from '../src/tools/exec.js';
import { checkAuthFile, writeAuthFile } from '../src/tools/registry-auth.js';
import { commitToOstree, FIXTURE_OS_RELEASE, makeRootfs } from './fixtures/base.js';
import { BASE_REF, buildFixtureDistro, type FixtureDistro } from './fixtures/distro.js';
import { serveDirectory, type StaticServer } from './fixtures/http.js';
import { copyTree, OciLayout, type Descriptor } from './fixtures/oci.js';
import { startRegistry, type TestRegistry } from './fixtures/registry.js';
import { ROOT, runStep } from './fixtures/runner.js';

const PASSWORD = 'pa55-w0rd-never-printed';
const VERSION_LABEL = '40.20260101.0';

let distro: FixtureDistro;
let tmp: string;
let registry: TestRegistry;
let secured: TestRegistry;
let layout: OciLayout;
let server: StaticServer;
/** Manifest descriptors by name (x86_64, aarch64) and the index's. */
const images: Record<string, Descriptor> = {};
let n = 0;
const work = () => join(tmp, `work-${n++}`);
const nevras = (info: BaseInfo) => info.packages.map((p) => p.nevra);
/** Every path under dir, relative, sorted. */
const tree = async (dir: string) => (await readdir(dir, { recursive: true })).map(String).sort();

/** A directory with the given files (content) and symlinks (`-> target`). */
async function dirWith(entries: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmp, 'layer-'));
  for (const [path, content] of Object.entries(entries)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    if (content.startsWith('-> ')) await symlink(content.slice(3), join(dir, path));
    else await writeFile(join(dir, path), content);
  }
  return dir;
}

async function rootfsWith(rpms: string[], osRelease = FIXTURE_OS_RELEASE): Promise<string> {
  const dir = await mkdtemp(join(tmp, 'rootfs-'));
  return makeRootfs(dir, { rpms, osRelease });
}

const rpmsOf = async (arch: string, names: string[]) =>
  (await readdir(join(distro.repos.main, arch))).filter((f) => names.some((name) => f.startsWith(`${name}-`))).map((f) => join(distro.repos.main, arch, f));

const labels = (arch: string) => ({ 'ostree.commit': distro.commits[arch]!, 'org.opencontainers.image.version': VERSION_LABEL });

beforeAll(async () => {
  distro = await buildFixtureDistro();
  tmp = await mkdtemp(join(tmpdir(), 'ce-image-test-'));
  [registry, secured] = await Promise.all([startRegistry(), startRegistry({ auth: { user: 'ci', password: PASSWORD } })]);
  layout = await OciLayout.create(join(tmp, 'layout'));

  // x86_64: one gzip layer of the whole tree (rpmdb in usr/lib/sysimage/rpm).
  const x86 = await layout.addLayer(distro.rootfs['x86_64']!, 'gzip');
  images['x86_64'] = await layout.addImage({ architecture: 'amd64', layers: [x86], labels: labels('x86_64') });
  // aarch64: everything but the rpmdb (gzip), then the rpmdb in usr/share/rpm (zstd), then nothing (uncompressed).
  const arm = join(tmp, 'arm-split');
  await copyTree(distro.rootfs['aarch64']!, join(arm, 'lower'));
  await mkdir(join(arm, 'upper/usr/share'), { recursive: true });
  await run('mv', [join(arm, 'lower/usr/share/rpm'), join(arm, 'upper/usr/share/rpm')]);
  await mkdir(join(arm, 'empty'));
  const armLayers = [
    await layout.addLayer(join(arm, 'lower'), 'gzip'),
    await layout.addLayer(join(arm, 'upper'), 'zstd'),
    await layout.addLayer(join(arm, 'empty'), 'none'),
  ];
  images['aarch64'] = await layout.addImage({ architecture: 'arm64', variant: 'v8', layers: armLayers, labels: labels('aarch64') });
  images['index'] = await layout.addIndex([images['x86_64'], images['aarch64']]);
  await layout.tag(images['index'], 'multi');
  await layout.tag(images['x86_64'], 'x86');

  // An rpmdb replaced through an opaque whiteout, os-release replaced through .wh. files and a later layer.
  const small = await rootfsWith(await rpmsOf('x86_64', ['bash-5.2', 'filesystem-3.18']));
  await writeFile(join(small, 'usr/lib/sysimage/rpm/stale-file'), 'from the lower layer');
  const full = await dirWith({ 'usr/lib/sysimage/rpm/.wh..wh..opq': '', 'etc/.wh.os-release': '', 'usr/lib/.wh.os-release': '' });
  await copyTree(join(distro.rootfs['x86_64']!, 'usr/lib/sysimage/rpm'), join(full, 'usr/lib/sysimage/rpm'));
  const newRelease = await dirWith({ 'etc/os-release': 'ID=fixture\nVERSION_ID=40\nVERSION="40.replaced"\n' });
  const replaced = [await layout.addLayer(small), await layout.addLayer(full), await layout.addLayer(newRelease)];
  await layout.tag(await layout.addImage({ architecture: 'amd64', layers: replaced }), 'replaced');

  // The rpmdb deleted by later whiteouts of both locations.
  const deleting = await dirWith({ 'usr/lib/sysimage/.wh.rpm': '', 'usr/share/.wh.rpm': '' });
  await layout.tag(await layout.addImage({ architecture: 'amd64', layers: [x86, await layout.addLayer(deleting)] }), 'deleted');

  // No rpmdb at all.
  const bare = await dirWith({ 'usr/lib/os-release': 'ID=bare\nVERSION_ID=1\n', 'etc/os-release': '-> ../usr/lib/os-release' });
  await layout.tag(await layout.addImage({ architecture: 'amd64', layers: [await layout.addLayer(bare)] }), 'bare');

  for (const tag of ['multi', 'x86', 'replaced', 'deleted', 'bare']) await layout.push(tag, `docker://${registry.host}/fixture:${tag}`);
  const auth = await writeAuthFile(secured.host, 'ci', PASSWORD, tmp);
  await layout.push('multi', `docker://${secured.host}/private:1`, { authFile: auth.path });
  await auth.cleanup();

  server = await serveDirectory(tmp);
}, 300_000);

afterAll(async () => {
  await server?.close();
  await registry?.stop();
  await secured?.stop();
  await distro?.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('a multi-architecture image in a registry', () => {
  let resolved: ResolvedImage;
  const read: Record<string, BaseInfo> = {};
  beforeAll(async () => {
    resolved = await resolveImage(`${registry.host}/fixture:multi`);
    for (const arch of ['x86_64', 'aarch64']) read[arch] = await readImageBase(resolved, arch, work());
  });

  test('the tag is pinned to the index digest, with one image per architecture', () => {
    expect(resolved.digest).toBe(images['index']!.digest);
    expect(resolved.name.ref).toBe(`docker://${registry.host}/fixture@${images['index']!.digest}`);
    expect(resolved.index?.map((e) => [e.platform.architecture, e.digest])).toEqual([
      ['amd64', images['x86_64']!.digest],
      ['arm64', images['aarch64']!.digest],
    ]);
  });

  test.each(['x86_64', 'aarch64'])('%s: the same packages and os-release as the OSTree commit, and the image identity', async (arch) => {
    const fromOstree = await readBase({ kind: 'ostree', repo: distro.ostreeRepo, ref: BASE_REF }, arch, work());
    const info = read[arch]!;
    expect(nevras(info)).toEqual(nevras(fromOstree));
    expect(info.packages).toHaveLength(9);
    expect(info.osRelease).toEqual(fromOstree.osRelease);
    expect(info).toMatchObject({
      source: 'image',
      ref: `${registry.host}/fixture:multi`,
      digest: images[arch]!.digest,
      indexDigest: images['index']!.digest,
      ostreeCommit: distro.commits[arch],
      imageVersion: VERSION_LABEL,
      version: VERSION_LABEL,
    });
  });

  test('the private root holds only a copy of the rpmdb', async () => {
    for (const arch of ['x86_64', 'aarch64']) {
      const root = read[arch]!.root;
      const files = await tree(root);
      expect(files.filter((f) => !f.startsWith('usr/lib/sysimage/rpm/'))).toEqual(['usr', 'usr/lib', 'usr/lib/sysimage', 'usr/lib/sysimage/rpm']);
      expect(files).toContain('usr/lib/sysimage/rpm/rpmdb.sqlite');
    }
  });

  test('an architecture the index lacks is an error that lists the ones present', async () => {
    const err = readImageBase(resolved, 's390x', work());
    await expect(err).rejects.toThrow(`image ${registry.host}/fixture:multi has no image for s390x (s390x); the index has: amd64, arm64`);
    await expect(err).rejects.toMatchObject({ reason: 'no-image-for-arch' });
  });

  test('a single-architecture image for another architecture is an error', async () => {
    const single = await resolveImage(`docker://${registry.host}/fixture:x86`);
    expect(single.index).toBeUndefined();
    expect(single.digest).toBe(images['x86_64']!.digest);
    await expect(readImageBase(single, 'aarch64', work())).rejects.toThrow(/has no image for aarch64 \(arm64\); it is a linux\/amd64 image/);
    expect((await readImageBase(single, 'x86_64', work())).indexDigest).toBeUndefined();
  });
});

describe('layers and whiteouts', () => {
  test('an rpmdb replaced through an opaque directory, os-release through whiteouts and a later layer', async () => {
    const info = await readBase({ kind: 'image', ref: `${registry.host}/fixture:replaced` }, 'x86_64', work());
    expect(info.packages).toHaveLength(9);
    expect(info.osRelease).toEqual({ ID: 'fixture', VERSION_ID: '40', VERSION: '40.replaced' });
    expect(info.version).toBe('40.replaced'); // no version label: os-release VERSION
    expect(info.imageVersion).toBeUndefined();
    expect(info.ostreeCommit).toBeUndefined();
    expect(await tree(join(info.root, 'usr/lib/sysimage/rpm'))).not.toContain('stale-file');
  });

  test('an rpmdb deleted by a later whiteout is no rpmdb', async () => {
    const err = readBase({ kind: 'image', ref: `${registry.host}/fixture:deleted` }, 'x86_64', work());
    await expect(err).rejects.toThrow(new RegExp(`^no rpmdb found at usr/lib/sysimage/rpm or usr/share/rpm in image ${registry.host}/fixture:deleted \\(sha256:[0-9a-f]{64}\\)$`));
    await expect(err).rejects.toMatchObject({ reason: 'no-rpmdb' });
  });

  test('an image without an rpmdb', async () => {
    await expect(readBase({ kind: 'image', ref: `${registry.host}/fixture:bare` }, 'x86_64', work())).rejects.toMatchObject({
      reason: 'no-rpmdb',
      message: expect.stringContaining(`no rpmdb found at usr/lib/sysimage/rpm or usr/share/rpm in image ${registry.host}/fixture:bare`),
    });
  });
});

describe('pinning and errors', () => {
  test('a tag moved after resolving: every architecture still reads the image it was resolved to', async () => {
    await layout.push('x86', `docker://${registry.host}/moving:1`);
    const resolved = await resolveImage(`${registry.host}/moving:1`);
    await layout.push('bare', `docker://${registry.host}/moving:1`); // the tag now names an image without rpmdb
    const info = await readImageBase(resolved, 'x86_64', work());
    expect(info.digest).toBe(images['x86_64']!.digest);
    expect(info.packages).toHaveLength(9);
    expect((await resolveImage(`${registry.host}/moving:1`)).digest).not.toBe(images['x86_64']!.digest);
  });

  test('a reference pinned by digest is checked against what the registry returns', async () => {
    const ref = `docker://${registry.host}/fixture@${images['x86_64']!.digest}`;
    expect((await resolveImage(ref)).digest).toBe(images['x86_64']!.digest);
    const other = `${registry.host}/fixture@sha256:${'0'.repeat(64)}`;
    await expect(resolveImage(other)).rejects.toThrow(`image ${other} not found`);
  });

  test('image not found: a missing tag, repository, oci directory or archive', async () => {
    for (const ref of [`${registry.host}/fixture:nope`, `docker://${registry.host}/nothing/here:1`, `oci:${join(tmp, 'none')}:x`, `oci:${layout.dir}:nope`, `oci-archive:${join(tmp, 'none.ociarchive')}`]) {
      const err = resolveImage(ref);
      await expect(err).rejects.toThrow(`image ${ref} not found`);
      await expect(err).rejects.toMatchObject({ reason: 'image-not-found' });
    }
  });

  test('a registry that cannot be reached is a tool error that says why', async () => {
    const err = await resolveImage('127.0.0.1:1/fixture:1').catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ToolError', message: expect.stringMatching(/^skopeo could not read image 127\.0\.0\.1:1\/fixture:1: .*connection refused/s) });
  });

  test('unsupported transports and malformed references are usage errors', async () => {
    await expect(resolveImage('containers-storage:fedora')).rejects.toThrow(/containers-storage: transport is not supported/);
    await expect(resolveImage('Quay.io/UPPER/case')).rejects.toThrow(/not a valid image reference/);
    await expect(resolveImage(`${registry.host}/x@sha256:abc`)).rejects.toThrow(/digest must be sha256/);
  });
});

describe('a registry behind basic auth', () => {
  const ref = () => `${secured.host}/private:1`;
  /** Everything a failure could show: message, stack and properties. */
  const everything = (err: unknown) => `${String(err)}\n${(err as Error).stack}\n${JSON.stringify(err)}`;

  test('without credentials: refused', async () => {
    const err = await resolveImage(ref()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BaseError);
    expect(err).toMatchObject({ reason: 'auth-refused', message: `authentication to ${secured.host} refused; check the credentials` });
  });

  test('wrong credentials: refused, and the password is in no output', async () => {
    const wrong = `${PASSWORD}-wrong`;
    const authFile = (await writeAuthFile(secured.host, 'ci', wrong, tmp)).path;
    const err = await resolveImage(ref(), { authFile }).catch((e: unknown) => e);
    expect(err).toMatchObject({ reason: 'auth-refused', message: `authentication to ${secured.host} refused; check the credentials` });
    expect(everything(err)).not.toContain(wrong);
    expect(everything(err)).not.toContain(Buffer.from(`ci:${wrong}`).toString('base64'));
  });

  test('the right credentials from a 0600 auth file: every architecture reads', async () => {
    const { path: authFile, dir: authDir } = await writeAuthFile(secured.host, 'ci', PASSWORD, tmp);
    expect((await stat(authFile)).mode & 0o777).toBe(0o600);
    expect((await stat(authDir)).mode & 0o777).toBe(0o700);
    await checkAuthFile(authFile);
    const spec = await prepareBase({ kind: 'image', ref: ref(), registry: { authFile } }, ['x86_64', 'aarch64'], { cacheDir: join(tmp, 'cache') });
    const infos = await Promise.all(['x86_64', 'aarch64'].map((arch) => readBase(spec, arch, work())));
    expect(infos.map((i) => i.digest)).toEqual([images['x86_64']!.digest, images['aarch64']!.digest]);
    expect(infos.map((i) => i.packages.length)).toEqual([9, 9]);
  });

  test('an auth file others can read is refused before it is used', async () => {
    const authFile = (await writeAuthFile(secured.host, 'ci', PASSWORD, tmp)).path;
    await chmod(authFile, 0o644);
    const err = await checkAuthFile(authFile).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'UsageError', message: `auth file ${authFile} is readable by others (mode 644): chmod 600 it` });
    expect(everything(err)).not.toContain(PASSWORD);
    await expect(checkAuthFile(join(tmp, 'no-such-auth'))).rejects.toThrow(/is not a file/);
    // resolveImage checks it before skopeo sees it.
    await expect(resolveImage(`${secured.host}/private:1`, { authFile })).rejects.toThrow(/is readable by others/);
  });
});

describe('oci: layouts and oci-archive: files', () => {
  test('the same images and digests from an OCI layout directory and an OCI archive', async () => {
    const archive = await layout.archive(join(tmp, 'layout.ociarchive'));
    for (const ref of [`oci:${layout.dir}:multi`, `oci-archive:${archive}:multi`]) {
      const resolved = await resolveImage(ref);
      expect(resolved.digest).toBe(images['index']!.digest);
      for (const arch of ['x86_64', 'aarch64']) {
        const info = await readImageBase(resolved, arch, work());
        expect(info).toMatchObject({ ref, digest: images[arch]!.digest, indexDigest: images['index']!.digest, ostreeCommit: distro.commits[arch] });
        expect(info.packages).toHaveLength(9);
      }
    }
  });
});

describe('bases at URLs', () => {
  let archive: string;
  let archiveSha: string;
  beforeAll(async () => {
    archive = await layout.archive(join(tmp, 'fixture-ostree.x86_64.ociarchive'));
    archiveSha = execFileSync('sha256sum', [archive]).toString().split(' ')[0]!;
  });
  const url = (file: string) => `${server.url}/${relative(tmp, file)}`;
  const fetches = (file: string) => server.requests.filter((r) => r === `/${relative(tmp, file)}`).length;

  test('an OCI archive at a URL, checked against its sha256 and reused', async () => {
    const cacheDir = join(tmp, 'url-cache');
    const before = fetches(archive);
    const path = await fetchArchive(url(archive), { cacheDir, sha256: archiveSha });
    expect(path).toBe(join(cacheDir, 'archives', archiveSha));
    expect(fetches(archive)).toBe(before + 1);
    // Cached: no request at all the second time.
    expect(await fetchArchive(url(archive), { cacheDir, sha256: `sha256:${archiveSha.toUpperCase()}` })).toBe(path);
    expect(fetches(archive)).toBe(before + 1);
    // A damaged cached copy is downloaded again.
    await writeFile(path, 'damaged');
    expect(await fetchArchive(url(archive), { cacheDir, sha256: archiveSha })).toBe(path);
    expect(fetches(archive)).toBe(before + 2);
  });

  test('the wrong sha256, or a missing file, is an error and leaves nothing in the cache', async () => {
    const cacheDir = join(tmp, 'url-cache-bad');
    const wrong = 'f'.repeat(64);
    await expect(fetchArchive(url(archive), { cacheDir, sha256: wrong })).rejects.toMatchObject({
      reason: 'checksum-mismatch',
      message: `${url(archive)} has sha256 ${archiveSha}, not the expected ${wrong}`,
    });
    await expect(fetchArchive(`${server.url}/missing.ociarchive`, { cacheDir })).rejects.toThrow(`downloading ${server.url}/missing.ociarchive failed: HTTP 404 Not Found`);
    expect(await readdir(join(cacheDir, 'archives'))).toEqual([]);
    await expect(fetchArchive(url(archive), { cacheDir, sha256: 'xyz' })).rejects.toThrow(/not 64 hex digits/);
  });

  test('an image base given as the URL of an OCI archive (one image, as Fedora CoreOS publishes)', async () => {
    const single = await OciLayout.create(join(tmp, 'single'));
    const image = await single.addImage({ architecture: 'amd64', layers: [await single.addLayer(distro.rootfs['x86_64']!)], labels: labels('x86_64') });
    await single.tag(image, 'latest');
    const file = await single.archive(join(tmp, 'fedora-coreos-40.20260101.0-ostree.x86_64.ociarchive'));
    const sha = execFileSync('sha256sum', [file]).toString().split(' ')[0]!;
    const spec = await prepareBase({ kind: 'image', ref: url(file), sha256: sha }, ['x86_64'], { cacheDir: join(tmp, 'cache') });
    expect(spec).toMatchObject({ kind: 'image', resolved: { display: url(file), digest: image.digest, name: { ref: `oci-archive:${join(tmp, 'cache/archives', sha)}` } } });
    const info = await readBase(spec, 'x86_64', work());
    expect(info).toMatchObject({ source: 'image', ref: url(file), digest: image.digest, ostreeCommit: distro.commits['x86_64'], imageVersion: VERSION_LABEL });
    expect(info.packages).toHaveLength(9);
    await expect(readBase(spec, 'aarch64', work())).rejects.toThrow(/has no image for aarch64 \(arm64\); it is a linux\/amd64 image/);
    // readBase prepares a URL itself when the engine has not.
    expect((await readBase({ kind: 'image', ref: url(file) }, 'x86_64', work())).digest).toBe(image.digest);
    await expect(prepareBase({ kind: 'image', ref: `${registry.host}/fixture:x86`, sha256: sha }, ['x86_64'], { cacheDir: join(tmp, 'cache') })).rejects.toThrow(
      /applies to a downloaded archive only/,
    );
  });

  test('a root filesystem tarball at a URL', async () => {
    const tarball = join(tmp, 'rootfs.tar.gz');
    await run('tar', ['--sort=name', '-C', distro.rootfs['aarch64']!, '-czf', tarball, '.']);
    const sha = execFileSync('sha256sum', [tarball]).toString().split(' ')[0]!;
    const info = await readBase({ kind: 'rootfs', path: url(tarball), sha256: sha }, 'aarch64', work());
    const fromDir = await readBase({ kind: 'rootfs', path: distro.rootfs['aarch64']! }, 'aarch64', work());
    expect(info).toMatchObject({ source: 'rootfs', ref: url(tarball), version: FIXTURE_OS_RELEASE.VERSION });
    expect(nevras(info)).toEqual(nevras(fromDir));
    // A local tarball works the same way.
    expect(nevras(await readBase({ kind: 'rootfs', path: tarball }, 'aarch64', work()))).toEqual(nevras(fromDir));
  });
});

describe('an archive-mode OSTree repo over http', () => {
  let remote: StaticServer;
  let partial: { repo: string; commit: string; bigObject: string };
  beforeAll(async () => {
    // A tree whose rpmdb lies outside the usual paths (reached through a symlink), and a large file never needed.
    const root = join(tmp, 'remote-tree');
    await copyTree(distro.rootfs['x86_64']!, root);
    await mkdir(join(root, 'opt'));
    await run('mv', [join(root, 'usr/lib/sysimage/rpm'), join(root, 'opt/rpmdb')]);
    await symlink('../../../opt/rpmdb', join(root, 'usr/lib/sysimage/rpm'));
    await mkdir(join(root, 'usr/bin'), { recursive: true });
    await writeFile(join(root, 'usr/bin/big'), Buffer.alloc(1 << 20, 7));
    const repo = join(tmp, 'remote-ostree');
    const commit = await commitToOstree(repo, 'remote/x86_64/base', root, '40.remote');
    const ls = (await run('ostree', [`--repo=${repo}`, 'ls', '-C', commit, '/usr/bin/big'])).stdout.trim().split(/\s+/);
    const object = ls[4]!;
    partial = { repo, commit, bigObject: `/objects/${object.slice(0, 2)}/${object.slice(2)}.filez` };
    await stat(join(repo, partial.bigObject)); // the object the pull must not fetch is really there
    remote = await serveDirectory(tmp);
  });
  afterAll(async () => remote?.close());

  test('pulls only the commit, the rpmdb and os-release (following symlinks), not the tree', async () => {
    const cacheDir = join(tmp, 'ostree-cache');
    const url = `${remote.url}/remote-ostree`;
    const { repo, commits } = await pullRemoteOstree(url, ['remote/x86_64/base'], cacheDir);
    expect(commits).toEqual({ 'remote/x86_64/base': partial.commit });
    expect(repo.startsWith(join(cacheDir, 'ostree'))).toBe(true);
    const info = await readBase({ kind: 'ostree', repo, ref: 'remote/${basearch}/base' }, 'x86_64', work());
    expect(info).toMatchObject({ source: 'ostree', ref: 'remote/x86_64/base', commit: partial.commit, version: '40.remote' });
    expect(info.packages).toHaveLength(9);
    expect(remote.requests.filter((r) => r.startsWith('/remote-ostree/objects/')).length).toBeGreaterThan(0);
    expect(remote.requests).not.toContain(`/remote-ostree${partial.bigObject}`);
    const cat = await run('ostree', [`--repo=${repo}`, 'cat', partial.commit, '/usr/bin/big'], { allowFailure: true });
    expect(cat.exitCode).not.toBe(0);
    // Pulled again (a later run, the same cache): still the same commit.
    expect(await pullRemoteOstree(url, ['remote/x86_64/base'], cacheDir)).toEqual({ repo, commits });
  });

  test('every architecture of the fixture distro from its repo served over http', async () => {
    // The distro lives outside tmp: serve it separately.
    const distroServer = await serveDirectory(distro.dir);
    try {
      const served = { kind: 'ostree' as const, repo: `${distroServer.url}/ostree`, ref: BASE_REF };
      const prepared = await prepareBase(served, ['x86_64', 'aarch64'], { cacheDir: join(tmp, 'ostree-cache') });
      expect(prepared).toMatchObject({ kind: 'ostree', ref: BASE_REF, commits: { x86_64: distro.commits['x86_64'], aarch64: distro.commits['aarch64'] } });
      for (const arch of ['x86_64', 'aarch64']) {
        const info = await readBase(prepared, arch, work());
        expect(info.commit).toBe(distro.commits[arch]);
        expect(info.packages).toHaveLength(9);
      }
      // Unprepared (no engine in between), readBase pulls for the one architecture itself.
      expect((await readBase(served, 'aarch64', work())).commit).toBe(distro.commits['aarch64']);
      await expect(readBase({ ...served, ref: 'no/such/ref' }, 'x86_64', work())).rejects.toMatchObject({ reason: 'ref-not-found' });
    } finally {
      await distroServer.close();
    }
  });
});

describe('compose from an image and from the OSTree commit of the same tree', () => {
  const CONFIG = `
repos: [fedora]
extensions:
  usbguard:
    packages: [usbguard]
  tools:
    packages: [tool-a, needs-epochy]
  firmware:
    architectures: [x86_64]
    packages: [x86-firmware]
  kernel-devel:
    kind: development
    match-base-evr: kernel
    packages: [kernel-devel, kernel-headers]
`;
  const options = async (name: string, base: ComposeOptions['base']): Promise<ComposeOptions> => {
    const config = join(tmp, `${name}.yaml`);
    await writeFile(config, CONFIG);
    return {
      config, base, arches: ['x86_64', 'aarch64'], reposDir: distro.reposDir, repoPairs: [], weakDeps: true,
      cacheDir: join(tmp, 'compose-cache'), previousState: [], output: join(tmp, `out-${name}`),
    };
  };
  const metadataOf = async (output: string, arch: string): Promise<Metadata> => JSON.parse(await readFile(join(output, arch, 'metadata.json'), 'utf8'));

  test('the same packages, closures and files; the image identity in metadata.json', async () => {
    const fromOstree = await compose(await options('ostree', { kind: 'ostree', repo: distro.ostreeRepo, ref: BASE_REF }));
    const fromImage = await compose(await options('image', { kind: 'image', ref: `docker://${registry.host}/fixture:multi` }));
    const schema = JSON.parse(await readFile(new URL('../schema/metadata.schema.json', import.meta.url), 'utf8')) as Schema;
    for (const arch of ['x86_64', 'aarch64']) {
      const a = await metadataOf(join(tmp, 'out-ostree'), arch);
      const b = await metadataOf(join(tmp, 'out-image'), arch);
      expect(b.packages).toEqual(a.packages);
      expect(b.extensions).toEqual(a.extensions);
      expect(b.packages.length).toBeGreaterThan(5);
      expect(a.base).toMatchObject({ source: 'ostree', commit: distro.commits[arch] });
      expect(b.base).toEqual({
        source: 'image',
        ref: `docker://${registry.host}/fixture:multi`,
        digest: images[arch]!.digest,
        indexDigest: images['index']!.digest,
        ostreeCommit: distro.commits[arch],
        imageVersion: VERSION_LABEL,
        version: VERSION_LABEL,
        osRelease: { ID: 'fixture', VERSION_ID: '40' },
        packageCount: 9,
      });
      expect(checkSchema(schema, b)).toEqual([]);
      // The base is part of the state: the same files from another base are another state.
      expect(b.stateChecksum).not.toBe(a.stateChecksum);
      const rpms = async (output: string) => (await tree(join(output, arch))).filter((f) => f.endsWith('.rpm'));
      expect(await rpms(join(tmp, 'out-image'))).toEqual(await rpms(join(tmp, 'out-ostree')));
    }
    expect(fromImage.arches.map((r) => r.packageCount)).toEqual(fromOstree.arches.map((r) => r.packageCount));
  });

  test('a missing image fails the compose with the message, nothing written', async () => {
    const opts = await options('missing', { kind: 'image', ref: `${registry.host}/fixture:gone` });
    await expect(compose(opts)).rejects.toThrow(`image ${registry.host}/fixture:gone not found`);
    await expect(stat(opts.output)).rejects.toThrow();
  });
});

describe('the bundled entry points with a private base image', () => {
  const config = async () => {
    const file = join(tmp, 'entry.yaml');
    await writeFile(file, 'repos: [fedora]\nextensions:\n  usbguard:\n    packages: [usbguard]\n');
    return file;
  };

  test('CLI: the password comes on stdin, never argv; both architectures from the index', async () => {
    const output = join(tmp, 'cli-image-out');
    const result = await execa(process.execPath, [
      join(ROOT, 'dist/cli.js'), 'compose', '--config', await config(), '--base-image', `${secured.host}/private:1`,
      '--base-registry-username', 'ci', '--base-registry-password-stdin', '--arch', 'x86_64', '--arch', 'aarch64',
      '--repos-dir', distro.reposDir, '--cache-dir', join(tmp, 'cli-cache'), '--output', output, '--json',
    ], { input: `${PASSWORD}\n`, reject: false, env: { HOME: tmp } });
    expect(String(result.stderr)).not.toContain(PASSWORD);
    expect(result.exitCode).toBe(0);
    for (const arch of ['x86_64', 'aarch64']) {
      const m = JSON.parse(await readFile(join(output, arch, 'metadata.json'), 'utf8')) as Metadata;
      expect(m.base).toMatchObject({ source: 'image', digest: images[arch]!.digest, indexDigest: images['index']!.digest });
    }
  });

  test('action: base-registry-password is masked and its auth file removed', async () => {
    const output = join(tmp, 'action-image-out');
    const run = await runStep(tmp, 'action.js', {
      config: await config(), 'base-image': `${secured.host}/private:1`, 'base-registry-username': 'ci', 'base-registry-password': PASSWORD,
      architectures: 'aarch64', 'repos-dir': distro.reposDir, 'cache-dir': join(tmp, 'action-cache'), output,
    });
    expect(run.masked).toContain(PASSWORD);
    expect(run.log).not.toContain(PASSWORD);
    expect(run.exitCode).toBe(0);
    expect(run.state['base-registry-auth-dir']).toMatch(/compose-extensions-secrets-/);
    await expect(stat(run.state['base-registry-auth-dir']!)).rejects.toThrow('ENOENT');
    expect(JSON.parse(await readFile(join(output, 'aarch64/metadata.json'), 'utf8')).base.digest).toBe(images['aarch64']!.digest);
  });
});
