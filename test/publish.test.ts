// Publishing a real compose result: workflow artifacts through the real @actions/artifact client
// against a loopback artifact service backed by Azurite, and OCI images pushed to, merged in and
// pulled back from a real registry (docker-registry on 127.0.0.1) with skopeo.
import { DefaultArtifactClient } from '@actions/artifact';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compose } from '../src/engine.js';
import { loadPrevious } from '../src/inputs/previous.js';
import { combinedState } from '../src/metadata/state.js';
import { ComposeError, ToolError, UsageError } from '../src/errors.js';
import type { Metadata } from '../src/metadata/metadata.js';
import { uploadArtifacts } from '../src/publish/artifact.js';
import { writeAuthFile, type AuthFile } from '../src/tools/registry-auth.js';
import { extensionsMap } from '../src/publish/extensions-map.js';
import { buildImage, LABELS } from '../src/publish/oci-image.js';
import { mergeImages } from '../src/publish/merge.js';
import { publishComposed, publishMerge } from '../src/publish/publish.js';
import { currentState, pushArchImage } from '../src/publish/oci-push.js';
import { parseRepository } from '../src/publish/reference.js';
import { copyToTags, digestOf as sha256Bytes, type RegistryOptions } from '../src/tools/skopeo.js';
import { run } from '../src/tools/exec.js';
import { startArtifactService, type ArtifactService } from './fixtures/artifact-service.js';
import { composeOptions, FIXTURE_CONFIG } from './fixtures/compose.js';
import { buildFixtureDistro, type FixtureDistro } from './fixtures/distro.js';
import { startRegistry, type TestRegistry } from './fixtures/registry.js';

const ARCHES = ['x86_64', 'aarch64'];
const CONFIG = `${FIXTURE_CONFIG}  newest-devel:
    kind: development
    packages: [kernel-devel]
`;
const USER = 'ci-bot';
const PASSWORD = 'correct-horse-battery-staple';

let distro: FixtureDistro;
let dir: string;
let output: string;
let registry: TestRegistry;
/** Without auth: the registry's bcrypt check costs ~0.6 s a request, so only the credential tests pay it. */
let openRegistry: TestRegistry;
let auth: AuthFile;
let access: RegistryOptions;
let service: ArtifactService;
const savedEnv = { ...process.env };
const stdoutWrite = process.stdout.write;

beforeAll(async () => {
  distro = await buildFixtureDistro();
  dir = await mkdtemp(join(tmpdir(), 'ce-publish-'));
  output = join(dir, 'out');
  await compose(await composeOptions(distro, dir, CONFIG, { arches: ARCHES, output }));
  registry = await startRegistry({ auth: { user: USER, password: PASSWORD } });
  openRegistry = await startRegistry();
  service = await startArtifactService();
  // @actions/core writes workflow commands (::debug:: and the like) to stdout; keep the test log readable.
  process.stdout.write = (() => true) as typeof process.stdout.write;
  auth = await writeAuthFile(registry.host, USER, PASSWORD, dir);
  access = { tlsVerify: false };
}, 600_000);

afterAll(async () => {
  process.stdout.write = stdoutWrite;
  process.env = savedEnv;
  await service?.stop();
  await auth?.cleanup();
  await registry?.stop();
  await openRegistry?.stop();
  await distro?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const metadataOf = async (arch: string): Promise<Metadata> => JSON.parse(await readFile(join(output, arch, 'metadata.json'), 'utf8'));

/** Relative path → sha256 of every file below `root`. */
async function tree(root: string): Promise<Record<string, string>> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name)).sort();
  return Object.fromEntries(await Promise.all(files.map(async (f) => [f.slice(root.length + 1), sha256Bytes(await readFile(f))])));
}

/** Each entry's compression method (0 = stored), from the zip's central directory. */
function zipMethods(zip: Buffer): number[] {
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  const methods: number[] = [];
  for (let i = 0; i < count; i++) {
    expect(zip.readUInt32LE(at)).toBe(0x02014b50);
    methods.push(zip.readUInt16LE(at + 10));
    at += 46 + zip.readUInt16LE(at + 28) + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
  }
  return methods;
}

/** The environment of one job of the workflow run. */
function asJob(job: string): void {
  process.env = { ...savedEnv, ...service.env(job) };
}

describe('workflow artifacts', () => {

  test('each architecture is its own stored artifact, which downloads back file for file', async () => {
    const uploaded = [];
    for (const arch of ARCHES) {
      // Matrix jobs: one per architecture, all in one run.
      asJob(`compose-${arch}`);
      uploaded.push(...(await uploadArtifacts([{ arch, dir: join(output, arch) }], { retentionDays: 5 })));
    }
    expect(uploaded.map((u) => u.name)).toEqual(['extensions-x86_64', 'extensions-aarch64']);
    expect(new Set(uploaded.map((u) => u.id)).size).toBe(2);

    for (const u of uploaded) {
      const stored = service.artifacts.find((a) => a.id === u.id)!;
      expect(stored).toMatchObject({ name: u.name, finalized: true, mimeType: 'application/zip', version: 7 });
      expect(u.url).toBe(`https://github.com/example/extensions/actions/runs/4242/artifacts/${u.id}`);
      const zip = await service.blobBytes(stored);
      expect(u.digest).toBe(sha256Bytes(zip).slice('sha256:'.length));
      expect(u.size).toBe(zip.length);
      // compressionLevel 0: every entry stored, RPMs are compressed already.
      const methods = zipMethods(zip);
      expect(methods.length).toBeGreaterThan(5);
      expect(methods.every((m) => m === 0)).toBe(true);
      // retention-days reaches the service as an expiry about that many days ahead.
      const days = (Date.parse(stored.expiresAt!) - stored.createdAt.getTime()) / 86_400_000;
      expect(days).toBeGreaterThan(4.9);
      expect(days).toBeLessThan(5.1);

      asJob('download');
      const target = join(dir, 'downloaded', u.arch);
      await new DefaultArtifactClient().downloadArtifact(u.id, { path: target });
      expect(await tree(target)).toEqual(await tree(join(output, u.arch)));
    }
  });

  test('a second job uploading the same architecture under the same name gets an explanation', async () => {
    asJob('compose-x86_64-again');
    const err = await uploadArtifacts([{ arch: 'x86_64', dir: join(output, 'x86_64') }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/an artifact named "extensions-x86_64" already exists in this workflow run/);
    expect((err as Error).message).toMatch(/artifact-name/);
    // With a name of its own it goes through.
    const [ok] = await uploadArtifacts([{ arch: 'x86_64', dir: join(output, 'x86_64') }], { name: 'extensions-testing' });
    expect(ok!.name).toBe('extensions-testing-x86_64');
  });
});

describe('OCI images', () => {
  const image = () => parseRepository(`${openRegistry.host}/org/extensions`);
  const pushed: Record<string, string> = {};

  const inspect = async (args: string[]) =>
    JSON.parse((await run('skopeo', ['inspect', '--tls-verify=false', ...args])).stdout);

  test('each architecture is pushed under TAG-ARCH for every tag, and a rebuild has the same digest', async () => {
    for (const arch of ARCHES) {
      const result = await pushArchImage(join(output, arch), image(), { tags: ['latest', '40'], access });
      expect(result).toMatchObject({ arch, changed: true, tags: [`latest-${arch}`, `40-${arch}`], stateChecksum: (await metadataOf(arch)).stateChecksum });
      expect(result.ref).toBe(`${image().name}@${result.digest}`);
      for (const tag of result.tags) {
        expect((await inspect([`docker://${image().name}:${tag}`])).Digest).toBe(result.digest);
      }
      pushed[arch] = result.digest;
    }
    // Same input, same digest: a fresh build, a second push, another repository.
    const local = await buildImage(join(output, 'x86_64'), { workDir: dir });
    expect(local.digest).toBe(pushed['x86_64']);
    await rm(local.layout, { recursive: true, force: true });
    const again = await pushArchImage(join(output, 'x86_64'), parseRepository(`${openRegistry.host}/org/other`), { tags: ['latest'], access });
    expect(again.digest).toBe(pushed['x86_64']);
  });

  test('the merge job combines them into one index under the plain tags, with the right platforms', async () => {
    const merged = await mergeImages(image(), { tags: ['latest', '40'], arches: ARCHES, access });
    expect(merged.changed).toBe(true);
    expect(merged.images.map((i) => [i.arch, i.digest])).toEqual([['aarch64', pushed['aarch64']], ['x86_64', pushed['x86_64']]]);
    const states = await Promise.all(ARCHES.map(async (arch) => ({ arch, stateChecksum: (await metadataOf(arch)).stateChecksum })));
    expect(merged.stateChecksum).toBe(combinedState(states));

    for (const tag of ['latest', '40']) {
      const raw = await inspect(['--raw', `docker://${image().name}:${tag}`]);
      expect(raw.mediaType).toBe('application/vnd.oci.image.index.v1+json');
      expect(raw.manifests.map((m: any) => [m.digest, m.platform])).toEqual([
        [pushed['aarch64'], { architecture: 'arm64', os: 'linux', variant: 'v8' }],
        [pushed['x86_64'], { architecture: 'amd64', os: 'linux' }],
      ]);
      expect(raw.annotations[LABELS.state]).toBe(merged.stateChecksum);
      expect(raw.annotations[LABELS.created]).toBe('1970-01-01T00:00:00Z');
    }
    // A client on each platform resolves the plain tag to its own image (skopeo reports the
    // index's digest, so compare what it resolved to: the layers and the state).
    const amd = await inspect(['--override-arch', 'amd64', `docker://${image().name}:latest`]);
    const arm = await inspect(['--override-arch', 'arm64', '--override-variant', 'v8', `docker://${image().name}:latest`]);
    expect(amd).toMatchObject({ Digest: merged.digest, Architecture: 'amd64', Os: 'linux' });
    expect(arm).toMatchObject({ Digest: merged.digest, Architecture: 'arm64', Os: 'linux' });
    expect(amd.Layers).toEqual((await inspect([`docker://${image().name}:latest-x86_64`])).Layers);
    expect(arm.Layers).toEqual((await inspect([`docker://${image().name}:latest-aarch64`])).Layers);
    expect(amd.Layers).not.toEqual(arm.Layers);
    expect(amd.Labels[LABELS.state]).toBe((await metadataOf('x86_64')).stateChecksum);
    const metadata = await metadataOf('aarch64');
    expect(arm.Labels).toMatchObject({
      [LABELS.state]: metadata.stateChecksum,
      [LABELS.baseCommit]: distro.commits['aarch64'],
      [LABELS.baseRef]: 'fixture/aarch64/base',
      [LABELS.version]: '40.20260101.0',
      [LABELS.created]: '1970-01-01T00:00:00Z',
      [LABELS.title]: 'fixture 40.20260101.0 extensions (aarch64)',
    });
  });

  test('previous-metadata from the published index: each architecture reads its own metadata.json', async () => {
    const previous = await loadPrevious(`docker://${image().name}:latest`, [...ARCHES, 's390x']);
    expect([...previous.keys()].sort()).toEqual(['aarch64', 'x86_64']); // s390x: not in the index, so new
    for (const arch of ARCHES) expect(previous.get(arch)!.extensions).toEqual((await metadataOf(arch)).extensions);
    await expect(loadPrevious(`docker://${image().name}:no-such-tag`, ARCHES)).rejects.toThrow(/previous metadata docker:.*not found/);
  });

  test('pulled back, the image unpacks to the repository plus the flat map and metadata.json', async () => {
    const layout = join(dir, 'pulled');
    await run('skopeo', [
      'copy', '--quiet', '--src-tls-verify=false', '--override-arch', 'arm64', '--override-variant', 'v8',
      `docker://${image().name}:latest`, `oci:${layout}:pulled`,
    ]);
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'));
    const blob = (digest: string) => join(layout, 'blobs', ...digest.split(':'));
    const manifest = JSON.parse(await readFile(blob(index.manifests[0].digest), 'utf8'));
    expect(index.manifests[0].digest).toBe(pushed['aarch64']);
    expect(manifest.layers).toHaveLength(2);
    const root = join(dir, 'rootfs');
    await mkdir(root);
    for (const layer of manifest.layers) await run('tar', ['-xzf', blob(layer.digest), '-C', root]);

    const files = await tree(root);
    const repo = await tree(join(output, 'aarch64'));
    const expected = {
      ...Object.fromEntries(Object.entries(repo).map(([n, sum]) => [`usr/share/rpm-ostree/extensions/${n}`, sum])),
      'usr/share/rpm-ostree/extensions.json': files['usr/share/rpm-ostree/extensions.json'],
      'usr/share/rpm-ostree/metadata.json': repo['metadata.json'],
    };
    expect(files).toEqual(expected);
    const map = JSON.parse(await readFile(join(root, 'usr/share/rpm-ostree/extensions.json'), 'utf8'));
    expect(map).toEqual(extensionsMap(await metadataOf('aarch64')));
    // kernel-devel is in the repo twice (pinned and newest): the map names the newest.
    expect(map['kernel-devel']).toBe('6.0-1.fc40.aarch64');
    expect(map['usbguard']).toBe('1.1.3-1.aarch64');
    // The last layer holds the map: what `oc image extract IMAGE[-1]` reads.
    const { stdout } = await run('tar', ['-tzf', blob(manifest.layers[1].digest)]);
    expect(stdout.split('\n')).toEqual(expect.arrayContaining(['usr/share/rpm-ostree/extensions.json', 'usr/share/rpm-ostree/metadata.json']));
  });

  test('skip-unchanged pushes nothing when the state label matches, and pushes a changed state', async () => {
    const same = await pushArchImage(join(output, 'x86_64'), image(), { tags: ['latest', '40'], access, skipUnchanged: true, created: new Date() });
    expect(same).toMatchObject({ changed: false, tags: [], digest: pushed['x86_64'] });
    const index = await mergeImages(image(), { tags: ['latest', '40'], arches: ARCHES, access, skipUnchanged: true });
    expect(index.changed).toBe(false);

    // A new state for x86_64 (as a changed repo would give).
    const changedDir = join(dir, 'changed', 'x86_64');
    await cp(join(output, 'x86_64'), changedDir, { recursive: true });
    const metadata = await metadataOf('x86_64');
    await writeFile(join(changedDir, 'metadata.json'), JSON.stringify({ ...metadata, stateChecksum: sha256Bytes('another state') }, null, 2));
    expect(await currentState(image(), 'latest-x86_64', access)).toBe(metadata.stateChecksum);
    const changed = await pushArchImage(changedDir, image(), { tags: ['latest', '40'], access, skipUnchanged: true });
    expect(changed.changed).toBe(true);
    expect(changed.digest).not.toBe(pushed['x86_64']);
    expect(await currentState(image(), 'latest-x86_64', access)).toBe(sha256Bytes('another state'));
    const merged = await mergeImages(image(), { tags: ['latest', '40'], arches: ARCHES, access, skipUnchanged: true });
    expect(merged.changed).toBe(true);
    expect(merged.images.find((i) => i.arch === 'x86_64')!.digest).toBe(changed.digest);
    expect(merged.digest).not.toBe(index.digest);
    // Nothing at a tag yet: no state, so the first nightly pushes.
    expect(await currentState(image(), 'never-pushed', access)).toBeUndefined();
  });

  test('the merge refuses a missing architecture and an image of the wrong platform', async () => {
    const missing = await mergeImages(image(), { tags: ['latest'], arches: ['x86_64', 'ppc64le'], access }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ComposeError);
    expect((missing as Error).message).toMatch(/no image at .*org\/extensions:latest-ppc64le/);

    const x86 = await buildImage(join(output, 'x86_64'), { workDir: dir });
    await copyToTags(x86.layout, x86.ref, image(), ['mixup-s390x'], access);
    await rm(x86.layout, { recursive: true, force: true });
    const wrong = await mergeImages(image(), { tags: ['mixup'], arches: ['s390x'], access }).catch((e: unknown) => e);
    expect((wrong as Error).message).toMatch(/mixup-s390x is an image for amd64, not s390x/);
  });

  test('a wrong password fails cleanly, naming the fix and never the secret', async () => {
    const secured = parseRepository(`${registry.host}/org/extensions`);
    const secret = 'wrong-password-0xDEADBEEF';
    const bad = await writeAuthFile(registry.host, USER, secret, dir);
    try {
      const badAccess = { authFile: bad.path, tlsVerify: false };
      const errors = [
        await pushArchImage(join(output, 'x86_64'), secured, { tags: ['latest'], access: badAccess }).catch((e: unknown) => e),
        // skip-unchanged must not read a refused login as "nothing there yet".
        await currentState(secured, 'latest-x86_64', badAccess).catch((e: unknown) => e),
        await mergeImages(secured, { tags: ['latest'], arches: ARCHES, access: badAccess }).catch((e: unknown) => e),
      ];
      for (const err of errors) {
        expect(err).toBeInstanceOf(ToolError);
        const text = `${(err as Error).message}\n${(err as Error).stack}`;
        expect(text).toMatch(/unauthorized|authentication required/i);
        expect(text).toMatch(/registry-username and registry-password/);
        for (const leak of [secret, Buffer.from(`${USER}:${secret}`).toString('base64'), PASSWORD]) expect(text).not.toContain(leak);
      }
    } finally {
      await bad.cleanup();
    }
  });
});

describe('the action flow (publishComposed, publishMerge)', () => {
  const flowImage = () => `${registry.host}/org/flow`;

  test('upload both: artifacts and per-arch images, outputs per architecture, secrets masked, auth file removed', async () => {
    asJob('flow');
    const masked: string[] = [];
    const authDirs: string[] = [];
    const arches = await Promise.all(ARCHES.map(async (arch) => ({ arch, outputDir: join(output, arch), stateChecksum: (await metadataOf(arch)).stateChecksum })));
    const result = await publishComposed(arches, {
      upload: 'both', artifactName: 'flow', image: flowImage(), tags: ['nightly'], registryUsername: USER, registryPassword: PASSWORD,
      skipUnchanged: true, tlsVerify: false, labels: { 'org.example.team': 'os' },
      mask: (s) => masked.push(s), onAuthDir: (d) => authDirs.push(d), env: { ...process.env, RUNNER_TEMP: dir, GITHUB_SHA: 'f00d' },
    });
    expect(masked).toEqual([PASSWORD, Buffer.from(`${USER}:${PASSWORD}`).toString('base64')]);
    expect(authDirs).toHaveLength(1);
    expect(authDirs[0]!.startsWith(dir)).toBe(true);
    await expect(readdir(authDirs[0]!)).rejects.toThrow(/ENOENT/);
    expect(result.changed).toBe(true);
    const ids = JSON.parse(result.outputs['artifact-id']!);
    expect(Object.keys(ids)).toEqual(ARCHES);
    expect(JSON.parse(result.outputs['artifact-url']!)['aarch64']).toBe(`https://github.com/example/extensions/actions/runs/4242/artifacts/${ids['aarch64']}`);
    const digests = JSON.parse(result.outputs['image-digest']!);
    expect(JSON.parse(result.outputs['image-ref']!)['x86_64']).toBe(`${flowImage()}@${digests['x86_64']}`);
    const labels = (await run('skopeo', ['inspect', '--authfile', auth.path, '--tls-verify=false', `docker://${flowImage()}:nightly-x86_64`])).stdout;
    expect(JSON.parse(labels).Labels).toMatchObject({
      'org.example.team': 'os', [LABELS.revision]: 'f00d', [LABELS.source]: 'https://github.com/example/extensions',
    });

    const merged = await publishMerge(ARCHES, { upload: 'oci', image: flowImage(), tags: ['nightly'], authFile: auth.path, tlsVerify: false, skipUnchanged: true });
    expect(merged.outputs).toMatchObject({ changed: 'true', 'image-ref': `${flowImage()}@${merged.index!.digest}` });
    const again = await publishMerge(ARCHES, { upload: 'oci', image: flowImage(), tags: ['nightly'], authFile: auth.path, tlsVerify: false, skipUnchanged: true });
    expect(again.outputs).toMatchObject({ changed: 'false', 'image-digest': merged.index!.digest });
  });

  test('an architecture left unwritten by previous-state: unchanged if the registry has its state, else an error', async () => {
    const x86 = await metadataOf('x86_64');
    const gone = { arch: 'x86_64', outputDir: join(dir, 'not-written', 'x86_64'), stateChecksum: x86.stateChecksum };
    const inputs = { upload: 'oci' as const, image: flowImage(), tags: ['nightly'], authFile: auth.path, tlsVerify: false, skipUnchanged: true };
    const result = await publishComposed([gone], inputs);
    expect(result.changed).toBe(false);
    expect(result.images[0]).toMatchObject({ arch: 'x86_64', changed: false });
    expect(result.outputs['image-digest']).toMatch(/^sha256:/);
    const err = await publishComposed([{ ...gone, stateChecksum: sha256Bytes('other') }], inputs).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ComposeError);
    expect((err as Error).message).toMatch(/was not written and there is no image to push/);
  });
});
