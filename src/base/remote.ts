// Bases from elsewhere, made local (or pinned) once per run before any architecture is read: an
// archive-mode OSTree repo over http(s), an archive (rootfs tarball or OCI archive) at a URL, a
// container image reference.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UsageError } from '../errors.js';
import { run } from '../tools/exec.js';
import { download as downloadUrl, LIMIT_CODES, LIMITS, reasonOf, type DownloadOptions } from '../tools/http.js';
import { ownedStem, removeDeadLeftovers } from '../tools/leftovers.js';
import { underFileSizeLimit } from '../tools/prlimit.js';
import * as ostree from '../tools/ostree.js';
import { OS_RELEASE_CANDIDATES, resolveInTree, RPMDB_CANDIDATES } from './tree.js';
import { BaseError, substituteBasearch, type BaseSpec } from './types.js';
import { resolveImage } from './image.js';

export const isUrl = (s: string) => /^https?:\/\//i.test(s);

/** True when the base still needs prepareBase: a URL, or an image whose reference is not pinned yet. */
export function isRemote(spec: BaseSpec): boolean {
  if (spec.kind === 'image') return !spec.resolved;
  if (spec.kind === 'ostree') return isUrl(spec.repo);
  return isUrl(spec.path);
}

export interface PrepareOptions {
  /** Downloads and pulled OSTree objects are kept here, under `archives/` and `ostree/`. */
  cacheDir: string;
  log?: (message: string) => void;
  /** Overrides of the bounds of archive downloads (tests). */
  limits?: DownloadOptions;
}

/**
 * Makes a base local and exact, once per run: pulls the commits of a remote OSTree repo (for every
 * architecture's ref) and pins each architecture's ref to its commit, downloads an archive at a
 * URL, resolves an image reference to its digest. A local root filesystem is returned as it is.
 */
export async function prepareBase(spec: BaseSpec, arches: string[], options: PrepareOptions): Promise<BaseSpec> {
  if (spec.kind === 'ostree') {
    if (!isUrl(spec.repo)) return { ...spec, commits: await pinCommits(spec.repo, spec.ref, arches) };
    const refs = [...new Set(arches.map((arch) => substituteBasearch(spec.ref, arch)))];
    const pulled = await pullRemoteOstree(spec.repo, refs, options.cacheDir, options.log, { ...(options.limits?.deadlineMs && { deadlineMs: options.limits.deadlineMs }) });
    // The pull resolved every ref already: no second rev-parse.
    const commits = Object.fromEntries(arches.map((arch) => [arch, pulled.commits[substituteBasearch(spec.ref, arch)]!]));
    return { ...spec, repo: pulled.repo, commits };
  }
  if (!isRemote(spec)) return spec;
  if (spec.kind === 'rootfs') {
    const path = await fetchArchive(spec.path, { cacheDir: options.cacheDir, sha256: spec.sha256, log: options.log, limits: options.limits });
    return { kind: 'rootfs', path, url: spec.path };
  }
  if (isUrl(spec.ref)) {
    const path = await fetchArchive(spec.ref, { cacheDir: options.cacheDir, sha256: spec.sha256, log: options.log, limits: options.limits });
    return { ...spec, resolved: await resolveImage(`oci-archive:${path}`, spec.registry, spec.ref) };
  }
  if (spec.sha256) throw new UsageError('a base sha256 applies to a downloaded archive only; pin an image with @sha256:<digest> instead');
  return { ...spec, resolved: await resolveImage(spec.ref, spec.registry) };
}

/**
 * Each architecture's commit, resolved once. A ref that does not resolve is left out: reading that
 * architecture's base reports it, with the reason.
 */
async function pinCommits(repo: string, ref: string, arches: string[]): Promise<Record<string, string>> {
  const pinned = await Promise.all(
    arches.map(async (arch) => [arch, await ostree.revParse(repo, substituteBasearch(ref, arch)).catch(() => undefined)] as const),
  );
  return Object.fromEntries(pinned.filter((p): p is readonly [string, string] => p[1] !== undefined));
}

// ---- Archives at a URL ----

const PARTIAL = '.partial-';

export interface FetchOptions {
  cacheDir: string;
  /** Expected sha256 (hex). With it, a cached copy is reused and no download happens. */
  sha256?: string;
  log?: (message: string) => void;
  /** Overrides of the download's bounds (tests); see {@link archiveLimit}. */
  limits?: DownloadOptions;
}

/** Free space an archive download leaves on its disk, for everything else the run writes. */
export const DISK_RESERVE = 1 << 30;

/**
 * The most an archive may be: its Content-Length when declared (node reads no further), else 16
 * GiB (LIMITS.file), and never more than the free space of `dir` less 1 GiB, so that an endless
 * body fails before the disk is full.
 */
export async function archiveLimit(dir: string, maxBytes: number = LIMITS.file.maxBytes): Promise<{ maxBytes: number; byDisk: boolean }> {
  const fs = await statfs(dir).catch(() => undefined);
  const free = fs ? fs.bavail * fs.bsize - DISK_RESERVE : Infinity;
  return free < maxBytes ? { maxBytes: Math.max(0, free), byDisk: true } : { maxBytes, byDisk: false };
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/**
 * Downloads into `dest` and returns its sha256, hashed on the way (an archive may be gigabytes);
 * retried on network failures, 5xx, 408 and 429, each attempt rewriting `dest`.
 */
async function download(url: string, dest: string, options: FetchOptions): Promise<string> {
  const { maxBytes, byDisk } = await archiveLimit(dirname(dest), options.limits?.maxBytes);
  const consume = async (body: NodeJS.ReadableStream) => {
    const hash = createHash('sha256');
    const hashing = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    });
    await pipeline(body, hashing, createWriteStream(dest));
    return hash.digest('hex');
  };
  const onRetry = (err: Error) => options.log?.(`downloading ${url} again: ${reasonOf(err)}`);
  return downloadUrl(url, consume, { ...options.limits, maxBytes, onRetry }).catch((err: unknown) => {
    const full = byDisk && (err as { code?: string }).code === LIMIT_CODES.tooLarge;
    const reason = full ? `larger than the ${maxBytes} bytes that fit in ${dirname(dest)} (its free space less ${DISK_RESERVE} bytes)` : reasonOf(err);
    throw new BaseError('download-failed', `downloading ${url} failed: ${reason}`);
  });
}

/**
 * Downloads an archive into `<cacheDir>/archives/<sha256>` and returns that path. With `sha256`
 * the file is checked against it, and a cached copy (checked again) is used without downloading;
 * without it there is nothing to recognise a cached copy by, so every run downloads.
 */
export async function fetchArchive(url: string, options: FetchOptions): Promise<string> {
  const expected = options.sha256?.toLowerCase().replace(/^sha256:/, '');
  if (expected !== undefined && !/^[0-9a-f]{64}$/.test(expected)) throw new UsageError(`base sha256 "${options.sha256}" is not 64 hex digits`);
  const dir = join(options.cacheDir, 'archives');
  await mkdir(dir, { recursive: true });
  if (expected) {
    const cached = join(dir, expected);
    if ((await stat(cached).catch(() => undefined))?.isFile()) {
      if ((await sha256File(cached)) === expected) {
        options.log?.(`using the cached copy of ${url}`);
        return cached;
      }
      await rm(cached, { force: true }); // damaged: download again
    }
  }
  // A killed run's partial download is removed by the next; a live run's is left alone.
  await removeDeadLeftovers(dir, PARTIAL);
  const partial = join(dir, `${ownedStem(PARTIAL)}${randomUUID()}`);
  try {
    options.log?.(`downloading ${url}`);
    const actual = await download(url, partial, options);
    if (expected && actual !== expected) {
      throw new BaseError('checksum-mismatch', `${url} has sha256 ${actual}, not the expected ${expected}`);
    }
    const path = join(dir, actual);
    await rename(partial, path);
    return path;
  } finally {
    await rm(partial, { force: true });
  }
}

// ---- Remote OSTree repos ----

const REMOTE = 'origin';
const isChecksum = (ref: string) => /^[0-9a-f]{64}$/.test(ref);

/**
 * Pulls the commits `refs` name from an archive-mode OSTree repo at `url` into a cached local repo,
 * with only the paths a base is read from (rpmdb, os-release and the symlinks that lead to them),
 * never the whole tree. Each ref is then a local ref of that repo, so it reads as any local base.
 * Returns that repo and the commit each ref named.
 */
/**
 * Bounds of one `ostree pull`, which has none of its own for a server that stops answering: a
 * deadline (only the commit, rpmdb and os-release are pulled: tens of MB), and no file larger
 * than 4 GiB (ostree caps metadata objects at 10 MiB itself, not content).
 */
export const OSTREE_PULL_LIMITS = { deadlineMs: 30 * 60_000, maxFileBytes: 4 * 2 ** 30 };

/** Runs one `ostree pull`; passing a limit reads as a failed pull with the limit as its message. */
async function boundedPull(
  repo: string,
  args: string[],
  limits: typeof OSTREE_PULL_LIMITS & { deadlineAt: number },
): Promise<{ exitCode: number; stderr: string }> {
  const [file, fileArgs] = underFileSizeLimit('ostree', [`--repo=${repo}`, 'pull', ...args], limits.maxFileBytes);
  try {
    return await run(file, fileArgs, { allowFailure: true, timeout: Math.max(1, limits.deadlineAt - Date.now()) });
  } catch (err) {
    const message = (err as Error).message;
    if (/timed out/i.test(message) && Date.now() >= limits.deadlineAt) {
      return { exitCode: 1, stderr: `not complete within ${limits.deadlineMs / 1000} s (the time limit)` };
    }
    if (/SIGXFSZ/.test(message)) return { exitCode: 1, stderr: `a file larger than the limit of ${limits.maxFileBytes} bytes` };
    throw err;
  }
}

export async function pullRemoteOstree(
  url: string,
  refs: string[],
  cacheDir: string,
  log?: (m: string) => void,
  limits: Partial<typeof OSTREE_PULL_LIMITS> = {},
): Promise<{ repo: string; commits: Record<string, string> }> {
  const bounds = { ...OSTREE_PULL_LIMITS, ...limits, deadlineAt: 0 };
  bounds.deadlineAt = Date.now() + bounds.deadlineMs; // all the rounds below together
  const repo = join(cacheDir, 'ostree', createHash('sha256').update(url).digest('hex').slice(0, 16));
  const ost = (args: string[]) => run('ostree', [`--repo=${repo}`, ...args]);
  if (!(await ostree.isOstreeRepo(repo))) {
    await mkdir(repo, { recursive: true });
    await ost(['init', '--mode=archive']);
  }
  // Integrity comes from the commit checksum recorded in metadata.json; signatures are not checked.
  await ost(['remote', 'add', '--if-not-exists', '--no-gpg-verify', REMOTE, url]);

  const local = (ref: string) => (isChecksum(ref) ? ref : `${REMOTE}:${ref}`);
  const subpaths = new Set([...RPMDB_CANDIDATES, ...OS_RELEASE_CANDIDATES].map(ostree.treePath));
  const commits: Record<string, string> = {};
  // A symlink may lead out of what was pulled: pull where it leads too, until nothing new turns up.
  for (let round = 0; ; round++) {
    log?.(`pulling ${refs.join(', ')} from ${url} (${[...subpaths].join(' ')})`);
    const pulled = await boundedPull(repo, [...[...subpaths].map((p) => `--subpath=${p}`), REMOTE, ...refs], bounds);
    if (pulled.exitCode !== 0) {
      const message = pulled.stderr.trim().split('\n').pop() ?? '';
      const reason = /not found|404|No such/i.test(message) ? 'ref-not-found' : 'download-failed';
      throw new BaseError(reason, `pulling ${refs.join(', ')} from OSTree repo ${url} failed: ${message}`);
    }
    const wanted = new Set<string>();
    for (const ref of refs) {
      const commit = await ostree.revParse(repo, local(ref));
      if (!commit) throw new BaseError('ref-not-found', `ref ${ref} not found in OSTree repo ${url}`);
      commits[ref] = commit;
      for (const candidate of [...RPMDB_CANDIDATES, ...OS_RELEASE_CANDIDATES]) {
        const found = await resolveInTree(candidate, async (rel) => {
          const entry = await ostree.lstat(repo, commit, rel);
          if (!entry) wanted.add(ostree.treePath(rel)); // absent, or not pulled yet
          return entry;
        });
        if (found) wanted.add(ostree.treePath(found.path));
      }
    }
    const fresh = [...wanted].filter((p) => ![...subpaths].some((s) => p === s || p.startsWith(s + '/')));
    if (fresh.length === 0 || round >= 8) break;
    for (const p of fresh) subpaths.add(p);
  }
  for (const ref of refs.filter((r) => !isChecksum(r))) await ost(['refs', '--force', `--create=${ref}`, local(ref)]);
  return { repo, commits };
}
