// SBOMs attached to a pushed image as OCI 1.1 referrers (image-spec manifest.md `subject`,
// `artifactType`), with the distribution-spec's referrers tag schema: an index tagged
// `sha256-<hex>` of the subject's digest lists them, for registries without the referrers API
// (docker-registry 2.x, ghcr.io). Registries with the API index them by their `subject` as well,
// so both kinds of client find them (`oras discover` asks the API first, then the tag).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initLayout, MEDIA, putBlob, writeIndex, type Descriptor } from './oci-layout.js';
import type { Repository } from '../tools/skopeo.js';
import { putManifest } from './registry-put.js';
import { copyToTags, inspectManifest, type RegistryOptions } from '../tools/skopeo.js';

/** image-spec's empty descriptor: the config of an artifact that has none. */
export const EMPTY_CONFIG = {
  mediaType: 'application/vnd.oci.empty.v1+json',
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
  data: 'e30=',
} as const;

const TITLE = 'org.opencontainers.image.title';
const CREATED = 'org.opencontainers.image.created';

export interface Attachment {
  /** The file to attach, e.g. `<output>/<arch>/sbom.spdx.json`. */
  path: string;
  /** Its name in the artifact (the layer's title). */
  title: string;
  /** The artifact type and the layer's media type, e.g. `application/spdx+json`. */
  mediaType: string;
  /** More annotations of the artifact manifest and its referrers entry (a Sigstore bundle's predicate type). */
  annotations?: Record<string, string>;
}

export interface AttachedReferrer {
  artifactType: string;
  digest: string;
  size: number;
}

/** `sha256:<hex>` → `sha256-<hex>`: the tag under which a registry without the API keeps the referrers. */
export const referrersTag = (digest: string): string => digest.replace(':', '-');

/** The artifact manifest of one attachment (pure: same inputs, same bytes). */
export function referrerManifest(subject: Descriptor, artifactType: string, layer: Descriptor, created: string, annotations: Record<string, string> = {}): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    artifactType,
    config: EMPTY_CONFIG,
    layers: [layer],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: { ...annotations, [CREATED]: created },
  });
}

interface IndexEntry extends Descriptor {
  artifactType?: string;
}

/** The referrers tag index: what the referrers API would answer for the subject. */
export function referrersIndex(entries: IndexEntry[]): string {
  return JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.index, manifests: entries });
}

/**
 * Pushes each attachment as a referrer of `subject` and the referrers tag index listing them;
 * entries of other artifact types already in that index (a signature, say) are kept.
 */
export async function attachReferrers(
  image: Repository,
  subject: Descriptor,
  attachments: Attachment[],
  access: RegistryOptions,
  created: string,
  workDir = tmpdir(),
): Promise<AttachedReferrer[]> {
  if (attachments.length === 0) return [];
  const layout = await mkdtemp(join(workDir, 'ce-referrers-'));
  try {
    await initLayout(layout);
    await putBlob(layout, EMPTY_CONFIG.mediaType, '{}');
    const ours: IndexEntry[] = [];
    for (const a of attachments) {
      const layer = await putBlob(layout, a.mediaType, await readFile(a.path));
      const manifest = await putBlob(layout, MEDIA.manifest, referrerManifest(subject, a.mediaType, { ...layer, annotations: { [TITLE]: a.title } }, created, a.annotations));
      // The referrers API copies the manifest's annotations into its entry: so does the tag index.
      ours.push({ ...manifest, artifactType: a.mediaType, annotations: { ...a.annotations, [CREATED]: created } });
    }
    // Each artifact by its digest (skopeo: blobs, then the manifest, bytes unchanged)...
    await writeIndex(layout, ours.map((o, i) => ({ ref: `referrer-${i}`, descriptor: o })));
    for (const [i, o] of ours.entries()) await copyToTags(layout, `referrer-${i}`, image, [o.digest], access);
    // ...then the tag index, which skopeo cannot push with artifactType kept: one PUT of our own.
    const tag = referrersTag(subject.digest);
    const types = new Set(ours.map((o) => o.artifactType));
    const existing = await inspectManifest(image, tag, access);
    const kept = ((existing?.json.manifests ?? []) as IndexEntry[]).filter((m) => !types.has(m.artifactType) && !ours.some((o) => o.digest === m.digest));
    await putManifest(image, tag, MEDIA.index, referrersIndex([...kept, ...ours]), access);
    return ours.map((o) => ({ artifactType: o.artifactType!, digest: o.digest, size: o.size }));
  } finally {
    await rm(layout, { recursive: true, force: true });
  }
}
