// rpm adapter: queries an rpmdb under a root. Always pass the dbpath: Debian's rpm defaults
// %_dbpath to ~/.rpmdb, and HOME is private so no ~/.rpmmacros changes what we read.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InstalledPackage } from '../inputs/base.js';
import { run } from './exec.js';

const QF = '%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\n';

/** `name-version-release.arch`, or `name-epoch:version-release.arch` when the epoch is not 0. */
export function formatNevra(p: Omit<InstalledPackage, 'nevra'>): string {
  return `${p.name}-${p.epoch ? `${p.epoch}:` : ''}${p.version}-${p.release}.${p.arch}`;
}

/**
 * Every package in the rpmdb at `<root><dbpath>` (one rpm process), without gpg-pubkey
 * pseudo-packages, sorted by name then nevra. `home` is the HOME rpm sees (default: a fresh
 * empty directory). rpm may create lock/WAL files in the dbpath: query a private copy.
 */
export async function queryInstalled(root: string, dbpath: string, home?: string): Promise<InstalledPackage[]> {
  const tmpHome = home ? undefined : await mkdtemp(join(tmpdir(), 'ce-rpm-home-'));
  try {
    const { stdout } = await run('rpm', ['--root', root, '--dbpath', dbpath, '-qa', '--qf', QF], {
      env: { HOME: home ?? tmpHome!, LC_ALL: 'C' },
    });
    return stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [name, epoch, version, release, arch] = line.split('\t') as [string, string, string, string, string];
        const p = { name, epoch: epoch === '(none)' ? 0 : Number(epoch), version, release, arch };
        return { ...p, nevra: formatNevra(p) };
      })
      .filter((p) => p.name !== 'gpg-pubkey')
      .sort((a, b) => cmp(a.name, b.name) || cmp(a.nevra, b.nevra));
  } finally {
    if (tmpHome) await rm(tmpHome, { recursive: true, force: true });
  }
}

// Code-unit order, not locale order: stable across hosts.
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Raw `rpm -qa --qf FORMAT` over the rpmdb at `<root><dbpath>` (one process), for callers that parse it. */
export async function queryInstalledFormat(root: string, dbpath: string, format: string): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), 'ce-rpm-home-'));
  try {
    return (await run('rpm', ['--root', root, '--dbpath', dbpath, '-qa', '--qf', format], { env: { HOME: home, LC_ALL: 'C' } })).stdout;
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}
