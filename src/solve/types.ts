import type { PackageId } from '../tools/rpm.js';

/** A package in the composed repo, as dnf resolved it. */
export interface ResolvedPackage extends PackageId {
  /** Repo id it came from. */
  repo: string;
  /** location_href inside that repo (untrusted: never used as an output path as is). */
  location: string;
  /** The checksum the repo metadata declares for the file. */
  checksum: { type: string; value: string };
  /** Download size in bytes, from the repo metadata. */
  size: number;
  /** The file in a local (file://) repo, read in place; others are fetched (see download/). */
  path?: string;
  /** License and Vendor tags as the repo metadata states them (null when absent): for the SBOM. */
  license?: string | null;
  vendor?: string | null;
  /** Extensions whose closure includes it, sorted. */
  extensions: string[];
}

/** A repo as dnf loaded it for this run. */
export interface RepoState {
  id: string;
  /**
   * Where the repo is (after variable substitution, user-info removed): its first baseurl, else its
   * metalink or mirrorlist.
   */
  url: string;
  /** Every baseurl, in order (user-info removed); empty for a repo given by metalink or mirrorlist. */
  urls: string[];
  /** repomd.xml `<revision>`, when present. */
  revision?: string;
  /** sha256 of the repomd.xml that was loaded: identifies the repo metadata exactly. */
  repomdSha256: string;
  gpgcheck: boolean;
  gpgkeys: string[];
}

export interface SolveResult {
  arch: string;
  /** Sorted by nevra. */
  packages: ResolvedPackage[];
  /** Extension name → its own closure (NEVRA strings, sorted): what a client installs for it. */
  closures: Record<string, string[]>;
  repos: RepoState[];
}
