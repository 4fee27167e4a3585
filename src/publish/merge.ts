// The merge job: one OCI image index over the per-architecture images that the matrix jobs pushed
// as `IMAGE:TAG-ARCH`, pushed under the plain tags. The index names its images by digest, and they
// already live in the repository, so nothing but the index itself is uploaded (skopeo
// `--multi-arch index-only` from a layout that holds only the index).
import { rm } from 'node:fs/promises';
import { scratchDir } from '../tools/leftovers.js';
import { ComposeError, UsageError } from '../errors.js';
import { combinedState } from '../metadata/state.js';
import { LABELS } from './oci-image.js';
import { initLayout, MEDIA, putBlob, writeIndex, type Descriptor } from './oci-layout.js';
import { copyToTags, inspectConfig, inspectManifest, isImageManifest, type RegistryOptions, type Repository } from '../tools/skopeo.js';
import { archTag, checkTag, platformFor, type OciPlatform } from './reference.js';

export interface MergeOptions {
  tags: string[];
  /** The architectures the matrix composes; each must have its `TAG-ARCH` image. */
  arches: string[];
  access: RegistryOptions;
  /** Push nothing when every tag already holds exactly this index. */
  skipUnchanged?: boolean;
  workDir?: string;
}

export interface MergedIndex {
  digest: string;
  ref: string;
  /** Tags written; empty when unchanged. */
  tags: string[];
  changed: boolean;
  /** Over all architectures' states, as a multi-architecture compose reports it. */
  stateChecksum: string;
  images: { arch: string; digest: string; platform: OciPlatform; stateChecksum: string }[];
}

async function archImage(image: Repository, tag: string, arch: string, access: RegistryOptions) {
  const platform = platformFor(arch);
  const manifest = await inspectManifest(image, tag, access);
  const where = `${image.name}:${tag}`;
  if (!manifest) {
    throw new ComposeError([{ arch, message: `no image at ${where}: the compose job for ${arch} pushes it (upload: oci, same image and tags) and must finish before the merge job (needs:)` }]);
  }
  if (!isImageManifest(manifest)) throw new ComposeError([{ arch, message: `${where} is ${manifest.mediaType || 'not an image manifest'}, not a single image` }]);
  const config = await inspectConfig(image, tag, access);
  if (config?.architecture !== platform.architecture || (platform.variant && config.variant && config.variant !== platform.variant)) {
    throw new ComposeError([{ arch, message: `${where} is an image for ${config?.architecture ?? 'an unknown architecture'}, not ${platform.architecture}` }]);
  }
  const stateChecksum = config.config?.Labels?.[LABELS.state];
  if (!stateChecksum) throw new ComposeError([{ arch, message: `${where} has no ${LABELS.state} label: not an image pushed by compose-extensions` }]);
  return { arch, platform, manifest, stateChecksum };
}

/** Annotations every image agrees on (created, source, revision, version, …), plus the combined state. */
function commonAnnotations(all: (Record<string, string> | undefined)[]): Record<string, string> {
  const [first = {}, ...rest] = all.map((a) => a ?? {});
  return Object.fromEntries(Object.entries(first).filter(([k, v]) => k !== LABELS.state && rest.every((a) => a[k] === v)));
}

type ArchImage = Awaited<ReturnType<typeof archImage>>;

const byArch = (a: ArchImage, b: ArchImage) => (a.arch < b.arch ? -1 : a.arch > b.arch ? 1 : 0);

/** Sorted by architecture, whatever order they were listed in, so equal inputs give equal bytes. */
export function buildIndex(images: ArchImage[]): string {
  const sorted = [...images].sort(byArch);
  const manifests: Descriptor[] = sorted.map((i) => ({
    mediaType: i.manifest.mediaType,
    digest: i.manifest.digest,
    size: i.manifest.size,
    platform: i.platform,
    annotations: { [LABELS.arch]: i.arch, [LABELS.state]: i.stateChecksum },
  }));
  const annotations: Record<string, string> = {
    ...commonAnnotations(sorted.map((i) => i.manifest.json.annotations)),
    [LABELS.state]: combinedState(sorted),
  };
  const sortedAnnotations = Object.fromEntries(Object.keys(annotations).sort().map((k) => [k, annotations[k]!]));
  return JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.index, manifests, annotations: sortedAnnotations });
}

export async function mergeImages(image: Repository, options: MergeOptions): Promise<MergedIndex> {
  if (options.tags.length === 0) throw new UsageError('tags: at least one tag is needed to merge images');
  if (options.arches.length === 0) throw new UsageError('architectures: list the architectures the compose jobs pushed');
  options.tags.forEach((t) => checkTag(t));
  const arches = [...new Set(options.arches)];
  // All tags' images were pushed together by each compose job; the first tag's are the ones indexed.
  const source = options.tags[0]!;
  const images = (await Promise.all(arches.map((arch) => archImage(image, archTag(source, arch), arch, options.access)))).sort(byArch);
  const index = buildIndex(images);
  const work = await scratchDir('index', options.workDir);
  try {
    await initLayout(work);
    const descriptor = await putBlob(work, MEDIA.index, index);
    const result = {
      digest: descriptor.digest,
      ref: `${image.name}@${descriptor.digest}`,
      stateChecksum: combinedState(images),
      images: images.map((i) => ({ arch: i.arch, digest: i.manifest.digest, platform: i.platform, stateChecksum: i.stateChecksum })),
    };
    if (options.skipUnchanged) {
      const current = await Promise.all(options.tags.map((t) => inspectManifest(image, t, options.access)));
      if (current.every((m) => m?.digest === descriptor.digest)) return { ...result, tags: [], changed: false };
    }
    await writeIndex(work, [{ ref: 'index', descriptor }]);
    const digest = await copyToTags(work, 'index', image, options.tags, options.access, { indexOnly: true });
    return { ...result, digest, ref: `${image.name}@${digest}`, tags: [...options.tags], changed: true };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
