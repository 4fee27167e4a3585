// The CLI's publish and merge against a real registry (docker-registry on 127.0.0.1, with basic
// auth) next to the bundled action's: the same output directory gives the same image digests and
// the same index, and the credentials never reach argv or outlive the command.
import { execa } from 'execa';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { main, type Io } from '../src/cli/main.js';
import { LOCK_FILE, lockDirs } from '../src/repo/lock.js';
import { BASE_REF, buildFixtureDistro, type FixtureDistro } from './fixtures/distro.js';
import { startRegistry, type TestRegistry } from './fixtures/registry.js';
import { runStep } from './fixtures/runner.js';

const USER = 'ci';
const PASSWORD = 'stdin-only-pa55word';
const ARCHES = ['x86_64', 'aarch64'];
/** What a GitHub job sets; the CLI elsewhere gets the same labels from --source and --revision. */
const GITHUB = { GITHUB_SERVER_URL: 'https://github.com', GITHUB_REPOSITORY: 'example/extensions', GITHUB_SHA: 'c0ffee', SOURCE_DATE_EPOCH: '1700000000' };

let distro: FixtureDistro;
let registry: TestRegistry;
let dir: string;
let authFile: string;
/** The action's output directory and what it pushed. */
let output: string;
let actionDigests: Record<string, string>;
const savedEnv = { ...process.env };

beforeAll(async () => {
  [distro, registry] = await Promise.all([buildFixtureDistro(), startRegistry({ auth: { user: USER, password: PASSWORD } })]);
  dir = await mkdtemp(join(tmpdir(), 'ce-cli-publish-'));
  await writeFile(join(dir, 'extensions.yaml'), 'repos: [fedora]\nextensions:\n  usbguard:\n    packages: [usbguard]\n');
  authFile = join(dir, 'auth.json');
  await writeFile(authFile, JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } }), { mode: 0o600 });
  output = join(dir, 'action-out');
  const step = await runStep(dir, 'action.js', {
    config: join(dir, 'extensions.yaml'), 'ostree-repo': distro.ostreeRepo, 'base-rev': BASE_REF, architectures: ARCHES.join(', '),
    'repos-dir': distro.reposDir, 'cache-dir': join(dir, 'cache'), output, upload: 'oci',
    image: `${registry.host}/action/extensions`, tags: 'stable', 'registry-username': USER, 'registry-password': PASSWORD, 'tls-verify': 'false',
  }, GITHUB);
  expect(step.log).not.toContain('::error');
  actionDigests = JSON.parse(step.outputs['image-digest']!) as Record<string, string>;
}, 600_000);

afterAll(async () => {
  process.env = savedEnv;
  await Promise.all([registry?.stop(), distro?.cleanup()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  out: string;
  err: string;
}

/** The CLI in this process, as a GitLab or Tekton job would run it: no GITHUB_* variables. */
async function cli(args: string[], stdin?: string, env: Record<string, string> = {}): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const input = async function* () {
    if (stdin !== undefined) yield Buffer.from(stdin);
  };
  const io: Io = { out: (t) => out.push(t), err: (t) => err.push(t), stdin: input() };
  const clean = Object.fromEntries(Object.entries(savedEnv).filter(([k]) => !k.startsWith('GITHUB_') && k !== 'SOURCE_DATE_EPOCH'));
  process.env = { ...clean, SOURCE_DATE_EPOCH: GITHUB.SOURCE_DATE_EPOCH, ...env };
  try {
    const code = await main(args, io);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    process.env = savedEnv;
  }
}

const labelFlags = ['--source', 'https://github.com/example/extensions', '--revision', 'c0ffee'];
const skopeoInspect = async (ref: string, ...args: string[]) =>
  JSON.parse((await execa('skopeo', ['inspect', '--tls-verify=false', '--authfile', authFile, ...args, `docker://${ref}`])).stdout);

test("publish pushes each architecture with the action's digest; the password comes from stdin and its auth file is removed", async () => {
  const temp = await mkdtemp(join(dir, 'tmp-'));
  const image = `${registry.host}/cli/extensions`;
  const run = await cli([
    'publish', '--output', output, '--image', image, '--tag', 'stable', '--tag', 'v1', ...labelFlags,
    '--registry-username', USER, '--registry-password-stdin', '--tls-verify', 'false', '--json',
  ], `${PASSWORD}\n`, { TMPDIR: temp });
  expect(run.err).not.toContain(PASSWORD);
  expect(run.code).toBe(0);
  const json = JSON.parse(run.out) as { ok: boolean; changed: boolean; images: { arch: string; digest: string; ref: string; tags: string[]; changed: boolean }[] };
  expect(json).toMatchObject({ ok: true, changed: true });
  // Sorted by name in the output directory.
  expect(json.images.map((i) => [i.arch, i.digest, i.tags])).toEqual([
    ['aarch64', actionDigests['aarch64'], ['stable-aarch64', 'v1-aarch64']],
    ['x86_64', actionDigests['x86_64'], ['stable-x86_64', 'v1-x86_64']],
  ]);
  expect(json.images[1]!.ref).toBe(`${image}@${actionDigests['x86_64']}`);
  expect(run.err).toContain(`x86_64: pushed ${image}@${actionDigests['x86_64']} as stable-x86_64, v1-x86_64`);
  // The auth file it wrote (in TMPDIR) is gone.
  expect(await readdir(temp)).toEqual([]);
  const labels = (await skopeoInspect(`${image}:v1-aarch64`)).Labels as Record<string, string>;
  expect(labels).toMatchObject({ 'org.opencontainers.image.source': 'https://github.com/example/extensions', 'org.opencontainers.image.revision': 'c0ffee' });
});

test("merge makes the index with the right platforms, the same as the action's merge", async () => {
  const image = `${registry.host}/cli/extensions`;
  const run = await cli(['merge', '--image', image, '--tag', 'stable', '--arch', 'x86_64', '--arch', 'aarch64', '--authfile', authFile, '--tls-verify', 'false']);
  expect(run.err).toBe(`pushed ${run.out.replace(/ \(stable\)$/, '')} as stable: aarch64 ${actionDigests['aarch64']}, x86_64 ${actionDigests['x86_64']}`);
  expect(run.code).toBe(0);
  const digest = /@(sha256:[0-9a-f]{64}) \(stable\)$/.exec(run.out)?.[1];
  expect(digest).toBeDefined();
  const index = await skopeoInspect(`${image}:stable`, '--raw') as { manifests: { digest: string; platform: { os: string; architecture: string } }[] };
  expect(index.manifests.map((m) => [m.platform.os, m.platform.architecture, m.digest])).toEqual([
    ['linux', 'arm64', actionDigests['aarch64']], ['linux', 'amd64', actionDigests['x86_64']],
  ]);

  const action = await runStep(dir, 'action.js', {
    mode: 'merge', architectures: 'x86_64, aarch64', image: `${registry.host}/action/extensions`, tags: 'stable',
    'auth-file': authFile, 'tls-verify': 'false',
  }, GITHUB);
  expect(action.exitCode).toBe(0);
  expect(action.outputs['image-digest']).toBe(digest);
});

test('with --skip-unchanged, a second publish and merge push nothing', async () => {
  const image = `${registry.host}/cli/extensions`;
  const common = ['--image', image, '--tag', 'stable', '--authfile', authFile, '--tls-verify', 'false', '--skip-unchanged'];
  const publish = await cli(['publish', '--output', output, '--arch', 'x86_64', ...common, ...labelFlags]);
  expect(publish.code).toBe(0);
  expect(publish.out).toBe(`x86_64: ${image}@${actionDigests['x86_64']} (unchanged, nothing pushed)`);
  const merge = await cli(['merge', '--arch', 'x86_64', '--arch', 'aarch64', ...common, '--json']);
  expect(merge.code).toBe(0);
  expect(JSON.parse(merge.out)).toMatchObject({ ok: true, changed: false, index: { tags: [], changed: false } });
});

test('publish holds the output lock: it fails at once while a compose holds it, or waits with --wait-lock', async () => {
  const image = `${registry.host}/cli/extensions`;
  const common = ['publish', '--output', output, '--arch', 'x86_64', '--image', image, '--tag', 'stable', '--authfile', authFile, '--tls-verify', 'false', '--skip-unchanged', ...labelFlags];
  const held = await lockDirs([{ dir: output, what: 'held by the test' }], false, () => {});
  let released = false;
  try {
    const refused = await cli(common);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain(`error: the output directory ${output} is locked by another compose-extensions run (pid ${process.pid} on host ${hostname()}`);
    const waiting = cli([...common, '--wait-lock']);
    await new Promise((r) => setTimeout(r, 700));
    released = true;
    await held.release();
    const waited = await waiting;
    expect(waited.code).toBe(0);
    expect(waited.err).toContain(`waiting for the output directory ${output}, locked by pid ${process.pid} on host ${hostname()}`);
    expect(waited.out).toBe(`x86_64: ${image}@${actionDigests['x86_64']} (unchanged, nothing pushed)`);
  } finally {
    if (!released) await held.release();
  }
  expect(await readdir(output)).not.toContain(LOCK_FILE);
});

describe('bad usage: exit 2, before anything is pushed', () => {
  test.each([
    [['publish', '--output', 'x', '--image', 'r/e', '--registry-password-stdin'], 'error: --registry-password-stdin needs --registry-username'],
    [['publish', '--output', 'x', '--image', 'r/e', '--registry-username', 'u'], 'error: --registry-username needs --registry-password-stdin (the password is read from stdin, never from the command line)'],
    [['merge', '--arch', 'x86_64', '--image', 'r/e', '--registry-username', 'u', '--registry-password-stdin', '--authfile', 'a.json'], 'error: use --authfile or --registry-username with --registry-password-stdin, not both'],
    [['merge', '--image', 'r/e'], 'error: merge needs --arch for each architecture that was published (repeatable)'],
    [['merge', '--arch', 'x86-64', '--image', 'r/e'], 'error: --arch: unknown architecture "x86-64"; known: x86_64, aarch64, ppc64le, s390x, riscv64'],
  ])('%j', async (args, message) => {
    const run = await cli(args as string[]);
    expect(run.code).toBe(2);
    expect(run.err.split('\n')[0]).toBe(message);
  });

  test('publish: no --image, no --output, an output without compose results, an architecture it lacks', async () => {
    expect((await cli(['publish', '--output', output])).err).toContain('error: --image is required: the repository to push to, without a tag (e.g. ghcr.io/my-org/extensions)');
    expect((await cli(['publish', '--image', 'r/e'])).err).toContain('error: --output is required: the directory compose wrote (<output>/<arch>/)');
    const empty = join(dir, 'empty');
    await mkdir(empty, { recursive: true });
    const none = await cli(['publish', '--output', empty, '--image', 'r/e']);
    expect(none.code).toBe(2);
    expect(none.err).toContain(`error: ${empty} holds no <arch>/metadata.json: give the --output directory of compose`);
    const lacking = await cli(['publish', '--output', output, '--arch', 's390x', '--image', 'r/e']);
    expect(lacking.err).toContain(`error: ${output} has no composed s390x (it holds aarch64, x86_64)`);
  });
});

test('a wrong password: exit 1 with the hint, never the secret', async () => {
  const wrong = 'not-the-pa55word';
  const run = await cli([
    'publish', '--output', output, '--arch', 'x86_64', '--image', `${registry.host}/cli/denied`,
    '--registry-username', USER, '--registry-password-stdin', '--tls-verify', 'false',
  ], wrong);
  expect(run.code).toBe(1);
  expect(run.err).toMatch(/^error: .*failed: .*(unauthorized|authentication required)/im);
  expect(run.err).not.toContain(wrong);
});
