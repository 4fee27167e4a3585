// The repo stage: lay out `<output>/<arch>/` in a staging directory, run createrepo_c, and swap
// every architecture into place only once all of them succeeded.
import { chmodSync, constants, linkSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { ComposeError } from '../errors.js';
import type { FetchedPackage } from '../download/fetch.js';
import { run } from '../tools/exec.js';
import { currentHolder } from './lock.js';
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
 * A package from the download cache is hard-linked: no second file to create and fill (copying
 * instead cost 0.4-0.9 s per 273 MiB architecture here, against 13 ms for the links). The output
 * still cannot change through the cache: a cached file is made read-only (0444) before it is
 * linked, the cache never writes into a file it has named (downloads land under a temporary name
 * and are renamed over), and every cached file's checksum is checked before it is used again.
 * A package read in place from a file:// repo is the user's: reflinked where the filesystem can,
 * or copied, and given mode 0644. So is a cache file on another filesystem. The link is
 * synchronous: packages are placed one after another, and a threadpool round trip per link costs
 * more than the link.
 */
async function place(pkg: FetchedPackage, dest: string): Promise<void> {
  if (!pkg.path) {
    try {
      chmodSync(pkg.file, 0o444);
      linkSync(pkg.file, dest);
      return;
    } catch {
      // EXDEV (another filesystem), EPERM (no hard links there, or another user's cache file that
      // cannot be made read-only), EMLINK: a copy does
    }
  }
  await copyFile(pkg.file, dest, constants.COPYFILE_FICLONE);
  await chmod(dest, 0o644);
  // The source's mtime, as a link would have: createrepo_c's checksum cache is keyed by it.
  const { atime, mtime } = await stat(pkg.file);
  await utimes(dest, atime, mtime);
}

/** Whatever the umask: directories 0755, files 0644 (linked packages stay 0444), readable by a web server. */
async function publishModes(dir: string, packages = true): Promise<void> {
  await chmod(dir, 0o755);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await publishModes(join(dir, entry.name), false);
    else if (!packages) await chmod(join(dir, entry.name), 0o644); // repodata/: a few files
  }
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
    await publishModes(dir);
  } catch (err) {
    // The caller gets no StagedArch to discard: do not leave a half-staged directory in the output.
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return { arch, dir, filenames };
}

export async function writeJson(dir: string, name: string, text: string): Promise<void> {
  const path = inside(dir, name);
  await writeFile(path, text);
  await chmod(path, 0o644); // whatever the umask
}

/** The commit journal: written before the first rename, removed after the last. */
export const JOURNAL = '.commit-journal.json';
const STAGING = /^\.staging-/;
const PREVIOUS = /^\.previous-/;
const JOURNAL_TMP = /^\.commit-journal\.json\.\d+\.tmp$/;
/** What an earlier version left when killed between its two renames: the old output, set aside. */
const LEGACY_PREVIOUS = /^\.staging-(.+)-[A-Za-z0-9]{6}\.previous$/;

/** One architecture's move, names relative to the output directory. */
export interface Move {
  arch: string;
  staged: string;
  /** Where the architecture's current directory goes first; absent when there is none. */
  previous?: string;
}

interface Journal {
  version: 1;
  holder: { pid: number; started: string };
  moves: Move[];
}

/**
 * Test only: with COMPOSE_EXTENSIONS_TEST_KILL_AT=<step>, the process kills itself (SIGKILL) on
 * reaching that step of the commit protocol, so that tests can stop it at each one. One
 * environment lookup per step, a handful per run.
 */
export function faultPoint(step: string): void {
  if (process.env['COMPOSE_EXTENSIONS_TEST_KILL_AT'] === step) process.kill(process.pid, 'SIGKILL');
}

const exists = (path: string) => stat(path).then(() => true, () => false);

/**
 * Replaces `<output>/<arch>` with each staged directory, for all architectures or none:
 *
 * 1. the journal, listing every move, is written under a temporary name and renamed into place;
 * 2. per architecture, `<arch>` is renamed to `.previous-<arch>-…`, then the staged directory to `<arch>`;
 * 3. the journal is removed (the run is committed), then the previous directories.
 *
 * A failure in step 2 undoes the moves made (in reverse) and removes the journal; the caller then
 * discards the staged directories. A process that dies after step 1 leaves the journal: the next
 * run into this output completes the moves first (recoverOutput). Renames within one directory are
 * atomic, and no staged or previous directory is removed while the journal exists, so each move is
 * recognisable afterwards from which of them still exist.
 */
export async function commitArches(output: string, staged: StagedArch[]): Promise<string[]> {
  faultPoint('commit');
  if (staged.length === 0) return [];
  const moves: Move[] = await Promise.all(staged.map(async ({ arch, dir }) => {
    const name = basename(dir);
    const previous = (await exists(inside(output, arch))) ? `.previous-${arch}-${name.slice(-6)}` : undefined;
    return { arch, staged: name, ...(previous && { previous }) };
  }));
  const journal = join(output, JOURNAL);
  const tmp = `${journal}.${process.pid}.tmp`;
  const { pid, started } = currentHolder();
  await writeFile(tmp, JSON.stringify({ version: 1, holder: { pid, started }, moves } satisfies Journal));
  await rename(tmp, journal);
  faultPoint('journal');
  try {
    await rollForward(output, moves, faultPoint);
  } catch (err) {
    // Undone, the journal goes too; if undoing fails as well, the journal stays for the next run.
    try {
      await rollBack(output, moves);
    } catch (back) {
      throw new ComposeError([{
        message: `${(err as Error).message}; undoing the moves failed too (${(back as Error).message}): the next run into ${output} completes the commit its journal lists`,
      }]);
    }
    await rm(journal, { force: true });
    throw err;
  }
  faultPoint('moved');
  await rm(journal, { force: true });
  faultPoint('committed');
  await Promise.all(moves.map((m) => (m.previous ? rm(join(output, m.previous), { recursive: true, force: true }) : undefined)));
  return moves.map((m) => join(output, m.arch));
}

async function rollForward(output: string, moves: Move[], fault: (step: string) => void = () => {}): Promise<void> {
  for (const m of moves) {
    const final = inside(output, m.arch);
    const staged = inside(output, m.staged);
    if (!(await exists(staged))) {
      if (!(await exists(final))) throw new Error(`${final} and ${staged} are both missing`);
      continue; // moved already
    }
    if (await exists(final)) {
      if (!m.previous) throw new Error(`${final} appeared during the commit`);
      await rename(final, inside(output, m.previous));
    }
    fault(`aside:${m.arch}`);
    await rename(staged, final);
    fault(`moved:${m.arch}`);
  }
}

/**
 * Moves every architecture back. Staged directories are kept until the journal is gone: a process
 * killed while undoing leaves a journal the next run completes, and a staged directory missing
 * then must mean that architecture was moved.
 */
async function rollBack(output: string, moves: Move[]): Promise<void> {
  for (const m of [...moves].reverse()) {
    const final = inside(output, m.arch);
    const staged = inside(output, m.staged);
    if (!(await exists(staged)) && (await exists(final))) await rename(final, staged);
    if (m.previous && (await exists(inside(output, m.previous))) && !(await exists(final))) await rename(inside(output, m.previous), final);
  }
}

export interface Recovery {
  /** The architectures of an interrupted commit that were completed. */
  completed: string[];
  /** The architectures an earlier version's interrupted swap had left without their directory. */
  restored: string[];
  /** Leftover entries removed. */
  removed: string[];
}

/**
 * Run first, under the output lock: completes a commit a dead run left (its journal), restores what
 * an earlier version's interrupted swap set aside, and removes every other leftover (staging and
 * previous directories, a half-written journal). Rolls back where completing is impossible.
 */
export async function recoverOutput(output: string): Promise<Recovery> {
  const recovery: Recovery = { completed: [], restored: [], removed: [] };
  const journalPath = join(output, JOURNAL);
  const text = await readFile(journalPath, 'utf8').catch(() => undefined);
  if (text !== undefined) {
    let journal: Journal;
    try {
      journal = JSON.parse(text) as Journal;
      if (journal.version !== 1 || !Array.isArray(journal.moves)) throw new Error('unknown format');
    } catch (err) {
      const why = err instanceof SyntaxError ? 'not valid JSON' : (err as Error).message;
      throw new ComposeError([{ message: `cannot read the commit journal ${journalPath} (${why}); restore or remove the directories it names, then remove it` }]);
    }
    try {
      await rollForward(output, journal.moves);
      recovery.completed = journal.moves.map((m) => m.arch);
    } catch (forward) {
      try {
        await rollBack(output, journal.moves);
      } catch (back) {
        throw new ComposeError([{
          message: `cannot complete or undo the interrupted commit in ${journalPath}: ${(forward as Error).message}; ${(back as Error).message}`,
        }]);
      }
    }
    await rm(journalPath, { force: true });
  }
  const names = await readdir(output).catch(() => [] as string[]);
  for (const name of names) {
    const legacy = LEGACY_PREVIOUS.exec(name);
    if (legacy && SAFE_COMPONENT.test(legacy[1]!) && !(await exists(join(output, legacy[1]!)))) {
      await rename(join(output, name), inside(output, legacy[1]!));
      recovery.restored.push(legacy[1]!);
      continue;
    }
    if (STAGING.test(name) || PREVIOUS.test(name) || JOURNAL_TMP.test(name)) {
      await rm(join(output, name), { recursive: true, force: true });
      recovery.removed.push(name);
    }
  }
  return recovery;
}

/**
 * Removes staged directories, except while a commit journal exists beside them: then a commit
 * could be neither completed nor undone, and the next run needs them to complete it.
 */
export async function discardStaged(staged: StagedArch[]): Promise<void> {
  await Promise.all(staged.map(async (s) => {
    if (!(await exists(join(dirname(s.dir), JOURNAL)))) await rm(s.dir, { recursive: true, force: true });
  }));
}
