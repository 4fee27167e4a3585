// Per-architecture images of a compose job, pushed as `IMAGE:TAG-ARCH` for every tag. The merge job
// (merge.ts) later finds them under exactly those tags; matrix jobs cannot hand digests to a later
// job through outputs, since every leg of a matrix writes the same output names.
import { access as exists, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { SBOM_FILES, SBOM_MEDIA_TYPES, type SbomFormat } from '../metadata/sbom.js';
import { buildImage, defaultCreated, LABELS, readMetadata, type ImageOptions } from './oci-image.js';
import { attachReferrers, type AttachedReferrer, type Attachment } from './oci-referrers.js';
import { copyToTags, inspectConfig, inspectManifest, type RegistryOptions, type Repository } from '../tools/skopeo.js';
import { archTag, checkTag } from './reference.js';

export interface PushOptions extends ImageOptions {
  tags: string[];
  access: RegistryOptions;
  /** Push nothing for an architecture whose image at every tag already has this state checksum. */
  skipUnchanged?: boolean;
}

export interface PushedImage {
  arch: string;
  /** Manifest digest of the image at the tags (when unchanged, the one already there). */
  digest: string;
  /** `IMAGE@DIGEST`. */
  ref: string;
  /** The tags written, `TAG-ARCH`; empty when unchanged. */
  tags: string[];
  changed: boolean;
  stateChecksum: string;
  /** The SBOMs attached to the image as OCI referrers (none when unchanged: they are there already). */
  referrers: AttachedReferrer[];
}

/** The SBOMs the compose wrote beside metadata.json. */
async function sbomAttachments(archDir: string): Promise<Attachment[]> {
  const found: Attachment[] = [];
  for (const format of Object.keys(SBOM_FILES) as SbomFormat[]) {
    const path = join(archDir, SBOM_FILES[format]);
    if (await exists(path).then(() => true, () => false)) found.push({ path, title: SBOM_FILES[format], mediaType: SBOM_MEDIA_TYPES[format] });
  }
  return found;
}

/** The state checksum label of the image at a tag; undefined when there is no image or label. */
export async function currentState(image: Repository, tag: string, access: RegistryOptions): Promise<string | undefined> {
  const config = await inspectConfig(image, tag, access);
  return config?.config?.Labels?.[LABELS.state] ?? undefined;
}

export async function pushArchImage(archDir: string, image: Repository, options: PushOptions): Promise<PushedImage> {
  if (options.tags.length === 0) throw new UsageError('tags: at least one tag is needed to push an image');
  options.tags.forEach((t) => checkTag(t));
  // Metadata first: an unchanged architecture is not even packed.
  const { metadata } = await readMetadata(archDir);
  const { arch, stateChecksum } = metadata;
  const tags = options.tags.map((t) => archTag(t, arch));
  if (options.skipUnchanged) {
    const states = await Promise.all(tags.map((t) => currentState(image, t, options.access)));
    if (states.every((s) => s === stateChecksum)) {
      const remote = await inspectManifest(image, tags[0]!, options.access);
      const digest = remote?.digest ?? '';
      return { arch, digest, ref: `${image.name}@${digest}`, tags: [], changed: false, stateChecksum, referrers: [] };
    }
  }
  const built = await buildImage(archDir, options);
  try {
    const digest = await copyToTags(built.layout, built.ref, image, tags, options.access);
    const created = (options.created ?? defaultCreated()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const referrers = await attachReferrers(image, built.manifest, await sbomAttachments(archDir), options.access, created, options.workDir);
    return { arch, digest, ref: `${image.name}@${digest}`, tags, changed: true, stateChecksum, referrers };
  } finally {
    await rm(built.layout, { recursive: true, force: true });
  }
}
