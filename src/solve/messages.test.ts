// What a user reads when a solve fails: one table of cases, the same expected words, run once per
// dnf backend this machine has (dnf4 on CI; dnf4 and dnf5 where a libdnf5 is importable).
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { ComposeError } from '../errors.js';
import { parseRepoPair, type RepoDefinition } from '../inputs/repos.js';
import type { ArchPlan } from '../plan/types.js';
import { makeRootfs } from '../../test/fixtures/base.js';
import { BACKENDS } from '../../test/fixtures/backends.js';
import { serveDirectory, type StaticServer } from '../../test/fixtures/http.js';
import { buildRpms, createRepo } from '../../test/fixtures/rpms.js';
import { DnfSolver } from './dnf.js';

let dir: string;
let root: string;
let main: string;
let xtra: string;
let server: StaticServer;
let n = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ce-messages-'));
  const base = await buildRpms(
    [
      { name: 'basepkg', version: '1.0', release: '1' },
      { name: 'libz', version: '1.2.13', release: '4' },
      { name: 'shell-acme', version: '5.2', release: '1' },
      { name: 'libq', version: '1.0', release: '1' },
    ],
    ['x86_64'],
    join(dir, 'base'),
  );
  root = await makeRootfs(join(dir, 'root'), { rpms: base['x86_64']! });
  await buildRpms(
    [
      { name: 'libz', version: '1.3', release: '1' },
      { name: 'basepkg', version: '2.0', release: '1' },
      { name: 'needs-newer-libz', version: '1.0', release: '1', requires: ['libz >= 1.3'] },
      { name: 'needs-both', version: '1.0', release: '1', requires: ['libz >= 1.3', 'basepkg >= 2.0'] },
      { name: 'hates-shell', version: '1', release: '1', conflicts: ['shell-acme'] },
      { name: 'needs-newer-and-missing', version: '1', release: '1', requires: ['libz >= 1.3', 'libmissing.so.2'] },
      { name: 'libq', version: '2.0', release: '1', conflicts: ['shell-acme'] },
      { name: 'needs-libq2', version: '1', release: '1', requires: ['libq >= 2.0'] },
      { name: 'conflict-a', version: '1.0', release: '1', conflicts: ['conflict-b'] },
      { name: 'conflict-b', version: '1.0', release: '1' },
      { name: 'needs-armlib', version: '1', release: '1', requires: ['libarm.so.1'] },
    ],
    ['x86_64'],
    join(dir, 'main'),
  );
  // A repo that also carries another architecture's package: the only provider of libarm.so.1.
  const arm = await buildRpms([{ name: 'armlib', version: '1', release: '1', provides: ['libarm.so.1'] }], ['aarch64'], join(dir, 'arm'));
  await copyFile(arm['aarch64']![0]!, join(dir, 'main', 'x86_64', basename(arm['aarch64']![0]!)));
  await buildRpms([{ name: 'broken', version: '1', release: '1', requires: ['libmissing.so.1'] }], ['x86_64'], join(dir, 'xtra'));
  main = join(dir, 'main', 'x86_64');
  xtra = join(dir, 'xtra', 'x86_64');
  await Promise.all([createRepo(main), createRepo(xtra)]);
  server = await serveDirectory(dir);
});
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const REPOS = (): RepoDefinition[] => [parseRepoPair(`fedora=${main}`), parseRepoPair(`xtra=${xtra}`)];

/** The problems of one plan, as the solve stage reports them. */
async function problems(backend: 'dnf4' | 'dnf5', extensions: Record<string, string[]>, repos = REPOS()) {
  const ids = repos.map((r) => r.id).sort();
  const plan: ArchPlan = {
    arch: 'x86_64', releasever: '40', weakDeps: false, repos: ids,
    extensions: Object.entries(extensions).map(([name, specs]) => ({ name, kind: 'os-extension', requested: specs, specs, repos: ids })),
  };
  const workDir = join(dir, `work-${n++}`);
  const solver = new DnfSolver(backend, join(workDir, 'helper'));
  try {
    await solver.solve({ plan, repos, vars: {}, root, workDir, cacheDir: join(workDir, 'cache') });
  } catch (e) {
    if (e instanceof ComposeError) return e.problems.map((p) => `${p.extension ?? '-'}: ${p.message}`);
    throw e;
  } finally {
    await solver.close();
  }
  return [];
}

const CASES: [string, Record<string, string[]>, string[]][] = [
  ['a missing dependency names the package and its repo', { broken: ['broken'] },
    ['broken: nothing provides libmissing.so.1 needed by broken-1-1.x86_64 from xtra']],
  ['a dependency on a newer base package names the requested package, what it needs and what the base has', { newer: ['needs-newer-libz'] },
    ['newer: cannot be installed without changing the base: needs-newer-libz requires libz >= 1.3; the base has libz-1.2.13-4.x86_64 ' +
      '(it would upgrade base package libz-1.2.13-4.x86_64 to libz-1.3-1.x86_64)']],
  ['several base changes are told in one order', { both: ['needs-both'] },
    ['both: cannot be installed without changing the base: needs-both requires basepkg >= 2.0; the base has basepkg-1.0-1.x86_64; ' +
      'needs-both requires libz >= 1.3; the base has libz-1.2.13-4.x86_64 ' +
      '(it would upgrade base package basepkg-1.0-1.x86_64 to basepkg-2.0-1.x86_64; upgrade base package libz-1.2.13-4.x86_64 to libz-1.3-1.x86_64)']],
  ['a conflict with a base package names the extension\'s package first', { hates: ['hates-shell'] },
    ['hates: package hates-shell-1-1.x86_64 from fedora conflicts with shell-acme provided by base package shell-acme-5.2-1.x86_64']],
  ['two extensions that conflict are named together, with the packages and their repo', { a: ['conflict-a'], b: ['conflict-b'] },
    ['a: extensions a and b cannot be installed together: package conflict-a-1.0-1.x86_64 from fedora conflicts with conflict-b provided by conflict-b-1.0-1.x86_64 from fedora']],
  ['when a solve with the base unlocked fails too, the solver\'s reason', { locked: ['needs-newer-and-missing'] },
    ['locked: nothing provides libmissing.so.2 needed by needs-newer-and-missing-1-1.x86_64 from fedora']],
  ['a base package the solve would need to change, when it cannot change it anyway, is said to be locked', { locked2: ['needs-libq2'] }, [
    'locked2: package needs-libq2-1-1.x86_64 from fedora requires libq >= 2.0, but none of the providers can be installed; ' +
      'package libq-2.0-1.x86_64 from fedora is not allowed: the base has libq-1.0-1.x86_64 and is never changed',
  ]],
  ['a dependency only another architecture\'s package provides is not provided (no multilib)', { arm: ['needs-armlib'] },
    ['arm: nothing provides libarm.so.1 needed by needs-armlib-1-1.x86_64 from fedora']],
  ['a package no repo has', { missing: ['no-such-package'] }, ['missing: no package matches no-such-package in repos fedora, xtra']],
  ['a package the base has', { inbase: ['shell-acme'] }, ['inbase: package shell-acme already present in base (shell-acme-5.2-1.x86_64)']],
];

describe.each(BACKENDS)('what %s says', (backend) => {
  test.each(CASES)('%s', async (_what, extensions, expected) => {
    expect(await problems(backend, extensions)).toEqual(expected);
  });

  test.each([
    ['a file:// baseurl to a directory that does not exist', () => `file://${join(dir, 'no-such-repo')}`],
    ['an http baseurl that answers 404', () => `${server.url}/no-such-repo`],
  ])('a repo that cannot be loaded, from %s, is named with the URL tried', async (_what, url) => {
    const repos = [parseRepoPair(`fedora=${main}`), parseRepoPair(`nowhere=${url()}`)];
    expect(await problems(backend, { tiny: ['conflict-b'] }, repos)).toEqual([
      `-: repository nowhere could not be loaded: its metadata (repodata/repomd.xml) could not be downloaded from ${url()}`,
    ]);
  });
});
