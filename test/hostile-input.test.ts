// Hostile or mistaken inputs through the whole compose, on the real fixture distro.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compose, type ComposeOptions } from '../src/engine.js';
import { ComposeError, formatComposeProblem } from '../src/errors.js';
import { BASE_REF, buildFixtureDistro, type FixtureDistro } from './fixtures/distro.js';

let distro: FixtureDistro;
let dir: string;
beforeAll(async () => {
  distro = await buildFixtureDistro();
  dir = await mkdtemp(join(tmpdir(), 'ce-hostile-'));
});
afterAll(async () => {
  await distro?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

let n = 0;
async function options(yaml: string, extra: Partial<ComposeOptions> = {}): Promise<ComposeOptions> {
  const config = join(dir, `extensions-${++n}.yaml`);
  await writeFile(config, yaml);
  return {
    config, base: { kind: 'ostree', repo: distro.ostreeRepo, ref: BASE_REF }, arches: ['x86_64'],
    reposDir: distro.reposDir, repoPairs: [], weakDeps: true, cacheDir: join(dir, `cache-${n}`), previousState: [],
    output: join(dir, `out-${n}`), ...extra,
  };
}

test('extensions named __proto__ and constructor compose like any other', async () => {
  const result = await compose(await options('repos: [fedora]\nextensions:\n  __proto__:\n    packages: [usbguard]\n  constructor:\n    packages: [usbguard]\n'));
  const metadata = JSON.parse(await readFile(result.arches[0]!.metadataPath!, 'utf8'));
  expect(Object.keys(metadata.extensions)).toEqual(['__proto__', 'constructor']);
  expect(metadata.extensions['__proto__'].packages).toEqual(['libqb-2.0.8-1.x86_64', 'usbguard-1.1.3-1.x86_64', 'usbguard-selinux-1.1.3-1.noarch']);
  const extensionsJson = JSON.parse(await readFile(result.arches[0]!.extensionsJsonPath!, 'utf8'));
  expect(Object.keys(extensionsJson.extensions)).toEqual(['__proto__', 'constructor']);
});

test('an x86_64 base composed for aarch64 (a forgotten ${basearch}) fails, naming both architectures', async () => {
  const opts = await options('repos: [fedora]\nextensions:\n  u:\n    packages: [usbguard]\n', {
    base: { kind: 'ostree', repo: distro.ostreeRepo, ref: 'fixture/x86_64/base' }, arches: ['aarch64'],
  });
  const err = await compose(opts).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ComposeError);
  expect((err as ComposeError).problems.map((p) => formatComposeProblem(p))).toEqual([
    'aarch64: the base fixture/x86_64/base is for x86_64, not aarch64 (its rpmdb has 9 x86_64 packages and none for aarch64): check ${basearch} in --base-rev',
  ]);
});
