import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ComposeError } from '../errors.js';
import { run } from '../tools/exec.js';
import { buildRpms, type FixturePackage } from '../../test/fixtures/rpms.js';
import { erofsXattrs } from '../../test/fixtures/erofs.js';
import { buildSysext, type SysextRequest } from './build.js';
import { labelsInPseudoFiles, parseFileContexts, parseMksquashfsVersion, type FileContexts } from './labels.js';

const squashfsVersion = parseMksquashfsVersion((await run('mksquashfs', ['-version'], { allowFailure: true })).stdout);

const OS_RELEASE = { ID: 'fedora', VERSION_ID: '41', NAME: 'Fedora Linux' };
const HELLO: FixturePackage = {
  name: 'hello',
  version: '2.1',
  release: '3',
  requires: ['hello-data'],
  entries: [
    { path: '/usr/bin/hello', content: '#!/bin/sh\necho hello\n', mode: '0755' },
    { path: '/usr/lib64/libhello.so.1', content: 'ELF-ish library', mode: '0755' },
    { path: '/usr/lib64/libhello.so', symlink: 'libhello.so.1' },
    { path: '/usr/bin/hello-suid', content: 'suid', mode: '4755' },
    { path: '/usr/bin/hello-ping', content: 'ping', mode: '0755', caps: 'cap_net_raw=ep' },
    { path: '/usr/share/hello', dir: true, mode: '0750', user: 'hellouser', group: 'hellogrp' },
    { path: '/usr/share/hello/secret', content: 'secret', mode: '0640', user: 'hellouser', group: 'hellogrp' },
    { path: '/etc/hello.conf', content: 'greeting=hi\n', mode: '0644', config: true },
    { path: '/usr/share/hello-ro', dir: true, mode: '0555' },
    { path: '/usr/share/hello-ro/file', content: 'ro', mode: '0444' },
  ],
};
const DATA: FixturePackage = { name: 'hello-data', version: '1.0', release: '1', noarch: true, entries: [{ path: '/usr/share/hello-data/words', content: 'hi\n' }] };

let dir: string;
let rpms: Record<string, string>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ce-sysext-test-'));
  const bad: FixturePackage[] = [
    { name: 'bad-var', entries: [{ path: '/var/lib/bad/state', content: 'x' }] },
    { name: 'bad-etc', entries: [{ path: '/etc/bad.conf', content: 'x' }] },
    // Owners the base lacks: fixed ids from the package's own sysusers.d, else root.
    {
      name: 'svc',
      entries: [
        { path: '/usr/lib/sysusers.d/svc.conf', content: '# svc\nu svc 321 "svc daemon" /var/lib/svc\ng svcdata 654\nu dyn - "dynamic"\n' },
        { path: '/usr/share/svc', dir: true, mode: '0750', user: 'svc', group: 'svc' },
        { path: '/usr/share/svc/key', content: 'k', mode: '0640', user: 'svc', group: 'svcdata' },
        { path: '/usr/libexec/svc-helper', content: 'h', mode: '2755', user: 'root', group: 'svcdata' },
        { path: '/usr/share/svc-dyn', content: 'd', mode: '0600', user: 'dyn', group: 'root' },
      ],
    },
    {
      name: 'orphan',
      entries: [
        { path: '/usr/share/orphan/a', content: 'a', mode: '0640', user: 'ghost', group: 'ghost' },
        { path: '/usr/share/orphan/b', content: 'b', mode: '0640', user: 'ghost', group: 'root' },
      ],
    },
    { name: 'orphan-suid', entries: [{ path: '/usr/bin/orphan-suid', content: 's', mode: '4755', user: 'ghost', group: 'root' }] },
    {
      name: 'needy',
      post: 'echo configured\n/usr/sbin/update-alternatives --install /usr/bin/needy needy /usr/libexec/needy 10 || :',
      entries: [
        { path: '/usr/lib/sysusers.d/needy.conf', content: 'u needy - -\n' },
        { path: '/usr/lib/modules/6.1.0/extra/needy.ko.xz', content: 'module' },
        { path: '/usr/share/needy/same', content: 'same' },
        { path: '/usr/share/needy/other', content: 'new' },
      ],
    },
  ];
  const built = await buildRpms([HELLO, DATA, ...bad], ['x86_64'], join(dir, 'rpms'));
  rpms = Object.fromEntries(built['x86_64']!.map((f) => [f.split('/').pop()!.replace(/-\d.*$/, ''), f]));
}, 120_000);

afterAll(async () => {
  // Extracted trees keep the image's read-only directories: a non-root run could not remove them.
  await run('chmod', ['-R', 'u+rwX', dir]);
  await rm(dir, { recursive: true, force: true });
});

function request(sub: string, names: string[], extra: Partial<SysextRequest> = {}): SysextRequest {
  const nevra: Record<string, [string, string]> = {
    needy: ['needy-1.0-1.x86_64', 'x86_64'], hello: ['hello-2.1-3.x86_64', 'x86_64'], 'hello-data': ['hello-data-1.0-1.noarch', 'noarch'] };
  return {
    name: 'hello',
    arch: 'x86_64',
    version: '2.1-3',
    packages: names.map((n) => ({ nevra: nevra[n]?.[0] ?? `${n}-1.0-1.x86_64`, arch: nevra[n]?.[1] ?? 'x86_64', file: rpms[n]! })),
    osRelease: OS_RELEASE,
    users: new Map([['hellouser', 990]]),
    groups: new Map([['hellogrp', 991]]),
    format: 'erofs',
    epoch: 1700000000,
    outDir: join(dir, sub, 'out'),
    workDir: join(dir, sub, 'work'),
    baseFiles: new Map(),
    strict: [],
    ...extra,
  };
}

async function inspect(image: string, path: string): Promise<string> {
  return (await run('dump.erofs', [`--path=${path}`, image])).stdout;
}

/** i_mode of a compact or extended inode: superblock meta_blkaddr (offset 1024 + 40), NID from dump.erofs. */
async function imageMode(image: string, path: string): Promise<number> {
  const nid = Number(/NID: (\d+)/.exec(await inspect(image, path))![1]);
  const data = await readFile(image);
  return data.readUInt16LE(data.readUInt32LE(1024 + 40) * 4096 + nid * 32 + 4);
}

async function xattrSize(image: string, path: string): Promise<number> {
  return Number(/Xattr size: (\d+)/.exec(await inspect(image, path))![1]);
}

async function refusal(req: SysextRequest): Promise<string[]> {
  const err = await buildSysext(req).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ComposeError);
  return (err as ComposeError).problems.map((p) => `${p.extension} on ${p.arch}: ${p.message}`);
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('checks against the base', () => {
  const baseFiles = new Map([
    ['/usr/share/needy/same', { mode: 0o100644, digest: sha256('same'), linkTo: '' }],
    ['/usr/share/needy/other', { mode: 0o100644, digest: sha256('old'), linkTo: '' }],
  ]);
  test('a differing shadowed file refuses the image', async () => {
    expect(await refusal(request('s1', ['needy'], { name: 'needy', version: '1.0-1', baseFiles }))).toEqual([
      'needy on x86_64: needy-1.0-1.x86_64: /usr/share/needy/other is also in the base, with different contents: the image would hide the base\'s file',
    ]);
  }, 60_000);

  test('scriptlets, sysusers, kernel modules and identical shadowed files are listed; strict classes refuse', async () => {
    const same = new Map([...baseFiles].filter(([p]) => p.endsWith('same')));
    const built = await buildSysext(request('s2', ['needy'], { name: 'needy', version: '1.0-1', baseFiles: same }));
    expect(built.findings).toEqual([
      { class: 'kmod', severity: 'warning', message: 'needy-1.0-1.x86_64: /usr/lib/modules/6.1.0/extra/needy.ko.xz is a kernel module: depmod cannot run for it inside an extension' },
      { class: 'sysusers', severity: 'warning', message: 'needy-1.0-1.x86_64: /usr/lib/sysusers.d/needy.conf declares users or groups: systemd-sysusers must run on the host' },
      { class: 'shadow', severity: 'warning', message: 'needy-1.0-1.x86_64: /usr/share/needy/same is also in the base, identical' },
      { class: 'scriptlet', severity: 'warning', message: 'needy-1.0-1.x86_64: has post scriptlets, which are not run' },
      { class: 'scriptlet', severity: 'warning', message: 'needy-1.0-1.x86_64: a scriptlet calls alternatives: the links it would make are not in the image' },
    ]);
    expect(await refusal(request('s3', ['needy'], { name: 'needy', version: '1.0-1', baseFiles: same, strict: ['scriptlet', 'kmod'] }))).toEqual([
      'needy on x86_64: needy-1.0-1.x86_64: /usr/lib/modules/6.1.0/extra/needy.ko.xz is a kernel module: depmod cannot run for it inside an extension',
      'needy on x86_64: needy-1.0-1.x86_64: has post scriptlets, which are not run',
      'needy on x86_64: needy-1.0-1.x86_64: a scriptlet calls alternatives: the links it would make are not in the image',
    ]);
  }, 60_000);
});

describe('owners the base does not define', () => {
  const owner = async (image: string, path: string) => {
    const [, uid, gid] = /Uid: (\d+)\s+Gid: (\d+)/.exec(await inspect(image, path))!;
    return `${uid}:${gid} ${(await imageMode(image, path)).toString(8)}`;
  };

  test("take the fixed ids of the image's own sysusers.d, listed as sysusers findings; strict sysusers refuses", async () => {
    const built = await buildSysext(request('o1', ['svc'], { name: 'svc', version: '1.0-1' }));
    expect(built.findings).toEqual([
      { class: 'sysusers', severity: 'warning', message: 'svc-1.0-1.x86_64: /usr/lib/sysusers.d/svc.conf declares users or groups: systemd-sysusers must run on the host' },
      { class: 'sysusers', severity: 'warning', message: 'svc-1.0-1.x86_64: /usr/libexec/svc-helper (and 1 more) are owned by group svcdata, which the base does not define: the image uses 654, its fixed id in /usr/lib/sysusers.d/svc.conf' },
      { class: 'sysusers', severity: 'warning', message: 'svc-1.0-1.x86_64: /usr/share/svc (and 1 more) are owned by user svc, which the base does not define: the image uses 321, its fixed id in /usr/lib/sysusers.d/svc.conf' },
      { class: 'sysusers', severity: 'warning', message: 'svc-1.0-1.x86_64: /usr/share/svc is owned by group svc, which the base does not define: the image uses 321, its fixed id in /usr/lib/sysusers.d/svc.conf' },
      { class: 'sysusers', severity: 'warning', message: 'svc-1.0-1.x86_64: /usr/share/svc-dyn is owned by user dyn, which the base does not define and no sysusers.d file of the image gives a fixed id: root owns it in the image instead' },
    ]);
    expect(await owner(built.file, '/usr/share/svc')).toBe('321:321 40750');
    expect(await owner(built.file, '/usr/share/svc/key')).toBe('321:654 100640');
    // setgid to a group with a fixed id is kept: the host creates that group with that id.
    expect(await owner(built.file, '/usr/libexec/svc-helper')).toBe('0:654 102755');
    expect(await owner(built.file, '/usr/share/svc-dyn')).toBe('0:0 100600');
    expect(await refusal(request('o2', ['svc'], { name: 'svc', version: '1.0-1', strict: ['sysusers'] }))).toEqual([
      'svc on x86_64: svc-1.0-1.x86_64: /usr/lib/sysusers.d/svc.conf declares users or groups: systemd-sysusers must run on the host',
      'svc on x86_64: svc-1.0-1.x86_64: /usr/libexec/svc-helper (and 1 more) are owned by group svcdata, which the base does not define: the image uses 654, its fixed id in /usr/lib/sysusers.d/svc.conf',
      'svc on x86_64: svc-1.0-1.x86_64: /usr/share/svc (and 1 more) are owned by user svc, which the base does not define: the image uses 321, its fixed id in /usr/lib/sysusers.d/svc.conf',
      'svc on x86_64: svc-1.0-1.x86_64: /usr/share/svc is owned by group svc, which the base does not define: the image uses 321, its fixed id in /usr/lib/sysusers.d/svc.conf',
      'svc on x86_64: svc-1.0-1.x86_64: /usr/share/svc-dyn is owned by user dyn, which the base does not define and no sysusers.d file of the image gives a fixed id: root owns it in the image instead',
    ]);
  }, 60_000);

  test('without a fixed id root owns the files (a finding); a setuid file is refused, since it would run as root', async () => {
    const built = await buildSysext(request('o3', ['orphan'], { name: 'orphan', version: '1.0-1' }));
    expect(built.findings).toEqual([
      { class: 'sysusers', severity: 'warning', message: 'orphan-1.0-1.x86_64: /usr/share/orphan/a (and 1 more) are owned by user ghost, which the base does not define and no sysusers.d file of the image gives a fixed id: root owns them in the image instead' },
      { class: 'sysusers', severity: 'warning', message: 'orphan-1.0-1.x86_64: /usr/share/orphan/a is owned by group ghost, which the base does not define and no sysusers.d file of the image gives a fixed id: group root owns it in the image instead' },
    ]);
    expect(await owner(built.file, '/usr/share/orphan/a')).toBe('0:0 100640');
    expect(await owner(built.file, '/usr/share/orphan/b')).toBe('0:0 100640');
    expect(await refusal(request('o4', ['orphan-suid'], { name: 'orphan', version: '1.0-1' }))).toEqual([
      'orphan on x86_64: orphan-suid-1.0-1.x86_64: /usr/bin/orphan-suid is setuid user ghost, which the base does not define and no sysusers.d file of the image gives a fixed id: owned by root instead, it would run as root',
    ]);
  }, 60_000);
});

describe('buildSysext (real rpmbuild, rpm2archive, mkfs.erofs, fsck.erofs)', () => {
  test('every attribute the headers declare is in the image, with the extension-release file', async () => {
    const built = await buildSysext(request('a', ['hello', 'hello-data']));
    expect(built.file).toBe(join(dir, 'a', 'out', 'hello-2.1-3-41-x86_64.raw'));
    expect(built.extensionRelease).toBe('ID=fedora\nVERSION_ID=41\nARCHITECTURE=x86-64\n');
    const x = join(dir, 'a', 'x');
    await run('fsck.erofs', [`--extract=${x}`, built.file]);
    // Owners and modes from the image's inodes (dump.erofs, any user); contents from the extraction.
    const st = async (p: string) => {
      const info = await inspect(built.file, `/${p}`);
      const [, uid, gid] = /Uid: (\d+)\s+Gid: (\d+)/.exec(info)!;
      return { mode: (await imageMode(built.file, `/${p}`)).toString(8), uid: Number(uid), gid: Number(gid) };
    };
    expect(await st('usr/bin/hello')).toEqual({ mode: '100755', uid: 0, gid: 0 });
    expect(await readFile(join(x, 'usr/bin/hello'), 'utf8')).toBe('#!/bin/sh\necho hello\n');
    expect(await st('usr/lib64/libhello.so.1')).toEqual({ mode: '100755', uid: 0, gid: 0 });
    expect(await readlink(join(x, 'usr/lib64/libhello.so'))).toBe('libhello.so.1');
    expect((await st('usr/lib64/libhello.so')).mode).toBe('120777');
    // (fsck.erofs 1.5 chowns after chmod when extracting, which would drop this setuid bit.)
    expect(await st('usr/bin/hello-suid')).toEqual({ mode: '104755', uid: 0, gid: 0 });
    expect(await st('usr/share/hello')).toEqual({ mode: '40750', uid: 990, gid: 991 });
    expect(await st('usr/share/hello/secret')).toEqual({ mode: '100640', uid: 990, gid: 991 });
    expect(await st('usr/share/hello-ro')).toEqual({ mode: '40555', uid: 0, gid: 0 });
    expect(await st('usr/share/hello-ro/file')).toEqual({ mode: '100444', uid: 0, gid: 0 });
    expect(await readFile(join(x, 'usr/etc/hello.conf'), 'utf8')).toBe('greeting=hi\n');
    expect(await readFile(join(x, 'usr/share/hello-data/words'), 'utf8')).toBe('hi\n');
    expect(await readFile(join(x, 'usr/lib/extension-release.d/extension-release.hello'), 'utf8')).toBe('ID=fedora\nVERSION_ID=41\nARCHITECTURE=x86-64\n');
    // fsck.erofs 1.5 does not extract xattrs: the capability is an xattr of the inode in the image
    // (vfs_cap_data v2, effective, permitted = 1 << CAP_NET_RAW).
    expect(await xattrSize(built.file, '/usr/bin/hello-ping')).toBeGreaterThan(0);
    expect(await xattrSize(built.file, '/usr/bin/hello')).toBe(0);
    expect((await erofsXattrs(built.file, '/usr/bin/hello-ping')).get('security.capability')?.subarray(0, 8)).toEqual(Buffer.from([0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00]));
    await expect(lstat(join(x, 'etc'))).rejects.toThrow(/ENOENT/);
    await expect(lstat(join(x, 'usr/lib/os-release'))).rejects.toThrow(/ENOENT/);
  }, 60_000);

  test('the same inputs in another directory at another time give the same bytes', async () => {
    const first = await buildSysext(request('r1', ['hello', 'hello-data']));
    await new Promise((r) => setTimeout(r, 1100));
    const second = await buildSysext(request('r2', ['hello-data', 'hello']));
    expect(second.sha256).toBe(first.sha256);
    // Owners and capabilities applied inside fakeroot (how a non-root run builds) give the same bytes.
    const faked = await buildSysext(request('r4', ['hello', 'hello-data'], { fakeroot: true }));
    expect(faked.sha256).toBe(first.sha256);
    const other = await buildSysext(request('r3', ['hello', 'hello-data'], { epoch: 1700000001 }));
    expect(other.sha256).not.toBe(first.sha256);
  }, 60_000);

  test('a noarch-only extension has no ARCHITECTURE; squashfs is an option', async () => {
    const built = await buildSysext(request('n', ['hello-data'], { name: 'words', version: '1.0-1', format: 'squashfs' }));
    expect(built.extensionRelease).toBe('ID=fedora\nVERSION_ID=41\n');
    const x = join(dir, 'n', 'x');
    await run('unsquashfs', ['-d', x, built.file]);
    expect(await readFile(join(x, 'usr/lib/extension-release.d/extension-release.words'), 'utf8')).toBe('ID=fedora\nVERSION_ID=41\n');
  }, 60_000);

  test('compression, ID=_any, and squashfs bytes are reproducible too', async () => {
    const z = await buildSysext(request('z1', ['hello', 'hello-data'], { compression: 'lz4hc', anyId: true }));
    expect(z.extensionRelease).toBe('ID=_any\nARCHITECTURE=x86-64\n');
    const plain = await buildSysext(request('z2', ['hello', 'hello-data']));
    expect((await lstat(z.file)).size).toBeLessThanOrEqual((await lstat(plain.file)).size);
    // lz4's 0padding feature is set only on a compressed image; the UUID is the fixed one.
    const sb = (f: string) => run('dump.erofs', ['-s', f]).then((r) => r.stdout);
    expect(await sb(z.file)).toMatch(/Filesystem features: .*0padding/);
    expect(await sb(plain.file)).not.toMatch(/0padding/);
    const uuid = (text: string) => /Filesystem UUID: +(\S+)/.exec(text)?.[1];
    expect(uuid(await sb(z.file))).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(uuid(await sb(z.file))).toBe(uuid(await sb(plain.file)));
    const x = join(dir, 'z1', 'x');
    await run('fsck.erofs', [`--extract=${x}`, z.file]);
    expect(await readFile(join(x, 'usr/bin/hello'), 'utf8')).toBe('#!/bin/sh\necho hello\n');
    const sq1 = await buildSysext(request('q1', ['hello', 'hello-data'], { format: 'squashfs', compression: 'xz' }));
    await new Promise((r) => setTimeout(r, 1100));
    const sq2 = await buildSysext(request('q2', ['hello-data', 'hello'], { format: 'squashfs', compression: 'xz' }));
    expect(sq2.sha256).toBe(sq1.sha256);
    const listing = await run('unsquashfs', ['-lln', sq1.file]);
    expect(listing.stdout).toMatch(/-rwsr-xr-x 0\/0 +4 \d{4}-\d\d-\d\d \d\d:\d\d squashfs-root\/usr\/bin\/hello-suid/);
    expect(listing.stdout).toMatch(/-rw-r----- 990\/991 +6 .* squashfs-root\/usr\/share\/hello\/secret/);
  }, 60_000);

  // squashfs-tools 4.6 or later only (Debian 12 has 4.5.1; Ubuntu 24.04, GitHub's runners, 4.6.1).
  (labelsInPseudoFiles(squashfsVersion) ? test : test.skip)('squashfs labels with capabilities kept, the same bytes twice', async () => {
    const labels = parseFileContexts({ fileContexts: '/usr(/.*)?\tsystem_u:object_r:usr_t:s0\n/usr/bin(/.*)?\tsystem_u:object_r:bin_t:s0\n' }) as FileContexts;
    const first = await buildSysext(request('l1', ['hello', 'hello-data'], { format: 'squashfs', labels }));
    await new Promise((r) => setTimeout(r, 1100));
    const second = await buildSysext(request('l2', ['hello-data', 'hello'], { format: 'squashfs', labels }));
    expect(second.sha256).toBe(first.sha256);
    const xattrs = async (path: string) => (await run('rdsquashfs', ['-x', path, first.file])).stdout;
    expect(await xattrs('/usr/bin/hello-ping')).toBe('security.capability=0x0100000200200000000000000000000000000000\nsecurity.selinux=system_u:object_r:bin_t:s0\n');
    expect(await xattrs('/usr/share/hello-data/words')).toBe('security.selinux=system_u:object_r:usr_t:s0\n');
  }, 60_000);

  test('each refusal names the package and the file', async () => {
    expect(await refusal(request('v', ['bad-var'], { name: 'bad' }))).toEqual([
      'bad on x86_64: bad-var-1.0-1.x86_64: /var/lib/bad/state is outside /usr and /opt: a system extension cannot ship it',
    ]);
    expect(await refusal(request('e', ['bad-etc'], { name: 'bad' }))).toEqual([
      'bad on x86_64: bad-etc-1.0-1.x86_64: /etc/bad.conf is in /etc but not marked %config: a system extension only ships /usr and /opt',
    ]);
  }, 60_000);
});
