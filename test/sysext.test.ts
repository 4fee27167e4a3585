// The sysext stage through the engine: a rootfs base, a file:// repo built with rpmbuild, real dnf,
// rpm2archive, mkfs.erofs and fsck.erofs.
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { compose, type ComposeOptions } from '../src/engine.js';
import { ComposeError, UsageError } from '../src/errors.js';
import type { Metadata } from '../src/metadata/metadata.js';
import { run } from '../src/tools/exec.js';
import { makeRootfs } from './fixtures/base.js';
import { erofsLabel } from './fixtures/erofs.js';
import { buildRpms, createRepo, type FixturePackage } from './fixtures/rpms.js';
import { parseSysext } from '../src/sysext/options.js';
import { labelsInPseudoFiles, parseMksquashfsVersion } from '../src/sysext/labels.js';
import { buildImage } from '../src/publish/oci-image.js';
import { main } from '../src/cli/main.js';
import { checkSchema, type Schema } from '../src/metadata/schema-check.js';

const PACKAGES: FixturePackage[] = [
  { name: 'base-lib', version: '1.0', release: '1', entries: [{ path: '/usr/share/common/file', content: 'base' }, { path: '/usr/share/common/same', content: 'same' }] },
  { name: 'owned', version: '1.0', release: '1', entries: [{ path: '/usr/share/owned/state', content: 's', mode: '0640', user: 'greeterd', group: 'greeterd' }] },
  { name: 'twin', version: '1.0', release: '1', entries: [{ path: '/usr/share/common/same', content: 'same' }] },
  { name: 'greeter', version: '2.1', release: '3', requires: ['base-lib', 'greeter-data'], entries: [{ path: '/usr/bin/greeter', content: 'greeter', mode: '0755' }] },
  { name: 'greeter-data', version: '5', release: '1', noarch: true, entries: [{ path: '/usr/share/greeter/words', content: 'hi\n' }] },
  { name: 'logger', version: '1.0', release: '1', entries: [{ path: '/var/log/logger.log', content: '' }] },
];

let dir: string;
let base: string;
let repo: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ce-sysext-e2e-'));
  const rpms = await buildRpms(PACKAGES, ['x86_64'], join(dir, 'repo'));
  // A spec of its own: in one spec, both packages would get the last file written to the buildroot.
  await buildRpms([{ name: 'clash', version: '1.0', release: '1', entries: [{ path: '/usr/share/common/file', content: 'ext' }] }], ['x86_64'], join(dir, 'repo'));
  repo = join(dir, 'repo', 'x86_64');
  await createRepo(repo);
  base = await makeRootfs(join(dir, 'base'), {
    rpms: rpms['x86_64']!.filter((f) => f.includes('base-lib')),
    osRelease: { ID: 'fixture', VERSION_ID: '40', SYSEXT_LEVEL: '1.2' },
  });
  // Like Fedora's nss-altfiles: root in etc, system users in usr/lib.
  await writeFile(join(base, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
  await writeFile(join(base, 'usr/lib/passwd'), 'greeterd:x:990:991::/:/sbin/nologin\n');
  await writeFile(join(base, 'usr/lib/group'), 'greeterd:x:991:\n');
  // The base's own policy (a fixture name, so a label can only come from here, not the host).
  await mkdir(join(base, 'etc/selinux/fixturepol/contexts/files'), { recursive: true });
  await writeFile(join(base, 'etc/selinux/config'), 'SELINUX=enforcing\nSELINUXTYPE=fixturepol\n');
  // /usr/bin and /usr/share/greeter get their labels only through the equivalences beside it.
  const files = join(base, 'etc/selinux/fixturepol/contexts/files');
  await writeFile(join(files, 'file_contexts'), '/usr(/.*)?\tsystem_u:object_r:fixture_usr_t:s0\n/fixture/bin(/.*)?\tsystem_u:object_r:fixture_bin_t:s0\n/fixture/words(/.*)?\tsystem_u:object_r:fixture_words_t:s0\n');
  await writeFile(join(files, 'file_contexts.subs_dist'), '/usr/bin /fixture/bin\n');
  await writeFile(join(files, 'file_contexts.subs'), '/usr/share/greeter /fixture/words\n');
  await writeFile(join(files, 'file_contexts.local'), '/usr/lib/extension-release\\.d(/.*)?\tsystem_u:object_r:fixture_local_t:s0\n');
}, 120_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
async function options(yaml: string, extra: Partial<ComposeOptions> = {}): Promise<ComposeOptions> {
  const config = join(dir, `extensions-${n}.yaml`);
  await writeFile(config, yaml);
  return {
    config,
    base: { kind: 'rootfs', path: base },
    arches: ['x86_64'],
    repoPairs: [`local=${repo}`],
    weakDeps: true,
    cacheDir: join(dir, 'cache'),
    previousState: [],
    output: join(dir, `out-${n++}`),
    ...extra,
  };
}

const YAML = 'repos: [local]\nextensions:\n  greeter:\n    packages: [greeter]\n  logger:\n    packages: [logger]\n  devel:\n    kind: development\n    packages: [greeter-data]\n';

describe('compose with sysext', () => {
  test('an image per os-extension from its own closure, listed in metadata.json with SHA256SUMS', async () => {
    const opts = await options(YAML, { sysext: parseSysext('greeter', undefined, 'sysext', 'https://example.org/ext/${arch}') });
    await compose(opts);
    const arch = join(opts.output, 'x86_64');
    expect((await readdir(join(arch, 'sysext'))).sort()).toEqual(['SHA256SUMS', 'greeter-2.1-3-40-x86_64.raw', 'greeter-2.1-3-40-x86_64.raw.json', 'greeter.transfer']);
    expect(await readFile(join(arch, 'sysext', 'greeter.transfer'), 'utf8')).toBe([
      '# systemd-sysupdate transfer for the greeter system extension (written by compose-extensions).',
      '# On the host: /etc/sysupdate.greeter.d/greeter.transfer, then',
      '#   systemd-sysupdate --component=greeter update && systemd-sysext refresh',
      '[Transfer]',
      '# SHA256SUMS is published unsigned: sign it (SHA256SUMS.gpg) and set Verify=yes to check it.',
      'Verify=no',
      '',
      '[Source]',
      'Type=url-file',
      'Path=https://example.org/ext/x86_64/',
      'MatchPattern=greeter-@v-40-x86_64.raw',
      '',
      '[Target]',
      'Type=regular-file',
      'Path=/var/lib/extensions.d/',
      'MatchPattern=greeter-@v-40-x86_64.raw',
      'CurrentSymlink=/var/lib/extensions/greeter.raw',
      '',
    ].join('\n'));
    const image = join(arch, 'sysext', 'greeter-2.1-3-40-x86_64.raw');
    const sha = createHash('sha256').update(await readFile(image)).digest('hex');
    expect(await readFile(join(arch, 'sysext', 'SHA256SUMS'), 'utf8')).toBe(`${sha}  greeter-2.1-3-40-x86_64.raw\n`);
    const metadata = JSON.parse(await readFile(join(arch, 'metadata.json'), 'utf8')) as Metadata;
    expect(metadata.sysext).toEqual([{ extension: 'greeter', version: '2.1-3', path: 'sysext/greeter-2.1-3-40-x86_64.raw', sha256: sha, format: 'erofs' }]);
    const rpmSha = (nevra: string) => metadata.packages.find((p) => p.nevra === nevra)!.sha256;
    expect(JSON.parse(await readFile(`${image}.json`, 'utf8'))).toEqual({
      extension: 'greeter',
      arch: 'x86_64',
      version: '2.1-3',
      image: 'greeter-2.1-3-40-x86_64.raw',
      sha256: sha,
      format: 'erofs',
      base: { source: 'rootfs', ref: base, version: null, osRelease: { ID: 'fixture', VERSION_ID: '40' } },
      extensionRelease: { ID: 'fixture', VERSION_ID: '40', SYSEXT_LEVEL: '1.2', ARCHITECTURE: 'x86-64' },
      packages: [
        { nevra: 'greeter-2.1-3.x86_64', sha256: rpmSha('greeter-2.1-3.x86_64') },
        { nevra: 'greeter-data-5-1.noarch', sha256: rpmSha('greeter-data-5-1.noarch') },
      ],
      findings: [],
    });
    const schema = JSON.parse(await readFile(new URL('../schema/metadata.schema.json', import.meta.url), 'utf8')) as Schema;
    expect(checkSchema(schema, metadata)).toEqual([]);
    const x = join(dir, 'x');
    await run('fsck.erofs', [`--extract=${x}`, image]);
    expect(await readFile(join(x, 'usr/lib/extension-release.d/extension-release.greeter'), 'utf8')).toBe('ID=fixture\nVERSION_ID=40\nSYSEXT_LEVEL=1.2\nARCHITECTURE=x86-64\n');
    expect(await readFile(join(x, 'usr/bin/greeter'), 'utf8')).toBe('greeter');
    expect(await readFile(join(x, 'usr/share/greeter/words'), 'utf8')).toBe('hi\n');
    // Labels from the base's file_contexts, its .subs_dist and .subs equivalences and .local rules.
    expect(await erofsLabel(image, '/usr/bin/greeter')).toBe('system_u:object_r:fixture_bin_t:s0');
    expect(await erofsLabel(image, '/usr/share/greeter/words')).toBe('system_u:object_r:fixture_words_t:s0');
    expect(await erofsLabel(image, '/usr/share/greeter')).toBe('system_u:object_r:fixture_words_t:s0');
    expect(await erofsLabel(image, '/usr/lib/extension-release.d/extension-release.greeter')).toBe('system_u:object_r:fixture_local_t:s0');
    expect(await erofsLabel(image, '/usr/lib')).toBe('system_u:object_r:fixture_usr_t:s0');
    // With upload: oci, the images ride along in the repository layer.
    const built = await buildImage(arch, { workDir: dir });
    const blobs = join(built.layout, 'blobs', 'sha256');
    const listing: string[] = [];
    for (const blob of await readdir(blobs)) {
      const list = await run('tar', ['-tzf', join(blobs, blob)], { allowFailure: true });
      if (list.exitCode === 0) listing.push(...list.stdout.split('\n'));
    }
    expect(listing).toEqual(expect.arrayContaining([
      'usr/share/rpm-ostree/extensions/sysext/greeter-2.1-3-40-x86_64.raw',
      'usr/share/rpm-ostree/extensions/sysext/greeter-2.1-3-40-x86_64.raw.json',
      'usr/share/rpm-ostree/extensions/sysext/SHA256SUMS',
      'usr/share/rpm-ostree/extensions/sysext/greeter.transfer',
    ]));
    await rm(built.layout, { recursive: true, force: true });
    // base-lib is the base's: not in the image.
    expect((await readdir(join(x, 'usr'))).sort()).toEqual(['bin', 'lib', 'share']);
  }, 120_000);

  test('checked against the base rpmdb: a differing file refuses, an identical one is listed (an error with strict shadow)', async () => {
    const clash = await options('repos: [local]\nextensions:\n  clash:\n    packages: [clash]\n', { sysext: { extensions: true } });
    const err = await compose(clash).then(() => undefined, (e: unknown) => e);
    expect((err as ComposeError).message).toBe(
      "clash on x86_64: clash-1.0-1.x86_64: /usr/share/common/file is also in the base, with different contents: the image would hide the base's file",
    );
    const warnings: string[] = [];
    const log = { info() {}, warn: (m: string) => warnings.push(m), scope: () => ({ stage() {}, info() {}, warn: (m: string) => warnings.push(m), end() {} }) };
    const twin = await options('repos: [local]\nextensions:\n  twin:\n    packages: [twin]\n', { sysext: { extensions: true }, log });
    await compose(twin);
    expect(warnings).toEqual(['twin: twin-1.0-1.x86_64: /usr/share/common/same is also in the base, identical']);
    const strict = await options('repos: [local]\nextensions:\n  twin:\n    packages: [twin]\n', { sysext: { extensions: true, strict: ['shadow'] } });
    expect(((await compose(strict).then(() => undefined, (e: unknown) => e)) as ComposeError).message).toBe(
      'twin on x86_64: twin-1.0-1.x86_64: /usr/share/common/same is also in the base, identical',
    );
  }, 120_000);

  test("owners are mapped with the base's own users and groups", async () => {
    const opts = await options('repos: [local]\nextensions:\n  owned:\n    packages: [owned]\n', { sysext: { extensions: true } });
    await compose(opts);
    const dump = await run('dump.erofs', ['--path=/usr/share/owned/state', join(opts.output, 'x86_64', 'sysext', 'owned-1.0-1-40-x86_64.raw')]);
    expect(dump.stdout).toMatch(/Uid: 990 +Gid: 991 +Access: 0640/);
  }, 120_000);

  test('previous-state: turning sysext on, or changing its options, writes; the same options again do not', async () => {
    const off = await options(YAML);
    const first = await compose(off);
    // The same run again keeps the state earlier versions gave: sysext off adds nothing to it.
    expect((await compose({ ...off, previousState: [first.stateChecksum] })).changed).toBe(false);
    const on = { ...off, sysext: parseSysext('greeter', undefined, 'sysext') };
    const second = await compose({ ...on, previousState: [first.stateChecksum] });
    expect(second.changed).toBe(true);
    expect(second.stateChecksum).not.toBe(first.stateChecksum);
    expect((await readdir(join(off.output, 'x86_64', 'sysext'))).sort()).toEqual(['SHA256SUMS', 'greeter-2.1-3-40-x86_64.raw', 'greeter-2.1-3-40-x86_64.raw.json', 'greeter.transfer']);
    expect((await compose({ ...on, previousState: [second.stateChecksum] })).changed).toBe(false);
    const squashfs = await compose({ ...on, sysext: parseSysext('greeter', 'squashfs', 'sysext'), previousState: [second.stateChecksum] });
    expect(squashfs.changed).toBe(true);
    const metadata = JSON.parse(await readFile(join(off.output, 'x86_64', 'metadata.json'), 'utf8')) as Metadata;
    expect(metadata.stateChecksum).toBe(squashfs.stateChecksum);
    expect(metadata.sysext?.map((i) => i.format)).toEqual(['squashfs']);
  }, 180_000);

  test('squashfs: labels through mksquashfs pseudo definitions from 4.6 on, else a warning says there are none', async () => {
    const version = parseMksquashfsVersion((await run('mksquashfs', ['-version'], { allowFailure: true })).stdout);
    const warnings: string[] = [];
    const log = { info() {}, warn: (m: string) => warnings.push(m), scope: () => ({ stage() {}, info() {}, warn: (m: string) => warnings.push(m), end() {} }) };
    const opts = await options(YAML, { sysext: parseSysext('greeter', 'squashfs', 'sysext'), log });
    await compose(opts);
    const image = join(opts.output, 'x86_64', 'sysext', 'greeter-2.1-3-40-x86_64.raw');
    // rdsquashfs (squashfs-tools-ng) lists an inode's xattrs without extracting or mounting.
    const label = async (path: string) => /^security\.selinux=(.*)$/m.exec((await run('rdsquashfs', ['-x', path, image])).stdout)?.[1];
    if (labelsInPseudoFiles(version)) {
      expect(warnings).toEqual([]);
      expect(await label('/usr/bin/greeter')).toBe('system_u:object_r:fixture_bin_t:s0');
      expect(await label('/usr/share/greeter/words')).toBe('system_u:object_r:fixture_words_t:s0');
      expect(await label('/usr/lib/extension-release.d/extension-release.greeter')).toBe('system_u:object_r:fixture_local_t:s0');
      expect(await label('/usr/lib')).toBe('system_u:object_r:fixture_usr_t:s0');
      expect(await label('/')).toBeUndefined();
    } else {
      expect(warnings).toEqual([`squashfs images carry no SELinux labels: mksquashfs ${version!.join('.')} cannot set them (squashfs-tools 4.6 or later can); use erofs, or a newer squashfs-tools, for labelled images`]);
      expect(await label('/usr/bin/greeter')).toBeUndefined();
    }
    expect((await run('rdsquashfs', ['-x', '/usr/bin/greeter', image])).stdout).not.toMatch(/security\.capability/);
  }, 120_000);

  test('off by default: nothing but the repo', async () => {
    const opts = await options(YAML);
    await compose(opts);
    await expect(lstat(join(opts.output, 'x86_64', 'sysext'))).rejects.toThrow(/ENOENT/);
    const metadata = JSON.parse(await readFile(join(opts.output, 'x86_64', 'metadata.json'), 'utf8')) as Metadata;
    expect('sysext' in metadata).toBe(false);
  }, 120_000);

  test('a refused file fails the compose and leaves the previous output as it was', async () => {
    const opts = await options(YAML, { sysext: { extensions: true } });
    const err = await compose(opts).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ComposeError);
    expect((err as ComposeError).message).toBe('logger on x86_64: logger-1.0-1.x86_64: /var/log/logger.log is outside /usr and /opt: a system extension cannot ship it');
    await expect(lstat(join(opts.output, 'x86_64'))).rejects.toThrow(/ENOENT/);
  }, 120_000);

  test('a listed name that is not an os-extension is a usage error before anything runs', async () => {
    const opts = await options(YAML, { sysext: parseSysext('greeter,devel,nope', undefined, 'sysext') });
    const err = await compose(opts).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).lines).toEqual([
      'sysext: "devel" is a development extension; only os-extensions become system extension images',
      `sysext: "nope" is not an extension of ${opts.config}`,
    ]);
  }, 60_000);

  test('CLI: a bare --sysext builds every os-extension; bad values exit 2 with the message', async () => {
    const cli = async (...args: string[]) => {
      const err: string[] = [];
      const code = await main(args, { out: () => {}, err: (t) => err.push(t) });
      return { code, err: err.join('\n') };
    };
    const opts = await options('repos: [local]\nextensions:\n  greeter:\n    packages: [greeter]\n');
    const common = ['compose', '--config', opts.config, '--rootfs', base, '--arch', 'x86_64', '--repo', `local=${repo}`, '--cache-dir', opts.cacheDir, '--output', opts.output];
    expect(await cli(...common, '--sysext', '--sysext-format', 'zip')).toEqual({ code: 2, err: 'error: --sysext-format must be one of erofs, squashfs, not "zip"\nRun \'compose-extensions --help\' for usage.' });
    expect(await cli(...common, '--sysext=nope')).toEqual({ code: 2, err: `error: sysext: "nope" is not an extension of ${opts.config}\nRun 'compose-extensions --help' for usage.` });
    expect((await cli(...common, '--sysext')).code).toBe(0);
    expect((await readdir(join(opts.output, 'x86_64', 'sysext'))).sort()).toEqual(['SHA256SUMS', 'greeter-2.1-3-40-x86_64.raw', 'greeter-2.1-3-40-x86_64.raw.json', 'greeter.transfer']);
  }, 120_000);
});
