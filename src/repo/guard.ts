// Checks before anything is written: the output directory must not hold, or sit inside, what the
// run reads (file:// repos, the base, the cache), since its architectures' directories are replaced.
import { realpath } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../errors.js';
import type { BaseSpec } from '../base/types.js';
import type { RepoDefinition } from '../inputs/repos.js';

export interface NamedPath {
  /** `the cache directory`, `the file:// repo "fedora"`. */
  label: string;
  path: string;
}

/** `a` is `b` or lies inside it (both absolute and canonical). */
function within(a: string, b: string): boolean {
  const rel = relative(b, a);
  return rel !== '..' && !rel.startsWith(`..${sep}`) && !rel.startsWith(sep);
}

/** Pure: one message per input the output contains, is, or lies inside. */
export function overlapMessages(output: string, inputs: NamedPath[]): string[] {
  return inputs.flatMap(({ label, path }) => {
    const relation = output === path ? 'is' : within(path, output) ? 'contains' : within(output, path) ? 'is inside' : undefined;
    return relation ? [`the output directory ${output} ${relation} ${label} ${path}: choose an output directory outside every input and the cache`] : [];
  });
}

const VARIABLE = /\$\{?[A-Za-z_]/;

/**
 * The local directories a repo's baseurl names, `$basearch` expanded per architecture. Where
 * another variable is left (`$releasever` when not given), the directory above it stands in.
 */
export function repoPaths(repo: RepoDefinition, arches: string[], releasever?: string): string[] {
  const urls = (repo.options['baseurl'] ?? '').split(/[\s,]+/).filter((u) => u.startsWith('file://'));
  return [...new Set(urls.flatMap((url) => arches.map((arch) => {
    let expanded = url.replace(/\$\{?basearch\}?|\$\{?arch\}?/g, arch);
    if (releasever !== undefined) expanded = expanded.replace(/\$\{?releasever\}?/g, releasever);
    const variable = VARIABLE.exec(expanded);
    if (variable) expanded = expanded.slice(0, expanded.lastIndexOf('/', variable.index) + 1) || 'file:///';
    try {
      return resolve(fileURLToPath(expanded));
    } catch {
      return undefined;
    }
  }).filter((p): p is string => p !== undefined)))];
}

/** The base's local path, if it has one (URLs and registry images are fetched into the cache). */
export function basePath(base: BaseSpec): NamedPath | undefined {
  const local = (p: string) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(p);
  if (base.kind === 'ostree') return local(base.repo) ? { label: 'the base OSTree repository', path: resolve(base.repo) } : undefined;
  if (base.kind === 'rootfs') return local(base.path) ? { label: 'the base root filesystem', path: resolve(base.path) } : undefined;
  const oci = /^(oci|oci-archive):([^:]+)/.exec(base.ref);
  return oci ? { label: 'the base image', path: resolve(oci[2]!) } : undefined;
}

/** Follows symlinks as far as the path exists: the output may not exist yet. */
async function canonical(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    const parent = dirname(path);
    return parent === path ? path : join(await canonical(parent), basename(path));
  }
}

export interface OverlapInputs {
  output: string;
  cacheDir: string;
  base: BaseSpec;
  repos: RepoDefinition[];
  /** Repo ids the config enables. */
  usedRepos: string[];
  arches: string[];
  releasever?: string;
}

/** A UsageError naming both paths when the output overlaps an input or the cache. */
export async function checkOutputOverlap(o: OverlapInputs): Promise<void> {
  const used = new Set(o.usedRepos);
  const inputs: NamedPath[] = [
    { label: 'the cache directory', path: o.cacheDir },
    ...[basePath(o.base)].filter((b): b is NamedPath => b !== undefined),
    ...o.repos
      .filter((r) => used.has(r.id))
      .flatMap((r) => repoPaths(r, o.arches, o.releasever).map((path) => ({ label: `the file:// repo "${r.id}"`, path }))),
  ];
  const output = await canonical(resolve(o.output));
  const canonicalInputs = await Promise.all(inputs.map(async (i) => ({ ...i, path: await canonical(i.path) })));
  const messages = overlapMessages(output, canonicalInputs);
  if (messages.length > 0) throw new UsageError(messages);
}
