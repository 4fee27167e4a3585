// Per-architecture images of a compose job, pushed as `IMAGE:TAG-ARCH` for every tag. The merge job
// (merge.ts) later finds them under exactly those tags; matrix jobs cannot hand digests to a later
// job through outputs, since every leg of a matrix writes the same output names.
import { access as exists, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { SBOM_FILES, SBOM_MEDIA_TYPES, type SbomFormat } from '../metadata/sbom.js';
import { buildImage, defaultCreated, LABELS, readMetadata, type ImageOptions } from './oci-image.js';
import { attachReferrers, listReferrers, type AttachedReferrer, type Attachment } from './oci-referrers.js';
import { hasSignature, signingAttachments, type BundleSigner } from './signing.js';
import type { Descriptor } from './oci-layout.js';
import { copyToTags, inspectConfig, inspectManifest, type RegistryOptions, type Repository } from '../tools/skopeo.js';
import { archTag, checkTag } from './reference.js';

export interface PushOptions extends ImageOptions {
  tags: string[];
  access: RegistryOptions;
  /** Push nothing for an architecture whose image at every tag already has this state checksum. */
  skipUnchanged?: boolean;
  /** Sign each pushed image (and attest its SBOMs); an unchanged one only when it has no signature yet. */
  signer?: BundleSigner;
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
  /**
   * The SBOMs, signature and attestations attached to the image as OCI referrers (none when
   * unchanged: they are there already; an unchanged image without a signature gets one).
   */
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

/** The signature and SBOM attestations of a manifest, as referrer attachments. */
async function signed(signer: BundleSigner | undefined, digest: string, sboms: Attachment[]): Promise<Attachment[]> {
  if (!signer) return [];
  return signingAttachments(signer, digest, await Promise.all(sboms.map(async (s) => ({ mediaType: s.mediaType, bytes: await readFile(s.path!) }))));
}

/**
 * For an image left as it was: signs it when it has no signature yet (signing was turned on
 * later, or an earlier run failed between push and signing); nothing otherwise.
 */
export async function signUnchanged(
  image: Repository, subject: Descriptor, signer: BundleSigner | undefined, sboms: Attachment[], access: RegistryOptions, created: string, workDir?: string,
): Promise<AttachedReferrer[]> {
  if (!signer || hasSignature(await listReferrers(image, subject.digest, access))) return [];
  return attachReferrers(image, subject, await signed(signer, subject.digest, sboms), access, created, workDir);
}

/** The state checksum label of the image at a tag; undefined when there is no image or label. */
export async function currentState(image: Repository, tag: string, access: RegistryOptions): Promise<string | undefined> {
  const config = await inspectConfig(image, tag, access);
  return config?.config?.Labels?.[LABELS.state] ?? undefined;
}

const createdOf = (options: ImageOptions): string => (options.created ?? defaultCreated()).toISOString().replace(/\.\d{3}Z$/, 'Z');

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
      const referrers = remote
        ? await signUnchanged(image, remote, options.signer, await sbomAttachments(archDir), options.access, createdOf(options), options.workDir)
        : [];
      return { arch, digest, ref: `${image.name}@${digest}`, tags: [], changed: false, stateChecksum, referrers };
    }
  }
  const built = await buildImage(archDir, options);
  try {
    const digest = await copyToTags(built.layout, built.ref, image, tags, options.access);
    const sboms = await sbomAttachments(archDir);
    // One tag index update for the SBOMs, the signature and the attestations.
    const attachments = [...sboms, ...(await signed(options.signer, digest, sboms))];
    const referrers = await attachReferrers(image, built.manifest, attachments, options.access, createdOf(options), options.workDir);
    return { arch, digest, ref: `${image.name}@${digest}`, tags, changed: true, stateChecksum, referrers };
  } finally {
    await rm(built.layout, { recursive: true, force: true });
  }
}
