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
