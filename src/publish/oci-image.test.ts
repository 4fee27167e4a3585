import { chmod, mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { fixture } from '../metadata/fixtures.js';
import { buildMetadata } from '../metadata/metadata.js';
import { run } from '../tools/exec.js';
import { buildImage, defaultCreated, IMAGE_CMD, LABELS, type BuiltImage } from './oci-image.js';
import { readBlob } from './oci-layout.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ce-oci-image-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** An output arch directory as the engine writes it (mode 0700 from its staging mkdtemp). */
async function archDir(name: string, arch = 'x86_64'): Promise<string> {
  const f = fixture();
  f.plan.arch = arch;
  const d = join(dir, name, arch);
  await mkdir(join(d, 'repodata'), { recursive: true });
  await chmod(d, 0o700);
  await writeFile(join(d, 'metadata.json'), JSON.stringify(buildMetadata(f), null, 2) + '\n');
  await writeFile(join(d, 'extensions.json'), '{"extensions":{}}');
  for (const p of f.solve.packages) await writeFile(join(d, `${p.name}-${p.version}-${p.release}.${p.arch}.rpm`), `rpm ${p.nevra}`);
  await writeFile(join(d, 'repodata', 'repomd.xml'), '<repomd/>');
  return d;
}

async function json(image: BuiltImage, digest: string): Promise<any> {
  return JSON.parse((await readBlob(image.layout, digest)).toString());
}

/** Applies the layers in order, as a container runtime does before `podman cp`. */
async function unpack(image: BuiltImage): Promise<string> {
  const manifest = await json(image, image.digest);
  const root = await mkdtemp(join(dir, 'rootfs-'));
  for (const layer of manifest.layers) await run('tar', ['-xzf', join(image.layout, 'blobs', ...layer.digest.split(':')), '-C', root]);
  return root;
}

async function tree(root: string): Promise<Record<string, string>> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  return Object.fromEntries(await Promise.all(files.sort().map(async (f) => [f.slice(root.length + 1), (await readFile(f)).toString('base64')])));
}

test('the image holds the repository, and in its last layer the flat map and metadata.json', async () => {
  const source = await archDir('layout');
  const image = await buildImage(source, { workDir: dir, source: 'https://github.com/example/extensions', revision: 'abc123', labels: { 'org.example.team': 'os' } });
  try {
    const manifest = await json(image, image.digest);
    expect(manifest.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(manifest.layers).toHaveLength(2);
    expect(manifest.layers.every((l: any) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar+gzip')).toBe(true);

    const config = await json(image, manifest.config.digest);
    expect(config).toMatchObject({ architecture: 'amd64', os: 'linux', created: '1970-01-01T00:00:00Z', config: { Cmd: IMAGE_CMD } });
    expect(config.rootfs.diff_ids).toHaveLength(2);
    expect(config.config.Labels).toEqual(manifest.annotations);
    expect(config.config.Labels).toMatchObject({
      [LABELS.created]: '1970-01-01T00:00:00Z',
      [LABELS.source]: 'https://github.com/example/extensions',
      [LABELS.revision]: 'abc123',
      [LABELS.version]: '42.20250401.3.0',
      [LABELS.title]: 'fedora 42.20250401.3.0 extensions (x86_64)',
      [LABELS.state]: fixture().stateChecksum,
      [LABELS.baseCommit]: fixture().base.commit,
      [LABELS.baseRef]: 'fedora/x86_64/coreos/stable',
      'org.example.team': 'os',
    });

    const root = await unpack(image);
    const files = await tree(root);
    const repo = await tree(source);
    for (const [name, content] of Object.entries(repo)) expect(files[`usr/share/rpm-ostree/extensions/${name}`]).toBe(content);
    expect(Object.keys(files).sort()).toEqual([
      ...Object.keys(repo).map((n) => `usr/share/rpm-ostree/extensions/${n}`),
      'usr/share/rpm-ostree/extensions.json',
      'usr/share/rpm-ostree/metadata.json',
    ].sort());
    expect(JSON.parse(await readFile(join(root, 'usr/share/rpm-ostree/extensions.json'), 'utf8'))).toEqual({
      'kernel-devel': '6.14.0-63.fc42.x86_64',
      'kernel-headers': '6.14.0-63.fc42.x86_64',
      protobuf: '2:3.19.6-11.fc42.x86_64',
      usbguard: '1.1.3-2.fc42.x86_64',
      'usbguard-selinux': '1.1.3-2.fc42.noarch',
    });
    expect(await readFile(join(root, 'usr/share/rpm-ostree/metadata.json'))).toEqual(await readFile(join(source, 'metadata.json')));

    // The last layer alone holds the map: `oc image extract IMAGE[-1]` finds it there.
    const last = manifest.layers[1].digest;
    const { stdout: listing } = await run('tar', ['-tzvf', join(image.layout, 'blobs', ...last.split(':'))]);
    expect(listing).toMatch(/usr\/share\/rpm-ostree\/extensions\.json/);
    // Owners, times and modes are fixed; a 0700 output directory is packed readable (0755).
    const { stdout: first } = await run('tar', ['--numeric-owner', '-tzvf', join(image.layout, 'blobs', ...manifest.layers[0].digest.split(':'))]);
    for (const line of first.trim().split('\n')) expect(line).toMatch(/^(drwxr-xr-x|-rw-r--r--) 0\/0 .* 1970-01-01 00:00 usr\//);
    expect(first).not.toMatch(/PaxHeaders\.\d/);
  } finally {
    await rm(image.layout, { recursive: true, force: true });
  }
});

test('same input, same digest; a different input or time, a different one', async () => {
  const a = await buildImage(await archDir('repro-a'), { workDir: dir });
  // Other file times and another path must not matter.
  const other = await archDir('repro-b');
  for (const name of await readdir(other)) await utimes(join(other, name), 1e9, 1e9);
  const b = await buildImage(other, { workDir: dir });
  const changed = await archDir('repro-c');
  await writeFile(join(changed, 'usbguard-1.1.3-2.fc42.x86_64.rpm'), 'other bytes');
  const c = await buildImage(changed, { workDir: dir });
  const d = await buildImage(await archDir('repro-d'), { workDir: dir, created: new Date('2026-01-01T00:00:00Z') });
  try {
    expect(b.digest).toBe(a.digest);
    expect(c.digest).not.toBe(a.digest);
    expect(d.digest).not.toBe(a.digest);
  } finally {
    for (const i of [a, b, c, d]) await rm(i.layout, { recursive: true, force: true });
  }
});

test('aarch64 images are arm64/v8', async () => {
  const image = await buildImage(await archDir('arm', 'aarch64'), { workDir: dir });
  try {
    const config = await json(image, (await json(image, image.digest)).config.digest);
    expect(config).toMatchObject({ architecture: 'arm64', variant: 'v8', os: 'linux' });
    expect(image.platform).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
  } finally {
    await rm(image.layout, { recursive: true, force: true });
  }
});

test('created comes from SOURCE_DATE_EPOCH, never the clock', () => {
  expect(defaultCreated({})).toEqual(new Date(0));
  expect(defaultCreated({ SOURCE_DATE_EPOCH: '1767225600' }).toISOString()).toBe('2026-01-01T00:00:00.000Z');
  expect(() => defaultCreated({ SOURCE_DATE_EPOCH: 'yesterday' })).toThrow(UsageError);
});

test('our own labels cannot be overridden, and a directory without metadata.json is refused', async () => {
  const source = await archDir('labels');
  await expect(buildImage(source, { workDir: dir, labels: { [LABELS.state]: 'sha256:0' } })).rejects.toThrow(/set by compose-extensions/);
  await expect(buildImage(join(source, 'repodata'), { workDir: dir })).rejects.toThrow(/metadata\.json: not found/);
});
