// Test-only inputs shared by the metadata tests.
import { createHash } from 'node:crypto';
import type { BaseInfo } from '../base/types.js';
import type { InstalledPackage } from '../tools/rpm.js';
import type { ArchPlan } from '../plan/types.js';
import type { RepoState, ResolvedPackage, SolveResult } from '../solve/types.js';
import type { PackageFile } from './state.js';
import type { MetadataInput } from './metadata.js';

export const hex = (s: string) => createHash('sha256').update(s).digest('hex');

function pkg(nevra: string, repo: string, extensions: string[]): ResolvedPackage {
  const m = /^(.+)-(?:(\d+):)?([^-]+)-([^-]+)\.([^.]+)$/.exec(nevra)!;
  const [, name, epoch, version, release, arch] = m as unknown as string[];
  return {
    name: name!,
    epoch: Number(epoch ?? 0),
    version: version!,
    release: release!,
    arch: arch!,
    nevra,
    repo,
    location: `Packages/${nevra[0]}/${nevra}.rpm`,
    checksum: { type: 'sha256', value: hex(`repo:${nevra}`) },
    size: 1000 + nevra.length,
    extensions,
  };
}

const installed = (nevra: string): InstalledPackage => {
  const { name, epoch, version, release, arch } = pkg(nevra, '', []);
  return { name, epoch, version, release, arch, nevra };
};

/** Mutable, so tests can change one ingredient at a time; usable as every input of this stage. */
export type Fixture = Omit<MetadataInput, 'files'> & { files: Record<string, PackageFile>; repos: RepoState[] };

export function fixture(): Fixture {
  const plan: ArchPlan = {
    arch: 'x86_64',
    releasever: '42',
    weakDeps: false,
    repos: ['fedora', 'updates', 'usbguard-copr'],
    extensions: [
      {
        name: 'usbguard',
        kind: 'os-extension',
        requested: ['usbguard', 'usbguard-selinux'],
        specs: ['usbguard', 'usbguard-selinux'],
        repos: ['fedora', 'updates', 'usbguard-copr'],
      },
      {
        name: 'kernel-devel',
        kind: 'development',
        requested: ['kernel-headers', 'kernel-devel'],
        matchBaseEvr: 'kernel',
        specs: ['kernel-headers-6.14.0-63.fc42', 'kernel-devel-6.14.0-63.fc42'],
        repos: ['fedora', 'updates'],
      },
    ],
  };
  const packages = [
    pkg('usbguard-1.1.3-2.fc42.x86_64', 'usbguard-copr', ['usbguard']),
    pkg('usbguard-selinux-1.1.3-2.fc42.noarch', 'usbguard-copr', ['usbguard']),
    pkg('protobuf-2:3.19.6-11.fc42.x86_64', 'fedora', ['usbguard']),
    pkg('kernel-devel-6.14.0-63.fc42.x86_64', 'updates', ['kernel-devel']),
    pkg('kernel-headers-6.14.0-63.fc42.x86_64', 'updates', ['kernel-devel']),
  ].sort((a, b) => (a.nevra < b.nevra ? -1 : 1));
  const solve: SolveResult = {
    arch: 'x86_64',
    packages,
    closures: {
      usbguard: ['protobuf-2:3.19.6-11.fc42.x86_64', 'usbguard-1.1.3-2.fc42.x86_64', 'usbguard-selinux-1.1.3-2.fc42.noarch'],
      'kernel-devel': ['kernel-devel-6.14.0-63.fc42.x86_64', 'kernel-headers-6.14.0-63.fc42.x86_64'],
    },
    repos: [
      { id: 'updates', url: 'https://example.org/updates/42/x86_64/', urls: ['https://example.org/updates/42/x86_64/'], revision: '1743000000', repomdSha256: hex('updates'), gpgcheck: true, gpgkeys: [] },
      { id: 'fedora', url: 'https://example.org/fedora/42/x86_64/', urls: ['https://example.org/fedora/42/x86_64/'], revision: '1742000000', repomdSha256: hex('fedora'), gpgcheck: true, gpgkeys: [] },
      { id: 'usbguard-copr', url: 'https://example.org/copr/usbguard/', urls: ['https://example.org/copr/usbguard/'], repomdSha256: hex('copr'), gpgcheck: false, gpgkeys: [] },
    ],
  };
  const base: BaseInfo = {
    source: 'ostree',
    ref: 'fedora/x86_64/coreos/stable',
    commit: hex('commit'),
    version: '42.20250401.3.0',
    osRelease: { ID: 'fedora', VERSION_ID: '42', NAME: 'Fedora Linux' },
    packages: ['kernel-6.14.0-63.fc42.x86_64', 'systemd-257.4-1.fc42.x86_64', 'bash-5.2.37-1.fc42.x86_64'].map(installed),
    root: '/tmp/base-root',
  };
  const files: Record<string, PackageFile> = Object.fromEntries(
    packages.map((p) => [p.nevra, { filename: `${p.nevra}.rpm`, sha256: hex(`file:${p.nevra}`) }]),
  );
  return {
    plan,
    base,
    solve,
    files,
    repos: solve.repos,
    generator: { name: 'compose-extensions', version: '0.1.0' },
    stateChecksum: `sha256:${hex('state')}`,
    inputFingerprint: `sha256:${hex('input')}`,
  };
}

/** Same content, every list and map in a different order. */
export function shuffled(f: Fixture): Fixture {
  const rev = <X>(xs: readonly X[]) => [...xs].reverse();
  const revMap = <V>(o: Readonly<Record<string, V>>) => Object.fromEntries(rev(Object.entries(o)));
  return {
    ...f,
    plan: {
      ...f.plan,
      repos: rev(f.plan.repos),
      extensions: rev(f.plan.extensions).map((e) => ({ ...e, requested: rev(e.requested), specs: rev(e.specs), repos: rev(e.repos) })),
    },
    base: { ...f.base, packages: rev(f.base.packages), osRelease: revMap(f.base.osRelease) },
    solve: {
      ...f.solve,
      packages: rev(f.solve.packages).map((p) => ({ ...p, extensions: rev(p.extensions) })),
      closures: Object.fromEntries(rev(Object.entries(f.solve.closures)).map(([k, v]) => [k, rev(v)])),
      repos: rev(f.solve.repos),
    },
    repos: rev(f.repos),
    files: revMap(f.files),
  };
}
