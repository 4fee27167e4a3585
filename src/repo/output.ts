// The repo stage: lay out `<output>/<arch>/` in a staging directory, run createrepo_c, and swap
// every architecture into place only once all of them succeeded.
import { constants, linkSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { ComposeError } from '../errors.js';
import type { FetchedPackage } from '../download/fetch.js';
import { run } from '../tools/exec.js';
import { unlimited, type Limiter } from '../tools/limit.js';

const SAFE_COMPONENT = /^[A-Za-z0-9._+~^-]+$/;

/**
 * The file name a package gets in the output. Built from the NEVRA fields, never from the repo's
 * location_href, and checked so that repo metadata cannot name a path outside the directory.
 */
export function packageFilename(pkg: Pick<FetchedPackage, 'name' | 'version' | 'release' | 'arch'>): string {
  for (const part of [pkg.name, pkg.version, pkg.release, pkg.arch]) {
    if (!SAFE_COMPONENT.test(part) || part === '.' || part === '..') {
      throw new ComposeError([{ message: `refusing package with unsafe name component "${part}" in its metadata` }]);
    }
  }
  return `${pkg.name}-${pkg.version}-${pkg.release}.${pkg.arch}.rpm`;
}

/** Joins and proves the result stays inside `dir`. */
export function inside(dir: string, name: string): string {
  const path = resolve(dir, name);
  if (!path.startsWith(resolve(dir) + sep)) throw new ComposeError([{ message: `path ${name} escapes ${dir}` }]);
  return path;
}

export interface StagedArch {
  arch: string;
  dir: string;
  /** nevra → filename relative to the arch directory. */
  filenames: Map<string, string>;
}

/**
 * A package from the download cache is hard-linked: no second file to create and fill. The cache
 * never writes into a file it has named (downloads land under a temporary name) and checks every
 * cached file's checksum before using it again, so a later change to the output cannot pass on.
 * A package read in place from a file:// repo is the user's: reflinked where the filesystem can, or
 * copied. So is a cache file on another filesystem. The link is synchronous: packages are placed one
 * after another, and a threadpool round trip per link costs more than the link.
 */
async function place(pkg: FetchedPackage, dest: string): Promise<void> {
  if (!pkg.path) {
    try {
      linkSync(pkg.file, dest);
      return;
    } catch {
      // EXDEV (another filesystem), EPERM (no hard links there), EMLINK: a copy does
    }
  }
  await copyFile(pkg.file, dest, constants.COPYFILE_FICLONE);
  // The source's mtime, as a link would have: createrepo_c's checksum cache is keyed by it.
  const { atime, mtime } = await stat(pkg.file);
  await utimes(dest, atime, mtime);
}

export interface StageOptions {
  /** Paces the createrepo_c runs of a compose's architectures. */
  indexing?: Limiter;
  /**
   * createrepo_c's checksum cache (`--cachedir`): keyed by file name, header digest, size and
   * mtime, so a package staged again from the same cache file (a hard link, same mtime) is not
   * read again. Trusted like the rest of the cache directory. Used only where the packages are
   * large on average (see CHECKSUM_CACHE_MIN_MEAN).
   */
  checksumCache?: string;
}

/**
 * Recording a checksum creates a file, tens of microseconds on most filesystems (several hundred
 * right after mass deletions on ext4 without a journal); reading 256 KiB to hash it takes about
 * 0.7 ms. Below this mean size (by the repo's sizes) the cache would cost more than it saves.
 */
export const CHECKSUM_CACHE_MIN_MEAN = 256 << 10;

/** A staging directory beside the final one, so the final rename stays on one filesystem. */
export async function stageArch(output: string, arch: string, packages: FetchedPackage[], options: StageOptions = {}): Promise<StagedArch> {
  const { indexing = unlimited, checksumCache } = options;
  await mkdir(output, { recursive: true });
  const dir = await mkdtemp(join(output, `.staging-${arch}-`));
  const filenames = new Map<string, string>();
  const taken = new Set<string>();
  try {
    for (const pkg of packages) {
      const name = packageFilename(pkg);
      if (taken.has(name)) throw new ComposeError([{ arch, message: `two packages would be written as ${name}` }]);
      taken.add(name);
      await place(pkg, inside(dir, name));
      filenames.set(pkg.nevra, name);
    }
    const bytes = packages.reduce((sum, p) => sum + (Number.isFinite(p.size) ? p.size : 0), 0);
    const cached = checksumCache !== undefined && packages.length > 0 && bytes / packages.length >= CHECKSUM_CACHE_MIN_MEAN;
    const cache = cached ? ['--cachedir', checksumCache] : [];
    await indexing(() => run('createrepo_c', ['--quiet', '--no-database', '--workers', '2', ...cache, dir]));
  } catch (err) {
    // The caller gets no StagedArch to discard: do not leave a half-staged directory in the output.
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return { arch, dir, filenames };
}

export async function writeJson(dir: string, name: string, text: string): Promise<void> {
  await writeFile(inside(dir, name), text);
}

/**
 * Moves each staged directory to `<output>/<arch>`. The previous directory is renamed aside first
 * and removed last, so at no point is an architecture's output half-written.
 */
export async function commitArches(output: string, staged: StagedArch[]): Promise<string[]> {
  const finals: string[] = [];
  for (const { arch, dir } of staged) {
    const final = inside(output, arch);
    const previous = `${dir}.previous`;
    const hadPrevious = await stat(final).then(() => true, () => false);
    if (hadPrevious) await rename(final, previous);
    await rename(dir, final);
    if (hadPrevious) await rm(previous, { recursive: true, force: true });
    finals.push(final);
  }
  return finals;
}

export async function discardStaged(staged: StagedArch[]): Promise<void> {
  await Promise.all(staged.map((s) => rm(s.dir, { recursive: true, force: true })));
}

