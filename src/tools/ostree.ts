// Read-only OSTree adapter: every command here only reads the repo (checkouts go elsewhere, copied).
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ToolError } from '../errors.js';
import { lastLines, run } from './exec.js';

export type EntryType = 'file' | 'dir' | 'symlink';

export interface OstreeEntry {
  type: EntryType;
  mode: number;
  size: number;
  /** Absolute path inside the commit, as ostree prints it. */
  path: string;
  /** Symlink target, verbatim (relative or absolute). */
  target?: string;
}

const ostree = (repo: string, args: string[], allowFailure = false) => run('ostree', ['--repo=' + repo, ...args], { allowFailure });
const NOT_FOUND = /not found|No such file or directory|No such metadata object/;

/** Runs a query; undefined when stderr says the thing is absent, ToolError on any other failure. */
async function query(repo: string, args: string[], absent = NOT_FOUND): Promise<string | undefined> {
  const r = await ostree(repo, args, true);
  if (r.exitCode === 0) return r.stdout;
  if (absent.test(r.stderr) && !/opening repo/.test(r.stderr)) return undefined;
  throw new ToolError(`ostree ${args.join(' ')} (repo ${repo}) exited with ${r.exitCode}: ${lastLines(r.stderr || r.stdout)}`);
}

/** ostree wants `/a/b`: a trailing slash or `//` makes it fail. */
export function treePath(path: string): string {
  return '/' + path.split('/').filter((c) => c && c !== '.').join('/');
}

/** True when `path` looks like an OSTree repo (has `config` and `objects/`), without running ostree. */
export async function isOstreeRepo(path: string): Promise<boolean> {
  const [config, objects] = await Promise.all([stat(join(path, 'config')).catch(() => undefined), stat(join(path, 'objects')).catch(() => undefined)]);
  return !!config?.isFile() && !!objects?.isDirectory();
}

/**
 * Resolves a ref (or checksum) to a commit checksum; undefined when absent. rev-parse echoes any
 * 64-hex checksum back even if the commit is not in the repo, so that case is checked with `ls`.
 */
export async function revParse(repo: string, ref: string): Promise<string | undefined> {
  const commit = (await query(repo, ['rev-parse', ref]))?.trim();
  if (commit === undefined || commit !== ref.toLowerCase()) return commit;
  return (await query(repo, ['ls', '-d', commit, '/'])) === undefined ? undefined : commit;
}

/** A string metadata key of a commit (e.g. `version`); undefined when the commit lacks it. */
export async function commitMetadata(repo: string, commit: string, key: string): Promise<string | undefined> {
  const out = await query(repo, ['show', '--print-metadata-key=' + key, commit], /No such metadata key/);
  return out === undefined ? undefined : parseGVariantString(out);
}

export const commitVersion = (repo: string, commit: string) => commitMetadata(repo, commit, 'version');

/** Unquotes a GVariant text-format string (`'1.2'`, `"it's"`); other values are returned trimmed. */
export function parseGVariantString(text: string): string {
  const s = text.trim();
  const q = s[0];
  if ((q !== "'" && q !== '"') || s.length < 2 || s[s.length - 1] !== q) return s;
  const simple: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };
  return s.slice(1, -1).replace(/\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)/gs, (_, e: string) =>
    e.length > 1 ? String.fromCodePoint(parseInt(e.slice(1), 16)) : (simple[e] ?? e),
  );
}

/** `l00777 0 0      0 /usr/share/rpm -> ../lib/sysimage/rpm` (type+mode uid gid size path). */
function parseLine(line: string, knownPath?: string): OstreeEntry | undefined {
  const m = /^([-dl])([0-7]+) +\d+ +\d+ +(\d+) (\/.*)$/.exec(line);
  if (!m) return undefined;
  const type: EntryType = m[1] === 'd' ? 'dir' : m[1] === 'l' ? 'symlink' : 'file';
  const entry: OstreeEntry = { type, mode: parseInt(m[2]!, 8), size: Number(m[3]), path: m[4]! };
  if (type === 'symlink') {
    // Split after the path we asked for when known: a name could itself contain ' -> '.
    const i = knownPath && entry.path.startsWith(knownPath + ' -> ') ? knownPath.length : entry.path.indexOf(' -> ');
    entry.target = entry.path.slice(i + 4);
    entry.path = entry.path.slice(0, i);
  }
  return entry;
}

/** The entry at `path` itself (symlinks not followed); undefined when absent. */
export async function lstat(repo: string, commit: string, path: string): Promise<OstreeEntry | undefined> {
  const p = treePath(path);
  const out = await query(repo, ['ls', '-d', commit, p]);
  return out === undefined ? undefined : parseLine(out.split('\n')[0]!, p);
}

/** The entries of directory `path` (not recursive, without the directory itself). */
export async function ls(repo: string, commit: string, path: string): Promise<OstreeEntry[]> {
  const p = treePath(path);
  const { stdout } = await ostree(repo, ['ls', commit, p]);
  return stdout
    .split('\n')
    .slice(1)
    .map((line) => parseLine(line))
    .filter((e): e is OstreeEntry => !!e);
}

/** What `ostree ls` says about one path: its entry (undefined: absent) and, for a directory, whether it is empty. */
export interface PathInfo {
  entry: OstreeEntry | undefined;
  /** Set for a directory once its listing is known to be complete (or to have at least one entry). */
  empty?: boolean;
}

/** True when `a` is a proper ancestor of `b` (both normalised by treePath). */
const isAncestor = (a: string, b: string) => b.startsWith(a === '/' ? '/' : a + '/') && a !== b;
const parentOf = (p: string) => p.slice(0, p.lastIndexOf('/')) || '/';
/** A listing line's path (with any ` -> target`), whatever the entry type. */
const LISTED = /^.[0-7]+ +\d+ +\d+ +\d+ (\/.*)$/;

/**
 * Looks up several paths as lstat would, with one `ostree ls` per round instead of one process per
 * path, listing the directories among them (hence `empty`). ostree stops at the first path that
 * fails: the paths after it go to the next round, with the failed path's parent when that path
 * is absent (so that callers learn where the tree stops). Paths it cannot settle for sure (odd
 * names, errors other than absence) are left out of the result: ask lstat or ls for those.
 */
export async function lsPaths(repo: string, commit: string, paths: string[]): Promise<Map<string, PathInfo>> {
  const settled = new Map<string, PathInfo>();
  const known = (p: string) => settled.has(p) || [...settled].some(([q, info]) => info.entry && isAncestor(p, q));
  let todo = [...new Set(paths.map(treePath))];
  for (let round = 0; todo.length > 0 && round < 32; round++) {
    // A directory's entries are the lines under its path: no later argument may be one of them.
    const args: string[] = [];
    for (const p of todo) {
      const i = args.findIndex((a) => isAncestor(a, p));
      args.splice(i < 0 ? args.length : i, 0, p);
    }
    const r = await ostree(repo, ['ls', commit, ...args], true);
    const lines = r.stdout.split('\n');
    if (lines.pop() !== '') break; // output cut mid-line: trust none of it
    const got: { path: string; entry: OstreeEntry; children: number }[] = [];
    let li = 0;
    for (const path of args) {
      if (li >= lines.length) break;
      const entry = parseLine(lines[li]!, path);
      if (entry?.path !== path) break;
      li++;
      let children = 0;
      if (entry.type === 'dir') {
        for (; li < lines.length && isAncestor(path, LISTED.exec(lines[li]!)?.[1] ?? ''); li++) children++;
      }
      got.push({ path, entry, children });
    }
    if (li !== lines.length) break; // a line we cannot place (a name with a newline?): trust none of it
    const save = (g: (typeof got)[number], complete: boolean) => {
      let empty: boolean | undefined;
      // One entry printed is enough to know a directory is not empty, even if its listing broke off.
      if (g.entry.type === 'dir') empty = g.children > 0 ? false : complete ? true : undefined;
      settled.set(g.path, { entry: g.entry, empty });
    };
    if (r.exitCode === 0) {
      if (got.length !== args.length) break;
      for (const g of got) save(g, true);
      break;
    }
    // ostree names the argument it failed on: either the next one, or the last one printed (a directory it could not list).
    const failedAt = (p: string | undefined) => p !== undefined && r.stderr.includes(`Inspecting path '${p}'`);
    const next = args[got.length];
    if (failedAt(next)) {
      for (const g of got) save(g, true);
      const absent = NOT_FOUND.test(r.stderr) && !/opening repo/.test(r.stderr);
      if (absent) settled.set(next!, { entry: undefined });
      todo = args.slice(got.length + 1);
      const parent = parentOf(next!);
      // The root always exists: only a deeper parent can be where the tree stops.
      if (absent && parent !== '/' && !known(parent) && !todo.includes(parent)) todo.push(parent);
    } else if (got.length > 0 && failedAt(got[got.length - 1]!.path) && got[got.length - 1]!.entry.type === 'dir') {
      got.forEach((g, i) => save(g, i < got.length - 1));
      todo = args.slice(got.length);
    } else {
      break;
    }
  }
  return settled;
}

/** Contents of a regular file (ostree cat does not follow symlinks: resolve first). */
export async function cat(repo: string, commit: string, path: string): Promise<string> {
  return (await ostree(repo, ['cat', commit, treePath(path)])).stdout;
}

/**
 * Checks out `subpath` of a commit to `dest` (which must not exist). --force-copy is essential: a
 * user-mode checkout from a bare-user repo otherwise hardlinks the repo's objects, and anything
 * writing the checkout (rpm, dnf) would write into the repo.
 */
export async function checkoutSubpath(repo: string, commit: string, subpath: string, dest: string): Promise<void> {
  await ostree(repo, ['checkout', '--user-mode', '--force-copy', '--subpath=' + treePath(subpath), commit, dest]);
}
