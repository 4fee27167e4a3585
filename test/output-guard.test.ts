// What the CLI refuses to write over (inputs, the cache, an output of nothing) and the modes of what
// it writes: in-process CLI runs on the fixture distro, real dnf and createrepo_c.
import { mkdir, mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main, type Io } from '../src/cli/main.js';
import { BASE_REF, buildFixtureDistro, type FixtureDistro } from './fixtures/distro.js';
import { serveDirectory, type StaticServer } from './fixtures/http.js';

let distro: FixtureDistro;
let dir: string;
let server: StaticServer;
let httpRepos: string;
let n = 0;
beforeAll(async () => {
  distro = await buildFixtureDistro();
  dir = await mkdtemp(join(tmpdir(), 'ce-guard-'));
  server = await serveDirectory(distro.dir);
  httpRepos = join(dir, 'http-repos');
  await mkdir(httpRepos);
  await writeFile(join(httpRepos, 'fixture.repo'), `[fedora]\nname=m\nbaseurl=${server.url}/repos/main/$basearch\ngpgcheck=0\n`);
});
afterAll(async () => {
  await server?.close();
  await distro?.cleanup();
});

const CONFIG = `repos: [fedora]
extensions:
  usbguard:
    packages: [usbguard]
`;

async function cli(args: string[], config = CONFIG): Promise<{ code: number; out: string; err: string }> {
  const file = join(dir, `extensions-${n++}.yaml`);
  await writeFile(file, config);
  let out = '';
  let err = '';
  const io: Io = { out: (t) => void (out += t + '\n'), err: (t) => void (err += t + '\n') };
  const code = await main([
    'compose', '--config', file, '--ostree-repo', distro.ostreeRepo, '--base-rev', BASE_REF, '--arch', 'x86_64', '--arch', 'aarch64',
    '--repos-dir', distro.reposDir, '--cache-dir', join(dir, 'cache'), ...args,
  ], io);
  return { code, out, err };
}

const exists = (path: string) => stat(path).then(() => true, () => false);

describe('an output directory that overlaps an input or the cache is refused (exit 2), nothing written', () => {
  test('inside a file:// repo', async () => {
    const output = join(distro.repos.main, 'x86_64', 'out');
    const { code, err } = await cli(['--output', output]);
    expect(code).toBe(2);
    expect(err).toBe(
      `error: the output directory ${output} is inside the file:// repo "fedora" ${distro.repos.main}/x86_64: choose an output directory outside every input and the cache\n` +
        `Run 'compose-extensions --help' for usage.\n`,
    );
    expect(await exists(output)).toBe(false);
  });

  test('containing a file:// repo: every architecture\'s directory is named', async () => {
    const { code, err } = await cli(['--output', distro.repos.main]);
    expect(code).toBe(2);
    expect(err).toContain(
      `error: the output directory ${distro.repos.main} contains the file:// repo "fedora" ${distro.repos.main}/x86_64: choose an output directory outside every input and the cache\n` +
        `the output directory ${distro.repos.main} contains the file:// repo "fedora" ${distro.repos.main}/aarch64: choose an output directory outside every input and the cache\n`,
    );
    expect((await readdir(distro.repos.main)).sort()).toEqual(['aarch64', 'x86_64']);
  });

  test('the base OSTree repository, the cache directory, through a symlink too', async () => {
    expect((await cli(['--output', distro.ostreeRepo])).err).toContain(
      `error: the output directory ${distro.ostreeRepo} is the base OSTree repository ${distro.ostreeRepo}: choose an output directory outside every input and the cache\n`,
    );
    const inCache = join(dir, 'cache', 'out');
    const r = await cli(['--output', inCache]);
    expect([r.code, r.err.split('\n')[0]]).toEqual([2, `error: the output directory ${inCache} is inside the cache directory ${join(dir, 'cache')}: choose an output directory outside every input and the cache`]);
    const link = join(dir, 'link-to-root');
    const { symlink } = await import('node:fs/promises');
    await symlink(dir, link);
    const viaLink = await cli(['--output', link]);
    expect([viaLink.code, viaLink.err.split('\n')[0]]).toEqual([2, `error: the output directory ${dir} contains the cache directory ${join(dir, 'cache')}: choose an output directory outside every input and the cache`]);
  });

  test('a file', async () => {
    const file = join(dir, 'a-file');
    await writeFile(file, 'keep');
    const { code, err } = await cli(['--output', file]);
    expect([code, err.split('\n')[0]]).toEqual([2, `error: the output ${file} exists and is not a directory`]);
    expect(await readFile(file, 'utf8')).toBe('keep');
  });

  test('a rootfs base', async () => {
    const file = join(dir, `extensions-${n++}.yaml`);
    await writeFile(file, CONFIG);
    let err = '';
    const output = join(distro.rootfs['x86_64']!, 'srv');
    const code = await main(['compose', '--config', file, '--rootfs', distro.rootfs['x86_64']!, '--arch', 'x86_64', '--repos-dir', distro.reposDir, '--cache-dir', join(dir, 'cache'), '--output', output], {
      out: () => {}, err: (t) => void (err += t + '\n'),
    });
    expect(code).toBe(2);
    expect(err.split('\n')[0]).toBe(`error: the output directory ${output} is inside the base root filesystem ${distro.rootfs['x86_64']}: choose an output directory outside every input and the cache`);
  });
});

describe('an output with no package is refused unless --allow-empty', () => {
  const TYPO = `repos: [fedora]
extensions:
  usbguard:
    architectures: [s390x]
    packages: [usbguard]
`;

  test('an architectures: typo does not replace the previous output', async () => {
    const output = join(dir, 'empty-out');
    expect((await cli(['--output', output])).code).toBe(0);
    const before = await readFile(join(output, 'x86_64/metadata.json'), 'utf8');
    const { code, err } = await cli(['--output', output], TYPO);
    expect(code).toBe(1);
    expect(err).toContain(
      'error: x86_64: nothing to compose: no extension applies to this architecture; pass --allow-empty to write an empty repository\n' +
        'error: aarch64: nothing to compose: no extension applies to this architecture; pass --allow-empty to write an empty repository\n',
    );
    expect(await readFile(join(output, 'x86_64/metadata.json'), 'utf8')).toBe(before);
    expect((await readdir(output)).sort()).toEqual(['aarch64', 'x86_64']);
  });

  test('with --allow-empty, empty repos are written', async () => {
    const output = join(dir, 'allowed-empty-out');
    const { code } = await cli(['--output', output, '--allow-empty'], TYPO);
    expect(code).toBe(0);
    expect((await readdir(join(output, 'x86_64'))).sort()).toEqual(['extensions.json', 'metadata.json', 'repodata', 'sbom.spdx.json']);
    expect(JSON.parse(await readFile(join(output, 'x86_64/metadata.json'), 'utf8')).packages).toEqual([]);
  });
});

test('modes: directories 0755 and files 0644 whatever the umask; packages are read-only links to read-only cache files', async () => {
  const output = join(dir, 'modes-out');
  const cache = join(dir, 'modes-cache');
  const umask = process.umask(0o077);
  let code: number;
  try {
    code = (await cli(['--output', output, '--repos-dir', httpRepos, '--cache-dir', cache])).code;
  } finally {
    process.umask(umask);
  }
  expect(code).toBe(0);
  const mode = async (p: string) => ((await stat(p)).mode & 0o777).toString(8);
  expect(await mode(output)).toBe('755');
  for (const arch of ['x86_64', 'aarch64']) {
    const archDir = join(output, arch);
    expect([await mode(archDir), await mode(join(archDir, 'repodata')), await mode(join(archDir, 'metadata.json')), await mode(join(archDir, 'extensions.json'))]).toEqual(['755', '755', '644', '644']);
    for (const f of await readdir(join(archDir, 'repodata'))) expect([f, await mode(join(archDir, 'repodata', f))]).toEqual([f, '644']);
    const metadata = JSON.parse(await readFile(join(archDir, 'metadata.json'), 'utf8')) as { packages: { filename: string; sha256: string }[] };
    expect(metadata.packages.length).toBeGreaterThan(0);
    for (const p of metadata.packages) {
      const [out, cached] = await Promise.all([stat(join(archDir, p.filename)), stat(join(cache, 'packages', `sha256-${p.sha256}.rpm`))]);
      expect([p.filename, (out.mode & 0o777).toString(8), out.ino]).toEqual([p.filename, '444', cached.ino]);
    }
  }
});
