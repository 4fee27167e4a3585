// Read a base (OSTree commit or root filesystem): version, os-release, installed packages.
import { cp, lstat as fsLstat, mkdir, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as ostree from '../tools/ostree.js';
import { queryInstalled } from '../tools/rpm.js';
import { looksLikeTarball } from '../tools/tar.js';
import { readImageBase, type ImageBaseSpec } from './image.js';
import { readLayers } from './layers.js';
import { isRemote, prepareBase } from './remote.js';

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

export interface InstalledPackage {
  name: string;
  epoch: number;
  version: string;
  release: string;
  arch: string;
  /** name-[epoch:]version-release.arch, epoch omitted when 0. */
  nevra: string;
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
   * dnf may read (and lock) without touching the base. Its sibling `accounts/` holds the base's
   * passwd and group files (see accountsDir).
   */
  root: string;
}

// Implementation. Nothing here writes to the base: the rpmdb is copied into `<workDir>/root`.

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

export const RPMDB_CANDIDATES = ['usr/lib/sysimage/rpm', 'usr/share/rpm'];
export const OS_RELEASE_CANDIDATES = ['usr/lib/os-release', 'etc/os-release'];
/** Where the private copy of the rpmdb lives under BaseInfo.root (pass it as rpm's --dbpath). */
export const PRIVATE_DBPATH = '/usr/lib/sysimage/rpm';

export function substituteBasearch(ref: string, arch: string): string {
  return ref.replaceAll('${basearch}', arch);
}

/** Parses os-release(5): KEY=value, value optionally quoted, backslash escapes, `#` comments. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(raw);
    if (!m) continue; // blank, comment or malformed
    let value = '';
    let quote = '';
    const s = m[2]!.trimEnd();
    for (let i = 0; i < s.length; i++) {
      const c = s[i]!;
      if (quote === "'") {
        if (c === "'") quote = '';
        else value += c; // shell semantics: no escapes inside single quotes
      } else if (c === '\\' && i + 1 < s.length) {
        value += s[++i];
      } else if (c === quote) {
        quote = '';
      } else if (!quote && (c === '"' || c === "'")) {
        quote = c;
      } else if (!quote && /\s/.test(c)) {
        break; // unquoted whitespace ends the value
      } else {
        value += c;
      }
    }
    out[m[1]!] = value;
  }
  return out;
}

type Node = { type: 'file' | 'dir' | 'symlink' | 'other'; target?: string } | undefined;

/**
 * Resolves `path` inside a tree as in a chroot: symlinks are followed (absolute targets restart at
 * the tree's root, `..` never climbs above it). Returns the real relative path and its type, or
 * undefined when absent (or a symlink loop).
 */
export async function resolveInTree(path: string, lstat: (rel: string) => Promise<Node>): Promise<{ path: string; type: string } | undefined> {
  const todo = path.split('/');
  const done: string[] = [];
  let type = 'dir';
  for (let hops = 0; todo.length > 0; ) {
    const c = todo.shift()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      done.pop();
      continue;
    }
    if (type !== 'dir') return undefined; // a component under a non-directory
    const node = await lstat([...done, c].join('/'));
    if (!node) return undefined;
    if (node.type === 'symlink') {
      if (++hops > 40) return undefined;
      if (node.target!.startsWith('/')) done.length = 0;
      todo.unshift(...node.target!.split('/'));
      type = 'dir';
      continue;
    }
    done.push(c);
    type = node.type;
  }
  return { path: done.join('/'), type };
}

/** What readBase needs from a tree: lstat, directory listing, reading a file, copying a directory out. */
export interface Tree {
  lstat(rel: string): Promise<Node>;
  isEmptyDir(rel: string): Promise<boolean>;
  read(rel: string): Promise<string>;
  copyDir(rel: string, dest: string): Promise<void>;
}

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

/** Awaits both, then throws the first failure in argument order: the error a sequential run would have thrown. */
async function both<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [x, y] = await Promise.allSettled([a, b]);
  if (x.status === 'rejected') throw x.reason;
  if (y.status === 'rejected') throw y.reason;
  return [x.value, y.value];
}

async function readOsRelease(tree: Tree): Promise<Record<string, string>> {
  for (const candidate of OS_RELEASE_CANDIDATES) {
    const found = await resolveInTree(candidate, tree.lstat);
    if (found?.type === 'file') return parseOsRelease(await tree.read(found.path));
  }
  return {};
}

/** Copies the rpmdb to `dest` (replacing a previous run's copy); returns where it was in the tree. */
async function copyRpmdb(tree: Tree, where: string, dest: string): Promise<string> {
  // Prefer a non-empty directory: some trees keep an empty placeholder at one of the locations.
  const dirs: { path: string; empty: boolean }[] = [];
  for (const candidate of RPMDB_CANDIDATES) {
    const found = await resolveInTree(candidate, tree.lstat);
    if (found?.type === 'dir' && !dirs.some((d) => d.path === found.path)) {
      dirs.push({ path: found.path, empty: await tree.isEmptyDir(found.path) });
    }
  }
  const rpmdb = dirs.find((d) => !d.empty) ?? dirs[0];
  if (!rpmdb) throw new BaseError('no-rpmdb', `no rpmdb found at ${RPMDB_CANDIDATES.join(' or ')} in ${where}`);
  await rm(dest, { recursive: true, force: true }); // a previous run's copy
  await mkdir(join(dest, '..'), { recursive: true });
  await tree.copyDir(rpmdb.path, dest);
  return rpmdb.path;
}

export interface ReadOptions {
  /** Also copy the base's passwd and group files (system extension images need its ids). */
  accounts?: boolean;
}

/** The base's user and group files (etc, usr/etc and usr/lib, in that order) as `passwd` and `group`. */
export const accountsDir = (root: string): string => join(root, '..', 'accounts');

/**
 * Owners of packaged files are names: the system extension stage maps them with the base's ids,
 * and labels its images with the base's own SELinux file_contexts (not the host's).
 */
async function copyAccounts(tree: Tree, dest: string): Promise<void> {
  await mkdir(dest, { recursive: true });
  const readFirst = async (paths: string[]) => {
    const texts = await Promise.all(paths.map(async (rel) => {
      const found = await resolveInTree(rel, tree.lstat).catch(() => undefined);
      return found?.type === 'file' ? tree.read(found.path).catch(() => '') : '';
    }));
    return texts;
  };
  for (const name of ['passwd', 'group']) {
    const parts = await readFirst(['etc', 'usr/etc', 'usr/lib'].map((dir) => `${dir}/${name}`));
    await writeFile(join(dest, name), parts.map((p) => (p && !p.endsWith('\n') ? `${p}\n` : p)).join(''));
  }
  const config = (await readFirst(['etc/selinux/config', 'usr/etc/selinux/config'])).find(Boolean) ?? '';
  const policy = /^SELINUXTYPE=([A-Za-z0-9_-]+)\s*$/m.exec(config)?.[1] ?? 'targeted';
  const contexts = (await readFirst(['etc', 'usr/etc'].map((dir) => `${dir}/selinux/${policy}/contexts/files/file_contexts`))).find(Boolean);
  if (contexts) await writeFile(join(dest, 'file_contexts'), contexts);
}

/** os-release, packages and a private copy of the rpmdb at `<workDir>/root` + PRIVATE_DBPATH. */
export async function readTree(tree: Tree, where: string, workDir: string, read: ReadOptions = {}) {
  const root = resolve(workDir, 'root');
  // Independent reads (on OSTree, a `cat` and a `checkout`): run together.
  const [[osRelease, rpmdbPath]] = await Promise.all([
    both(readOsRelease(tree), copyRpmdb(tree, where, join(root, PRIVATE_DBPATH))),
    read.accounts ? copyAccounts(tree, accountsDir(root)).catch(() => undefined) : undefined,
  ]);
  const home = resolve(workDir, 'home');
  await mkdir(home, { recursive: true });
  const packages = await queryInstalled(root, PRIVATE_DBPATH, home);
  if (packages.length === 0) {
    throw new BaseError(
      'empty-rpmdb',
      `the rpmdb at ${rpmdbPath} in ${where} lists no packages: almost certainly the wrong database ` +
        `(rpm was run with --dbpath ${PRIVATE_DBPATH} on a copy of it)`,
    );
  }
  return { osRelease, packages, root };
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
