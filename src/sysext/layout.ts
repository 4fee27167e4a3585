// Pure rules of a system extension image: where each packaged path goes, what is refused, and
// the extension-release file systemd-sysext matches against the host.

/** systemd's architecture names (uname's differ). */
const SYSTEMD_ARCH: Record<string, string> = { x86_64: 'x86-64', aarch64: 'arm64', ppc64le: 'ppc64-le', s390x: 's390x', riscv64: 'riscv64' };

/** RPMFILE_CONFIG and RPMFILE_GHOST from rpm's rpmfiles.h. */
export const RPMFILE_CONFIG = 1 << 0;
export const RPMFILE_GHOST = 1 << 6;

/** One file entry of a package header (`rpm -qp --qf`). */
export interface HeaderFile {
  nevra: string;
  path: string;
  /** st_mode as the header declares it (type and permission bits). */
  mode: number;
  user: string;
  group: string;
  flags: number;
  /** `cap_net_raw=ep`, or '' for none. */
  caps: string;
  /** Symlink target, or ''. */
  linkTo: string;
  digest: string;
}

export type FileType = 'dir' | 'file' | 'symlink' | 'other';

export function fileType(mode: number): FileType {
  const t = mode & 0o170000;
  return t === 0o040000 ? 'dir' : t === 0o100000 ? 'file' : t === 0o120000 ? 'symlink' : 'other';
}

/** Where a packaged path lands in the image (relative, no leading slash), or why it cannot. */
export type Placement = { target: string } | { skip: true } | { error: string };

export function place(f: HeaderFile): Placement {
  if (f.flags & RPMFILE_GHOST) return { skip: true };
  const p = f.path;
  // systemd-sysext merges /usr over the host's: an os-release there would replace the host's.
  if (p === '/usr/lib/os-release' || p === '/etc/os-release') return { error: `${f.nevra}: ${p} would replace the host's os-release: a system extension must not ship one` };
  if (p === '/usr' || p.startsWith('/usr/') || p === '/opt' || p.startsWith('/opt/')) return { target: p.slice(1) };
  // Directories above the shipped trees (`/etc` itself) are the base's, not ours to ship.
  if (fileType(f.mode) === 'dir' && (p === '/etc' || p === '/')) return { skip: true };
  if (p.startsWith('/etc/')) {
    if (fileType(f.mode) === 'dir' || f.flags & RPMFILE_CONFIG) return { target: `usr${p}` };
    return { error: `${f.nevra}: ${p} is in /etc but not marked %config: a system extension only ships /usr and /opt` };
  }
  return { error: `${f.nevra}: ${p} is outside /usr and /opt: a system extension cannot ship it` };
}

/** `x86-64`, or undefined when every package is noarch (the image fits any architecture). */
export function sysextArchitecture(arch: string, packageArches: string[]): string | undefined {
  if (packageArches.every((a) => a === 'noarch')) return undefined;
  return SYSTEMD_ARCH[arch] ?? arch;
}

export interface ReleaseFields {
  osRelease: Record<string, string>;
  architecture?: string;
  /** `ID=_any`: the image fits every distribution. */
  anyId?: boolean;
}

/** The contents of usr/lib/extension-release.d/extension-release.<name>. */
export function extensionRelease(r: ReleaseFields): string {
  const lines: string[] = [];
  lines.push(`ID=${r.anyId ? '_any' : r.osRelease['ID'] ?? ''}`);
  if (!r.anyId && r.osRelease['VERSION_ID']) lines.push(`VERSION_ID=${r.osRelease['VERSION_ID']}`);
  if (r.osRelease['SYSEXT_LEVEL']) lines.push(`SYSEXT_LEVEL=${r.osRelease['SYSEXT_LEVEL']}`);
  if (r.architecture) lines.push(`ARCHITECTURE=${r.architecture}`);
  return lines.join('\n') + '\n';
}

/** What may go into an image's file name: no `/`, no `..`, nothing a sysupdate pattern misreads. */
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+~^-]*$/;

/** Why the parts of an image name cannot make a file name, or undefined. */
export function unsafeNamePart(parts: Record<string, string>): string | undefined {
  for (const [what, value] of Object.entries(parts)) {
    if (!SAFE_NAME.test(value) || value.includes('..')) {
      return `the ${what} ${JSON.stringify(value)} cannot be part of a system extension image name (letters, digits and ._+~^- only)`;
    }
  }
  return undefined;
}

/** `<name>-<version>-<VERSION_ID>-<arch>.raw`; `:` of an epoch becomes `_` (sysupdate patterns). */
export function imageName(name: string, version: string, versionId: string, arch: string): string {
  return `${name}-${version.replace(/:/g, '_')}-${versionId}-${arch}.raw`;
}

/** Parses `rpm -qp --qf` output of QUERY_FORMAT (one tab-separated line per file). */
export const QUERY_FORMAT =
  '[%{=NEVRA}\\t%{FILENAMES}\\t%{FILEMODES}\\t%{FILEUSERNAME}\\t%{FILEGROUPNAME}\\t%{FILEFLAGS}\\t%{FILECAPS}\\t%{FILELINKTOS}\\t%{FILEDIGESTS}\\n]';

export function parseHeaderFiles(text: string): HeaderFile[] {
  const out: HeaderFile[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [nevra, path, mode, user, group, flags, caps, linkTo, digest] = line.split('\t');
    // rpm prints `(none)` for a tag a package lacks (FILECAPS when no file has capabilities).
    const opt = (v: string | undefined) => (v === undefined || v === '(none)' ? '' : v);
    out.push({ nevra: nevra!, path: path!, mode: Number(mode), user: user!, group: group!, flags: Number(flags), caps: opt(caps), linkTo: opt(linkTo), digest: opt(digest) });
  }
  return out;
}

/** name → id from a passwd or group file. */
export function parseIds(text: string): Map<string, number> {
  const ids = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [name, , id] = line.split(':');
    if (name && id && /^\d+$/.test(id) && !ids.has(name)) ids.set(name, Number(id));
  }
  return ids;
}
