// Pull-request validation (depsolve only), package diffs and the cross-architecture checks, end to end.
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../src/cli/main.js';
import { compose, locateFailures, type ComposeOptions } from '../src/engine.js';
import { ComposeError } from '../src/errors.js';
import { loadPrevious } from '../src/inputs/previous.js';
import { buildReport, renderMarkdown } from '../src/report/report.js';
import { BASE_REF, buildFixtureDistro, type FixtureDistro } from './fixtures/distro.js';

let distro: FixtureDistro;
let dir: string;
beforeAll(async () => {
  distro = await buildFixtureDistro();
  dir = await mkdtemp(join(tmpdir(), 'ce-validate-'));
});
afterAll(() => distro?.cleanup());

let n = 0;
async function options(yaml: string, extra: Partial<ComposeOptions> = {}): Promise<ComposeOptions> {
  const config = join(dir, `extensions-${++n}.yaml`);
  await writeFile(config, yaml);
  return {
    config, base: { kind: 'ostree', repo: distro.ostreeRepo, ref: BASE_REF }, arches: ['x86_64', 'aarch64'],
    reposDir: distro.reposDir, repoPairs: [], weakDeps: true, cacheDir: join(dir, `cache-${n}`), previousState: [],
    output: join(dir, `out-${n}`), ...extra,
  };
}

test('depsolve mode resolves everything, downloads and writes nothing', async () => {
  const opts = await options('repos: [fedora]\nextensions:\n  usbguard:\n    packages: [usbguard]\n', { mode: 'depsolve' });
  const result = await compose(opts);
  expect(result.arches.map((a) => a.extensions['usbguard']!.packages.length)).toEqual([3, 3]);
  await expect(readdir(opts.output)).rejects.toThrow('ENOENT');
  // dnf's metadata cache is there; no package was fetched into ours.
  expect(await readdir(opts.cacheDir)).not.toContain('packages');
});

test('every failure of every extension on every architecture, in plain words', async () => {
  const opts = await options(`repos: [fedora]
extensions:
  unresolvable:
    packages: [needs-missing]
  newer:
    packages: [needs-newer-libfoo]
  fine:
    packages: [usbguard]
  firmware:
    packages: [x86-firmware]
`, { mode: 'depsolve' });
  const err = (await compose(opts).catch((e: unknown) => e)) as ComposeError;
  expect(err).toBeInstanceOf(ComposeError);
  const messages = err.problems.map((p) => `${p.extension} on ${p.arch}: ${p.message}`).sort();
  expect(messages).toEqual([
    'firmware on aarch64: no package matches x86-firmware in repos fedora',
    'newer on aarch64: cannot be installed without changing the base: needs-newer-libfoo requires libfoo >= 2.0; the base has libfoo-1.0-1.aarch64 ' +
      '(it would upgrade base package libfoo-1.0-1.aarch64 to libfoo-2.0-1.aarch64)',
    'newer on x86_64: cannot be installed without changing the base: needs-newer-libfoo requires libfoo >= 2.0; the base has libfoo-1.0-1.x86_64 ' +
      '(it would upgrade base package libfoo-1.0-1.x86_64 to libfoo-2.0-1.x86_64)',
    'unresolvable on aarch64: nothing provides libmissing.so.1 needed by needs-missing-1.0-1.aarch64 from fedora',
    'unresolvable on x86_64: nothing provides libmissing.so.1 needed by needs-missing-1.0-1.x86_64 from fedora',
  ]);
});

test('depsolve failures carry the file:line:col of their extension: CLI, summary', async () => {
  const yaml = 'repos: [fedora]\nextensions:\n  fine:\n    packages: [usbguard]\n  newer:\n    packages: [needs-newer-libfoo]\n';
  const opts = await options(yaml, { mode: 'depsolve', arches: ['x86_64'] });
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(
    ['validate', '--depsolve', '--config', opts.config, '--ostree-repo', distro.ostreeRepo, '--base-rev', BASE_REF, '--arch', 'x86_64',
      '--repos-dir', distro.reposDir, '--cache-dir', opts.cacheDir],
    { out: (t) => out.push(t), err: (t) => err.push(t) },
  );
  expect(code).toBe(1);
  // Where the extension is, and which requested package needs the base changed, and why.
  const newer = 'newer on x86_64: cannot be installed without changing the base: needs-newer-libfoo requires libfoo >= 2.0; ' +
    'the base has libfoo-1.0-1.x86_64 (it would upgrade base package libfoo-1.0-1.x86_64 to libfoo-2.0-1.x86_64)';
  expect(err.filter((line) => line.startsWith('error:'))).toEqual([`error: ${opts.config}:5:3: ${newer}`]);
  const failed = (await compose(opts).catch((e: unknown) => e)) as ComposeError;
  const located = await locateFailures(failed.problems, opts.config);
  expect(located).toEqual([expect.objectContaining({ file: opts.config, line: 5, col: 3, extension: 'newer' })]);
  // The summary is Markdown: its `>` is escaped.
  expect(renderMarkdown(buildReport('t', [], { failures: located }))).toContain(`${opts.config}:5:3: ${newer.replace('>', '&gt;')}`);
});

test('cross-architecture differences: reported, or an error with --strict-cross-arch', async () => {
  const yaml = 'repos: [fedora]\nextensions:\n  skew:\n    packages: [skewed]\n';
  const result = await compose(await options(yaml, { mode: 'depsolve' }));
  const report = buildReport('t', result.arches);
  expect(report.crossArch).toEqual([{ extension: 'skew', package: 'skewed', versions: { x86_64: ['1.0-1'], aarch64: ['1.1-1'] } }]);
  const strict = await options(yaml, { strictCrossArch: true });
  const err = (await compose(strict).catch((e: unknown) => e)) as ComposeError;
  expect(err.message).toBe('skew: skewed differs across architectures: x86_64 1.0-1; aarch64 1.1-1');
  await expect(readdir(strict.output)).rejects.toThrow('ENOENT'); // failed before writing anything
});

test('a diff between two composes: upgraded, added, removed', async () => {
  const first = await options('extensions:\n  tools:\n    kind: development\n    repos: [fedora]\n    packages: [devtool-1.0-1, docs-only]\n', { arches: ['aarch64'] });
  await compose(first);
  const second = await options('extensions:\n  tools:\n    kind: development\n    repos: [fedora]\n    packages: [devtool, backend-b]\n', { arches: ['aarch64'] });
  const result = await compose(second);
  const previous = await loadPrevious(first.output, ['aarch64']);
  const report = buildReport('nightly', result.arches, { previous });
  expect(report.diffs[0]!.extensions['tools']).toEqual({
    added: [{ name: 'backend-b', arch: 'noarch', to: '1.0-1' }],
    removed: [{ name: 'docs-only', arch: 'noarch', from: '1.0-1' }],
    upgraded: [{ name: 'devtool', arch: 'aarch64', from: '1.0-1', to: '2.0-1' }],
    downgraded: [],
  });
  expect(renderMarkdown(report)).toContain('| tools | development | 2 |');
  // The previous metadata.json on disk is the real one the first compose wrote.
  expect(JSON.parse(await readFile(join(first.output, 'aarch64', 'metadata.json'), 'utf8')).extensions.tools.packages).toEqual(['devtool-1.0-1.aarch64', 'docs-only-1.0-1.noarch']);
});
