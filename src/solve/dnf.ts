// Adapter around the distribution's dnf for the solve: which backend, and helper processes (see
// helper.ts) that load each architecture's repos once and resolve every extension in it.
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { ComposeError, ToolError, UsageError } from '../errors.js';
import type { RepoDefinition } from '../inputs/repos.js';
import type { ArchPlan } from '../plan/types.js';
import { backendPackage, systemPython, type DnfBackend } from '../tools/dnf-python.js';
import { lastLines, run } from '../tools/exec.js';
import { redactUrl, redactUrls } from '../tools/redact.js';
import { HELPER_MAX_FILE_BYTES, HelperPool, repoRequest, type HelperLayout } from './helper.js';
import { plainWords } from './problems.js';
import type { RepoState, SolveResult } from './types.js';

export type DnfPreference = DnfBackend | 'auto';

/** How each backend's Python module (dnf4's own, or dnf5's library bindings) is found, with its version. */
const BACKENDS: Record<DnfBackend, { probe: string[] }> = {
  dnf5: {
    // libdnf5 numbers itself prime.major.minor.micro (5.2.18.0 is prime 5, major 2); a release without
    // a prime part (5.0) says major.minor.micro.
    probe: [
      'import libdnf5',
      'v = libdnf5.conf.get_library_version()',
      "print('.'.join(str(p) for p in (getattr(v, 'prime', None), v.major, v.minor, v.micro) if p is not None))",
    ],
  },
  dnf4: {
    // The version as dnf/const.py states it: importing dnf would cost a fifth of a second of every run.
    probe: [
      'import importlib.util, os, re',
      "spec = importlib.util.find_spec('dnf')",
      "if spec is None or not spec.origin: raise ImportError('dnf')",
      "m = re.search(r\"^VERSION\\s*=\\s*['\\\"]([^'\\\"]+)\", open(os.path.join(os.path.dirname(spec.origin), 'const.py')).read(), re.M)",
      "print(m.group(1) if m else __import__('dnf').VERSION)",
    ],
  },
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
  const wanted = order.map((b) => `\`${backendPackage(b)}\``).join(' or ');
  throw new ToolError(
    `${preference === 'auto' ? "dnf's Python API" : `the ${preference} Python API`} was not found for ${systemPython()}: ` +
      `install ${wanted} (Fedora) or \`apt-get install -y python3-dnf\` (Debian/Ubuntu)`,
  );
}

/**
 * Probes the backends in `order` with one short Python run, stopping at the first one found, so
 * nothing is loaded for a backend that would not be chosen.
 */
export async function availableBackends(order: DnfBackend[] = ['dnf5', 'dnf4']): Promise<Partial<Record<DnfBackend, string>>> {
  // One line per backend tried: its version, or empty when its module is missing.
  const probes = order.map((b) => ['try:', ...BACKENDS[b].probe, 'raise SystemExit'].join('\n    ') + '\nexcept ImportError:\n    print()');
  const probe = await run(systemPython(), ['-c', probes.join('\n')], { allowFailure: true }).catch(() => undefined);
  const lines = probe?.exitCode === 0 ? probe.stdout.split('\n') : [];
  return Object.fromEntries(order.flatMap((b, i) => (lines[i]?.trim() ? [[b, lines[i]!.trim()]] : [])));
}

export async function detectDnf(preference: DnfPreference = 'auto'): Promise<{ backend: DnfBackend; version: string }> {
  return chooseBackend(preference, await availableBackends(preference === 'auto' ? ['dnf5', 'dnf4'] : [preference]));
}

export interface SolveRequest {
  plan: ArchPlan;
  repos: RepoDefinition[];
  /** Repo variables (vars directories, DNF_VAR_*), see readRepoVars. */
  vars: Record<string, string>;
  /** dnf.conf's [main] transfer options, see readMainOptions. */
  main?: Record<string, string>;
  /** A root whose rpmdb (a private copy of the base's) is at usr/lib/sysimage/rpm. */
  root: string;
  /** Per-run scratch directory for this architecture. */
  workDir: string;
  /** dnf's metadata cache for this architecture; kept between runs. */
  cacheDir: string;
}

/** The JSON line the helper reads for one architecture; exported so its shape is unit-tested. */
export async function helperRequest(req: SolveRequest) {
  const common = await repoRequest({
    arch: req.plan.arch, releasever: req.plan.releasever, ids: req.plan.repos, repos: req.repos, vars: req.vars, main: req.main ?? {},
    cacheDir: req.cacheDir, workDir: req.workDir,
  });
  return {
    ...common,
    weakDeps: req.plan.weakDeps,
    installroot: req.root,
    extensions: req.plan.extensions.map(({ name, kind, specs, repos }) => ({ name, kind, specs, repos })),
  };
}

/** A repo as the helper describes it, with every URL's user-info removed before anything keeps it. */
export function redactRepoState(repo: RepoState): RepoState {
  return { ...repo, url: redactUrl(repo.url), urls: (repo.urls ?? []).map(redactUrl), gpgkeys: repo.gpgkeys.map(redactUrl) };
}

/**
 * dnf4: one helper resolving up to one architecture per core at once, in threads: loading repo
 * metadata, most of the work, runs without the GIL, and Python and `import dnf` (about 45 MiB)
 * are paid once; each architecture loaded at once adds its sack (about 15 MiB at 10,000 packages,
 * 40 MiB at 40,000). dnf5: one architecture per helper, a helper per two cores: libdnf5 5.2 called
 * from several threads of one process sometimes read an empty base rpmdb (33 of 720 solves with 2
 * threads; dnf4 0 of 720).
 */
export function solverLayout(backend: DnfBackend, arches: number, cores = availableParallelism()): HelperLayout {
  if (backend === 'dnf4') return { helpers: 1, threads: Math.max(1, Math.min(arches, cores)) };
  return { helpers: Math.max(1, Math.min(arches, Math.floor(cores / 2))), threads: 1 };
}

/** Architectures resolved at once under a layout. */
export const solvesAtOnce = (layout: HelperLayout): number => layout.helpers * layout.threads;

/**
 * The solve stage: a few dnf helper processes (never one per extension, at most one per
 * architecture) answer every architecture's request as its base becomes ready.
 */
export class DnfSolver {
  private readonly pool: HelperPool;

  constructor(
    backend: DnfBackend,
    /** Scratch directory of the run: the helpers' HOMEs with their rpm macros. */
    workDir: string,
    layout: HelperLayout = { helpers: 1, threads: 1 },
    /** The most a file dnf writes may be (tests lower it). */
    private readonly maxFileBytes = HELPER_MAX_FILE_BYTES,
  ) {
    this.pool = new HelperPool(backend, join(workDir, 'dnf-home'), layout, maxFileBytes);
  }

  /** Starts a helper ahead of the first request, so that Python and dnf load while the base is read. */
  start(): void {
    this.pool.start();
  }

  /** Helper processes started so far. */
  get processes(): number {
    return this.pool.processes;
  }

  /** curl's "failed writing" is what the file size limit looks like to dnf: say so. */
  private explained(message: string): string {
    if (!/Curl error \(23\)/.test(message)) return message;
    return `${message} (a file dnf writes is limited to ${this.maxFileBytes} bytes: a repo file that large, or a full disk)`;
  }

  /** Resolves every extension of the plan; throws ComposeError listing every problem dnf found. */
  async solve(req: SolveRequest): Promise<SolveResult> {
    const input = await helperRequest(req);
    const arch = req.plan.arch;
    const output = await this.pool.ask(arch, input);
    if (output.error) throw new ToolError(`dnf failed on ${arch}: ${redactUrls(lastLines(output.error))}`);
    if (output.problems?.length) {
      throw new ComposeError(output.problems.map((p) => ({ message: redactUrls(this.explained(plainWords(p.message))), extension: p.extension ?? undefined, arch })));
    }
    // Only the fields we know: nothing a helper adds (a mirror URL with user-info) reaches a record or metadata.json.
    const packages = (output.packages ?? []).map(({ name, epoch, version, release, arch: a, nevra, repo, location, checksum, size, path, license, vendor, extensions }) =>
      ({ name, epoch, version, release, arch: a, nevra, repo, location, checksum, size, ...(path && { path }), license: license ?? null, vendor: vendor ?? null, extensions }));
    return { arch, packages, closures: output.closures ?? {}, repos: (output.repos ?? []).map(redactRepoState) };
  }

  /** Ends the helpers (once; later calls wait for the same end). */
  close(): Promise<void> {
    return this.pool.close();
  }
}
