// Skipping the base read and the solve: when the config, the base identity and every repo's
// repomd.xml are what an earlier run resolved, dnf would give the same answer, so that answer is
// read back from the cache instead.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { substituteBasearch, type BaseInfo, type BaseSpec } from '../base/types.js';
import type { ExtensionsConfig } from '../inputs/extensions-yaml.js';
import type { RepoDefinition } from '../inputs/repos.js';
import { byString, sha256Hex, sha256Of, sorted } from '../metadata/state.js';
import type { ArchPlan } from '../plan/types.js';
import * as ostree from '../tools/ostree.js';
import { fetchBuffer } from '../tools/http.js';
import { redactUrls } from '../tools/redact.js';
import type { RepoState, SolveResult } from './types.js';

const RECORD_KIND = 'compose-extensions/resolved/v1';
/** Records kept in the cache; the least recently used beyond this are removed. */
const KEEP = 64;

/** What a run resolves from and an earlier one can be compared with, all but the repo metadata. */
export interface InputsKeyParts {
  generator: { name: string; version: string };
  dnf: { backend: string; version: string };
  arch: string;
  config: ExtensionsConfig;
  /** From baseIdentity; undefined when the base has none (nothing can be reused then). */
  base: string;
  releasever?: string;
  weakDeps: boolean;
  repos: RepoDefinition[];
  /** Repo variables: they change the URLs dnf reads. */
  vars: Record<string, string>;
  /** dnf.conf's [main] transfer options. */
  main: Record<string, string>;
}

/**
 * What names a base exactly without reading it: an OSTree commit (one `ostree rev-parse`), an image
 * digest, a tarball's declared sha256. A root filesystem directory has no such name: undefined.
 */
export async function baseIdentity(spec: BaseSpec, arch: string): Promise<string | undefined> {
  if (spec.kind === 'ostree') {
    const commit = spec.commits?.[arch] ?? (await ostree.revParse(spec.repo, substituteBasearch(spec.ref, arch)).catch(() => undefined));
    return commit && `ostree:${commit}`;
  }
  if (spec.kind === 'image') return spec.resolved && `image:${spec.resolved.digest}:${arch}`;
  return spec.sha256 && `rootfs-tarball:${spec.sha256.toLowerCase().replace(/^sha256:/, '')}`;
}

const namedRepos = (config: ExtensionsConfig) => new Set([...config.repos, ...config.extensions.flatMap((e) => e.repos)]);

/** Options whose values must never reach a file, not even hashed: a password is no input of the solve. */
const SECRET_OPTIONS = new Set(['password', 'proxy_password']);

/** A repo definition as the key sees it: credentials out, URLs without user-info. */
function keyedOptions(options: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(options).filter(([k]) => !SECRET_OPTIONS.has(k)).map(([k, v]) => [k, redactUrls(v)]));
}

/** `sha256:<hex>` naming everything but the repo metadata; a record is stored under it. */
export function inputsKey(parts: InputsKeyParts): string {
  const named = namedRepos(parts.config);
  return sha256Of({
    kind: 'compose-extensions/inputs/v1',
    generator: parts.generator,
    dnf: parts.dnf,
    arch: parts.arch,
    // File order does not change what dnf resolves.
    config: {
      repos: sorted(parts.config.repos),
      extensions: [...parts.config.extensions]
        .sort((a, b) => byString(a.name, b.name))
        .map(({ name, kind, packages, architectures, matchBaseEvr, repos }) => ({ name, kind, packages, architectures, matchBaseEvr, repos })),
    },
    base: parts.base,
    releasever: parts.releasever ?? null,
    weakDeps: parts.weakDeps,
    vars: Object.fromEntries(Object.entries(parts.vars).sort(([a], [b]) => byString(a, b))),
    main: keyedOptions(parts.main),
    repos: parts.repos
      .filter((r) => named.has(r.id))
      .map((r) => ({ id: r.id, options: keyedOptions(r.options) }))
      .sort((a, b) => byString(a.id, b.id)),
  });
}

/**
 * The input fingerprint recorded in metadata.json: the inputs key and the repomd.xml checksum of
 * every repo the solve loaded. Equal fingerprints mean the solve can be skipped.
 */
export function inputFingerprint(key: string, repos: readonly Pick<RepoState, 'id' | 'repomdSha256'>[]): string {
  return sha256Of({
    kind: 'compose-extensions/input/v2',
    key,
    repos: repos.map((r) => ({ id: r.id, repomdSha256: r.repomdSha256 })).sort((a, b) => byString(a.id, b.id)),
  });
}

/** What an architecture's solve produced, as recorded for later runs (the base without its rpmdb copy). */
export interface ResolvedRecord {
  base: Omit<BaseInfo, 'root'>;
  plan: ArchPlan;
  solved: SolveResult;
}

interface StoredRecord extends ResolvedRecord {
  kind: typeof RECORD_KIND;
  key: string;
  fingerprint: string;
}

const recordPath = (cacheDir: string, key: string) => join(cacheDir, 'resolved', `${key.replace(/^sha256:/, '')}.json`);

/**
 * A repo's repomd.xml as it is now, by sha256 (hex), from the first of its baseurls that answers;
 * undefined when none does (the solve will then say what is wrong with the repo).
 */
export async function currentRepomd(urls: string[]): Promise<string | undefined> {
  for (const url of urls) {
    const at = `${url.replace(/\/+$/, '')}/repodata/repomd.xml`;
    try {
      const bytes = at.startsWith('file://') ? await readFile(fileURLToPath(at)) : await fetchBuffer(at, { maxBytes: 16 << 20, attempts: 1 });
      return sha256Hex(bytes);
    } catch {
      // the next mirror
    }
  }
  return undefined;
}

/** Each recorded repo's repomd.xml sha256 as it is now, in order; undefined where it cannot be had. */
export type RepomdCheck = (record: ResolvedRecord) => Promise<(string | undefined)[]>;

/** Our own client's check, for repos given by plain baseurls. */
export const directRepomd: RepomdCheck = (record) => Promise.all(record.solved.repos.map((r) => currentRepomd(r.urls ?? [r.url])));

/**
 * The recorded answer for these inputs when every repo's repomd.xml is still the one it was
 * resolved from; undefined otherwise (no record, a changed or unreachable repo, a damaged file).
 */
export async function findResolved(cacheDir: string, key: string, check: RepomdCheck = directRepomd): Promise<(ResolvedRecord & { fingerprint: string }) | undefined> {
  const path = recordPath(cacheDir, key);
  let record: StoredRecord;
  try {
    record = JSON.parse(await readFile(path, 'utf8')) as StoredRecord;
  } catch {
    return undefined;
  }
  if (record.kind !== RECORD_KIND || record.key !== key || !Array.isArray(record.solved?.repos) || !Array.isArray(record.solved.packages)) return undefined;
  const now = await check(record).catch(() => []);
  if (record.solved.repos.some((r, i) => r.repomdSha256 !== now[i])) return undefined;
  if (record.fingerprint !== inputFingerprint(key, record.solved.repos)) return undefined;
  const touched = new Date();
  await utimes(path, touched, touched).catch(() => {}); // most recently used: pruned last
  return { base: record.base, plan: record.plan, solved: record.solved, fingerprint: record.fingerprint };
}

/** Records a solve for later runs (atomically), and prunes the least recently used records. */
export async function saveResolved(cacheDir: string, key: string, fingerprint: string, resolved: ResolvedRecord): Promise<void> {
  const dir = join(cacheDir, 'resolved');
  await mkdir(dir, { recursive: true });
  const { root: _root, ...base } = resolved.base as BaseInfo;
  const record: StoredRecord = { kind: RECORD_KIND, key, fingerprint, base, plan: resolved.plan, solved: resolved.solved };
  const path = recordPath(cacheDir, key);
  const partial = `${path}.${randomBytes(6).toString('hex')}.part`;
  await writeFile(partial, JSON.stringify(record));
  await rename(partial, path);
  await prune(dir);
}

async function prune(dir: string): Promise<void> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.json'));
  if (names.length <= KEEP) return;
  const aged = await Promise.all(names.map(async (n) => ({ n, t: (await stat(join(dir, n)).catch(() => undefined))?.mtimeMs ?? 0 })));
  aged.sort((a, b) => b.t - a.t);
  await Promise.all(aged.slice(KEEP).map(({ n }) => rm(join(dir, n), { force: true })));
}
