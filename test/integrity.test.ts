// The real CLI (bundled from src/ here), killed with SIGKILL at every step of the commit protocol
// and at random moments, and two real runs into one output at once: every architecture's output is
// always wholly one run's, the next run completes or undoes what a killed one began, and nothing is
// left behind.
import { execa, type ResultPromise } from 'execa';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { BASE_REF, buildFixtureDistro, type FixtureDistro } from './fixtures/distro.js';
import { ROOT } from './fixtures/runner.js';
import type { Metadata } from '../src/metadata/metadata.js';

const ARCHES = ['x86_64', 'aarch64'] as const;
const CONFIGS = {
  A: `repos: [fedora]
extensions:
  usbguard:
    packages: [usbguard]
  kernel-devel:
    kind: development
    match-base-evr: kernel
    packages: [kernel-devel]
`,
  B: `repos: [fedora]
extensions:
  tools:
    packages: [tool-a, needs-epochy]
  devtools:
    kind: development
    packages: [devtool, libfoo]
`,
};
type Run = keyof typeof CONFIGS;
/** Fails in the solve, after the run took its locks and recovered the output. */
const FAILING = `repos: [fedora]
extensions:
  missing:
    packages: [no-such-package]
`;
const JOURNAL = '.commit-journal.json';
const LOCK = '.compose-extensions.lock';
const SEED = Number(process.env['INTEGRITY_SEED'] ?? Date.now() % 1_000_000);

let distro: FixtureDistro;
let dir: string;
let cli: string;
/** TMPDIR of the CLI runs: their temp dirs are checked for leftovers. */
let tmp: string;
let server: Server;
let slow: Server;
let reposDir: string;
let slowReposDir: string;
const files: Record<Run | 'failing', string> = { A: '', B: '', failing: '' };
/** Each configuration's state per architecture, from a clean run. */
const states: Record<Run, Record<string, string>> = { A: {}, B: {} };

/** Serves the fixture's repos over http; each response `delayMs` late. */
async function serve(root: string, delayMs: number): Promise<{ server: Server; url: string }> {
  const srv = createServer((req, res) => {
    const file = join(root, normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)));
    setTimeout(() => {
      readFile(file).then((body) => res.writeHead(200, { 'content-length': body.length }).end(body), () => res.writeHead(404).end());
    }, delayMs);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { server: srv, url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}` };
}

async function repoDir(name: string, url: string): Promise<string> {
  const d = join(dir, name);
  await mkdir(d);
  await writeFile(join(d, 'fixture.repo'), `[fedora]\nname=Fixture main\nbaseurl=${url}/repos/main/$basearch\ngpgcheck=0\n`);
  return d;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ce-integrity-'));
  tmp = join(dir, 'tmp');
  await mkdir(tmp);
  const bundle = join(dir, 'bundle');
  await execa('npx', ['ncc', 'build', join(ROOT, 'src/cli/index.ts'), '-o', bundle, '--quiet', '--target', 'es2022'], { cwd: ROOT });
  // As scripts/bundle.mjs does: the helpers and the modules they import beside themselves.
  for (const helper of (await readdir(join(ROOT, 'src/solve'))).filter((f) => f.endsWith('.py'))) await copyFile(join(ROOT, 'src/solve', helper), join(bundle, helper));
  cli = join(bundle, 'index.js');
  distro = await buildFixtureDistro(dir);
  const fast = await serve(distro.dir, 0);
  server = fast.server;
  reposDir = await repoDir('repos', fast.url);
  const delayed = await serve(distro.dir, 700);
  slow = delayed.server;
  slowReposDir = await repoDir('slow-repos', delayed.url);
  for (const [name, text] of [['A', CONFIGS.A], ['B', CONFIGS.B], ['failing', FAILING]] as const) {
    files[name] = join(dir, `${name}.yaml`);
    await writeFile(files[name], text);
  }
  for (const run of ['A', 'B'] as const) {
    const output = join(dir, `clean-${run}`);
    const result = await start(run, output, join(dir, 'clean-cache'));
    expect(result.exitCode === 0 ? '' : result.stderr).toBe('');
    for (const arch of ARCHES) states[run][arch] = (await metadataOf(output, arch)).stateChecksum;
  }
  expect(states.A.x86_64).not.toBe(states.B.x86_64);
}, 300_000);

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await new Promise((r) => slow?.close(r));
  await rm(dir, { recursive: true, force: true });
});

function start(
  config: Run | 'failing',
  output: string,
  cache: string,
  options: { env?: Record<string, string>; extra?: string[]; repos?: string } = {},
): ResultPromise<{ reject: false; env: Record<string, string> }> {
  return execa(process.execPath, [
    cli, 'compose', '--config', files[config], '--ostree-repo', distro.ostreeRepo, '--base-rev', BASE_REF,
    ...ARCHES.flatMap((a) => ['--arch', a]), '--repos-dir', options.repos ?? reposDir, '--cache-dir', cache, '--output', output,
    ...(options.extra ?? []),
  ], { reject: false, env: { TMPDIR: tmp, ...options.env } });
}

async function metadataOf(output: string, arch: string): Promise<Metadata> {
  return JSON.parse(await readFile(join(output, arch, 'metadata.json'), 'utf8')) as Metadata;
}

const exists = (path: string) => stat(path).then(() => true, () => false);

/**
 * Which run each architecture's directory is wholly from: its state checksum names the run, and
 * its files are exactly that state's packages, repodata and the two JSON files. `missing` or
 * `incomplete` otherwise.
 */
async function snapshot(output: string): Promise<Record<string, Run | 'missing' | 'incomplete'>> {
  const result: Record<string, Run | 'missing' | 'incomplete'> = {};
  for (const arch of ARCHES) {
    const archDir = join(output, arch);
    if (!(await exists(archDir))) {
      result[arch] = 'missing';
      continue;
    }
    const metadata = await metadataOf(output, arch).catch(() => undefined);
    const run = (['A', 'B'] as const).find((r) => states[r][arch] === metadata?.stateChecksum);
    const expected = [...(metadata?.packages.map((p) => p.filename) ?? []), 'extensions.json', 'metadata.json', 'repodata', 'sbom.spdx.json'].sort();
    const complete = (await readdir(archDir)).sort().join() === expected.join() && (await exists(join(archDir, 'repodata/repomd.xml')));
    result[arch] = run && complete ? run : 'incomplete';
  }
  return result;
}

function whole(run: Run) {
  return Object.fromEntries(ARCHES.map((a) => [a, run]));
}

/** What a finished run must not leave: in the output, the cache and the temp dir. */
async function leftovers(output: string, cache: string): Promise<string[]> {
  const names = (d: string) => readdir(d).catch(() => [] as string[]);
  return [
    ...(await names(output)).filter((n) => !(ARCHES as readonly string[]).includes(n)).map((n) => `output/${n}`),
    ...(await names(cache)).filter((n) => n.startsWith(LOCK)).map((n) => `cache/${n}`),
    ...(await names(join(cache, 'packages'))).filter((n) => n.includes('.part')).map((n) => `cache/packages/${n}`),
    ...(await names(join(cache, 'resolved'))).filter((n) => n.endsWith('.part')).map((n) => `cache/resolved/${n}`),
    ...(await names(tmp)).filter((n) => n.startsWith('compose-extensions-')).map((n) => `tmp/${n}`),
  ];
}

function other(run: Run): Run {
  return run === 'A' ? 'B' : 'A';
}

/** The run the whole output is from (it must be one). */
async function current(output: string): Promise<Run> {
  const snap = await snapshot(output);
  const run = snap['x86_64'] as Run;
  expect(snap).toEqual(whole(run));
  return run;
}

/**
 * After a kill: without a journal, every architecture is wholly one run's; with one (the commit
 * was under way), each directory present is wholly the previous or the new run's, and the journal
 * names the moves the next run completes.
 */
async function checkAfterKill(output: string, before: Run, next: Run): Promise<boolean> {
  const journal = await exists(join(output, JOURNAL));
  const snap = await snapshot(output);
  if (!journal) {
    expect([JSON.stringify(whole(before)), JSON.stringify(whole(next))]).toContain(JSON.stringify(snap));
  } else {
    for (const arch of ARCHES) expect([before, next, 'missing']).toContain(snap[arch]);
    const moves = (JSON.parse(await readFile(join(output, JOURNAL), 'utf8')) as { moves: { arch: string }[] }).moves.map((m) => m.arch).sort();
    expect(moves).toEqual([...ARCHES].sort());
  }
  return journal;
}

/** The next run, even one that then fails, first completes an interrupted commit and removes leftovers. */
async function recoverWithFailingRun(output: string, cache: string, expected: Run, journal: boolean): Promise<void> {
  const failing = await start('failing', output, cache);
  expect(failing.exitCode).toBe(1);
  expect(failing.stderr).toContain(`error: ${files.failing}:3:3: missing on x86_64: `);
  expect(/completed the commit of (x86_64, aarch64|aarch64, x86_64) that a run which died had begun/.test(failing.stderr)).toBe(journal);
  expect(await snapshot(output)).toEqual(whole(expected));
  expect(await leftovers(output, cache)).toEqual([]);
}

describe('SIGKILL at each step of the commit protocol', () => {
  const output = () => join(dir, 'steps-out');
  const cache = () => join(dir, 'steps-cache');
  beforeAll(async () => {
    expect((await start('A', output(), cache())).exitCode).toBe(0);
  });

  // In protocol order: `commit` before the journal exists, `committed` after it is removed.
  const STEPS = ['commit', 'journal', 'aside:x86_64', 'moved:x86_64', 'aside:aarch64', 'moved:aarch64', 'moved', 'committed'];
  test.each(STEPS)('killed at %s: the output is one run\'s, and the next run completes or discards the commit', async (step) => {
    const before = await current(output());
    const next = other(before);
    const killed = await start(next, output(), cache(), { env: { COMPOSE_EXTENSIONS_TEST_KILL_AT: step } });
    expect(killed.signal).toBe('SIGKILL');
    const journal = await checkAfterKill(output(), before, next);
    // The journal exists from its write to the last move: then the run is committed.
    expect(journal).toBe(step !== 'commit' && step !== 'committed');
    if (step === 'committed') expect(await snapshot(output())).toEqual(whole(next));
    await recoverWithFailingRun(output(), cache(), step === 'commit' ? before : next, journal);
  });
});

test(`SIGKILL at 12 random moments (seed ${SEED}, INTEGRITY_SEED to repeat), a cold cache every third time`, async () => {
  let seed = SEED;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const output = join(dir, 'random-out');
  const cache = join(dir, 'random-cache');
  let started = Date.now();
  expect((await start('A', output, cache)).exitCode).toBe(0);
  const cold = Date.now() - started;
  const outcomes: string[] = [];
  for (let i = 0; i < 12; i++) {
    if (i % 3 === 0) await rm(cache, { recursive: true, force: true });
    const before = await current(output);
    const next = other(before);
    const child = start(next, output, cache);
    const delay = Math.floor(random() * cold * 1.2);
    const timer = setTimeout(() => child.kill('SIGKILL'), delay);
    const result = await child;
    clearTimeout(timer);
    const journal = await checkAfterKill(output, before, next);
    outcomes.push(result.exitCode === 0 ? 'finished' : journal ? 'killed in the commit' : 'killed');
    if (result.exitCode === 0) {
      // It finished before the kill.
      expect(await snapshot(output)).toEqual(whole(next));
      expect(await leftovers(output, cache)).toEqual([]);
      continue;
    }
    expect([`kill after ${delay} ms`, result.signal]).toEqual([`kill after ${delay} ms`, 'SIGKILL']);
    // Whichever the moment, the next run finds it either before the commit, or after (journal or not).
    const after = journal ? next : (await snapshot(output))['x86_64'] as Run;
    await recoverWithFailingRun(output, cache, after, journal);
  }
  expect(outcomes.filter((o) => o !== 'finished').length).toBeGreaterThan(0);
  // And a good run after all that writes its own output and leaves nothing.
  const last = other(await current(output));
  started = Date.now();
  expect((await start(last, output, cache)).exitCode).toBe(0);
  expect(await snapshot(output)).toEqual(whole(last));
  expect(await leftovers(output, cache)).toEqual([]);
});

describe('two runs at once', () => {
  /** Waits until the run holds the lock in `dir`, and returns its record. */
  async function lockOf(lockDir: string): Promise<{ pid: number; host: string; started: string }> {
    for (let i = 0; i < 200; i++) {
      const text = await readFile(join(lockDir, LOCK), 'utf8').catch(() => '');
      if (text) return JSON.parse(text) as { pid: number; host: string; started: string };
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`no lock in ${lockDir}`);
  }

  test('into one output: the second fails at once naming the holder; the first completes', async () => {
    const output = join(dir, 'concurrent-out');
    const first = start('A', output, join(dir, 'concurrent-cache-1'), { repos: slowReposDir });
    const holder = await lockOf(output);
    expect(holder).toMatchObject({ pid: first.pid, host: hostname() });
    const t = Date.now();
    const second = await start('B', output, join(dir, 'concurrent-cache-2'));
    expect(Date.now() - t).toBeLessThan(5000);
    expect(second.exitCode).toBe(1);
    expect(second.stderr).toContain(
      `error: the output directory ${output} is locked by another compose-extensions run (pid ${first.pid} on host ${hostname()}, started ${holder.started}); ` +
        `pass --wait-lock to wait for it, or remove ${join(output, LOCK)} if that run is gone`,
    );
    expect((await first).exitCode).toBe(0);
    expect(await snapshot(output)).toEqual(whole('A'));
    expect(await leftovers(output, join(dir, 'concurrent-cache-1'))).toEqual([]);
  });

  test('sharing one cache: the second fails at once naming the holder', async () => {
    const cache = join(dir, 'shared-cache');
    const first = start('A', join(dir, 'shared-out-1'), cache, { repos: slowReposDir });
    const holder = await lockOf(cache);
    const second = await start('B', join(dir, 'shared-out-2'), cache);
    expect(second.exitCode).toBe(1);
    expect(second.stderr).toContain(
      `error: the cache directory ${cache} is locked by another compose-extensions run (pid ${first.pid} on host ${hostname()}, started ${holder.started}); `,
    );
    // It wrote nothing, and removed the output directory it had created for its lock.
    expect(await exists(join(dir, 'shared-out-2'))).toBe(false);
    expect((await first).exitCode).toBe(0);
  });

  test('with --wait-lock the second waits, then replaces the whole output', async () => {
    const output = join(dir, 'waiting-out');
    const cache = join(dir, 'waiting-cache');
    const first = start('A', output, cache, { repos: slowReposDir });
    const holder = await lockOf(output);
    const second = await start('B', output, cache, { extra: ['--wait-lock'] });
    const firstResult = await first;
    expect([firstResult.exitCode, second.exitCode]).toEqual([0, 0]);
    expect(second.stderr).toContain(`waiting for the output directory ${output}, locked by pid ${first.pid} on host ${hostname()}, started ${holder.started}`);
    expect(await snapshot(output)).toEqual(whole('B'));
    expect(await leftovers(output, cache)).toEqual([]);
  });
});
