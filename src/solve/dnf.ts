// Adapter around the distribution's dnf: one helper process per architecture resolves every extension.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ComposeError, ToolError, type ComposeProblem } from '../errors.js';
import { renderRepoFile, type RepoDefinition } from '../inputs/repos.js';
import type { ArchPlan } from '../plan/types.js';
import { installHint, lastLines, run } from '../tools/exec.js';
import type { SolveResult } from './types.js';

/** dnf's Python needs the system interpreter: a python3 earlier on PATH may lack the dnf module. */
export function systemPython(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

export type DnfBackend = 'dnf4';

/** Finds a dnf whose solver we can drive; the error names the package that provides it. */
export async function detectDnf(): Promise<{ backend: DnfBackend; version: string }> {
  const probe = await run(systemPython(), ['-c', 'import dnf; print(dnf.VERSION)'], { allowFailure: true });
  if (probe.exitCode === 0) return { backend: 'dnf4', version: probe.stdout.trim() };
  throw new ToolError(
    `dnf's Python API was not found (${lastLines(probe.stderr, 1)}): ${installHint('dnf')}; on Fedora 41 and later also \`dnf install -y python3-dnf\``,
  );
}

export interface SolveRequest {
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

// Beside this module in src/, and beside the bundle in dist/ (scripts/bundle.mjs copies it there).
const HELPER = join(dirname(fileURLToPath(import.meta.url)), 'dnf4-helper.py');

/** Resolves every extension of the plan; throws ComposeError listing every problem dnf found. */
export async function solve(req: SolveRequest): Promise<SolveResult> {
  const { home, input } = await helperRequest(req);
  const result = await run(systemPython(), [HELPER], {
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
    throw new ComposeError(output.problems.map((p) => ({ ...p, extension: p.extension ?? undefined, arch: req.plan.arch })));
  }
  return { arch: req.plan.arch, packages: output.packages ?? [], closures: output.closures ?? {}, repos: output.repos ?? [] };
}
