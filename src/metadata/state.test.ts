import { fixture, hex, shuffled, type Fixture as F } from './fixtures.js';
import { canonicalJson, stateChecksum } from './state.js';

const FORMAT = /^sha256:[0-9a-f]{64}$/;

describe('canonicalJson', () => {
  it('sorts keys at every depth, keeps array order and drops undefined properties', () => {
    expect(canonicalJson({ b: [3, { y: 1, x: null }], a: 'é', c: undefined })).toBe('{"a":"é","b":[3,{"x":null,"y":1}]}');
    expect(canonicalJson({ b: 1, a: 2 })).toBe(canonicalJson({ a: 2, b: 1 }));
  });
  it('refuses what JSON cannot represent', () => {
    expect(() => canonicalJson(NaN)).toThrow(TypeError);
    expect(() => canonicalJson({ a: () => 1 })).toThrow(TypeError);
  });
});

describe('stateChecksum', () => {
  const base = stateChecksum(fixture());

  it('has the sha256:<hex> form', () => expect(base).toMatch(FORMAT));

  it('ignores the order of extensions, specs, repos, packages, closures and base packages', () => {
    expect(stateChecksum(shuffled(fixture()))).toBe(base);
  });

  it('ignores labels that do not change the content: ref name, version, repo revision, generator version', () => {
    const f = fixture();
    f.base.ref = 'another/ref';
    f.base.version = 'relabelled';
    f.solve.repos[0]!.revision = '9999999999';
    f.generator.version = '9.9.9';
    expect(stateChecksum(f)).toBe(base);
  });

  const changes: [string, (f: F) => void][] = [
    ['arch', (f) => void (f.plan.arch = 'aarch64')],
    ['releasever', (f) => void (f.plan.releasever = '43')],
    ['weakDeps', (f) => void (f.plan.weakDeps = true)],
    ['an extension name', (f) => void (f.plan.extensions[0]!.name = 'usbguard2')],
    ['an extension kind', (f) => void (f.plan.extensions[0]!.kind = 'development')],
    ['a requested spec', (f) => void f.plan.extensions[0]!.requested.push('usbguard-tools')],
    ['matchBaseEvr', (f) => void (f.plan.extensions[1]!.matchBaseEvr = 'kernel-core')],
    ['matchBaseEvr appearing', (f) => void (f.plan.extensions[0]!.matchBaseEvr = 'kernel')],
    ['a pinned spec', (f) => void (f.plan.extensions[1]!.specs[0] = 'kernel-headers-6.14.1-1.fc42')],
    ['an extension repo', (f) => void f.plan.extensions[1]!.repos.push('updates-testing')],
    ['the base commit', (f) => void (f.base.commit = hex('other commit'))],
    ['the base source', (f) => void (f.base.source = 'image')],
    ['a package file checksum', (f) => void (f.files['usbguard-1.1.3-2.fc42.x86_64']!.sha256 = hex('rebuilt'))],
    ['a development package file checksum', (f) => void (f.files['kernel-devel-6.14.0-63.fc42.x86_64']!.sha256 = hex('resigned'))],
    ['a package NEVRA', (f) => {
      const p = f.solve.packages[0]!;
      f.files['x-1-1.noarch'] = f.files[p.nevra]!;
      p.nevra = 'x-1-1.noarch';
    }],
    ['a package added', (f) => {
      f.solve.packages.push({ ...f.solve.packages[0]!, nevra: 'extra-1-1.noarch' });
      f.files['extra-1-1.noarch'] = { filename: 'extra-1-1.noarch.rpm', sha256: hex('extra') };
    }],
    ['an extension closure', (f) => void f.solve.closures.usbguard!.pop()],
  ];
  it.each(changes)('changes with %s', (_, mutate) => {
    const f = fixture();
    mutate(f);
    expect(stateChecksum(f)).not.toBe(base);
  });

  it('identifies an image base by digest and a rootfs base by its packages', () => {
    const image = fixture();
    Object.assign(image.base, { source: 'image', commit: undefined, digest: `sha256:${hex('a')}` });
    const image2 = fixture();
    Object.assign(image2.base, { source: 'image', commit: undefined, digest: `sha256:${hex('b')}` });
    expect(stateChecksum(image)).not.toBe(stateChecksum(image2));

    const rootfs = fixture();
    Object.assign(rootfs.base, { source: 'rootfs', commit: undefined, ref: '/srv/root' });
    const r1 = stateChecksum(rootfs);
    rootfs.base.ref = '/elsewhere';
    rootfs.base.packages.reverse();
    expect(stateChecksum(rootfs)).toBe(r1);
    rootfs.base.packages[0] = { ...rootfs.base.packages[0]!, nevra: 'kernel-6.14.1-1.fc42.x86_64' };
    expect(stateChecksum(rootfs)).not.toBe(r1);
  });

  it('without sysext options is the checksum earlier versions gave (previous-state stays valid)', () => {
    expect(base).toBe('sha256:03f43e411e9d436aedf0f51dfc642781d8641b1ceaa5be7294c3312c2b741394');
  });

  it('covers the sysext options that change the output, whatever the order of names and classes', () => {
    const options = { extensions: ['usbguard', 'tools'], format: 'erofs', compression: null, anyId: false, url: null, strict: ['kmod', 'shadow'] };
    const on = stateChecksum({ ...fixture(), sysextOptions: options });
    expect(on).not.toBe(base);
    expect(stateChecksum({ ...fixture(), sysextOptions: { ...options, extensions: ['tools', 'usbguard'], strict: ['shadow', 'kmod'] } })).toBe(on);
    const changed = [
      { extensions: ['usbguard'] }, { format: 'squashfs' }, { compression: 'lz4' }, { anyId: true },
      { url: 'https://example.org/${arch}/' }, { strict: ['kmod'] },
    ].map((change) => stateChecksum({ ...fixture(), sysextOptions: { ...options, ...change } }));
    expect(new Set([on, ...changed]).size).toBe(changed.length + 1);
  });

  it('refuses a package without a file', () => {
    const f = fixture();
    delete f.files['kernel-devel-6.14.0-63.fc42.x86_64'];
    expect(() => stateChecksum(f)).toThrow(/kernel-devel/);
  });
});
