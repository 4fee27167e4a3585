import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFixtureDistro, FIXTURE_ARCHES, type FixtureDistro } from '../../test/fixtures/distro.js';
import { run } from './exec.js';
import { ownedStem } from './leftovers.js';
import { formatNevra, queryInstalled } from './rpm.js';

let distro: FixtureDistro;
let tmp: string;

beforeAll(async () => {
  distro = await buildFixtureDistro();
  tmp = await mkdtemp(join(tmpdir(), 'ce-rpm-test-'));
});
afterAll(async () => {
  await distro?.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test('formatNevra omits a zero epoch', () => {
  expect(formatNevra({ name: 'a', epoch: 0, version: '1', release: '2', arch: 'noarch' })).toBe('a-1-2.noarch');
  expect(formatNevra({ name: 'a', epoch: 3, version: '1', release: '2', arch: 'x86_64' })).toBe('a-3:1-2.x86_64');
});

test.each(FIXTURE_ARCHES.map((arch, i) => [arch, i === 0 ? '/usr/lib/sysimage/rpm' : '/usr/share/rpm']))(
  'queryInstalled %s (dbpath %s)',
  async (arch, dbpath) => {
    // Query a copy: rpm may leave lock/WAL files in the dbpath.
    const root = join(tmp, arch);
    await cp(join(distro.rootfs[arch]!, dbpath), join(root, dbpath), { recursive: true });
    const pkgs = await queryInstalled(root, dbpath);
    expect(pkgs.map((p) => p.name)).toEqual([
      'bash', 'filesystem', 'glibc', 'kernel', 'kernel-core', 'kernel-modules', 'libfoo', 'oldtool', 'openssl-libs',
    ]);
    expect(pkgs.find((p) => p.name === 'openssl-libs')).toEqual({
      name: 'openssl-libs', epoch: 1, version: '3.1', release: '1', arch, nevra: `openssl-libs-1:3.1-1.${arch}`,
    });
    expect(pkgs.find((p) => p.name === 'kernel')).toMatchObject({ epoch: 0, nevra: `kernel-5.0-1.fc40.${arch}` });

    // gpg-pubkey pseudo-packages are left out.
    await run('rpm', ['--root', root, '--dbpath', dbpath, '--import', distro.key.publicKey], { env: { HOME: tmp } });
    const { stdout } = await run('rpm', ['--root', root, '--dbpath', dbpath, '-q', 'gpg-pubkey'], { env: { HOME: tmp } });
    expect(stdout).toMatch(/^gpg-pubkey-/);
    expect((await queryInstalled(root, dbpath, tmp)).map((p) => p.nevra)).toEqual(pkgs.map((p) => p.nevra));
  },
);

test('the wrong dbpath gives no packages, and a private HOME leaves nothing behind', async () => {
  const homes = async () => (await readdir(tmpdir())).filter((f) => f.startsWith(`${ownedStem('compose-extensions-tmp-')}rpm-home-`));
  const before = await homes();
  const root = join(tmp, 'x86_64-wrong');
  await cp(join(distro.rootfs.x86_64!, 'usr/lib/sysimage/rpm'), join(root, 'usr/lib/sysimage/rpm'), { recursive: true });
  expect(await queryInstalled(root, '/var/lib/rpm')).toEqual([]);
  expect(await homes()).toEqual(before);
});
