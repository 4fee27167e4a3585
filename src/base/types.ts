// What a base is: how the user named it (BaseSpec), what reading it yields (BaseInfo), and why it
// could not be read (BaseError). Every module of src/base/ imports these; they import no stage.
import type { InstalledPackage } from '../tools/rpm.js';
import type { ImageName, Platform, RegistryOptions } from '../tools/skopeo.js';

/**
 * What the user named as the base. `repo` (ostree), `path` (rootfs: a directory or a tarball) and
 * an image `ref` may be http(s) URLs: prepareBase fetches or pins them once per run.
 */
export type BaseSpec =
  | {
      kind: 'ostree';
      repo: string;
      ref: string;
      /**
       * The commit each architecture's ref named when prepareBase pinned it: every stage of a run
       * reads the same commit even if the ref moves meanwhile.
       */
      commits?: Record<string, string>;
    }
  | { kind: 'rootfs'; path: string; sha256?: string; /** The URL `path` was downloaded from. */ url?: string }
  | ImageBaseSpec;

export interface ImageBaseSpec {
  kind: 'image';
  /** docker://…, a bare registry/name[:tag][@digest], oci:DIR[:TAG], oci-archive:FILE, or an http(s) URL of an OCI archive. */
  ref: string;
  /** sha256 (hex) the downloaded archive must have, for a URL. */
  sha256?: string;
  registry?: RegistryOptions;
  /** Set by prepareBase: the reference pinned once for every architecture. */
  resolved?: ResolvedImage;
}

export interface IndexEntry {
  platform: Platform & { os: string };
  digest: string;
}

export interface ResolvedImage {
  /** The reference as the user gave it, for metadata and messages. */
  display: string;
  /** What skopeo reads: for a registry, pinned to `digest`. */
  name: ImageName;
  /** Digest of what the reference named when resolved: the index, or the single manifest. */
  digest: string;
  /** For a multi-architecture index: its images. */
  index?: IndexEntry[];
}

export interface BaseInfo {
  source: 'ostree' | 'rootfs' | 'image';
  /** The ref as given, after ${basearch} substitution (ostree), or the path (rootfs). */
  ref: string;
  /** OSTree commit checksum, when the base is a commit. */
  commit?: string;
  /** Image manifest digest, when the base is an image (for this architecture). */
  digest?: string;
  /** Digest of the multi-architecture index the image was chosen from. */
  indexDigest?: string;
  /** The image's `ostree.commit` label: the OSTree commit a bootable container image was built from. */
  ostreeCommit?: string;
  /** The image's `org.opencontainers.image.version` label. */
  imageVersion?: string;
  /** The commit's `version` metadata, or os-release VERSION. */
  version?: string;
  osRelease: Record<string, string>;
  packages: InstalledPackage[];
  /**
   * A private directory laid out as a root whose rpmdb is at usr/lib/sysimage/rpm: a copy that
   * dnf may read (and lock) without touching the base.
   */
  root: string;
}

export type BaseErrorReason =
  | 'ref-not-found'
  | 'not-ostree-repo'
  | 'rootfs-missing'
  | 'no-rpmdb'
  | 'empty-rpmdb'
  | 'image-not-found'
  | 'no-image-for-arch'
  | 'auth-refused'
  | 'download-failed'
  | 'checksum-mismatch'
  | 'wrong-arch';

/** The base cannot be read: a wrong ref, repo or path, or a base without a usable rpmdb. */
export class BaseError extends Error {
  override name = 'BaseError';
  constructor(readonly reason: BaseErrorReason, message: string) {
    super(message);
  }
}

export function substituteBasearch(ref: string, arch: string): string {
  return ref.replaceAll('${basearch}', arch);
}

export interface ReadOptions {
  /** Also copy the base's passwd and group files (system extension images need its ids). */
  accounts?: boolean;
}
