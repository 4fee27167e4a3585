// The repository's GitHub side: every workflow and action.yml against GitHub's schemas (so a typo
// fails here, not on GitHub), and the integration workflow's fixture and check scripts run for real.
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { compose } from '../src/engine.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHECK = join(ROOT, 'scripts/check-workflows.mjs');
const check = (files: string[]) => execa(process.execPath, [CHECK, ...files], { reject: false, cwd: ROOT });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ce-workflows-'));
});

test('the workflows, dependabot and action.yml are there', async () => {
  expect((await readdir(join(ROOT, '.github/workflows'))).sort()).toEqual(['check-dist.yml', 'ci.yml', 'integration.yml', 'release.yml']);
  const dependabot = await readFile(join(ROOT, '.github/dependabot.yml'), 'utf8');
  expect(dependabot).toContain('package-ecosystem: npm');
  expect(dependabot).toContain('package-ecosystem: github-actions');
});

test('every workflow and action.yml is valid against GitHub\'s schemas', async () => {
  const result = await check([]);
  expect(result.stderr).toBe('');
  expect(result.stdout).toBe('5 file(s) valid');
  expect(result.exitCode).toBe(0);
});

describe('a typo fails', () => {
  async function broken(name: string, from: string, edit: (text: string) => string): Promise<string> {
    const sub = await mkdtemp(join(dir, 'broken-'));
    const file = join(sub, name);
    const text = await readFile(join(ROOT, from), 'utf8');
    const changed = edit(text);
    expect(changed).not.toBe(text);
    await writeFile(file, changed);
    return file;
  }

  test('a misspelt key in a workflow', async () => {
    const file = await broken('integration.yml', '.github/workflows/integration.yml', (t) => t.replace('    runs-on: ubuntu-latest\n', '    run-on: ubuntu-latest\n'));
    const lines = (await readFile(file, 'utf8')).split('\n');
    const typo = lines.indexOf('    run-on: ubuntu-latest') + 1;
    const job = lines.indexOf('    name: compose (Fedora ${{ matrix.release }}, ${{ matrix.arch }})');
    const result = await check([file]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe([
      `${file} (Line: ${typo}, Col: 5): Unexpected value 'run-on'`,
      `${file} (Line: ${job + 1}, Col: 5): Required property is missing: runs-on`,
    ].join('\n'));
  });

  test('a job that needs a job that does not exist', async () => {
    const file = await broken('integration.yml', '.github/workflows/integration.yml', (t) => t.replace('needs: compose', 'needs: compsoe'));
    const result = await check([file]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("Job 'check' depends on unknown job 'compsoe'.");
  });

  test('an input of `uses: ./` that action.yml does not declare', async () => {
    const file = await broken('integration.yml', '.github/workflows/integration.yml', (t) => t.replace('          retention-days: 1\n', '          retention-day: 1\n'));
    const result = await check([file]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe(`${file}: jobs.compose.steps[3].with.retention-day: action.yml has no input 'retention-day'`);
  });

  test('action.yml with an unknown runtime and a misspelt key', async () => {
    const file = await broken('action.yml', 'action.yml', (t) => t.replace('using: node24', 'using: node42').replace('\noutputs:\n', '\noutput:\n'));
    const result = await check([file]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`${file} \\(Line: \\d+, Col: 1\\): Unexpected value 'output'`));
    expect(result.stderr).toMatch(new RegExp(`${file} \\(Line: \\d+, Col: 10\\): Unexpected value 'node42'`));
  });
});

test("the integration workflow's fixture composes, and its check passes on the output (and fails on another architecture's)", async () => {
  const fixture = join(dir, 'it');
  await execa('bash', [join(ROOT, 'scripts/integration-fixture.sh'), fixture, 'aarch64']);
  const output = join(dir, 'it-out');
  await compose({
    config: join(fixture, 'extensions.yaml'),
    base: { kind: 'rootfs', path: join(fixture, 'rootfs') },
    arches: ['aarch64'],
    reposDir: join(fixture, 'repos.d'),
    repoPairs: [`fixture=${join(fixture, 'repo')}`],
    weakDeps: true,
    cacheDir: join(dir, 'it-cache'),
    previousState: [],
    output,
  });
  // The artifact holds the architecture's directory, as the check job downloads it.
  const artifact = join(output, 'aarch64');
  const ok = await execa('bash', [join(ROOT, 'scripts/integration-check.sh'), artifact, 'aarch64'], { reject: false });
  expect(ok.stderr).toBe('');
  expect(ok.stdout).toBe('aarch64: 4 packages, as expected');
  const wrong = await execa('bash', [join(ROOT, 'scripts/integration-check.sh'), artifact, 'x86_64'], { reject: false });
  expect(wrong.exitCode).toBe(1);
  expect(wrong.stderr).toContain('expected:\nit-devel.x86_64\nit-docs.noarch\nit-tool-lib.x86_64\nit-tool.x86_64');
});
