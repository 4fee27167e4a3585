// Orchestration: inputs → plan → solve → download → repo → metadata, every architecture concurrently.
// The CLI and the action only translate their inputs into ComposeOptions and the result back out.
import { chmod, mkdtemp, rm, rmdir, stat } from 'node:fs/promises';
import { availableParallelism, homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ComposeError, ConfigError, UsageError, type ComposeProblem, type ConfigProblem } from './errors.js';
import { readBase } from './base/base.js';
import type { BaseInfo, BaseSpec } from './base/types.js';
import { prepareBase } from './base/remote.js';
import { locateProblems, readExtensionsYaml, type ExtensionsConfig } from './inputs/extensions-yaml.js';
import { DEFAULT_DNF_CONF, DEFAULT_VARS_DIRS, loadRepos, readMainOptions, readRepoVars, repoSecrets, type RepoDefinition } from './inputs/repos.js';
import { evrOf, planArch } from './plan/plan.js';
import type { ArchPlan } from './plan/types.js';
import { detectDnf, DnfSolver, solverLayout, solvesAtOnce, type DnfPreference, type RepoContext } from './solve/dnf.js';
import { baseIdentity, currentRepomd, findResolved, inputFingerprint, inputsKey, saveResolved, type ResolvedRecord } from './solve/reuse.js';
import { DnfFetcher } from './download/dnf-fetch.js';
import { fetchRoute, type FetchRoute } from './download/route.js';
import type { SolveResult } from './solve/types.js';
import { fetchPackages, type FetchedPackage } from './download/fetch.js';
import { commitArches, discardStaged, recoverOutput, stageArch, writeJson, type StagedArch } from './repo/output.js';
import { describeHolder, lockDirs, removeCachePartials, WORK_DIR_PREFIX, type RunLocks } from './repo/lock.js';
import { ownedStem, removeDeadLeftovers, removeDeadScratch } from './tools/leftovers.js';

/** The run's work directory in the temp dir: `compose-extensions-run-<pid>-<host>-…`. */
const RUN_DIR_PREFIX = `${WORK_DIR_PREFIX}run-`;
import { checkOutputOverlap } from './repo/guard.js';
import { buildMetadata, serializeMetadata } from './metadata/metadata.js';
import { buildExtensionsJson, serializeExtensionsJson } from './metadata/extensions-json.js';
import { buildSboms, sbomFormats, sourceDateEpoch, type RpmHeader, type SbomChoice } from './metadata/sbom.js';
import { readFileHeaders } from './tools/rpm.js';
import { combinedState, sha256Of, sorted, stateChecksum, type PackageFile } from './metadata/state.js';
import { limiter, type Limiter } from './tools/limit.js';
import { GENERATOR } from './version.js';
import { writeSysexts, type SysextOptions } from './sysext/index.js';
import { checkSysextNames } from './sysext/options.js';
import { checkProblems, type ArchExtensions } from './report/checks.js';

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  /** A value that must never be shown (a repo password): the action masks it in the log. */
  secret?(value: string): void;
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
  /** Directories of repo variable files (dnf's varsdir); default /etc/dnf/vars and /etc/yum/vars. */
  varsDirs?: string[];
  /** The dnf.conf whose [main] transfer options (proxy, TLS, timeouts) apply to every repo; default /etc/dnf/dnf.conf. */
  dnfConf?: string;
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
  /** Called once no architecture needs to read the base any more (registry credentials can go). */
  onBasesRead?: () => Promise<void>;
  /** Wait for another run's lock on the output or cache directory instead of failing at once. */
  waitLock?: boolean;
  /**
   * Runs after a successful compose with the output still locked, so that what it reads (an
   * upload, a push) is this run's output and no concurrent run's.
   */
  whileLocked?: (result: ComposeResult) => Promise<void>;
  /** Write an architecture that has no package (an empty repo) instead of refusing. */
  allowEmpty?: boolean;
  /** Which SBOMs to write beside metadata.json (default `spdx`). */
  sbom?: SbomChoice;
  /** System extension images per os-extension (src/sysext/); off when undefined. */
  sysext?: SysextOptions;
  log?: Logger;
}

export interface ArchResult extends ArchExtensions {
  arch: string;
  stateChecksum: string;
  inputFingerprint: string;
  /** The base read and the solve were skipped: the inputs were those of an earlier run's record. */
  reused: boolean;
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

/** Problems with the file:line:col of their extension, when the config (read again) still parses. */
export async function locateFailures(problems: ComposeProblem[], configPath: string): Promise<ComposeProblem[]> {
  return locateProblems(problems, await readExtensionsYaml(configPath).catch(() => undefined));
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
  /** Taken from an earlier run's record: the base was not read and dnf did not run. */
  reused: boolean;
  /** Known before downloading when every repo declares sha256, which is the file's sha256. */
  declaredState?: string;
  log: ScopedLogger;
  timings: Record<string, number>;
}

/** What every architecture shares while it resolves. */
interface RunContext {
  config: ExtensionsConfig;
  repos: RepoDefinition[];
  /** Repo variables, the same for every architecture and both dnf backends. */
  vars: Record<string, string>;
  /** dnf.conf's [main] transfer options (proxy, TLS…), applied to every repo as dnf does. */
  main: Record<string, string>;
  /** Which client fetches each repo's files (see download/route.ts). */
  routes: Record<string, FetchRoute>;
  /** dnf's own downloader, started only when a repo needs it. */
  fetcher: DnfFetcher;
  options: ComposeOptions;
  dnf: { backend: string; version: string };
  solver: DnfSolver;
  /** Base reads at once: no more than the helpers can take, so their ostree and rpm processes do not pile up. */
  baseReads: Limiter;
  /** createrepo_c runs at once: each uses two cores, and four at the end of a run held 70 MiB together. */
  repoBuilds: Limiter;
  workDir: string;
}

async function resolveArch(run: RunContext, arch: string, log: ScopedLogger): Promise<Resolved> {
  const { config, repos, options, solver } = run;
  const workDir = join(run.workDir, arch);
  const timings: Record<string, number> = {};
  let started = Date.now();
  log.stage('base');
  // Unchanged inputs (config, base identity, every repo's repomd.xml): the recorded answer stands.
  const identity = await baseIdentity(options.base, arch);
  const keyOf = (baseName: string) => inputsKey({
    generator: GENERATOR, dnf: run.dnf, arch, config, base: baseName,
    ...(options.releasever !== undefined && { releasever: options.releasever }),
    weakDeps: options.weakDeps, repos, vars: run.vars, main: run.main,
  });
  // A system extension is checked against the base's rpmdb: a recorded solve has none to read.
  const key = identity && !options.sysext ? keyOf(identity) : undefined;
  const recorded = key !== undefined ? await findResolved(options.cacheDir, key, (record) => repomdNow(run, record)) : undefined;
  if (recorded) {
    timings['base'] = Date.now() - started;
    log.info(`inputs unchanged since an earlier run (${recorded.fingerprint}): base read and solve skipped`);
    const base = { ...recorded.base, root: '' };
    return withState({ arch, base, plan: recorded.plan, solved: recorded.solved, fingerprint: recorded.fingerprint, reused: true, log, timings });
  }
  solver.start();

  const base: BaseInfo = await run.baseReads(() => readBase(options.base, arch, join(workDir, 'base'), { accounts: Boolean(options.sysext) }));
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
  const solving = solver.solve({ plan, repos, vars: run.vars, main: run.main, root: base.root, workDir: join(workDir, 'solve'), cacheDir: dnfCache(run, arch) });
  const solved = await solving.catch((err: unknown) => {
    if (err instanceof ComposeError) throw new ComposeError([...problems, ...err.problems]);
    throw err;
  });
  if (problems.length > 0) throw new ComposeError(problems);
  timings['solve'] = Date.now() - started;
  log.info(`resolved ${solved.packages.length} packages`);
  // A base without a name (a rootfs directory) is named by its packages, which is all the solve read of it.
  const fingerprint = inputFingerprint(key ?? keyOf(`packages:${sha256Of(sorted(base.packages.map((p) => p.nevra)))}`), solved.repos);
  if (key !== undefined) await saveResolved(options.cacheDir, key, fingerprint, { base, plan, solved });
  return withState({ arch, base, plan, solved, fingerprint, reused: false, log, timings });
}

/** dnf's metadata cache of an architecture, shared by the solve and dnf's downloader. */
const dnfCache = (run: RunContext, arch: string) => join(run.options.cacheDir, run.dnf.backend, arch);

/** What dnf's downloader needs to know of an architecture's repos. */
function repoContext(run: RunContext, plan: ArchPlan, workDir: string): RepoContext {
  return { arch: plan.arch, releasever: plan.releasever, ids: plan.repos, repos: run.repos, vars: run.vars, main: run.main, cacheDir: dnfCache(run, plan.arch), workDir };
}

/** Each recorded repo's repomd.xml now: our client for plain baseurls, dnf for the rest (metalinks too). */
async function repomdNow(run: RunContext, record: ResolvedRecord): Promise<(string | undefined)[]> {
  const repos = record.solved.repos;
  const viaDnf = repos.some((r) => run.routes[r.id] === 'dnf')
    ? await run.fetcher.repomd(repoContext(run, record.plan, join(run.workDir, record.plan.arch, 'repomd'))).catch(() => [])
    : [];
  return Promise.all(repos.map((r) => (run.routes[r.id] === 'dnf'
    ? Promise.resolve(viaDnf.find((d) => d.id === r.id)?.repomdSha256)
    : currentRepomd(r.urls ?? [r.url]))));
}

/** The state is known before downloading when every repo declares sha256, which is the file's sha256. */
function withState(r: Omit<Resolved, 'declaredState'>): Resolved {
  const declared = r.solved.packages.every((p) => p.checksum.type === 'sha256');
  return { ...r, ...(declared && { declaredState: archState(r.plan, r.base, r.solved, (p) => p.checksum.value) }) };
}

async function writeArch(run: RunContext, r: Resolved, unchanged: (state: string) => boolean): Promise<Composed> {
  const { config, options } = run;
  const { arch, plan, base, solved, log, timings } = r;
  const workDir = join(run.workDir, arch);
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
    routes: run.routes,
    dnf: { fetcher: run.fetcher, repos: repoContext(run, plan, join(workDir, 'download', 'dnf')) },
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
  const staged = await stageArch(options.output, arch, fetched, { indexing: run.repoBuilds, checksumCache: join(options.cacheDir, 'createrepo') });
  try {
    const files = filesOf(fetched, staged);
    const sysext = options.sysext && (await writeSysexts({ options: options.sysext, config, plan, base, solved, fetched, dir: staged.dir, workDir: join(workDir, 'sysext'), log }));
    const metadata = buildMetadata({ plan, base, solve: solved, files, generator: GENERATOR, stateChecksum: state, inputFingerprint: r.fingerprint, ...(sysext && { sysext }) });
    await writeJson(staged.dir, 'metadata.json', serializeMetadata(metadata));
    await writeSboms(staged.dir, { plan, base, solve: solved, files, generator: GENERATOR, stateChecksum: state, inputFingerprint: r.fingerprint }, options.sbom ?? 'spdx');
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

/**
 * The SBOMs of one architecture. License and Vendor come with the solve (the repo metadata states
 * them as the headers do); only a solve recorded before they were kept has the staged files' headers
 * read, in one rpm process.
 */
async function writeSboms(dir: string, input: Parameters<typeof buildMetadata>[0], choice: SbomChoice): Promise<void> {
  const formats = sbomFormats(choice);
  if (formats.length === 0) return;
  const headers: Record<string, RpmHeader> = {};
  const solvedKnow = input.solve.packages.every((p) => p.license !== undefined && p.vendor !== undefined);
  if (solvedKnow) {
    for (const p of input.solve.packages) headers[p.nevra] = { license: p.license ?? null, vendor: p.vendor ?? null };
  } else {
    const nevras = Object.keys(input.files);
    const read = await readFileHeaders(nevras.map((n) => join(dir, input.files[n]!.filename)));
    for (const [i, h] of read.entries()) {
      if (h.nevra !== nevras[i]) throw new Error(`sbom: ${input.files[nevras[i]!]!.filename} holds ${h.nevra}, not ${nevras[i]}`);
      headers[h.nevra] = { license: h.license, vendor: h.vendor };
    }
  }
  const epoch = sourceDateEpoch(process.env['SOURCE_DATE_EPOCH']);
  for (const sbom of buildSboms({ ...input, headers, sourceDateEpoch: epoch }, formats)) await writeJson(dir, sbom.filename, sbom.content);
}

function archState(plan: ArchPlan, base: BaseInfo, solved: SolveResult, sha256Of: (p: SolveResult['packages'][number]) => string): string {
  const files: Record<string, PackageFile> = {};
  for (const p of solved.packages) files[p.nevra] = { filename: '', sha256: sha256Of(p) };
  return stateChecksum({ plan, base, solve: solved, files });
}

function filesOf(fetched: FetchedPackage[], staged: StagedArch): Record<string, PackageFile> {
  return Object.fromEntries(fetched.map((p) => [p.nevra, { filename: staged.filenames.get(p.nevra)!, sha256: p.sha256, ...(p.url && { url: p.url }) }]));
}

function summarize(r: Resolved, state: string, changed: boolean, output: string, downloadBytes: number): ArchResult {
  const outputDir = join(output, r.arch);
  const sizes = new Map(r.solved.packages.map((p) => [p.nevra, p.size]));
  const pins = new Map(r.base.packages.map((p) => [p.name, evrOf(p)]));
  return {
    arch: r.arch,
    stateChecksum: state,
    inputFingerprint: r.fingerprint,
    reused: r.reused,
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
  const vars = await readRepoVars(options.varsDirs ?? DEFAULT_VARS_DIRS);
  const main = await readMainOptions(options.dnfConf ?? DEFAULT_DNF_CONF);
  for (const secret of repoSecrets(repos, vars, main)) log.secret?.(secret);
  const unknown = unknownRepoProblems(config, repos);
  if (unknown.length > 0) throw new ConfigError(unknown);
  if (options.sysext) checkSysextNames(config, options.sysext);
  const writing = options.mode !== 'depsolve';
  if (writing) {
    const usedRepos = [...config.repos, ...config.extensions.flatMap((e) => e.repos)];
    await checkOutputOverlap({ ...options, repos, usedRepos });
  }
  // The lock lives in the output directory: a failed first run removes the directory again.
  const outputStat = writing ? await stat(options.output).catch(() => undefined) : undefined;
  if (outputStat && !outputStat.isDirectory()) throw new UsageError(`the output ${options.output} exists and is not a directory`);
  const outputExisted = !writing || outputStat !== undefined;
  let locks: RunLocks | undefined;
  try {
    locks = await lockDirs(
      [...(writing ? [{ dir: options.output, what: `the output directory ${options.output}` }] : []), { dir: options.cacheDir, what: `the cache directory ${options.cacheDir}` }],
      options.waitLock ?? false,
      (what, holder) => log.info(`waiting for ${what}, locked by ${describeHolder(holder)}`),
    );
    if (!outputExisted) await chmod(options.output, 0o755); // created for the lock, whatever the umask
    await removeLeftovers(options, locks, log);
    const result = await composeLocked(options, log, config, repos, vars, main);
    await options.whileLocked?.(result);
    return result;
  } finally {
    await locks?.release();
    if (!outputExisted) await rmdir(options.output).catch(() => {}); // only if nothing was written
  }
}

/** What runs that died left: their temp dirs, an interrupted commit, staging dirs, partial cache files. */
async function removeLeftovers(options: ComposeOptions, locks: RunLocks, log: Logger): Promise<void> {
  for (const dir of [...await removeDeadLeftovers(tmpdir(), RUN_DIR_PREFIX), ...await removeDeadScratch()]) log.info(`removed ${dir}, left by a run that died`);
  if (options.mode !== 'depsolve') {
    const { completed, restored, removed } = await recoverOutput(options.output);
    if (completed.length > 0) log.info(`completed the commit of ${completed.join(', ')} that a run which died had begun`);
    if (restored.length > 0) log.info(`restored ${restored.join(', ')}, which an interrupted run had set aside`);
    if (removed.length > 0) log.info(`removed leftovers of an earlier run in ${options.output}: ${removed.join(', ')}`);
  }
  if (locks.tookOver.get(options.cacheDir)) {
    const partial = await removeCachePartials(options.cacheDir);
    if (partial.length > 0) log.info(`removed ${partial.length} partial files a run that died left in ${options.cacheDir}`);
  }
}

async function composeLocked(
  options: ComposeOptions, log: Logger, config: ExtensionsConfig, repos: RepoDefinition[], vars: Record<string, string>, main: Record<string, string>,
): Promise<ComposeResult> {
  const routes = Object.fromEntries(repos.map((r) => [r.id, fetchRoute(r, process.env, vars, main)]));
  // Once per run: a tag resolved to one digest, a remote repo pulled, an archive fetched, so that
  // every architecture and every state checksum refer to the same base.
  const [dnf, base] = await Promise.all([
    detectDnf(options.dnf ?? 'auto'),
    prepareBase(options.base, options.arches, { cacheDir: join(options.cacheDir, 'bases'), log: (m) => log.info(m) }),
  ]);
  log.info(`resolving with ${dnf.backend} ${dnf.version}`);
  options = { ...options, base };

  // Named by process and host from the moment it exists: a later run removes it if this process
  // dies before its cleanup, wherever it is killed (an owner file written after it left a window).
  const workDir = await mkdtemp(join(tmpdir(), ownedStem(RUN_DIR_PREFIX)));
  const layout = solverLayout(dnf.backend, options.arches.length);
  const solver = new DnfSolver(dnf.backend, workDir, layout);
  // createrepo_c runs with two workers: one run per two cores.
  const repoBuilds = limiter(Math.max(1, Math.floor(availableParallelism() / 2)));
  // One downloader process per architecture downloading at once, at most four (about 45 MiB each).
  const fetcher = new DnfFetcher(dnf.backend, workDir, Math.min(options.arches.length, 4));
  const run: RunContext = { config, repos, vars, main, routes, fetcher, options, dnf, solver, baseReads: limiter(solvesAtOnce(layout)), repoBuilds, workDir };
  const scopes = new Map(options.arches.map((arch) => [arch, log.scope(arch)]));
  let staged: StagedArch[] = [];
  const stagedOf = (cs: (Composed | undefined)[]) => cs.flatMap((c) => (c?.staged ? [c.staged] : []));
  try {
    // Without a previous state to compare with, an architecture downloads and stages as soon as its
    // own solve is done, while the others still solve; with one, every state is known first (the
    // combined state may match). Nothing reaches the output before the checks across architectures.
    const pipelined = options.mode !== 'depsolve' && options.previousState.length === 0;
    let unresolved = options.arches.length;
    const done = await settleAll(
      options.arches,
      async (arch) => {
        const r = await resolveArch(run, arch, scopes.get(arch)!).finally(async () => {
          if (--unresolved > 0) return;
          void solver.close(); // the helpers' memory goes back before the last downloads
          await options.onBasesRead?.(); // the base's registry credentials live no longer than the base reads
        });
        return { r, c: pipelined ? await writeArch(run, r, () => false) : undefined };
      },
      (partial) => (staged = stagedOf(partial.map((p) => p.c))),
    );
    staged = stagedOf(done.map((d) => d.c));
    const resolved = done.map((d) => d.r);
    const summaries = resolved.map((r) => summarize(r, r.declaredState ?? '', false, options.output, 0));
    const failed = checkProblems(summaries, options.strictCrossArch ?? false);
    if (failed.length > 0) throw new ComposeError(failed);
    if (options.mode === 'depsolve') {
      const arches = summaries;
      return { config, stateChecksum: arches.every((a) => a.stateChecksum) ? combinedState(arches) : '', changed: false, arches };
    }
    // An `architectures:` typo leaves nothing to compose: an empty repo over the output only when asked.
    const empty = options.allowEmpty ? [] : resolved.filter((r) => r.solved.packages.length === 0);
    if (empty.length > 0) {
      throw new ComposeError(empty.map((r) => ({
        arch: r.arch,
        message: `nothing to compose: ${r.plan.extensions.length === 0 ? 'no extension applies to this architecture' : 'no package resolved'}; pass --allow-empty to write an empty repository`,
      })));
    }
    let composed = done.map((d) => d.c!);
    if (!pipelined) {
      // `previous-state` may be one architecture's state or the combined state of all of them.
      const declared = resolved.map((r) => ({ arch: r.arch, stateChecksum: r.declaredState ?? '' }));
      const allUnchanged = declared.every((d) => d.stateChecksum) && options.previousState.includes(combinedState(declared));
      const unchanged = (state: string) => allUnchanged || options.previousState.includes(state);
      composed = await settleAll(resolved, (r) => writeArch(run, r, unchanged), (s) => {
        staged = stagedOf(s);
      });
      staged = stagedOf(composed);
    }
    await commitArches(options.output, staged);
    staged = [];
    const arches = composed.map((c) => c.result);
    return { config, stateChecksum: combinedState(arches), changed: arches.some((a) => a.changed), arches };
  } finally {
    // All or nothing: on any failure the previous output of every architecture stays as it was.
    await discardStaged(staged);
    await solver.close();
    await fetcher.close();
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
