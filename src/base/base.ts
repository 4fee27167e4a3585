// Read a base (OSTree commit, root filesystem or container image): version, os-release, installed packages.
import { cp, lstat as fsLstat, readdir, readFile, readlink, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as ostree from '../tools/ostree.js';
import type { InstalledPackage } from '../tools/rpm.js';
import { looksLikeTarball } from '../tools/tar.js';
import { readImageBase } from './image.js';
import { readLayers } from './layers.js';
import { isRemote, prepareBase } from './remote.js';
import { both, OS_RELEASE_CANDIDATES, readTree, RPMDB_CANDIDATES, type Node, type Tree } from './tree.js';
import { BaseError, substituteBasearch, type BaseInfo, type BaseSpec, type ReadOptions } from './types.js';

/**
 * An OSTree commit as a Tree. Each ostree run costs a process start and a repo open, so the paths
 * readTree resolves first (`prefetch`) are looked up together with one `ostree ls` (which also
 * lists the rpmdb directory); anything else, such as where an unusual symlink leads, is asked on
 * its own, once.
 */
function ostreeTree(repo: string, commit: string, prefetch: string[]): Tree {
  const batch = ostree.lsPaths(repo, commit, prefetch).then((found) => {
    // Every directory above a path ostree found is a real directory: ostree follows no symlinks.
    const dirs = new Set<string>();
    for (const [path, info] of found) {
      if (!info.entry) continue;
      for (let p = path; (p = p.slice(0, p.lastIndexOf('/'))); ) dirs.add(p);
    }
    return { found, dirs };
  });
  const lstats = new Map<string, Promise<Node>>();
  const lstat = async (p: string): Promise<Node> => {
    const { found, dirs } = await batch;
    const info = found.get(p);
    if (info) return info.entry;
    if (dirs.has(p)) return { type: 'dir' };
    return ostree.lstat(repo, commit, p);
  };
  return {
    lstat: (rel) => {
      const p = ostree.treePath(rel);
      if (!lstats.has(p)) lstats.set(p, lstat(p));
      return lstats.get(p)!;
    },
    isEmptyDir: async (rel) => (await batch).found.get(ostree.treePath(rel))?.empty ?? ((await ostree.ls(repo, commit, rel)).length === 0),
    read: (rel) => ostree.cat(repo, commit, rel),
    copyDir: (rel, dest) => ostree.checkoutSubpath(repo, commit, rel, dest),
  };
}

function rootfsTree(root: string): Tree {
  const abs = (rel: string) => join(root, rel);
  return {
    lstat: async (rel) => {
      const st = await fsLstat(abs(rel)).catch(() => undefined);
      if (!st) return undefined;
      if (st.isSymbolicLink()) return { type: 'symlink', target: await readlink(abs(rel)) };
      return { type: st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other' };
    },
    isEmptyDir: async (rel) => (await readdir(abs(rel))).length === 0,
    read: (rel) => readFile(abs(rel), 'utf8'),
    // verbatimSymlinks: a symlink inside the rpmdb must not be followed out of the rootfs.
    copyDir: (rel, dest) => cp(abs(rel), dest, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true }),
  };
}

/** The package arches of each basearch (as in dnf's arch map); noarch belongs to none. */
const BASEARCH_OF: ReadonlyMap<string, string> = new Map(
  Object.entries({
    x86_64: ['x86_64', 'x86_64_v2', 'x86_64_v3', 'x86_64_v4', 'amd64', 'ia32e', 'i386', 'i486', 'i586', 'i686', 'athlon', 'geode'],
    aarch64: ['aarch64'],
    ppc64le: ['ppc64le'],
    s390x: ['s390x', 's390'],
    riscv64: ['riscv64'],
  }).flatMap(([basearch, arches]) => arches.map((a) => [a, basearch] as [string, string])),
);

/**
 * Why a base cannot be composed for `arch`, or undefined: its rpmdb has no package of `arch`'s
 * family but has packages of another basearch (a forgotten `${basearch}`, the wrong image).
 * A base with only noarch (or unknown) packages says nothing either way.
 */
export function baseArchMismatch(packages: readonly Pick<InstalledPackage, 'arch'>[], arch: string): { basearch: string; count: number } | undefined {
  const counts = new Map<string, number>();
  for (const p of packages) {
    const basearch = BASEARCH_OF.get(p.arch);
    if (basearch) counts.set(basearch, (counts.get(basearch) ?? 0) + 1);
  }
  if (counts.size === 0 || counts.has(arch)) return undefined;
  const [basearch, count] = [...counts].sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1))[0]!;
  return { basearch, count };
}

/** The error for a base of another architecture, with what to check for each kind of base. */
export function baseArchError(base: Pick<BaseInfo, 'source' | 'ref'>, arch: string, found: { basearch: string; count: number }): BaseError {
  const hint =
    base.source === 'ostree' ? 'check ${basearch} in --base-rev'
    : base.source === 'image' ? `use the ${arch} image, or an index that has one`
    : `pass a root filesystem for ${arch}`;
  return new BaseError(
    'wrong-arch',
    `the base ${base.ref} is for ${found.basearch}, not ${arch} (its rpmdb has ${found.count} ${found.basearch} packages and none for ${arch}): ${hint}`,
  );
}

/**
 * Reads a base: its commit, version, os-release and installed packages, with a private rpmdb copy.
 * A base that prepareBase has not seen (a URL, an unpinned image) is prepared here for this
 * architecture alone, without a cache: the engine prepares once per run instead.
 */
export async function readBase(spec: BaseSpec, arch: string, workDir: string, read: ReadOptions = {}): Promise<BaseInfo> {
  const base = await readAnyBase(spec, arch, workDir, read);
  const mismatch = baseArchMismatch(base.packages, arch);
  if (mismatch) throw baseArchError(base, arch, mismatch);
  return base;
}

async function readAnyBase(spec: BaseSpec, arch: string, workDir: string, read: ReadOptions): Promise<BaseInfo> {
  if (isRemote(spec)) spec = await prepareBase(spec, [arch], { cacheDir: join(workDir, 'cache') });
  if (spec.kind === 'image') return readImageBase(spec.resolved!, arch, workDir, spec.registry ?? {}, read);
  if (spec.kind === 'rootfs') {
    const ref = spec.url ?? spec.path;
    const st = await stat(spec.path).catch(() => undefined);
    if (st?.isFile() && (await looksLikeTarball(spec.path))) {
      // A root filesystem tarball: read like a single-layer image.
      const info = await readLayers([resolve(spec.path)], ref, workDir, read);
      return { source: 'rootfs', ref, version: info.osRelease.VERSION, ...info };
    }
    if (!st?.isDirectory()) {
      throw new BaseError('rootfs-missing', `root filesystem ${spec.path} ${st ? 'is not a directory or a tarball' : 'does not exist'}`);
    }
    const info = await readTree(rootfsTree(resolve(spec.path)), ref, workDir, read);
    return { source: 'rootfs', ref, version: info.osRelease.VERSION, ...info };
  }

  const ref = substituteBasearch(spec.ref, arch);
  if (!(await ostree.isOstreeRepo(spec.repo))) {
    throw new BaseError('not-ostree-repo', `${spec.repo} is not an OSTree repo (no config file and objects/ directory)`);
  }
  const commit = spec.commits?.[arch] ?? (await ostree.revParse(spec.repo, ref));
  if (!commit) throw new BaseError('ref-not-found', `ref ${ref} not found in OSTree repo ${spec.repo}`);
  const where = ref === commit ? `commit ${commit}` : `${ref} (commit ${commit})`;
  const tree = ostreeTree(spec.repo, commit, [...OS_RELEASE_CANDIDATES, ...RPMDB_CANDIDATES]);
  const [commitVersion, info] = await both(ostree.commitVersion(spec.repo, commit), readTree(tree, where, workDir, read));
  return { source: 'ostree', ref, commit, version: commitVersion ?? info.osRelease.VERSION, ...info };
}
