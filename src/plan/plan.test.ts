import type { Extension, ExtensionsConfig } from '../inputs/extensions-yaml.js';
import type { InstalledPackage } from '../tools/rpm.js';
import { evrOf, planArch } from './plan.js';

const OPTIONS = { releasever: '40', weakDeps: true };

function installed(name: string, version: string, release: string, epoch = 0, arch = 'x86_64'): InstalledPackage {
  return { name, epoch, version, release, arch, nevra: `${name}-${epoch ? `${epoch}:` : ''}${version}-${release}.${arch}` };
}

const BASE: InstalledPackage[] = [
  installed('kernel', '5.0', '1.fc40'),
  installed('bash', '5.2', '1'),
  installed('openssl-libs', '3.1', '1', 1),
  installed('foo', '1.0', '1', 2),
];

let line = 1;
function ext(name: string, fields: Partial<Extension> = {}): Extension {
  return { name, kind: 'os-extension', packages: [name], repos: [], line: line++, col: 3, ...fields };
}

function config(extensions: Extension[], repos = ['fedora']): ExtensionsConfig {
  return { file: 'extensions.yaml', repos, extensions, locations: {} };
}

describe('evrOf', () => {
  test('leaves out a zero epoch and shows any other', () => {
    expect(evrOf({ epoch: 0, version: '5.0', release: '1.fc40' })).toBe('5.0-1.fc40');
    expect(evrOf({ epoch: 2, version: '1.0', release: '1' })).toBe('2:1.0-1');
  });
});

describe('planArch', () => {
  test('keeps the options, the file order and the packages as written', () => {
    const cfg = config([ext('zeta', { packages: ['z1', 'z2'] }), ext('alpha')]);
    const { plan, problems } = planArch(cfg, 'aarch64', BASE, { releasever: '41', weakDeps: false });
    expect(problems).toEqual([]);
    expect(plan).toEqual({
      arch: 'aarch64',
      releasever: '41',
      weakDeps: false,
      repos: ['fedora'],
      extensions: [
        { name: 'zeta', kind: 'os-extension', requested: ['z1', 'z2'], specs: ['z1', 'z2'], repos: ['fedora'] },
        { name: 'alpha', kind: 'os-extension', requested: ['alpha'], specs: ['alpha'], repos: ['fedora'] },
      ],
    });
    expect(plan.extensions[0]).not.toHaveProperty('matchBaseEvr');
  });

  test('applies the architecture filter', () => {
    const cfg = config([ext('firmware', { architectures: ['x86_64'] }), ext('everywhere'), ext('arm', { architectures: ['aarch64', 's390x'] })]);
    const names = (arch: string) => planArch(cfg, arch, BASE, OPTIONS).plan.extensions.map((e) => e.name);
    expect(names('x86_64')).toEqual(['firmware', 'everywhere']);
    expect(names('aarch64')).toEqual(['everywhere', 'arm']);
    expect(names('ppc64le')).toEqual(['everywhere']);
  });

  test('adds per-extension repos only where the extension applies; plan.repos is the sorted union', () => {
    const cfg = config(
      [
        ext('extra', { architectures: ['x86_64'], repos: ['extras', 'fedora'] }),
        ext('plain'),
        ext('signed', { repos: ['signed'] }),
      ],
      ['updates', 'fedora'],
    );
    const x86 = planArch(cfg, 'x86_64', BASE, OPTIONS).plan;
    expect(x86.repos).toEqual(['extras', 'fedora', 'signed', 'updates']);
    expect(Object.fromEntries(x86.extensions.map((e) => [e.name, e.repos]))).toEqual({
      extra: ['extras', 'fedora', 'updates'],
      plain: ['fedora', 'updates'],
      signed: ['fedora', 'signed', 'updates'],
    });
    const arm = planArch(cfg, 'aarch64', BASE, OPTIONS).plan;
    expect(arm.repos).toEqual(['fedora', 'signed', 'updates']);
  });

  test('with no applicable extension no repo is used, not even the global ones', () => {
    const cfg = config([ext('firmware', { architectures: ['x86_64'] })]);
    expect(planArch(cfg, 'aarch64', BASE, OPTIONS).plan).toMatchObject({ repos: [], extensions: [] });
  });

  test('match-base-evr pins every package to the base EVR, epoch only when non-zero', () => {
    const cfg = config([
      ext('kernel-devel', { kind: 'development', matchBaseEvr: 'kernel', packages: ['kernel-devel', 'kernel-headers'] }),
      ext('foo-extras', { matchBaseEvr: 'foo', packages: ['foo-extras'] }),
    ]);
    const { plan, problems } = planArch(cfg, 'x86_64', BASE, OPTIONS);
    expect(problems).toEqual([]);
    expect(plan.extensions).toEqual([
      {
        name: 'kernel-devel', kind: 'development', requested: ['kernel-devel', 'kernel-headers'], matchBaseEvr: 'kernel',
        specs: ['kernel-devel-5.0-1.fc40', 'kernel-headers-5.0-1.fc40'], repos: ['fedora'],
      },
      { name: 'foo-extras', kind: 'os-extension', requested: ['foo-extras'], matchBaseEvr: 'foo', specs: ['foo-extras-2:1.0-1'], repos: ['fedora'] },
    ]);
  });

  test('a match-base-evr package missing from the base is a problem; the extension is left out, the others kept', () => {
    const cfg = config([
      ext('kmods', { matchBaseEvr: 'kernel-rt', packages: ['kernel-rt-kvm'], repos: ['rt'] }),
      ext('usbguard'),
    ]);
    const { plan, problems } = planArch(cfg, 'aarch64', BASE, OPTIONS);
    expect(problems).toEqual([{ arch: 'aarch64', extension: 'kmods', message: 'match-base-evr: package kernel-rt is not in the base' }]);
    expect(plan.extensions.map((e) => e.name)).toEqual(['usbguard']);
    // Its own repo is not needed any more.
    expect(plan.repos).toEqual(['fedora']);
  });

  test('an os-extension package already in the base is a problem naming the installed package', () => {
    const cfg = config([
      ext('shells', { packages: ['zsh', 'bash', 'openssl-libs'], repos: ['extras'] }),
      ext('usbguard'),
    ]);
    const { plan, problems } = planArch(cfg, 'x86_64', BASE, OPTIONS);
    expect(problems).toEqual([
      { arch: 'x86_64', extension: 'shells', message: 'package bash already present in base (bash-5.2-1.x86_64)' },
      { arch: 'x86_64', extension: 'shells', message: 'package openssl-libs already present in base (openssl-libs-1:3.1-1.x86_64)' },
    ]);
    expect(plan.extensions.map((e) => e.name)).toEqual(['usbguard']);
    expect(plan.repos).toEqual(['fedora']);
  });

  test('a development extension may list base packages', () => {
    const cfg = config([ext('devtools', { kind: 'development', packages: ['bash', 'devtool'] })]);
    const { plan, problems } = planArch(cfg, 'x86_64', BASE, OPTIONS);
    expect(problems).toEqual([]);
    expect(plan.extensions).toEqual([
      { name: 'devtools', kind: 'development', requested: ['bash', 'devtool'], specs: ['bash', 'devtool'], repos: ['fedora'] },
    ]);
  });

  test('does not modify its inputs', () => {
    const cfg = config([ext('kernel-devel', { kind: 'development', matchBaseEvr: 'kernel', packages: ['kernel-devel'], repos: ['b', 'a'] })]);
    const copy = structuredClone(cfg);
    const { plan } = planArch(cfg, 'x86_64', BASE, OPTIONS);
    plan.extensions[0]!.requested.push('changed');
    expect(cfg).toEqual(copy);
  });
});
