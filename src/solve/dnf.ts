// Adapter around the distribution's dnf: helper processes that load each architecture's repos once
// and resolve every extension in it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { ComposeError, ToolError, UsageError, type ComposeProblem } from '../errors.js';
import { releaseverVars, renderRepoFile, type RepoDefinition } from '../inputs/repos.js';
import { underFileSizeLimit } from '../tools/prlimit.js';
import { redactUrl, redactUrls } from '../tools/redact.js';
import type { ArchPlan } from '../plan/types.js';
import { backendPackage, systemPython, type DnfBackend } from '../tools/dnf-python.js';
import { lastLines, run } from '../tools/exec.js';
import { plainWords } from './problems.js';
import type { RepoState, SolveResult } from './types.js';

export type DnfPreference = DnfBackend | 'auto';

/** What each backend needs: a Python module (dnf4's own, or dnf5's library bindings) and its helper. */
const BACKENDS: Record<DnfBackend, { probe: string[]; helper: string }> = {
  dnf5: {
    // libdnf5 numbers itself prime.major.minor.micro (5.2.18.0 is prime 5, major 2); a release without
    // a prime part (5.0) says major.minor.micro.
    probe: [
      'import libdnf5',
      'v = libdnf5.conf.get_library_version()',
      "print('.'.join(str(p) for p in (getattr(v, 'prime', None), v.major, v.minor, v.micro) if p is not None))",
    ],
    helper: 'dnf5-helper.py',
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
    helper: 'dnf4-helper.py',
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

/** What every helper request names: the repos (a .repo file it reads), the cache, the variables. */
export interface RepoContext {
  arch: string;
  releasever: string;
  /** Repo ids to enable. */
  ids: string[];
  repos: RepoDefinition[];
  vars: Record<string, string>;
  /** dnf.conf's [main] transfer options (proxy, TLS…), set on dnf's main config. */
  main?: Record<string, string>;
  /** dnf's metadata cache for this architecture; kept between runs. */
  cacheDir: string;
  /** Per-run scratch directory. */
  workDir: string;
}

/** Writes the .repo file (mode 0600: it may hold credentials) and returns the request's common part. */
export async function repoRequest(ctx: RepoContext) {
  const reposDir = join(ctx.workDir, 'yum.repos.d');
  const logDir = join(ctx.workDir, 'log');
  await Promise.all([reposDir, logDir, ctx.cacheDir].map((d) => mkdir(d, { recursive: true, mode: 0o700 })));
  const used = ctx.repos.filter((r) => ctx.ids.includes(r.id));
  await writeFile(join(reposDir, 'compose.repo'), renderRepoFile(used), { mode: 0o600 });
  return {
    arch: ctx.arch,
    releasever: ctx.releasever,
    vars: releaseverVars(ctx.releasever, ctx.vars),
    main: ctx.main ?? {},
    cachedir: ctx.cacheDir,
    logdir: logDir,
    reposdir: reposDir,
    repos: ctx.ids,
  };
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

// Beside this module in src/, and beside the bundle in dist/ (scripts/bundle.mjs copies them there).
const HERE = dirname(fileURLToPath(import.meta.url));

type HelperAnswer = Partial<SolveResult> & { id?: number; problems?: ComposeProblem[]; error?: string };

interface Pending {
  arch: string;
  resolve(answer: HelperAnswer): void;
  reject(err: Error): void;
}

/** The most a file dnf writes may be (filelists solv caches of big repos stay far below). */
export const HELPER_MAX_FILE_BYTES = 4 * 2 ** 30;

/**
 * curl (and so librepo) ignores an upper-case HTTP_PROXY, a CGI-era safety rule; CI systems often
 * set only that one, and a proxy the user set is meant to be used.
 */
function upperCaseHttpProxy(): { http_proxy?: string } {
  const upper = process.env['HTTP_PROXY'];
  return upper && !process.env['http_proxy'] ? { http_proxy: upper } : {};
}

/** One helper process: answers each request (matched by its id) as soon as it is resolved. */
export class Helper {
  readonly pending = new Map<number, Pending>();
  private readonly child: ResultPromise;
  private stderr = '';
  private exited?: Error;

  constructor(backend: DnfBackend, home: string, threads: number, maxFileBytes = HELPER_MAX_FILE_BYTES) {
    // -B: no __pycache__ beside the helpers (an untracked directory in the user's checkout of dist/).
    // No file dnf writes (repo metadata, solv caches) may pass maxFileBytes: an endless repomd.xml
    // fails with EFBIG (Python ignores SIGXFSZ) instead of filling the disk.
    const [file, args] = underFileSizeLimit(systemPython(), ['-B', join(HERE, BACKENDS[backend].helper), '--threads', String(threads)], maxFileBytes);
    this.child = execa(file, args, {
      // Debian's rpm reads ~/.rpmdb unless told otherwise (see .rpmmacros): then dnf would see an
      // empty base. Temporary files (Python's tempfile, gpg homes) go to the run's work dir.
      env: { HOME: home, LC_ALL: 'C.UTF-8', TMPDIR: join(home, 'tmp'), ...upperCaseHttpProxy() },
      extendEnv: true,
      cwd: home,
      buffer: false,
      reject: false,
      stdin: 'pipe',
    });
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-16384);
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => this.answer(line));
    this.child.stdin!.on('error', () => {}); // a helper that died is reported by its exit, below
    void this.child.then((result) => {
      const cause = result.exitCode === undefined ? `could not be run: ${result.shortMessage}` : `exited with ${result.exitCode}`;
      this.fail(new ToolError(`dnf's helper (${systemPython()}) ${cause}: ${redactUrls(lastLines(this.stderr)) || 'no output'}`));
    });
  }

  private answer(line: string): void {
    let answer: HelperAnswer;
    try {
      answer = JSON.parse(line) as HelperAnswer;
    } catch {
      this.fail(new ToolError(`dnf's helper answered something that is not JSON: ${redactUrls(line.slice(0, 200))}`));
      return;
    }
    const waiting = this.pending.get(answer.id ?? -1);
    if (!waiting) return;
    this.pending.delete(answer.id!);
    waiting.resolve(answer);
  }

  private fail(err: Error): void {
    this.exited ??= err;
    for (const [id, waiting] of this.pending) {
      this.pending.delete(id);
      waiting.reject(new ToolError(`dnf failed on ${waiting.arch}: ${err.message}`));
    }
  }

  ask(id: number, arch: string, input: object): Promise<HelperAnswer> {
    if (this.exited) return Promise.reject(new ToolError(`dnf failed on ${arch}: ${this.exited.message}`));
    return new Promise((resolve, reject) => {
      this.pending.set(id, { arch, resolve, reject });
      this.child.stdin!.write(JSON.stringify({ ...input, id }) + '\n');
    });
  }

  async close(): Promise<void> {
    this.child.stdin!.end();
    await this.child;
  }
}

/** A helper process with a HOME of its own, whose rpm macros point at the root's rpmdb. */
export function startHelper(backend: DnfBackend, home: string, threads = 1, maxFileBytes = HELPER_MAX_FILE_BYTES): Helper {
  mkdirSync(join(home, 'tmp'), { recursive: true, mode: 0o700 }); // the helper's TMPDIR
  writeFileSync(join(home, '.rpmmacros'), '%_dbpath /usr/lib/sysimage/rpm\n');
  return new Helper(backend, home, threads, maxFileBytes);
}

/** How a run's solves are spread: helper processes, and architectures each resolves at once. */
export interface SolverLayout {
  helpers: number;
  threads: number;
}

/**
 * dnf4: one helper resolving up to one architecture per core at once, in threads: loading repo
 * metadata, most of the work, runs without the GIL, and Python and `import dnf` (about 45 MiB)
 * are paid once; each architecture loaded at once adds its sack (about 15 MiB at 10,000 packages,
 * 40 MiB at 40,000). dnf5: one architecture per helper, a helper per two cores: libdnf5 5.2 called
 * from several threads of one process sometimes read an empty base rpmdb (33 of 720 solves with 2
 * threads; dnf4 0 of 720).
 */
export function solverLayout(backend: DnfBackend, arches: number, cores = availableParallelism()): SolverLayout {
  if (backend === 'dnf4') return { helpers: 1, threads: Math.max(1, Math.min(arches, cores)) };
  return { helpers: Math.max(1, Math.min(arches, Math.floor(cores / 2))), threads: 1 };
}

/** Architectures resolved at once under a layout. */
export const solvesAtOnce = (layout: SolverLayout): number => layout.helpers * layout.threads;

/**
 * The solve stage: a few dnf helper processes (never one per extension, at most one per
 * architecture) answer every architecture's request as its base becomes ready.
 */
export class DnfSolver {
  private readonly helpers: Helper[] = [];
  private nextId = 0;

  constructor(
    private readonly backend: DnfBackend,
    /** Scratch directory of the run: the helpers' HOME with their rpm macros. */
    private readonly workDir: string,
    private readonly layout: SolverLayout = { helpers: 1, threads: 1 },
    /** The most a file dnf writes may be (tests lower it). */
    private readonly maxFileBytes = HELPER_MAX_FILE_BYTES,
  ) {}

  private helper(): Helper {
    const idle = this.helpers.find((h) => h.pending.size < this.layout.threads);
    if (idle) return idle;
    if (this.helpers.length < this.layout.helpers) {
      // Synchronously, so that requests arriving together cannot start more helpers than allowed.
      const helper = startHelper(this.backend, join(this.workDir, `dnf-home-${this.helpers.length}`), this.layout.threads, this.maxFileBytes);
      this.helpers.push(helper);
      return helper;
    }
    return this.helpers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  }

  /** Starts a helper ahead of the first request, so that Python and dnf load while the base is read. */
  start(): void {
    if (this.helpers.length === 0) this.helper();
  }

  /** Helper processes started so far. */
  get processes(): number {
    return this.helpers.length;
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
    const output = await this.helper().ask(this.nextId++, arch, input);
    if (output.error) throw new ToolError(`dnf failed on ${arch}: ${redactUrls(lastLines(output.error))}`);
    if (output.problems?.length) {
      throw new ComposeError(output.problems.map((p) => ({ message: redactUrls(this.explained(plainWords(p.message))), extension: p.extension ?? undefined, arch })));
    }
    // Only the fields we know: nothing a helper adds (a mirror URL with user-info) reaches a record or metadata.json.
    const packages = (output.packages ?? []).map(({ name, epoch, version, release, arch: a, nevra, repo, location, checksum, size, path, license, vendor, extensions }) =>
      ({ name, epoch, version, release, arch: a, nevra, repo, location, checksum, size, ...(path && { path }), license: license ?? null, vendor: vendor ?? null, extensions }));
    return { arch, packages, closures: output.closures ?? {}, repos: (output.repos ?? []).map(redactRepoState) };
  }

  private closing?: Promise<void>;

  /** Ends the helpers (once; later calls wait for the same end). */
  close(): Promise<void> {
    this.closing ??= Promise.all(this.helpers.map((h) => h.close())).then(() => {});
    return this.closing;
  }
}
