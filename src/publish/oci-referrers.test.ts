// The SBOMs attached to a pushed image, found again on a real registry (docker-registry 2.x, which
// has no referrers API) through the referrers tag schema, by digest.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from '../../test/fixtures/registry.js';
import { fixture } from '../metadata/fixtures.js';
import { buildMetadata } from '../metadata/metadata.js';
import { buildSboms } from '../metadata/sbom.js';
import { writeAuthFile } from '../tools/registry-auth.js';
import { digestOf } from '../tools/skopeo.js';
import { MEDIA } from './oci-layout.js';
import { pushArchImage } from './oci-push.js';
import { attachReferrers, EMPTY_CONFIG, referrerManifest, referrersTag } from './oci-referrers.js';
import { parseRepository } from './reference.js';
import { inspectManifest } from '../tools/skopeo.js';

let dir: string;
let registry: TestRegistry;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ce-referrers-'));
  registry = await startRegistry();
});
afterAll(async () => {
  await registry?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function archDir(name: string): Promise<string> {
  const f = fixture();
  const d = join(dir, name, 'x86_64');
  await mkdir(join(d, 'repodata'), { recursive: true });
  await writeFile(join(d, 'metadata.json'), JSON.stringify(buildMetadata(f), null, 2) + '\n');
  await writeFile(join(d, 'extensions.json'), '{"extensions":{}}');
  await writeFile(join(d, 'repodata', 'repomd.xml'), '<repomd/>');
  for (const s of buildSboms({ ...f, headers: {}, sourceDateEpoch: 0 }, ['spdx', 'cyclonedx'])) await writeFile(join(d, s.filename), s.content);
  return d;
}

/** What any registry client does: GET the blob by digest (this registry needs no token). */
async function blob(repo: string, digest: string): Promise<Buffer> {
  const r = await fetch(`http://${registry.host}/v2/${repo}/blobs/${digest}`);
  expect(r.status).toBe(200);
  return Buffer.from(await r.arrayBuffer());
}

test('referrerManifest: an OCI 1.1 artifact manifest with subject, artifactType and the empty config', () => {
  const subject = { mediaType: MEDIA.manifest, digest: `sha256:${'a'.repeat(64)}`, size: 123 };
  const layer = { mediaType: 'application/spdx+json', digest: `sha256:${'b'.repeat(64)}`, size: 9 };
  expect(JSON.parse(referrerManifest(subject, 'application/spdx+json', layer, '1970-01-01T00:00:00Z'))).toEqual({
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    artifactType: 'application/spdx+json',
    config: EMPTY_CONFIG,
    layers: [layer],
    subject,
    annotations: { 'org.opencontainers.image.created': '1970-01-01T00:00:00Z' },
  });
  expect(digestOf('{}')).toBe(EMPTY_CONFIG.digest);
  expect(referrersTag(subject.digest)).toBe(`sha256-${'a'.repeat(64)}`);
});

test('a pushed image has its SBOMs as referrers, found again from the registry by digest', async () => {
  const d = await archDir('push');
  const image = parseRepository(`${registry.host}/org/extensions`);
  const pushed = await pushArchImage(d, image, { tags: ['latest'], access: {} });
  expect(pushed.referrers.map((r) => r.artifactType)).toEqual(['application/spdx+json', 'application/vnd.cyclonedx+json']);

  // A client knows only the image's digest: the referrers tag names its referrers.
  const index = await inspectManifest(image, referrersTag(pushed.digest), {});
  expect(index?.json.mediaType).toBe(MEDIA.index);
  const entries = index!.json.manifests as { digest: string; artifactType: string; mediaType: string }[];
  expect(entries.map((e) => [e.artifactType, e.mediaType, e.digest])).toEqual(pushed.referrers.map((r) => [r.artifactType, MEDIA.manifest, r.digest]));
  const subjectSize = (await inspectManifest(image, pushed.digest, {}))!.size;
  for (const [e, file] of [[entries[0]!, 'sbom.spdx.json'], [entries[1]!, 'sbom.cdx.json']] as const) {
    const manifest = await inspectManifest(image, e.digest, {});
    expect(manifest!.digest).toBe(e.digest);
    const m = JSON.parse(manifest!.raw) as { artifactType: string; subject: { digest: string; size: number }; layers: { digest: string; annotations: Record<string, string> }[] };
    expect(m.artifactType).toBe(e.artifactType);
    expect(m.subject).toEqual({ mediaType: MEDIA.manifest, digest: pushed.digest, size: subjectSize });
    expect(m.layers[0]!.annotations['org.opencontainers.image.title']).toBe(file);
    expect(await blob('org/extensions', m.layers[0]!.digest)).toEqual(await readFile(join(d, file)));
  }

  // Pushing again replaces our SBOMs in the tag index and keeps a referrer of another type.
  const other = join(dir, 'note.txt');
  await writeFile(other, 'a signature, say');
  const subject = { mediaType: MEDIA.manifest, digest: pushed.digest, size: subjectSize };
  const [note] = await attachReferrers(image, subject, [{ path: other, title: 'note.txt', mediaType: 'text/plain' }], {}, '1970-01-01T00:00:00Z');
  const again = await pushArchImage(d, image, { tags: ['latest'], access: {} });
  expect(again.digest).toBe(pushed.digest);
  const after = (await inspectManifest(image, referrersTag(pushed.digest), {}))!.json.manifests as { digest: string; artifactType: string }[];
  expect(after.map((e) => e.artifactType)).toEqual(['text/plain', 'application/spdx+json', 'application/vnd.cyclonedx+json']);
  expect(after[0]!.digest).toBe(note!.digest);
  expect(after.slice(1).map((e) => e.digest)).toEqual(pushed.referrers.map((r) => r.digest));
});

test('behind credentials: the referrers and the tag index are pushed with the auth file; without it the push fails', async () => {
  const secured = await startRegistry({ auth: { user: 'u', password: 'p@ss' } });
  const auth = await writeAuthFile(secured.host, 'u', 'p@ss');
  try {
    const d = await archDir('secured');
    const image = parseRepository(`${secured.host}/org/extensions`);
    const pushed = await pushArchImage(d, image, { tags: ['latest'], access: { authFile: auth.path } });
    const index = await inspectManifest(image, referrersTag(pushed.digest), { authFile: auth.path });
    expect((index!.json.manifests as { digest: string }[]).map((m) => m.digest)).toEqual(pushed.referrers.map((r) => r.digest));
    const subject = { mediaType: MEDIA.manifest, digest: pushed.digest, size: 1 };
    const note = join(dir, 'note2.txt');
    await writeFile(note, 'x');
    await expect(attachReferrers(image, subject, [{ path: note, title: 'n', mediaType: 'text/plain' }], {}, '1970-01-01T00:00:00Z')).rejects.toThrow(/^pushing to docker:\/\/127\.0\.0\.1:\d+\/org\/extensions@sha256:[0-9a-f]{64} failed: .*authentication required/);
  } finally {
    await auth.cleanup();
    await secured.stop();
  }
});
