// Orchestration: inputs → plan → solve → download → repo → metadata, every architecture concurrently.
// The CLI and the action only translate their inputs into ComposeOptions and the result back out.
import { mkdtemp, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ComposeError, ConfigError, type ComposeProblem, type ConfigProblem } from './errors.js';
import { readBase, type BaseInfo, type BaseSpec } from './inputs/base.js';
import { prepareBase } from './inputs/remote.js';
import { readExtensionsYaml, type ExtensionsConfig } from './inputs/extensions-yaml.js';
import { loadRepos, type RepoDefinition } from './inputs/repos.js';
import { evrOf, planArch } from './plan/plan.js';
import type { ArchPlan } from './plan/types.js';
import { detectDnf, solve, type DnfBackend, type DnfPreference } from './solve/dnf.js';
import type { SolveResult } from './solve/types.js';
import { fetchPackages, type FetchedPackage } from './download/fetch.js';
import { commitArches, discardStaged, stageArch, writeJson, type StagedArch } from './repo/output.js';
import { buildMetadata, serializeMetadata } from './metadata/metadata.js';
import { buildExtensionsJson, serializeExtensionsJson } from './metadata/extensions-json.js';
import { combinedState, inputFingerprint, stateChecksum, type PackageFile } from './metadata/state.js';
import { GENERATOR } from './version.js';
import { checkProblems, type ArchExtensions } from './report/checks.js';

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  /**
   * Lines about one architecture. Architectures run concurrently, so the CLI prefixes each line
   * and the action shows them as one collapsible group once the architecture is done.
   */
  scope(name: string): ScopedLogger;
}

export interface ScopedLogger {
  /** The lines that follow belong to this stage (base, solve, download, repo). */
  stage(name: string): void;
  info(message: string): void;
  warn(message: string): void;
  end(): void;
}

export const silentLogger: Logger = { info() {}, warn() {}, scope: () => ({ stage() {}, info() {}, warn() {}, end() {} }) };

export interface ComposeOptions {
  config: string;
  base: BaseSpec;
  arches: string[];
  /** Directory of .repo files; undefined to use only `repoPairs`. */
  reposDir?: string;
  repoPairs: string[];
  /** Default: the base's os-release VERSION_ID. */
  releasever?: string;
  weakDeps: boolean;
  cacheDir: string;
  /** State checksums of an earlier run: an architecture whose state is among them is not rewritten. */
  previousState: string[];
  output: string;
  /** Which dnf resolves: dnf5 where its Python bindings are present, else dnf4 (`auto`). */
  dnf?: DnfPreference;
  /** `depsolve`: resolve every architecture and extension, download and write nothing. */
  mode?: 'compose' | 'depsolve';
  /** Make the same extension resolving to different versions on different architectures an error. */
  strictCrossArch?: boolean;
  log?: Logger;
}

export interface ArchResult extends ArchExtensions {
  arch: string;
  stateChecksum: string;
  inputFingerprint: string;
  changed: boolean;
  packageCount: number;
  outputDir: string;
  metadataPath: string;
  extensionsJsonPath: string;
  /** Bytes fetched from remote repos (0 for file:// repos and unchanged runs). */
  downloadBytes: number;
  /** Milliseconds per stage: base, solve, download, repo. */
  timings: Record<string, number>;
}

export interface ComposeResult {
  config: ExtensionsConfig;
  /** For several architectures, a checksum over all of theirs; for one, that architecture's. */
  stateChecksum: string;
  changed: boolean;
  arches: ArchResult[];
}

export function defaultCacheDir(): string {
  return join(process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'compose-extensions');
}

/** Repo ids the config names but no .repo file or --repo defines, each at the line that names it. */
function unknownRepoProblems(config: ExtensionsConfig, repos: RepoDefinition[]): ConfigProblem[] {
  const known = new Set(repos.map((r) => r.id));
  const list = [...known].sort().join(', ') || '(none defined)';
  const named = [
    ...config.repos.map((id, i) => ({ id, path: `repos[${i}]` })),
    ...config.extensions.flatMap((e) => e.repos.map((id, i) => ({ id, path: `extensions.${e.name}.repos[${i}]` }))),
  ];
  return named
    .filter(({ id }) => !known.has(id))
    .map(({ id, path }) => ({
      file: config.file,
      ...(config.locations[path] ?? { line: 1, col: 1 }),
      path,
      message: `unknown repo "${id}"; known repos: ${list}`,
    }));
}

export async function validateConfig(path: string): Promise<ExtensionsConfig> {
  return readExtensionsYaml(path);
}

interface Composed {
  result: ArchResult;
  staged?: StagedArch;
}

/** An architecture after the solve: everything its state depends on but the downloaded files. */
interface Resolved {
  arch: string;
  base: BaseInfo;
  plan: ArchPlan;
  solved: SolveResult;
  fingerprint: string;
  /** Known before downloading when every repo declares sha256, which is the file's sha256. */
  declaredState?: string;
  log: ScopedLogger;
  timings: Record<string, number>;
}

async function resolveArch(
  backend: DnfBackend,
  arch: string,
  config: ExtensionsConfig,
  repos: RepoDefinition[],
  options: ComposeOptions,
  workDir: string,
  log: ScopedLogger,
): Promise<Resolved> {
  const timings: Record<string, number> = {};
  let started = Date.now();
  log.stage('base');
  const base: BaseInfo = await readBase(options.base, arch, join(workDir, 'base'));
  timings['base'] = Date.now() - started;
  const releasever = options.releasever ?? base.osRelease['VERSION_ID'];
  if (!releasever) {
    throw new ComposeError([{ arch, message: 'the base os-release has no VERSION_ID: pass --releasever' }]);
  }
  log.info(`base ${base.ref}${base.commit ? ` (${base.commit.slice(0, 12)})` : ''}: ${base.packages.length} packages, releasever ${releasever}`);
  log.stage('solve');
  const { plan, problems } = planArch(config, arch, base.packages, { releasever, weakDeps: options.weakDeps });
  log.info(`${plan.extensions.length} extensions apply; repos: ${plan.repos.join(', ') || '(none)'}`);

  // Solve even when planning found problems, so that one run reports all of them.
  started = Date.now();
  const solving = solve({ backend, plan, repos, root: base.root, workDir: join(workDir, 'solve'), cacheDir: join(options.cacheDir, backend, arch) });
  const solved = await solving.catch((err: unknown) => {
    if (err instanceof ComposeError) throw new ComposeError([...problems, ...err.problems]);
    throw err;
  });
  if (problems.length > 0) throw new ComposeError(problems);
  timings['solve'] = Date.now() - started;
  log.info(`resolved ${solved.packages.length} packages`);
  const declared = solved.packages.every((p) => p.checksum.type === 'sha256');
  return {
    arch, base, plan, solved, log, timings,
    fingerprint: inputFingerprint({ plan, base, repos: solved.repos }),
    ...(declared && { declaredState: archState(plan, base, solved, (p) => p.checksum.value) }),
  };
}

async function writeArch(
  r: Resolved,
  config: ExtensionsConfig,
  options: ComposeOptions,
  workDir: string,
  unchanged: (state: string) => boolean,
): Promise<Composed> {
  const { arch, plan, base, solved, log, timings } = r;
  if (r.declaredState && unchanged(r.declaredState)) {
    log.info(`state ${r.declaredState} equals the previous state: nothing to download or write`);
    return { result: summarize(r, r.declaredState, false, options.output, 0) };
  }
  let started = Date.now();
  log.stage('download');
  const fetched = await fetchPackages(solved.packages, solved.repos, {
    arch,
    cacheDir: options.cacheDir,
    workDir: join(workDir, 'download'),
    onProgress: progressLogger(log, solved.packages.length),
  });
  timings['download'] = Date.now() - started;
  const sha256 = new Map(fetched.map((p) => [p.nevra, p.sha256]));
  const state = archState(plan, base, solved, (p) => sha256.get(p.nevra)!);
  if (unchanged(state)) {
    log.info(`state ${state} equals the previous state: nothing to write`);
    return { result: summarize(r, state, false, options.output, 0) };
  }
  const downloadBytes = fetched.filter((p) => !p.path).reduce((n, p) => n + p.size, 0);
  started = Date.now();
  log.stage('repo');
  const staged = await stageArch(options.output, arch, fetched);
  try {
    const files = filesOf(fetched, staged);
    const metadata = buildMetadata({ plan, base, solve: solved, files, generator: GENERATOR, stateChecksum: state, inputFingerprint: r.fingerprint });
    await writeJson(staged.dir, 'metadata.json', serializeMetadata(metadata));
    const architectures = Object.fromEntries(config.extensions.map((e) => [e.name, e.architectures]));
    await writeJson(staged.dir, 'extensions.json', serializeExtensionsJson(buildExtensionsJson(plan, architectures)));
  } catch (err) {
    await discardStaged([staged]);
    throw err;
  }
  timings['repo'] = Date.now() - started;
  log.info(`staged ${fetched.length} packages, state ${state}`);
  return { result: summarize(r, state, true, options.output, downloadBytes), staged };
}

function archState(plan: ArchPlan, base: BaseInfo, solved: SolveResult, sha256Of: (p: SolveResult['packages'][number]) => string): string {
  const files: Record<string, PackageFile> = {};
  for (const p of solved.packages) files[p.nevra] = { filename: '', sha256: sha256Of(p) };
  return stateChecksum({ plan, base, solve: solved, files });
}

function filesOf(fetched: FetchedPackage[], staged: StagedArch): Record<string, PackageFile> {
  return Object.fromEntries(fetched.map((p) => [p.nevra, { filename: staged.filenames.get(p.nevra)!, sha256: p.sha256 }]));
}

function summarize(r: Resolved, state: string, changed: boolean, output: string, downloadBytes: number): ArchResult {
  const outputDir = join(output, r.arch);
  const sizes = new Map(r.solved.packages.map((p) => [p.nevra, p.size]));
  const pins = new Map(r.base.packages.map((p) => [p.name, evrOf(p)]));
  return {
    arch: r.arch,
    stateChecksum: state,
    inputFingerprint: r.fingerprint,
    changed,
    packageCount: r.solved.packages.length,
    outputDir,
    metadataPath: join(outputDir, 'metadata.json'),
    extensionsJsonPath: join(outputDir, 'extensions.json'),
    extensions: Object.fromEntries(
      r.plan.extensions.map((e) => {
        const packages = r.solved.closures[e.name] ?? [];
        const pinnedEvr = e.matchBaseEvr ? pins.get(e.matchBaseEvr) : undefined;
        return [e.name, {
          kind: e.kind,
          requested: e.requested,
          ...(e.matchBaseEvr && { matchBaseEvr: e.matchBaseEvr }),
          ...(pinnedEvr && { pinnedEvr }),
          packages,
          size: packages.reduce((n, p) => n + (sizes.get(p) ?? 0), 0),
        }];
      }),
    ),
    downloadBytes,
    timings: r.timings,
  };
}

/** Progress lines at most every 10% of the packages, so large composes do not flood the log. */
function progressLogger(log: ScopedLogger, total: number) {
  const step = Math.max(1, Math.ceil(total / 10));
  return (done: number, all: number, bytes: number) => {
    if (done === all || (all > 50 && done % step === 0)) log.info(`verified ${done}/${all} packages (${(bytes / 1048576).toFixed(1)} MiB)`);
  };
}

export async function compose(options: ComposeOptions): Promise<ComposeResult> {
  const log = options.log ?? silentLogger;
  const config = await readExtensionsYaml(options.config);
  const repos = await loadRepos(options.reposDir, options.repoPairs);
  const unknown = unknownRepoProblems(config, repos);
  if (unknown.length > 0) throw new ConfigError(unknown);
  const dnf = await detectDnf(options.dnf ?? 'auto');
  log.info(`resolving with ${dnf.backend} ${dnf.version}`);
  // Once per run: a tag resolved to one digest, a remote repo pulled, an archive fetched, so that
  // every architecture and every state checksum refer to the same base.
  options = { ...options, base: await prepareBase(options.base, options.arches, { cacheDir: join(options.cacheDir, 'bases'), log: (m) => log.info(m) }) };

  const workDir = await mkdtemp(join(tmpdir(), 'compose-extensions-'));
  const scopes = new Map(options.arches.map((arch) => [arch, log.scope(arch)]));
  let staged: StagedArch[] = [];
  try {
    // Phase 1, every architecture concurrently: base, plan, solve.
    const resolved = await settleAll(options.arches, (arch) =>
      resolveArch(dnf.backend, arch, config, repos, options, join(workDir, arch), scopes.get(arch)!),
    );
    // Checks across architectures, before anything is downloaded or written.
    const summaries = resolved.map((r) => summarize(r, r.declaredState ?? '', false, options.output, 0));
    const failed = checkProblems(summaries, options.strictCrossArch ?? false);
    if (failed.length > 0) throw new ComposeError(failed);
    if (options.mode === 'depsolve') {
      const arches = summaries;
      return { config, stateChecksum: arches.every((a) => a.stateChecksum) ? combinedState(arches) : '', changed: false, arches };
    }
    // `previous-state` may be one architecture's state or the combined state of all of them.
    const declared = resolved.map((r) => ({ arch: r.arch, stateChecksum: r.declaredState ?? '' }));
    const allUnchanged = declared.every((d) => d.stateChecksum) && options.previousState.includes(combinedState(declared));
    const unchanged = (state: string) => allUnchanged || options.previousState.includes(state);
    // Phase 2: download, verify, stage.
    const composed = await settleAll(resolved, (r) => writeArch(r, config, options, join(workDir, r.arch), unchanged), (s) => {
      staged = s.flatMap((c) => (c.staged ? [c.staged] : []));
    });
    staged = composed.flatMap((c) => (c.staged ? [c.staged] : []));
    await commitArches(options.output, staged);
    staged = [];
    const arches = composed.map((c) => c.result);
    return { config, stateChecksum: combinedState(arches), changed: arches.some((a) => a.changed), arches };
  } finally {
    // All or nothing: on any failure the previous output of every architecture stays as it was.
    await discardStaged(staged);
    for (const scope of scopes.values()) scope.end();
    await rm(workDir, { recursive: true, force: true });
  }
}

/**
 * Runs `work` for every item concurrently and waits for all of them; any failure becomes one
 * ComposeError with every problem, after `onPartial` has seen the results that did succeed.
 */
async function settleAll<T extends { arch: string } | string, R>(
  items: T[],
  work: (item: T) => Promise<R>,
  onPartial: (succeeded: R[]) => void = () => {},
): Promise<R[]> {
  const settled = await Promise.allSettled(items.map(work));
  const problems: ComposeProblem[] = [];
  for (const [i, s] of settled.entries()) {
    if (s.status === 'fulfilled') continue;
    const item = items[i]!;
    const arch = typeof item === 'string' ? item : item.arch;
    const err = s.reason as Error;
    if (err instanceof ComposeError) problems.push(...err.problems);
    else problems.push({ arch, message: err.message });
  }
  const results = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  if (problems.length > 0) {
    onPartial(results);
    throw new ComposeError(problems);
  }
  return results;
}
