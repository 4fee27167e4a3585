// Adapter around the distribution's dnf: one helper process per architecture resolves every extension.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ComposeError, ToolError, UsageError, type ComposeProblem } from '../errors.js';
import { renderRepoFile, type RepoDefinition } from '../inputs/repos.js';
import type { ArchPlan } from '../plan/types.js';
import { lastLines, run } from '../tools/exec.js';
import { plainWords } from './problems.js';
import type { SolveResult } from './types.js';

/** dnf's Python needs the system interpreter: a python3 earlier on PATH may lack the dnf module. */
export function systemPython(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

export type DnfBackend = 'dnf4' | 'dnf5';
export type DnfPreference = DnfBackend | 'auto';

/** What each backend needs: a Python module (dnf4's own, or dnf5's library bindings) and its helper. */
const BACKENDS: Record<DnfBackend, { probe: string; helper: string; fedoraPackage: string }> = {
  dnf5: {
    probe: 'import libdnf5; v = libdnf5.conf.get_library_version(); print("%d.%d.%d" % (v.major, v.minor, v.micro))',
    helper: 'dnf5-helper.py',
    fedoraPackage: 'python3-libdnf5',
  },
  dnf4: { probe: 'import dnf; print(dnf.VERSION)', helper: 'dnf4-helper.py', fedoraPackage: 'python3-dnf' },
};

/** Reads `auto`, `dnf5` or `dnf4` from a flag or input named `what`; empty means auto. */
export function dnfPreference(value: string | undefined, what: string): DnfPreference {
  const v = value || 'auto';
  if (v !== 'auto' && v !== 'dnf5' && v !== 'dnf4') throw new UsageError(`${what} must be auto, dnf5 or dnf4, got "${v}"`);
  return v;
}

/**
 * dnf5 where present, else dnf4 (as the distribution ships them); `preference` forces one. Pure, so
 * the choice is unit-tested without either installed.
 */
export function chooseBackend(preference: DnfPreference, found: Partial<Record<DnfBackend, string>>): { backend: DnfBackend; version: string } {
  const order: DnfBackend[] = preference === 'auto' ? ['dnf5', 'dnf4'] : [preference];
  for (const backend of order) {
    const version = found[backend];
    if (version) return { backend, version };
  }
  const wanted = order.map((b) => `\`${BACKENDS[b].fedoraPackage}\``).join(' or ');
  throw new ToolError(
    `${preference === 'auto' ? "dnf's Python API" : `the ${preference} Python API`} was not found for ${systemPython()}: ` +
      `install ${wanted} (Fedora) or \`apt-get install -y python3-dnf\` (Debian/Ubuntu)`,
  );
}

/** Probes which backends this machine has (one short Python run each). */
export async function availableBackends(): Promise<Partial<Record<DnfBackend, string>>> {
  const found: Partial<Record<DnfBackend, string>> = {};
  for (const backend of Object.keys(BACKENDS) as DnfBackend[]) {
    const probe = await run(systemPython(), ['-c', BACKENDS[backend].probe], { allowFailure: true }).catch(() => undefined);
    if (probe?.exitCode === 0) found[backend] = probe.stdout.trim();
  }
  return found;
}

export async function detectDnf(preference: DnfPreference = 'auto'): Promise<{ backend: DnfBackend; version: string }> {
  return chooseBackend(preference, await availableBackends());
}

/** The Fedora package that provides a backend's Python API, for installing it in a container. */
export function backendPackage(backend: DnfBackend): string {
  return BACKENDS[backend].fedoraPackage;
}

export interface SolveRequest {
  backend: DnfBackend;
  plan: ArchPlan;
  repos: RepoDefinition[];
  /** A root whose rpmdb (a private copy of the base's) is at usr/lib/sysimage/rpm. */
  root: string;
  /** Per-run scratch directory for this architecture. */
  workDir: string;
  /** dnf's metadata cache for this architecture; kept between runs. */
  cacheDir: string;
}

/** The JSON the helper reads on stdin; exported so its shape is unit-tested. */
export async function helperRequest(req: SolveRequest) {
  const reposDir = join(req.workDir, 'yum.repos.d');
  const home = join(req.workDir, 'home');
  const logDir = join(req.workDir, 'log');
  await Promise.all([reposDir, home, logDir, req.cacheDir].map((d) => mkdir(d, { recursive: true })));
  const used = req.repos.filter((r) => req.plan.repos.includes(r.id));
  await writeFile(join(reposDir, 'compose.repo'), renderRepoFile(used));
  // Debian's rpm reads ~/.rpmdb unless told otherwise: then dnf would see an empty base.
  await writeFile(join(home, '.rpmmacros'), '%_dbpath /usr/lib/sysimage/rpm\n');
  return {
    home,
    input: {
      arch: req.plan.arch,
      releasever: req.plan.releasever,
      weakDeps: req.plan.weakDeps,
      installroot: req.root,
      cachedir: req.cacheDir,
      logdir: logDir,
      reposdir: reposDir,
      repos: req.plan.repos,
      extensions: req.plan.extensions.map(({ name, kind, specs, repos }) => ({ name, kind, specs, repos })),
    },
  };
}

// Beside this module in src/, and beside the bundle in dist/ (scripts/bundle.mjs copies them there).
const HERE = dirname(fileURLToPath(import.meta.url));

/** Resolves every extension of the plan; throws ComposeError listing every problem dnf found. */
export async function solve(req: SolveRequest): Promise<SolveResult> {
  const { home, input } = await helperRequest(req);
  const result = await run(systemPython(), [join(HERE, BACKENDS[req.backend].helper)], {
    input: JSON.stringify(input),
    env: { HOME: home, LC_ALL: 'C.UTF-8' },
    cwd: req.workDir,
    allowFailure: true,
  });
  let output: Partial<SolveResult> & { problems?: ComposeProblem[] };
  try {
    output = JSON.parse(result.stdout);
  } catch {
    throw new ToolError(`dnf failed on ${req.plan.arch} (exit ${result.exitCode}): ${lastLines(result.stderr || result.stdout)}`);
  }
  if (output.problems?.length) {
    throw new ComposeError(
      output.problems.map((p) => ({ message: plainWords(p.message), extension: p.extension ?? undefined, arch: req.plan.arch })),
    );
  }
  return { arch: req.plan.arch, packages: output.packages ?? [], closures: output.closures ?? {}, repos: output.repos ?? [] };
}
