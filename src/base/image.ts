// A bootable container image as the base. resolveImage pins the reference once per run (a tag to
// its digest, an index to each architecture's manifest digest); readImageBase then copies that
// exact manifest's blobs with skopeo and reads the rpmdb and os-release out of the layers.
import { checkAuthFile } from '../tools/registry-auth.js';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  copyToDir,
  digestOf,
  inspectRaw,
  parseImageName,
  RegistryError,
  type ImageName,
  type Platform,
  type RegistryOptions,
} from '../tools/skopeo.js';
import { BaseError, type BaseInfo, type IndexEntry, type ReadOptions, type ResolvedImage } from './types.js';
import { LayeredTree, readLayers } from './layers.js';

/** RPM basearch → OCI/Go architecture (and variant, for arm64). */
const OCI_ARCH: Record<string, Platform> = {
  x86_64: { architecture: 'amd64' },
  aarch64: { architecture: 'arm64' },
  ppc64le: { architecture: 'ppc64le' },
  s390x: { architecture: 's390x' },
  riscv64: { architecture: 'riscv64' },
};

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);

interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  platform?: { architecture?: string; os?: string; variant?: string };
}
interface Manifest {
  mediaType?: string;
  manifests?: Descriptor[];
  config?: Descriptor;
  layers?: Descriptor[];
}

function parseJson<T>(text: string, what: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new BaseError('image-not-found', `${what} is not valid JSON`);
  }
}

function asBaseError(err: unknown): unknown {
  if (!(err instanceof RegistryError)) return err;
  return new BaseError(err.reason === 'auth-refused' ? 'auth-refused' : 'image-not-found', err.message);
}

const isIndex = (m: Manifest) => (m.mediaType ? INDEX_TYPES.has(m.mediaType) : Array.isArray(m.manifests));

/**
 * Reads the manifest or index the reference names, once: a tag is replaced by the digest it had
 * at that moment, so every architecture (and the state checksum) sees the same image even if the
 * tag moves during the run.
 */
export async function resolveImage(ref: string, options: RegistryOptions = {}, display = ref): Promise<ResolvedImage> {
  const name = parseImageName(ref);
  if (options.authFile) await checkAuthFile(options.authFile);
  const raw = await inspectRaw(name, display, options).catch((err: unknown) => {
    throw asBaseError(err);
  });
  const digest = digestOf(raw);
  if (name.digest && name.digest !== digest) {
    throw new BaseError('image-not-found', `image ${display}: the registry returned content with digest ${digest}`);
  }
  const manifest = parseJson<Manifest>(raw, `the manifest of ${display}`);
  const pinned: ImageName = name.transport === 'docker' ? { ...name, ref: `docker://${name.repository}@${digest}`, digest } : name;
  if (!isIndex(manifest)) return { display, name: pinned, digest };
  const index = (manifest.manifests ?? [])
    .filter((d) => d.platform?.architecture && !INDEX_TYPES.has(d.mediaType ?? ''))
    .map((d) => ({
      platform: { os: d.platform!.os ?? '', architecture: d.platform!.architecture!, ...(d.platform!.variant && { variant: d.platform!.variant }) },
      digest: d.digest,
    }));
  return { display, name: pinned, digest, index };
}

/** The index entry for an architecture: linux only; for arm64, v8 or no variant before others. */
function pick(resolved: ResolvedImage, arch: string): IndexEntry {
  const want = OCI_ARCH[arch];
  const candidates = resolved.index!.filter((e) => e.platform.os === 'linux' && e.platform.architecture === want?.architecture);
  const best = candidates.find((e) => !e.platform.variant || e.platform.variant === 'v8') ?? candidates[0];
  if (best) return best;
  const present = [...new Set(resolved.index!.filter((e) => e.platform.os === 'linux').map((e) => e.platform.architecture))].sort();
  throw new BaseError(
    'no-image-for-arch',
    `image ${resolved.display} has no image for ${arch}${want ? ` (${want.architecture})` : ''}; the index has: ${present.join(', ') || '(no linux images)'}`,
  );
}

interface ImageConfig {
  architecture?: string;
  os?: string;
  config?: { Labels?: Record<string, string> | null };
}

/** Reads one architecture's image of a resolved reference: the private rpmdb, os-release and labels. */
/** Fetches this architecture's image (pinned by digest) and hands its layers and labels to `use`. */
async function withImage<T>(
  resolved: ResolvedImage,
  arch: string,
  workDir: string,
  options: RegistryOptions,
  use: (image: { digest: string; entry?: IndexEntry; layers: string[]; labels: Record<string, string> }) => Promise<T>,
): Promise<T> {
  const entry = resolved.index ? pick(resolved, arch) : undefined;
  const digest = entry?.digest ?? resolved.digest;
  const name: ImageName =
    resolved.name.transport === 'docker' ? { ...resolved.name, ref: `docker://${resolved.name.repository}@${digest}`, digest } : resolved.name;
  const dir = join(workDir, 'image');
  await rm(dir, { recursive: true, force: true });
  await mkdir(workDir, { recursive: true });
  try {
    await copyToDir(name, resolved.display, dir, { ...options, ...(entry && { platform: entry.platform }) }).catch((err: unknown) => {
      throw asBaseError(err);
    });
    const raw = await readFile(join(dir, 'manifest.json'), 'utf8');
    // oci: and oci-archive: cannot be addressed by digest: check that the copy is the one pinned.
    if (digestOf(raw) !== digest) {
      throw new BaseError('image-not-found', `image ${resolved.display} changed while it was read: expected ${digest}, got ${digestOf(raw)}`);
    }
    const manifest = parseJson<Manifest>(raw, `the manifest of ${resolved.display}`);
    const blob = (d: Descriptor) => join(dir, d.digest.replace(/^sha256:/, ''));
    if (!manifest.config || !/^sha256:[0-9a-f]{64}$/.test(manifest.config.digest)) {
      throw new BaseError('image-not-found', `image ${resolved.display} (${digest}) has no image config`);
    }
    const config = parseJson<ImageConfig>(await readFile(blob(manifest.config), 'utf8'), `the config of ${resolved.display}`);
    const want = OCI_ARCH[arch]?.architecture;
    if (config.architecture !== want) {
      throw new BaseError(
        'no-image-for-arch',
        `image ${resolved.display} has no image for ${arch}${want ? ` (${want})` : ''}; it is a ${config.os ?? '?'}/${config.architecture ?? '?'} image`,
      );
    }
    const layers = (manifest.layers ?? []).map((d) => {
      if (!/^sha256:[0-9a-f]{64}$/.test(d.digest)) throw new BaseError('image-not-found', `image ${resolved.display}: unsupported layer digest ${d.digest}`);
      return blob(d);
    });
    return await use({ digest, entry, layers, labels: config.config?.Labels ?? {} });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function readImageBase(resolved: ResolvedImage, arch: string, workDir: string, options: RegistryOptions = {}, read: ReadOptions = {}): Promise<BaseInfo> {
  return withImage(resolved, arch, workDir, options, async ({ digest, entry, layers, labels }) => {
    const info = await readLayers(layers, `image ${resolved.display} (${digest})`, workDir, read);
    const imageVersion = labels['org.opencontainers.image.version'];
    const ostreeCommit = labels['ostree.commit'];
    return {
      source: 'image',
      ref: resolved.display,
      digest,
      ...(entry && { indexDigest: resolved.digest }),
      ...(ostreeCommit && /^[0-9a-f]{64}$/.test(ostreeCommit) && { ostreeCommit }),
      ...(imageVersion && { imageVersion }),
      version: imageVersion ?? labels['version'] ?? info.osRelease.VERSION,
      ...info,
    };
  });
}

/** One file of this architecture's image, with the layers applied in order (whiteouts too). */
export async function readImageFile(resolved: ResolvedImage, arch: string, path: string, workDir: string, options: RegistryOptions = {}): Promise<string> {
  return withImage(resolved, arch, workDir, options, async ({ layers }) => {
    const scratch = join(workDir, 'layers');
    try {
      return await (await LayeredTree.index(layers, scratch)).read(path);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });
}
