// rpm adapter: queries an rpmdb under a root. Always pass the dbpath: Debian's rpm defaults
// %_dbpath to ~/.rpmdb, and HOME is private so no ~/.rpmmacros changes what we read.
import { rm } from 'node:fs/promises';
import { scratchDir } from './leftovers.js';
import { run } from './exec.js';

/** Who a package is, wherever it comes from: an rpmdb, a repo's metadata, metadata.json. */
export interface PackageId {
  name: string;
  epoch: number;
  version: string;
  release: string;
  arch: string;
  /** name-[epoch:]version-release.arch, epoch omitted when 0. */
  nevra: string;
}

/** A package of a base's rpmdb. */
export type InstalledPackage = PackageId;

const QF = '%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\n';

/** `name-version-release.arch`, or `name-epoch:version-release.arch` when the epoch is not 0. */
export function formatNevra(p: Omit<PackageId, 'nevra'>): string {
  return `${p.name}-${p.epoch ? `${p.epoch}:` : ''}${p.version}-${p.release}.${p.arch}`;
}

/**
 * Every package in the rpmdb at `<root><dbpath>` (one rpm process), without gpg-pubkey
 * pseudo-packages, sorted by name then nevra. `home` is the HOME rpm sees (default: a fresh
 * empty directory). rpm may create lock/WAL files in the dbpath: query a private copy.
 */
export async function queryInstalled(root: string, dbpath: string, home?: string): Promise<InstalledPackage[]> {
  const tmpHome = home ? undefined : await scratchDir('rpm-home');
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

/** License and vendor of an RPM file's header; null where the tag is absent. */
export interface RpmFileHeader {
  nevra: string;
  license: string | null;
  vendor: string | null;
}

const FILE_QF = '%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{LICENSE}\\t%{VENDOR}\\n';

/** Paths per rpm process: one process for any real compose, below the kernel's argv limit (2 MiB) for huge ones. */
const ARGV_BUDGET = 1 << 20;

function argvChunks(files: string[]): string[][] {
  const chunks: string[][] = [[]];
  let bytes = 0;
  for (const f of files) {
    if (bytes + f.length + 1 > ARGV_BUDGET && chunks.at(-1)!.length > 0) {
      chunks.push([]);
      bytes = 0;
    }
    chunks.at(-1)!.push(f);
    bytes += f.length + 1;
  }
  return chunks;
}

/**
 * The headers of many RPM files in one rpm process (the files are already verified by sha256, so
 * rpm checks no signature or digest). Answers in the order of `files`.
 */
export async function readFileHeaders(files: string[]): Promise<RpmFileHeader[]> {
  if (files.length === 0) return [];
  const home = await scratchDir('rpm-home');
  try {
    const lines: string[] = [];
    for (const chunk of argvChunks(files)) {
      const { stdout } = await run('rpm', ['-qp', '--nosignature', '--nodigest', '--qf', FILE_QF, '--', ...chunk], {
        env: { HOME: home, LC_ALL: 'C' },
      });
      lines.push(...stdout.split('\n').filter(Boolean));
    }
    if (lines.length !== files.length) throw new Error(`rpm -qp answered ${lines.length} headers for ${files.length} files`);
    return lines.map((line) => {
      const [name, epoch, version, release, arch, license, vendor] = line.split('\t') as string[];
      const tag = (v: string | undefined) => (v === undefined || v === '(none)' || v === '' ? null : v);
      const p = { name: name!, epoch: epoch === '(none)' ? 0 : Number(epoch), version: version!, release: release!, arch: arch! };
      return { nevra: formatNevra(p), license: tag(license), vendor: tag(vendor) };
    });
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** Raw `rpm -qa --qf FORMAT` over the rpmdb at `<root><dbpath>` (one process), for callers that parse it. */
export async function queryInstalledFormat(root: string, dbpath: string, format: string): Promise<string> {
  const home = await scratchDir('rpm-home');
  try {
    return (await run('rpm', ['--root', root, '--dbpath', dbpath, '-qa', '--qf', format], { env: { HOME: home, LC_ALL: 'C' } })).stdout;
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}
