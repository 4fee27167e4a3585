import { unsafeNamePart, extensionRelease, imageName, parseHeaderFiles, parseIds, place, sysextArchitecture, type HeaderFile } from './layout.js';

const file = (path: string, extra: Partial<HeaderFile> = {}): HeaderFile => ({
  nevra: 'p-1-1.x86_64', path, mode: 0o100644, user: 'root', group: 'root', flags: 0, caps: '', linkTo: '', digest: '', ...extra,
});

describe('place', () => {
  test('/usr and /opt are shipped as they are', () => {
    expect(place(file('/usr/bin/x'))).toEqual({ target: 'usr/bin/x' });
    expect(place(file('/opt/x/y'))).toEqual({ target: 'opt/x/y' });
  });
  test('/etc goes to usr/etc only when %config; ghosts are skipped', () => {
    expect(place(file('/etc/x.conf', { flags: 1 }))).toEqual({ target: 'usr/etc/x.conf' });
    expect(place(file('/etc/x.d', { mode: 0o040755 }))).toEqual({ target: 'usr/etc/x.d' });
    expect(place(file('/etc/x.conf'))).toEqual({ error: 'p-1-1.x86_64: /etc/x.conf is in /etc but not marked %config: a system extension only ships /usr and /opt' });
    expect(place(file('/var/log/x', { flags: 64 }))).toEqual({ skip: true });
  });
  test('an os-release is refused', () => {
    expect(place(file('/usr/lib/os-release'))).toEqual({ error: "p-1-1.x86_64: /usr/lib/os-release would replace the host's os-release: a system extension must not ship one" });
  });
  test('anything else is refused with the package', () => {
    expect(place(file('/run/x'))).toEqual({ error: 'p-1-1.x86_64: /run/x is outside /usr and /opt: a system extension cannot ship it' });
    expect(place(file('/boot/vmlinuz'))).toEqual({ error: 'p-1-1.x86_64: /boot/vmlinuz is outside /usr and /opt: a system extension cannot ship it' });
  });
});

test('architectures are systemd names; all-noarch has none', () => {
  expect(sysextArchitecture('x86_64', ['x86_64', 'noarch'])).toBe('x86-64');
  expect(sysextArchitecture('aarch64', ['aarch64'])).toBe('arm64');
  expect(sysextArchitecture('ppc64le', ['ppc64le'])).toBe('ppc64-le');
  expect(sysextArchitecture('s390x', ['s390x'])).toBe('s390x');
  expect(sysextArchitecture('x86_64', ['noarch'])).toBeUndefined();
});

test('extension-release carries ID, VERSION_ID, SYSEXT_LEVEL and ARCHITECTURE', () => {
  expect(extensionRelease({ osRelease: { ID: 'fedora', VERSION_ID: '41', SYSEXT_LEVEL: '1.0' }, architecture: 'arm64' })).toBe('ID=fedora\nVERSION_ID=41\nSYSEXT_LEVEL=1.0\nARCHITECTURE=arm64\n');
  expect(extensionRelease({ osRelease: { ID: 'fedora', VERSION_ID: '41' }, anyId: true })).toBe('ID=_any\n');
});

test('image names replace an epoch colon', () => {
  expect(imageName('usbguard', '1:1.1.3-1.fc41', '41', 'x86_64')).toBe('usbguard-1_1.1.3-1.fc41-41-x86_64.raw');
});

test('header lines and id files parse', () => {
  expect(parseHeaderFiles('p-1-1.noarch\t/usr/x\t33188\troot\troot\t0\t(none)\t\t(none)\n')).toEqual([
    { nevra: 'p-1-1.noarch', path: '/usr/x', mode: 33188, user: 'root', group: 'root', flags: 0, caps: '', linkTo: '', digest: '' },
  ]);
  expect([...parseIds('root:x:0:0::/root:/bin/sh\nfoo:x:990:990::/:/sbin/nologin\n')]).toEqual([['root', 0], ['foo', 990]]);
});

test('names that would leave sysext/ or confuse a pattern are refused', () => {
  expect(unsafeNamePart({ 'extension name': 'usbguard', version: '1_1.2-3.fc41', "base's VERSION_ID": '41' })).toBeUndefined();
  expect(unsafeNamePart({ 'extension name': '../evil' })).toBe('the extension name "../evil" cannot be part of a system extension image name (letters, digits and ._+~^- only)');
  expect(unsafeNamePart({ "base's VERSION_ID": '' })).toBe('the base\'s VERSION_ID "" cannot be part of a system extension image name (letters, digits and ._+~^- only)');
  expect(unsafeNamePart({ version: 'a..b' })).toMatch(/^the version "a..b" cannot/);
});
