import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ComposeError } from '../errors.js';
import { run } from '../tools/exec.js';
import { parseRepoPair, type RepoDefinition } from '../inputs/repos.js';
import type { ArchPlan } from '../plan/types.js';
import { makeRootfs } from '../../test/fixtures/base.js';
import { BACKENDS, PRESENT } from '../../test/fixtures/backends.js';
import { serveDirectory, type StaticServer } from '../../test/fixtures/http.js';
import { buildRpms, createRepo } from '../../test/fixtures/rpms.js';
import { chooseBackend, detectDnf, DnfSolver, helperRequest, solverLayout, type SolveRequest } from './dnf.js';

const HELPER_DIR = dirname(fileURLToPath(import.meta.url));
let dir: string;
let n = 0;
const fresh = (name: string) => join(dir, `${name}-${n++}`);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ce-dnf-test-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function plan(repos: string[], extensions: ArchPlan['extensions'] = []): ArchPlan {
  return { arch: 'x86_64', releasever: '40', weakDeps: false, repos, extensions };
}

describe('helperRequest', () => {
  test('writes a repo file with only the plan repos, and the request line', async () => {
    const workDir = fresh('work');
    const cacheDir = fresh('cache');
    const repos: RepoDefinition[] = [
      parseRepoPair('unused=file:///srv/unused'),
      { id: 'fedora', origin: 'f.repo:1', options: { name: 'Fedora', baseurl: 'file:///srv/$basearch', gpgcheck: '1', gpgkey: 'file:///k' } },
      parseRepoPair('extras=http://127.0.0.1:9/extras'),
    ];
    const req: SolveRequest = {
      vars: { contentdir: 'pub/fedora', releasever_minor: '' },
      plan: {
        arch: 'aarch64', releasever: '41', weakDeps: true, repos: ['extras', 'fedora'],
        extensions: [
          { name: 'usbguard', kind: 'os-extension', requested: ['usbguard'], specs: ['usbguard'], repos: ['fedora'] },
          {
            name: 'kernel-devel', kind: 'development', requested: ['kernel-devel'], matchBaseEvr: 'kernel',
            specs: ['kernel-devel-5.0-1.fc40'], repos: ['extras', 'fedora'],
          },
        ],
      },
      repos,
      root: '/base/root',
      workDir,
      cacheDir,
    };
    expect(await helperRequest(req)).toEqual({
      arch: 'aarch64',
      releasever: '41',
      // $releasever_major/_minor for dnf before 4.18; a variable of the vars dirs wins over them.
      vars: { releasever_major: '41', releasever_minor: '', contentdir: 'pub/fedora' },
      main: {},
      weakDeps: true,
      installroot: '/base/root',
      cachedir: cacheDir,
      logdir: join(workDir, 'log'),
      reposdir: join(workDir, 'yum.repos.d'),
      repos: ['extras', 'fedora'],
      extensions: [
        { name: 'usbguard', kind: 'os-extension', specs: ['usbguard'], repos: ['fedora'] },
        { name: 'kernel-devel', kind: 'development', specs: ['kernel-devel-5.0-1.fc40'], repos: ['extras', 'fedora'] },
      ],
    });
    expect(await readFile(join(workDir, 'yum.repos.d/compose.repo'), 'utf8')).toBe(
      '[fedora]\nname=Fedora\nbaseurl=file:///srv/$basearch\ngpgcheck=1\ngpgkey=file:///k\nenabled=1\nskip_if_unavailable=0\n' +
        '\n' +
        '[extras]\nname=extras\nbaseurl=http://127.0.0.1:9/extras\ngpgcheck=0\nenabled=1\nskip_if_unavailable=0\n',
    );
    // It may hold credentials: only we can read it.
    expect((await stat(join(workDir, 'yum.repos.d/compose.repo'))).mode & 0o777).toBe(0o600);
  });
});

describe('detectDnf', () => {
  test('finds dnf4 and its version on this machine', async () => {
    const found = await detectDnf('dnf4');
    expect(found.version).toMatch(/^4\.\d+\.\d+$/);
    // Read from dnf/const.py without importing dnf: the same as what dnf itself says.
    expect(found.version).toBe((await run('/usr/bin/python3', ['-c', 'import dnf; print(dnf.VERSION)'])).stdout.trim());
  });

  test('auto chooses dnf5 where a libdnf5 is importable, else dnf4', async () => {
    expect((await detectDnf()).backend).toBe(PRESENT.dnf5 ? 'dnf5' : 'dnf4');
  });

  test('dnf5: the library\'s own version, prime part included (5.2.18.0), or a clear error without it', async () => {
    if (PRESENT.dnf5) {
      const found = await detectDnf('dnf5');
      expect(found.version).toMatch(/^5\.\d+\.\d+\.\d+$/);
      const v = (await run('/usr/bin/python3', ['-c', 'import libdnf5; v = libdnf5.conf.get_library_version(); print(v.prime, v.major, v.minor, v.micro)'])).stdout;
      expect(found.version).toBe(v.trim().split(' ').join('.'));
    } else {
      await expect(detectDnf('dnf5')).rejects.toThrow('the dnf5 Python API was not found for /usr/bin/python3: install `python3-libdnf5` (Fedora)');
    }
  });

  test('dnf4: one helper, an architecture per core at once; dnf5: a helper per two cores; never more than the architectures', () => {
    expect(solverLayout('dnf4', 4, 2)).toEqual({ helpers: 1, threads: 2 });
    expect(solverLayout('dnf4', 4, 1)).toEqual({ helpers: 1, threads: 1 });
    expect(solverLayout('dnf4', 2, 16)).toEqual({ helpers: 1, threads: 2 });
    expect(solverLayout('dnf5', 4, 2)).toEqual({ helpers: 1, threads: 1 });
    expect(solverLayout('dnf5', 4, 8)).toEqual({ helpers: 4, threads: 1 });
    expect(solverLayout('dnf5', 2, 16)).toEqual({ helpers: 2, threads: 1 });
  });

  test('chooses dnf5 where present, else dnf4, unless told', () => {
    expect(chooseBackend('auto', { dnf5: '5.2.18.0', dnf4: '4.21.0' })).toEqual({ backend: 'dnf5', version: '5.2.18.0' });
    expect(chooseBackend('auto', { dnf4: '4.14.0' })).toEqual({ backend: 'dnf4', version: '4.14.0' });
    expect(chooseBackend('dnf4', { dnf5: '5.2.18.0', dnf4: '4.21.0' })).toEqual({ backend: 'dnf4', version: '4.21.0' });
    expect(() => chooseBackend('auto', {})).toThrow("dnf's Python API was not found");
    expect(() => chooseBackend('auto', {})).toThrow('install `python3-libdnf5` or `python3-dnf` (Fedora) or `apt-get install -y python3-dnf` (Debian/Ubuntu)');
  });
});

describe('the helpers\' request loop', () => {
  // Each request waits for the other at a barrier: only a loop that serves both at once answers both.
  const SCRIPT = [
    'import sys, threading',
    `sys.path.insert(0, ${JSON.stringify(HELPER_DIR)})`,
    'from helper_common import serve, threads_from_argv',
    'barrier = threading.Barrier(2, timeout=2)',
    'def resolve(req):',
    '    barrier.wait()',
    "    return {'arch': req['arch']}",
    'serve(resolve, threads_from_argv(sys.argv[1:]))',
  ].join('\n');
  const requests = '{"id": 7, "arch": "x86_64"}\n{"id": 8, "arch": "aarch64"}\n';
  const answers = async (threads: string) => {
    const out = await run('/usr/bin/python3', ['-B', '-c', SCRIPT, '--threads', threads], { input: requests });
    return out.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: number; arch?: string; error?: string });
  };

  test('with --threads 2, two requests are resolved at once, each answer carrying its id', async () => {
    expect((await answers('2')).sort((a, b) => a.id - b.id)).toEqual([{ id: 7, arch: 'x86_64' }, { id: 8, arch: 'aarch64' }]);
  });

  test('with --threads 1, one after another (here: the barrier breaks, and each answer says so)', async () => {
    const serial = await answers('1');
    expect(serial.map((a) => a.id)).toEqual([7, 8]);
    expect(serial.every((a) => /BrokenBarrierError/.test(a.error ?? ''))).toBe(true);
  }, 20_000);

  test('an answer that cannot be written as JSON is still answered, with the error', async () => {
    const script = SCRIPT.replace("barrier.wait()", "return {'arch': {req['arch']}}  # a set");
    const out = await run('/usr/bin/python3', ['-B', '-c', script, '--threads', '2'], { input: requests });
    const got = out.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: number; error?: string });
    expect(got.map((a) => a.id).sort()).toEqual([7, 8]);
    expect(got.every((a) => /not JSON serializable/.test(a.error ?? ''))).toBe(true);
  });
});

describe.each(BACKENDS)('solve with the real %s', (backend) => {
  let root: string;
  let repoDir: string;
  let server: StaticServer;
  const TINY = { name: 'tiny', kind: 'os-extension' as const, requested: ['tiny'], specs: ['tiny'] };

  beforeAll(async () => {
    const built = join(dir, backend, 'rpms');
    const rpms = await buildRpms(
      [
        { name: 'basepkg', version: '1.0', release: '1' },
        { name: 'tiny', version: '1.0', release: '1', requires: ['basepkg'] },
      ],
      ['x86_64', 'aarch64'],
      built,
    );
    root = await makeRootfs(join(dir, backend, 'root'), { rpms: rpms['x86_64']!.filter((f) => f.includes('basepkg')) });
    repoDir = join(built, 'x86_64');
    await createRepo(repoDir);
    await createRepo(join(built, 'aarch64'));
    server = await serveDirectory(built);
  });
  afterAll(() => server?.close());

  /** One architecture alone, with a helper of its own. */
  async function solve(req: SolveRequest) {
    const solver = new DnfSolver(backend, join(req.workDir, 'helper'));
    try {
      return await solver.solve(req);
    } finally {
      await solver.close();
    }
  }

  const request = (repos: RepoDefinition[], extRepos: string[], arch = 'x86_64'): SolveRequest => ({
    plan: { ...plan([...extRepos].sort(), [{ ...TINY, repos: extRepos }]), arch },
    repos,
    vars: {},
    root,
    workDir: fresh('work'),
    cacheDir: fresh('cache'),
  });

  test('resolves from a file:// repo and from an http repo (the controls for the failures below)', async () => {
    const local = await solve(request([parseRepoPair(`good=${repoDir}`)], ['good']));
    expect(local.packages.map((p) => [p.nevra, p.repo, p.path])).toEqual([['tiny-1.0-1.x86_64', 'good', join(repoDir, 'tiny-1.0-1.x86_64.rpm')]]);
    expect(local.closures).toEqual({ tiny: ['tiny-1.0-1.x86_64'] });
    expect(local.repos).toMatchObject([{ id: 'good', url: `file://${repoDir}`, gpgcheck: false }]);

    const web = await solve(request([parseRepoPair(`web=${server.url}/x86_64`)], ['web']));
    expect(web.packages.map((p) => [p.nevra, p.location, p.path])).toEqual([['tiny-1.0-1.x86_64', 'tiny-1.0-1.x86_64.rpm', undefined]]);
    expect(web.repos).toMatchObject([{ id: 'web', url: `${server.url}/x86_64`, urls: [`${server.url}/x86_64`] }]);
  });

  test.each([
    ['a baseurl to a directory that does not exist', () => `file://${join(dir, 'no-such-repo')}`],
    ['an http baseurl that answers 404', () => `${server.url}/no-such-repo/`],
  ])('%s fails the solve instead of giving an empty result', async (_what, url) => {
    const before = server.requests.length;
    const repos = [parseRepoPair(`good=${repoDir}`), parseRepoPair(`broken=${url()}`)];
    const err = await solve(request(repos, ['broken', 'good'])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ComposeError);
    const { problems } = err as ComposeError;
    expect(problems).toHaveLength(1);
    expect(problems[0]!.arch).toBe('x86_64');
    expect(problems[0]!.message).toBe(`repository broken could not be loaded: its metadata (repodata/repomd.xml) could not be downloaded from ${url()}`);
    if (url().startsWith('http')) expect(server.requests.slice(before)).toContain('/no-such-repo/repodata/repomd.xml');
  });
});

describe.each(BACKENDS)('one %s helper process serving several architectures', (backend) => {
  let root: string;
  let built: string;

  beforeAll(async () => {
    built = join(dir, backend, 'multi');
    const rpms = await buildRpms(
      [
        { name: 'basepkg', version: '1.0', release: '1' },
        { name: 'tiny', version: '1.0', release: '1', requires: ['basepkg'] },
        { name: 'other', version: '2.0', release: '3', requires: ['basepkg'] },
      ],
      ['x86_64', 'aarch64'],
      built,
    );
    root = await makeRootfs(join(dir, backend, 'multi-root'), { rpms: rpms['x86_64']!.filter((f) => f.includes('basepkg')) });
    await Promise.all(['x86_64', 'aarch64'].map((a) => createRepo(join(built, a))));
  });

  const request = (arch: string, specs: string[]): SolveRequest => ({
    plan: { ...plan(['r']), arch, extensions: [{ name: 'e', kind: 'os-extension', requested: specs, specs, repos: ['r'] }] },
    repos: [parseRepoPair(`r=${join(built, arch)}`)],
    vars: {},
    root,
    workDir: fresh(`work-${arch}`),
    cacheDir: fresh(`cache-${arch}`),
  });

  test('answers each request with its own architecture, and one failure leaves the others answered', async () => {
    const solver = new DnfSolver(backend, fresh('helper-home'), { helpers: 1, threads: 1 });
    try {
      const [x86, broken, arm] = await Promise.allSettled([
        solver.solve(request('x86_64', ['tiny'])),
        solver.solve(request('aarch64', ['no-such-package'])),
        solver.solve(request('aarch64', ['other'])),
      ]);
      expect(x86).toMatchObject({ status: 'fulfilled', value: { arch: 'x86_64', closures: { e: ['tiny-1.0-1.x86_64'] } } });
      expect(broken.status).toBe('rejected');
      expect(((broken as PromiseRejectedResult).reason as ComposeError).problems).toEqual([
        { arch: 'aarch64', extension: 'e', message: 'no package matches no-such-package in repos r' },
      ]);
      expect(arm).toMatchObject({ status: 'fulfilled', value: { arch: 'aarch64', closures: { e: ['other-2.0-3.aarch64'] } } });
      expect(solver.processes).toBe(1);
    } finally {
      await solver.close();
    }
  });

  test("frees each architecture's dnf Base (and its sack) once answered", async () => {
    // The helper's own resolve_arch in the real dnf, with every Base it makes watched by a weak reference.
    const home = fresh('helper-home');
    await mkdir(home, { recursive: true });
    await writeFile(join(home, '.rpmmacros'), '%_dbpath /usr/lib/sysimage/rpm\n');
    const requests = await Promise.all([request('x86_64', ['tiny']), request('aarch64', ['other'])].map(helperRequest));
    const script = [
      'import gc, importlib.util, json, sys, weakref',
      `sys.path.insert(0, ${JSON.stringify(HELPER_DIR)})`,
      `spec = importlib.util.spec_from_file_location('helper', ${JSON.stringify(join(HELPER_DIR, `${backend}-helper.py`))})`,
      'helper = importlib.util.module_from_spec(spec); spec.loader.exec_module(helper)',
      'made = []',
      'make_base = helper.make_base',
      'def watched(req):',
      '    base = make_base(req)',
      '    made.append(weakref.ref(base))',
      '    return base',
      'helper.make_base = watched',
      'answers = [helper.resolve_arch(req) for req in json.loads(sys.stdin.read())]',
      'gc.collect()',
      'print(json.dumps({"closures": [a.get("closures") for a in answers], "made": len(made), "alive": sum(1 for w in made if w())}))',
    ].join('\n');
    const out = await run('/usr/bin/python3', ['-B', '-c', script], { input: JSON.stringify(requests), env: { HOME: home } });
    expect(JSON.parse(out.stdout)).toEqual({ closures: [{ e: ['tiny-1.0-1.x86_64'] }, { e: ['other-2.0-3.aarch64'] }], made: 2, alive: 0 });
  });

  // dnf5 resolves one architecture per process (solverLayout): libdnf5 in threads sometimes read an empty rpmdb.
  (backend === 'dnf4' ? test : test.skip)('one helper resolves two architectures at once in threads, each answer matched to its request', async () => {
    const solver = new DnfSolver(backend, fresh('helper-home'), { helpers: 1, threads: 2 });
    try {
      const [x86, arm] = await Promise.all([solver.solve(request('x86_64', ['tiny'])), solver.solve(request('aarch64', ['other']))]);
      expect(x86).toMatchObject({ arch: 'x86_64', closures: { e: ['tiny-1.0-1.x86_64'] } });
      expect(arm).toMatchObject({ arch: 'aarch64', closures: { e: ['other-2.0-3.aarch64'] } });
      expect(solver.processes).toBe(1);
    } finally {
      await solver.close();
    }
  });

  test('a request the helper cannot read fails that architecture with its last words, and the helper serves on', async () => {
    const solver = new DnfSolver(backend, fresh('helper-home'), { helpers: 1, threads: 1 });
    try {
      // A request the helper cannot even read as an architecture: Python raises, the answer says so.
      const bad = { ...request('x86_64', ['tiny']), root: 42 as unknown as string };
      const err = await solver.solve(bad).catch((e: unknown) => e as Error);
      expect(err).toBeInstanceOf(Error);
      // The traceback's last lines, which name the exception (libdnf5's SWIG traceback is longer than dnf4's).
      expect((err as Error).message).toMatch(/^dnf failed on x86_64: [^]*\n\w+Error: /);
      // The helper is still there for the next architecture.
      await expect(solver.solve(request('aarch64', ['other']))).resolves.toMatchObject({ arch: 'aarch64' });
    } finally {
      await solver.close(); // a helper left running would keep jest waiting
    }
  });
});
