// The dnf helper processes (dnf4-helper.py, dnf5-helper.py) and the part of a request every one of
// them reads: used by the solve (DnfSolver) and by the download (DnfFetcher), which imports this
// module and nothing else of solve/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { ToolError, type ComposeProblem } from '../errors.js';
import { releaseverVars, renderRepoFile, type RepoDefinition } from '../inputs/repos.js';
import { systemPython, type DnfBackend } from '../tools/dnf-python.js';
import { lastLines } from '../tools/exec.js';
import { underFileSizeLimit } from '../tools/prlimit.js';
import { redactUrls } from '../tools/redact.js';
import type { SolveResult } from './types.js';

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

// Beside this module in src/, and beside the bundle in dist/ (scripts/bundle.mjs copies them there).
const HERE = dirname(fileURLToPath(import.meta.url));
const SCRIPTS: Record<DnfBackend, string> = { dnf4: 'dnf4-helper.py', dnf5: 'dnf5-helper.py' };

export type HelperAnswer = Partial<SolveResult> & { id?: number; problems?: ComposeProblem[]; error?: string };

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
class Helper {
  readonly pending = new Map<number, Pending>();
  private readonly child: ResultPromise;
  private stderr = '';
  private exited?: Error;

  constructor(backend: DnfBackend, home: string, threads: number, maxFileBytes = HELPER_MAX_FILE_BYTES) {
    // -B: no __pycache__ beside the helpers (an untracked directory in the user's checkout of dist/).
    // No file dnf writes (repo metadata, solv caches) may pass maxFileBytes: an endless repomd.xml
    // fails with EFBIG (Python ignores SIGXFSZ) instead of filling the disk.
    const [file, args] = underFileSizeLimit(systemPython(), ['-B', join(HERE, SCRIPTS[backend]), '--threads', String(threads)], maxFileBytes);
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
function startHelper(backend: DnfBackend, home: string, threads = 1, maxFileBytes = HELPER_MAX_FILE_BYTES): Helper {
  mkdirSync(join(home, 'tmp'), { recursive: true, mode: 0o700 }); // the helper's TMPDIR
  writeFileSync(join(home, '.rpmmacros'), '%_dbpath /usr/lib/sysimage/rpm\n');
  return new Helper(backend, home, threads, maxFileBytes);
}

/** How many helper processes a pool may start, and how many requests each takes at once. */
export interface HelperLayout {
  helpers: number;
  threads: number;
}

/**
 * Helper processes started as requests come, never more than the layout's; a request goes to one
 * with a free thread, else to a new one, else waits at the least busy one.
 */
export class HelperPool {
  private readonly helpers: Helper[] = [];
  private nextId = 0;
  private closing?: Promise<void>;

  constructor(
    private readonly backend: DnfBackend,
    /** Helper n's HOME, with its rpm macros, is `<home>-<n>`. */
    private readonly home: string,
    private readonly layout: HelperLayout,
    /** The most a file dnf writes may be. */
    private readonly maxFileBytes = HELPER_MAX_FILE_BYTES,
  ) {}

  private helper(): Helper {
    const idle = this.helpers.find((h) => h.pending.size < this.layout.threads);
    if (idle) return idle;
    if (this.helpers.length < this.layout.helpers) {
      // Synchronously, so that requests arriving together cannot start more helpers than allowed.
      const helper = startHelper(this.backend, `${this.home}-${this.helpers.length}`, this.layout.threads, this.maxFileBytes);
      this.helpers.push(helper);
      return helper;
    }
    return this.helpers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  }

  ask(arch: string, input: object): Promise<HelperAnswer> {
    return this.helper().ask(this.nextId++, arch, input);
  }

  /** Starts a helper ahead of the first request, so that Python and dnf load meanwhile. */
  start(): void {
    if (this.helpers.length === 0) this.helper();
  }

  /** Helper processes started so far. */
  get processes(): number {
    return this.helpers.length;
  }

  /** Ends the helpers (once; later calls wait for the same end). */
  close(): Promise<void> {
    this.closing ??= Promise.all(this.helpers.map((h) => h.close())).then(() => {});
    return this.closing;
  }
}
