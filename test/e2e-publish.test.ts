// Publishing through the bundled action, as a workflow runs it: a matrix of compose jobs that upload
// artifacts and push per-architecture images, then a merge job, then the post step.
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startArtifactService, type ArtifactService } from './fixtures/artifact-service.js';
import { BASE_REF, buildFixtureDistro, type FixtureDistro } from './fixtures/distro.js';
import { startRegistry, type TestRegistry } from './fixtures/registry.js';
import { runStep } from './fixtures/runner.js';

let distro: FixtureDistro;
let dir: string;
let registry: TestRegistry;
let service: ArtifactService;
const PASSWORD = 'pa55-not-in-any-log';

beforeAll(async () => {
  [distro, registry, service] = await Promise.all([
    buildFixtureDistro(),
    startRegistry({ auth: { user: 'ci', password: PASSWORD } }),
    startArtifactService(),
  ]);
  dir = await mkdtemp(join(tmpdir(), 'ce-e2e-publish-'));
  await writeFile(join(dir, 'extensions.yaml'), 'repos: [fedora]\nextensions:\n  usbguard:\n    packages: [usbguard]\n');
});
afterAll(async () => {
  await Promise.all([registry?.stop(), service?.stop(), distro?.cleanup()]);
});

const step = (script: 'action.js' | 'post.js', inputs: Record<string, string>, env: Record<string, string> = {}) => runStep(dir, script, inputs, env);

const image = () => `${registry.host}/fixture/extensions`;
const registryInputs = () => ({ image: image(), tags: 'stable', 'registry-username': 'ci', 'registry-password': PASSWORD, 'tls-verify': 'false' });

test('matrix compose jobs upload artifacts and push images; the merge job makes the index; post removes the credentials', async () => {
  const pushed: Record<string, string> = {};
  for (const arch of ['x86_64', 'aarch64']) {
    const run = await step('action.js', {
      config: join(dir, 'extensions.yaml'), 'ostree-repo': distro.ostreeRepo, 'base-rev': BASE_REF, architectures: arch,
      'repos-dir': distro.reposDir, 'cache-dir': join(dir, 'cache'), output: join(dir, `out-${arch}`),
      upload: 'both', 'retention-days': '3', ...registryInputs(),
    }, service.env(`compose-${arch}`));
    expect(run.log).not.toContain('::error');
    expect(run.exitCode).toBe(0);
    expect(run.log).not.toContain(PASSWORD);
    expect(run.masked).toContain(PASSWORD);
    expect(run.outputs['artifact-id']).toMatch(/^\d+$/);
    expect(run.outputs['image-ref']).toMatch(new RegExp(`^${image()}@sha256:[0-9a-f]{64}$`));
    expect(run.summary).toContain(`${arch}: artifact [extensions-${arch}]`);
    pushed[arch] = run.outputs['image-digest']!;
    // The main step removes its auth file itself; the post step is there for a cancelled one.
    const authDir = run.state['registry-auth-dir']!;
    expect(authDir).toMatch(/compose-extensions-secrets-/);
    expect(existsSync(authDir)).toBe(false);
    const post = await step('post.js', {}, { [`STATE_registry-auth-dir`]: authDir });
    expect(post.exitCode).toBe(0);
  }
  expect(service.artifacts.map((a) => a.name).sort()).toEqual(['extensions-aarch64', 'extensions-x86_64']);

  const merge = await step('action.js', { mode: 'merge', architectures: 'x86_64, aarch64', ...registryInputs() });
  expect(merge.exitCode).toBe(0);
  expect(merge.log).not.toContain(PASSWORD);
  const auth = join(dir, 'auth.json');
  await writeFile(auth, JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from(`ci:${PASSWORD}`).toString('base64') } } }), { mode: 0o600 });
  const skopeo = async (...args: string[]) => (await execa('skopeo', ['inspect', '--tls-verify=false', '--authfile', auth, ...args, `docker://${image()}:stable`])).stdout;
  const index = JSON.parse(await skopeo('--raw')) as { manifests: { digest: string; platform: { architecture: string; os: string } }[] };
  expect(index.manifests.map((m) => [m.platform.os, m.platform.architecture, m.digest]).sort()).toEqual(
    [['linux', 'amd64', pushed['x86_64']], ['linux', 'arm64', pushed['aarch64']]].sort(),
  );
  expect(JSON.parse(await skopeo('--override-arch', 'arm64', '--override-os', 'linux')).Architecture).toBe('arm64');
  expect(merge.outputs['image-ref']).toMatch(new RegExp(`^${image()}@sha256:`));
  expect(merge.summary).toContain('Extensions image index');
});

test('the post step removes an auth file a cancelled main step left behind', async () => {
  const left = await mkdtemp(join(dir, 'ce-auth-'));
  await writeFile(join(left, 'auth.json'), '{}', { mode: 0o600 });
  const post = await step('post.js', {}, { [`STATE_registry-auth-dir`]: left });
  expect(post.exitCode).toBe(0);
  expect(existsSync(left)).toBe(false);
});

test('a wrong password fails cleanly without the secret in any output', async () => {
  const run = await step('action.js', { mode: 'merge', architectures: 'x86_64', ...registryInputs(), 'registry-password': 'wrong-secret-123' });
  expect(run.exitCode).toBe(1);
  expect(run.log).toContain('::error::');
  expect(run.log).not.toContain('wrong-secret-123');
  expect(run.log).not.toContain(Buffer.from('ci:wrong-secret-123').toString('base64'));
});
