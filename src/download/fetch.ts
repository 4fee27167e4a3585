// The download stage: fetch what the solve chose, in parallel, into a content-addressed cache,
// then verify every file against the repo's checksum and, where the repo asks, its signature.
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, fstatSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { mkdir, open, readdir, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Readable } from 'node:stream';
import { ComposeError, type ComposeProblem } from '../errors.js';
import type { RepoContext } from '../solve/helper.js';
import type { RepoState, ResolvedPackage } from '../solve/types.js';
import { run } from '../tools/exec.js';
import { download as downloadUrl, fetchBuffer, HttpError, isRetryable, NetworkError, reasonOf } from '../tools/http.js';
import type { DnfFetcher } from './dnf-fetch.js';
import { librepoReason, mirrorOf, summarizeFailures, type MirrorAttempt, type PackageFailure } from './failures.js';
import { recordOrigins, originOf } from './origins.js';
import { redactUrl, redactUrls } from '../tools/redact.js';
import type { FetchRoute } from './route.js';

export interface FetchedPackage extends ResolvedPackage {
  /** The verified local file. */
  file: string;
  sha256: string;
  /**
   * Where the file came from (user-info removed): the URL our client fetched it from, now or when
   * it was cached; a local repo's file URL. Absent when dnf's downloader fetched it (librepo does
   * not say which mirror served a file).
   */
  url?: string;
}

export interface FetchOptions {
  arch: string;
  /** Content-addressed package cache, shared by architectures and runs. */
  cacheDir: string;
  workDir: string;
  concurrency?: number;
  onProgress?: (done: number, total: number, bytes: number) => void;
  /** Which client fetches each repo's files; `direct` where absent. */
  routes?: Record<string, FetchRoute>;
  /** dnf's downloader, for the repos routed to it, with what it needs to know of them. */
  dnf?: { fetcher: DnfFetcher; repos: RepoContext };
}

const CHECKSUM_TYPES = new Set(['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512']);

/** sha256 and, when the repo declares another type, that digest too, in one read. */
interface Sums {
  sha256: string;
  declared: string;
}

/** sha256, and the repo's type when it is another, of what is fed to it. */
function hashing(type: string): { update(chunk: Buffer): void; sums(): Sums } {
  const sha256 = createHash('sha256');
  const other = type === 'sha256' ? undefined : createHash(type);
  return {
    update(chunk) {
      sha256.update(chunk);
      other?.update(chunk);
    },
    sums() {
      const hex = sha256.digest('hex');
      return { sha256: hex, declared: other ? other.digest('hex') : hex };
    },
  };
}

// Plain loops over the chunks, not stream.pipeline: with a Transform and a write stream per
// package, pipeline's bookkeeping (an AbortController, listeners, a DOMException on every finish)
// cost more CPU than the hashing and writing it organised. A small file is written, and a finished
// one renamed, synchronously: each is a few tens of microseconds in the kernel, while handing it to
// libuv's threadpool cost two context switches per call and, over a cold run's 1,400 packages,
// about 0.3 s of CPU and 8 % of the wall time on 2 cores.

/**
 * `sizeHint` (the repo's size for the package) only chooses how to read: a file it calls small is
 * read synchronously in one call if it really is (as the small downloads are written), a larger one
 * streamed with a buffer of about its size (a stream allocates its whole highWaterMark for every
 * read, and a 1 MiB buffer per small package was most of what a run allocated). A wrong hint costs
 * a few more reads or a larger buffer, never a wrong digest.
 */
async function digests(file: string, type: string, sizeHint: number): Promise<Sums> {
  const hash = hashing(type);
  if (sizeHint <= BUFFER_LIMIT) {
    const fd = openSync(file, 'r');
    try {
      if (fstatSync(fd).size <= BUFFER_LIMIT) {
        hash.update(readFileSync(fd));
        return hash.sums();
      }
    } finally {
      closeSync(fd);
    }
  }
  const highWaterMark = Number.isFinite(sizeHint) ? Math.min(READ_CHUNK, Math.max(MIN_READ_CHUNK, sizeHint + 1)) : READ_CHUNK;
  for await (const chunk of createReadStream(file, { highWaterMark })) hash.update(chunk as Buffer);
  return hash.sums();
}

const READ_CHUNK = 1 << 20;
const MIN_READ_CHUNK = 16 << 10;
/** A body up to this size is kept in memory and written with one call; a larger one is streamed. */
const BUFFER_LIMIT = 256 << 10;

/** Writes the body to `file`, hashing as it arrives; a large body is read only as fast as it is written. */
async function save(body: Readable, file: string, hash: { update(chunk: Buffer): void }): Promise<void> {
  const chunks: Buffer[] = [];
  let buffered = 0;
  let handle: FileHandle | undefined;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      hash.update(chunk);
      if (handle) {
        await handle.write(chunk);
        continue;
      }
      chunks.push(chunk);
      buffered += chunk.length;
      if (buffered > BUFFER_LIMIT) {
        handle = await open(file, 'w');
        await handle.writev(chunks.splice(0));
      }
    }
    if (!handle) writeFileSync(file, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
  } finally {
    await handle?.close();
  }
}

/**
 * A cached copy's sums, checked again: the cache may have been damaged, and output files are hard
 * links to it. Undefined when there is no good copy (or none at all); a download then replaces it.
 */
async function cached(file: string, checksum: { type: string; value: string }, sizeHint: number): Promise<Sums | undefined> {
  if (inFlight.has(file)) return undefined;
  const sums = await digests(file, checksum.type, sizeHint).catch(() => undefined);
  return sums?.declared === checksum.value ? sums : undefined;
}

/** Cache files this process has written: a listing taken before they arrived would miss them. */
const written = new Set<string>();

/**
 * The names in the package cache: one directory listing instead of a failing stat per package on
 * a cold run. Files added since (by another architecture of this run) are in `written`.
 */
async function cacheNames(cache: string): Promise<{ has(name: string): boolean }> {
  const listed = new Set(await readdir(cache));
  return { has: (name) => listed.has(name) || written.has(join(cache, name)) };
}

/** Numbers this process's partial files: architectures may fetch the same package at the same time. */
let partials = 0;

/**
 * Downloads in progress in this process, by cache file: architectures that want the same (noarch)
 * package at once share one request instead of each fetching it.
 */
const inFlight = new Map<string, Promise<Sums>>();

function downloadShared(url: string, dest: string, checksum: { type: string; value: string }): Promise<Sums> {
  let pending = inFlight.get(dest);
  if (!pending) {
    pending = download(url, dest, checksum).finally(() => inFlight.delete(dest));
    inFlight.set(dest, pending);
  }
  return pending;
}

/**
 * Fetches into the cache, hashing on the way: the file is read once, and one whose checksum does
 * not match never gets its cache name. A failed attempt is retried whole, with a fresh hash.
 */
async function download(url: string, dest: string, checksum: { type: string; value: string }): Promise<Sums> {
  const partial = `${dest}.part-${process.pid}-${++partials}`;
  try {
    // One attempt: fetchDirect moves on to the next mirror, and retries in rounds over all of them.
    const sums = await downloadUrl(url, async (body) => {
      const hash = hashing(checksum.type);
      await save(body, partial, hash);
      return hash.sums();
    }, { attempts: 1 });
    if (sums.declared !== checksum.value) throw new ChecksumMismatch(checksum, sums.declared);
    renameSync(partial, dest);
    written.add(dest);
    return sums;
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
}

class ChecksumMismatch extends Error {
  constructor(expected: { type: string; value: string }, found: string) {
    super(`${expected.type} checksum mismatch: the repo says ${expected.value}, the file has ${found}`);
  }
}

/** Runs `work` over items with at most `limit` (at least one) in flight. */
export async function mapLimit<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(Math.max(1, limit), items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  });
  await Promise.all(workers);
  return results;
}

/** Mirrors that failed to connect this run go last for later packages, as librepo demotes them. */
const unreachable = new Map<string, number>();
const NETWORK_ROUNDS = 3;

/**
 * Our own client's failover over every baseurl dnf knows: each mirror in turn on refused
 * connections, timeouts, HTTP errors and checksum mismatches, then further rounds while some
 * failure was a passing one (network, 5xx). Throws a PackageFailure naming every mirror tried.
 */
async function fetchDirect(pkg: ResolvedPackage, mirrors: string[], dest: string): Promise<{ sums: Sums; url: string }> {
  const ordered = [...mirrors].sort((a, b) => (unreachable.get(a) ?? 0) - (unreachable.get(b) ?? 0));
  const last = new Map<string, string>();
  for (let round = 1; round <= NETWORK_ROUNDS; round++) {
    let passing = false;
    for (const mirror of ordered) {
      const url = new URL(pkg.location, mirror.endsWith('/') ? mirror : `${mirror}/`).href;
      try {
        return { sums: await downloadShared(url, dest, pkg.checksum), url };
      } catch (err) {
        last.set(mirror, reasonInWords(err));
        if (err instanceof NetworkError) unreachable.set(mirror, (unreachable.get(mirror) ?? 0) + 1);
        passing ||= isRetryable(err);
      }
    }
    if (!passing) break;
    await new Promise((resolve) => setTimeout(resolve, 250 * round));
  }
  const failure: PackageFailure = {
    nevra: pkg.nevra, repo: pkg.repo,
    attempts: ordered.map((mirror): MirrorAttempt => ({ mirror, reason: last.get(mirror)! })),
    ...(mirrors.length === 0 && { reason: 'the repo has no baseurl to fetch it from' }),
  };
  throw Object.assign(new Error('not fetched'), { failure });
}

/** Our client's errors in the words librepo's are translated into (see failures.ts). */
function reasonInWords(err: unknown): string {
  if (err instanceof HttpError) return `HTTP ${err.status}`;
  if (err instanceof ChecksumMismatch) return 'checksum mismatch';
  if (err instanceof NetworkError) {
    if (err.code === 'ECONNREFUSED') return 'could not connect';
    if (err.code === 'ETIMEDOUT') return 'timed out';
    if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') return 'could not resolve the host';
  }
  return reasonOf(err);
}

const failureOf = (err: unknown): PackageFailure | undefined => (err as { failure?: PackageFailure }).failure;

/** Numbers this process's dnf download directories. */
let dnfBatches = 0;

export async function fetchPackages(packages: ResolvedPackage[], repos: RepoState[], options: FetchOptions): Promise<FetchedPackage[]> {
  const cache = join(options.cacheDir, 'packages');
  await mkdir(cache, { recursive: true });
  const inCache = await cacheNames(cache);
  const mirrors = new Map(repos.map((r) => [r.id, r.urls ?? []]));
  const problems: ComposeProblem[] = [];
  const failures: PackageFailure[] = [];
  const origins: [string, string][] = [];
  let done = 0;
  let bytes = 0;
  const progress = (pkg: ResolvedPackage) => {
    bytes += pkg.size;
    options.onProgress?.(++done, packages.length, bytes);
  };
  /** Packages for dnf's downloader, fetched together once the cache has been consulted. */
  const forDnf: { pkg: ResolvedPackage; name: string; index: number }[] = [];
  const indexOf = new Map(packages.map((p, i) => [p, i]));
  const fetched: (FetchedPackage | undefined)[] = await mapLimit(packages, options.concurrency ?? 8, async (pkg) => {
    const { type, value } = pkg.checksum;
    try {
      // Both go into a cache file name: only a known digest and hex, never a path.
      if (!CHECKSUM_TYPES.has(type) || !/^[0-9a-f]+$/.test(value)) throw new Error(`unsupported checksum ${type}:${value}`);
      const name = `${type}-${value}.rpm`;
      if (pkg.path) {
        // A repo file read in place: checked, never changed.
        const sums = await digests(pkg.path, type, pkg.size);
        if (sums.declared !== value) throw new ChecksumMismatch(pkg.checksum, sums.declared);
        progress(pkg);
        return { ...pkg, file: pkg.path, sha256: sums.sha256, url: pathToFileURL(pkg.path).href };
      }
      const file = join(cache, name);
      let sums = inCache.has(name) ? await cached(file, pkg.checksum, pkg.size) : undefined;
      let url = sums && (await originOf(options.cacheDir, name));
      if (!sums) {
        if ((options.routes?.[pkg.repo] ?? 'direct') === 'dnf') {
          forDnf.push({ pkg, name, index: indexOf.get(pkg)! });
          return undefined;
        }
        ({ sums, url } = await fetchDirect(pkg, mirrors.get(pkg.repo) ?? [], file));
        url = redactUrl(url);
        origins.push([name, url]);
      }
      progress(pkg);
      return { ...pkg, file, sha256: sums.sha256, ...(url && { url }) };
    } catch (err) {
      const failure = failureOf(err);
      if (failure) failures.push(failure);
      // The package names what failed; the URL would only repeat its repo and location.
      else problems.push({ arch: options.arch, message: `${pkg.nevra} from ${pkg.repo}: ${reasonOf(err)}` });
      return undefined;
    }
  });
  if (forDnf.length > 0) {
    if (!options.dnf) throw new Error('packages routed to dnf without a dnf downloader');
    for (const result of await fetchWithDnf(forDnf, cache, options.dnf)) {
      if ('failure' in result) failures.push(result.failure);
      else if ('problem' in result) problems.push({ arch: options.arch, message: result.problem });
      else {
        fetched[result.index] = result.fetched;
        progress(result.fetched);
      }
    }
  }
  await recordOrigins(options.cacheDir, origins).catch(() => {});
  problems.push(...summarizeFailures(failures, options.arch));
  if (problems.length > 0) throw new ComposeError(problems);
  const result = fetched as FetchedPackage[];
  problems.push(...(await checkSignatures(result, repos, options)));
  if (problems.length > 0) throw new ComposeError(problems);
  return result;
}

type DnfResult = { index: number; fetched: FetchedPackage } | { failure: PackageFailure } | { problem: string };
type DnfItem = { pkg: ResolvedPackage; name: string; index: number };

/**
 * dnf's downloader fetches into a directory inside the package cache (so that a verified file is
 * renamed into place, never copied), then each file is checked as any other and gets its cache name.
 * A package another architecture is fetching already (noarch ones) is awaited, not fetched again.
 */
async function fetchWithDnf(items: DnfItem[], cache: string, dnf: NonNullable<FetchOptions['dnf']>): Promise<DnfResult[]> {
  const fileOf = (item: DnfItem) => join(cache, item.name);
  const shared = new Set(items.filter((item) => inFlight.has(fileOf(item)) || written.has(fileOf(item))));
  const mine = items.filter((item) => !shared.has(item));
  // Ours are in flight from now on, for every other architecture to wait for.
  const settle = new Map<string, (sums: Sums | Error) => void>();
  for (const item of mine) {
    const pending = new Promise<Sums>((resolve, reject) => settle.set(fileOf(item), (r) => (r instanceof Error ? reject(r) : resolve(r))));
    pending.catch(() => {}); // each waiter handles it
    inFlight.set(fileOf(item), pending);
  }
  try {
    const results = await downloadWithDnf(mine, cache, dnf, (item, outcome) => settle.get(fileOf(item))?.(outcome));
    const waited = await mapLimit([...shared], 8, async ({ pkg, name, index }): Promise<DnfResult> => {
      const file = join(cache, name);
      const sums = await (inFlight.get(file) ?? cached(file, pkg.checksum, pkg.size)).catch(() => undefined);
      if (!sums) return { failure: { nevra: pkg.nevra, repo: pkg.repo, attempts: [], reason: 'its download for another architecture failed' } };
      return { index, fetched: { ...pkg, file, sha256: sums.sha256 } };
    });
    return [...results, ...waited];
  } finally {
    for (const item of mine) {
      settle.get(fileOf(item))?.(new Error('not fetched'));
      inFlight.delete(fileOf(item));
    }
  }
}

/** One batch through dnf's downloader; `done` tells the waiting architectures each outcome. */
async function downloadWithDnf(
  items: DnfItem[], cache: string, dnf: NonNullable<FetchOptions['dnf']>, done: (item: DnfItem, outcome: Sums | Error) => void,
): Promise<DnfResult[]> {
  if (items.length === 0) return [];
  const dir = join(cache, `.dnf-${process.pid}-${++dnfBatches}`);
  await mkdir(dir, { recursive: true });
  try {
    const answers = await dnf.fetcher.packages(dnf.repos, items.map(({ pkg }, i) => ({
      repo: pkg.repo, location: pkg.location, checksum: pkg.checksum, size: pkg.size, dest: join(dir, `${i}.rpm`),
    })));
    return await mapLimit(items.map((item, i) => ({ item, i })), 8, async ({ item, i }): Promise<DnfResult> => {
      const { pkg, name, index } = item;
      const answer = answers[i]!;
      if (!answer.ok) {
        done(item, new Error('not fetched'));
        const attempts = answer.failures.map((f) => ({ mirror: mirrorOf(f.url, pkg.location), reason: librepoReason(f.message) }));
        const last = new Map(attempts.map((a) => [a.mirror, a.reason])); // the last error of each mirror
        return {
          failure: {
            nevra: pkg.nevra, repo: pkg.repo,
            attempts: [...last].map(([mirror, reason]) => ({ mirror, reason })),
            ...(attempts.length === 0 && { reason: librepoReason(answer.error ?? 'failed') }),
          },
        };
      }
      const dest = join(dir, `${i}.rpm`);
      const sums = await digests(dest, pkg.checksum.type, pkg.size);
      if (sums.declared !== pkg.checksum.value) {
        done(item, new Error('checksum mismatch'));
        return { problem: `${pkg.nevra} from ${pkg.repo}: ${new ChecksumMismatch(pkg.checksum, sums.declared).message}` };
      }
      const file = join(cache, name);
      renameSync(dest, file);
      written.add(file);
      done(item, sums);
      return { index, fetched: { ...pkg, file, sha256: sums.sha256 } };
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** gpgcheck as the repo configuration says: every package of such a repo must carry a good signature. */
async function checkSignatures(packages: FetchedPackage[], repos: RepoState[], options: FetchOptions): Promise<ComposeProblem[]> {
  const checked = new Map(repos.filter((r) => r.gpgcheck).map((r) => [r.id, r]));
  const toCheck = packages.filter((p) => checked.has(p.repo));
  if (toCheck.length === 0) return [];
  const problems: ComposeProblem[] = [];
  const keyring = join(options.workDir, 'keyring');
  await rm(keyring, { recursive: true, force: true });
  await mkdir(keyring, { recursive: true });
  const keys: { repo: RepoState; index: number; url: string; file: string }[] = [];
  for (const repo of checked.values()) {
    if (repo.gpgkeys.length === 0 && toCheck.some((p) => p.repo === repo.id)) {
      problems.push({ arch: options.arch, message: `repo ${repo.id} has gpgcheck on but no gpgkey to check with` });
    }
    repo.gpgkeys.forEach((url, index) => keys.push({ repo, index, url, file: join(keyring, `${repo.id}-${index}.asc`) }));
  }
  // Keys of repos that dnf's downloader serves come through it too (proxy, private CA, client certificate).
  const viaDnf = keys.filter((k) => options.routes?.[k.repo.id] === 'dnf' && !k.url.startsWith('file:'));
  const dnfAnswers = options.dnf && viaDnf.length > 0
    ? await options.dnf.fetcher.keys(options.dnf.repos, viaDnf.map((k) => ({ repo: k.repo.id, index: k.index, dest: k.file })))
    : [];
  for (const key of keys) {
    try {
      const at = viaDnf.indexOf(key);
      if (at >= 0) {
        const answer = dnfAnswers[at];
        if (!answer?.ok) throw new Error(librepoReason(answer?.error ?? 'no answer'));
      } else {
        const bytes = key.url.startsWith('file:') ? readFileSync(fileURLToPath(key.url)) : await fetchBuffer(key.url, { maxBytes: 1 << 20 });
        await writeFile(key.file, bytes);
      }
      await run('rpmkeys', ['--dbpath', keyring, '--import', key.file]);
    } catch (err) {
      const reason = err instanceof HttpError ? `HTTP ${err.status}` : reasonOf(err);
      problems.push({ arch: options.arch, message: `repo ${key.repo.id}: cannot import gpgkey ${redactUrl(key.url)}: ${redactUrls(reason)}` });
    }
  }
  if (problems.length > 0) return problems;
  // `signature` level: an unsigned package fails too, not only a badly signed one.
  const result = await run(
    'rpmkeys',
    ['--dbpath', keyring, '--define', '_pkgverify_level signature', '--checksig', '-v', '--', ...toCheck.map((p) => p.file)],
    { allowFailure: true, env: { HOME: options.workDir } },
  );
  const verdicts = signatureVerdicts(result.stdout);
  for (const pkg of toCheck) {
    const verdict = verdicts.get(pkg.file);
    if (verdict?.kind === 'ok') continue;
    const repo = checked.get(pkg.repo)!;
    const keysNamed = repo.gpgkeys.map(redactUrl).join(', ');
    const why = !verdict
      ? `cannot be checked: ${result.stderr.trim() || 'rpmkeys said nothing of it'}`
      : verdict.kind === 'unsigned'
        ? 'is not signed'
        : verdict.kind === 'unknown-key'
          ? `is signed with key ${verdict.key}, which is not among the repo's gpgkeys (${keysNamed})`
          : `has a bad signature${verdict.key ? ` (key ${verdict.key})` : ''}: the file was changed after it was signed`;
    problems.push({ arch: options.arch, message: `${pkg.nevra} from ${pkg.repo} ${why} (gpgcheck is on)` });
  }
  return problems;
}

export type SignatureVerdict = { kind: 'ok' } | { kind: 'unsigned' } | { kind: 'unknown-key'; key: string } | { kind: 'bad'; key?: string };

/**
 * `rpmkeys --checksig -v` per file: a section headed `FILE:` with a line per signature and digest.
 * A signature line ends in OK, NOKEY (a key we were not given) or BAD; NOTFOUND means none of
 * that kind. Digests BAD with no signature found is a damaged file, reported as a bad signature.
 */
export function signatureVerdicts(output: string): Map<string, SignatureVerdict> {
  const verdicts = new Map<string, SignatureVerdict>();
  let file: string | undefined;
  let lines: string[] = [];
  const settle = () => {
    if (file === undefined) return;
    const signatures = lines.filter((l) => /signature/i.test(l) && !/: NOTFOUND$/.test(l));
    const keyOf = (l: string) => /key ID ([0-9a-f]+)/i.exec(l)?.[1];
    const bad = signatures.find((l) => /: BAD\b/.test(l)) ?? lines.find((l) => /digest: BAD\b/.test(l));
    const nokey = signatures.find((l) => /: NOKEY$/.test(l));
    if (bad) verdicts.set(file, { kind: 'bad', ...(keyOf(bad) && { key: keyOf(bad) }) });
    else if (nokey) verdicts.set(file, { kind: 'unknown-key', key: keyOf(nokey) ?? 'unknown' });
    else if (signatures.some((l) => /: OK$/.test(l))) verdicts.set(file, { kind: 'ok' });
    else verdicts.set(file, { kind: 'unsigned' });
  };
  for (const line of output.split('\n')) {
    if (/^\S.*:$/.test(line)) {
      settle();
      file = line.slice(0, -1);
      lines = [];
    } else if (line.trim()) lines.push(line.trim());
  }
  settle();
  return verdicts;
}
