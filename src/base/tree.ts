// Reading a base's tree, whatever holds it (an OSTree commit, a directory, image layers): os-release,
// the installed packages and a private copy of the rpmdb. Nothing here writes to the base: the
// rpmdb is copied into `<workDir>/root`.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { queryInstalled } from '../tools/rpm.js';
import { BaseError, type ReadOptions } from './types.js';

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

export type Node = { type: 'file' | 'dir' | 'symlink' | 'other'; target?: string } | undefined;

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

/** Awaits both, then throws the first failure in argument order: the error a sequential run would have thrown. */
export async function both<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
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

/** The base's user and group files (etc, usr/etc and usr/lib, in that order) as `passwd` and `group`. */
export const accountsDir = (root: string): string => join(root, '..', 'accounts');

/**
 * Owners of packaged files are names: the system extension stage maps them with the base's ids,
 * and labels its images with the base's own SELinux file_contexts (not the host's).
 */
async function copyAccounts(tree: Tree, dest: string): Promise<void> {
  await mkdir(dest, { recursive: true });
  const readFirst = async (paths: string[]) => Promise.all(paths.map(async (rel) => {
    const found = await resolveInTree(rel, tree.lstat).catch(() => undefined);
    return found?.type === 'file' ? tree.read(found.path).catch(() => '') : '';
  }));
  for (const name of ['passwd', 'group']) {
    const parts = await readFirst(['etc', 'usr/etc', 'usr/lib'].map((dir) => `${dir}/${name}`));
    await writeFile(join(dest, name), parts.map((p) => (p && !p.endsWith('\n') ? `${p}\n` : p)).join(''));
  }
  const config = (await readFirst(['etc/selinux/config', 'usr/etc/selinux/config'])).find(Boolean) ?? '';
  const policy = /^SELINUXTYPE=([A-Za-z0-9_-]+)\s*$/m.exec(config)?.[1] ?? 'targeted';
  const dirs = ['etc', 'usr/etc'].map((dir) => `${dir}/selinux/${policy}/contexts/files`);
  const found = dirs[(await readFirst(dirs.map((dir) => `${dir}/file_contexts`))).findIndex(Boolean)];
  // libselinux reads these from beside the file_contexts it is given (mkfs.erofs --file-contexts):
  // the equivalences (`/usr/lib64 /usr/lib`) and local additions of the base, not the host's.
  for (const name of FILE_CONTEXTS_FILES) {
    const [text] = found ? await readFirst([`${found}/${name}`]) : [''];
    if (text) await writeFile(join(dest, name), text);
    else await rm(join(dest, name), { force: true });
  }
}

/** The base's labelling rules that mkfs.erofs --file-contexts reads together. */
const FILE_CONTEXTS_FILES = ['file_contexts', 'file_contexts.subs_dist', 'file_contexts.subs', 'file_contexts.local'];

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
