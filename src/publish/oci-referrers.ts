// SBOMs, signatures and attestations attached to a pushed image as OCI 1.1 referrers (image-spec manifest.md `subject`,
// `artifactType`), with the distribution-spec's referrers tag schema: an index tagged
// `sha256-<hex>` of the subject's digest lists them, for registries without the referrers API
// (docker-registry 2.x, ghcr.io). Registries with the API index them by their `subject` as well,
// so both kinds of client find them (`oras discover` asks the API first, then the tag).
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { scratchDir } from '../tools/leftovers.js';
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
  /** The file to attach, e.g. `<output>/<arch>/sbom.spdx.json`; or its bytes. */
  path?: string;
  bytes?: Buffer | string;
  /** Its name in the artifact (the layer's title). */
  title: string;
  /** The artifact type and the layer's media type, e.g. `application/spdx+json`. */
  mediaType: string;
  /**
   * Annotations of the artifact manifest and of its entry in the tag index (a Sigstore bundle's
   * dev.sigstore.bundle.content and .predicateType, as cosign writes them).
   */
  annotations?: Record<string, string>;
}

export interface AttachedReferrer {
  artifactType: string;
  digest: string;
  size: number;
  /** For a Sigstore bundle: the predicate type of its statement (signature or attestation). */
  predicateType?: string;
}

/** What makes two referrers the same kind, so that a new one replaces the old: type and predicate. */
const kindOf = (e: { artifactType?: string; annotations?: Record<string, string> }): string =>
  `${e.artifactType ?? ''} ${e.annotations?.[PREDICATE] ?? ''}`;
const PREDICATE = 'dev.sigstore.bundle.predicateType';

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

export interface IndexEntry extends Descriptor {
  artifactType?: string;
}

/** The referrers tag index' entries for a subject (none when it has no referrers). */
export async function listReferrers(image: Repository, subjectDigest: string, access: RegistryOptions): Promise<IndexEntry[]> {
  const index = await inspectManifest(image, referrersTag(subjectDigest), access);
  return (index?.json.manifests ?? []) as IndexEntry[];
}

/** The referrers tag index: what the referrers API would answer for the subject. */
export function referrersIndex(entries: IndexEntry[]): string {
  return JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.index, manifests: entries });
}

/**
 * Pushes each attachment as a referrer of `subject` and the referrers tag index listing them;
 * entries of other kinds already in that index (another artifact type, or a bundle of another
 * predicate type) are kept, those of the same kind replaced.
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
  const layout = await scratchDir('referrers', workDir);
  try {
    await initLayout(layout);
    await putBlob(layout, EMPTY_CONFIG.mediaType, '{}');
    const ours: IndexEntry[] = [];
    for (const a of attachments) {
      const layer = await putBlob(layout, a.mediaType, a.bytes ?? await readFile(a.path!));
      const manifest = await putBlob(layout, MEDIA.manifest, referrerManifest(subject, a.mediaType, { ...layer, annotations: { [TITLE]: a.title } }, created, a.annotations));
      ours.push({ ...manifest, artifactType: a.mediaType, annotations: { ...a.annotations, [CREATED]: created } });
    }
    // Each artifact by its digest (skopeo: blobs, then the manifest, bytes unchanged)...
    await writeIndex(layout, ours.map((o, i) => ({ ref: `referrer-${i}`, descriptor: o })));
    for (const [i, o] of ours.entries()) await copyToTags(layout, `referrer-${i}`, image, [o.digest], access);
    // ...then the tag index, which skopeo cannot push with artifactType kept: one PUT of our own.
    const tag = referrersTag(subject.digest);
    const kinds = new Set(ours.map(kindOf));
    const existing = await inspectManifest(image, tag, access);
    const kept = ((existing?.json.manifests ?? []) as IndexEntry[]).filter((m) => !kinds.has(kindOf(m)) && !ours.some((o) => o.digest === m.digest));
    await putManifest(image, tag, MEDIA.index, referrersIndex([...kept, ...ours]), access);
    return ours.map((o) => ({
      artifactType: o.artifactType!, digest: o.digest, size: o.size,
      ...(o.annotations?.[PREDICATE] && { predicateType: o.annotations[PREDICATE] }),
    }));
  } finally {
    await rm(layout, { recursive: true, force: true });
  }
}
