// Builds one system extension image from RPM files: payloads unpacked without scriptlets, the
// header's owners, modes, capabilities and symlinks applied, then mkfs.erofs or mksquashfs.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, lchown, lstat, mkdir, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ComposeError } from '../errors.js';
import { run } from '../tools/exec.js';
import { checkAgainstBase, parseScripts, parseSysusers, resolveOwners, SCRIPTS_FORMAT, type BaseFile, type Finding, type FindingClass } from './checks.js';
import { labelPseudoFile, type FileContexts } from './labels.js';
import { extensionRelease, fileType, imageName, parseHeaderFiles, parseIds, place, QUERY_FORMAT, sysextArchitecture, type HeaderFile } from './layout.js';

export type SysextFormat = 'erofs' | 'squashfs';

export interface SysextPackage {
  nevra: string;
  arch: string;
  /** The verified .rpm file. */
  file: string;
}

export interface SysextRequest {
  name: string;
  /** RPM basearch of the image. */
  arch: string;
  /** EVR for the file name and the sidecar. */
  version: string;
  packages: SysextPackage[];
  osRelease: Record<string, string>;
  /** Users and groups the base defines (name → id); root is always 0. */
  users: Map<string, number>;
  groups: Map<string, number>;
  format: SysextFormat;
  /** mkfs.erofs -z (lz4, lz4hc) or mksquashfs -comp (gzip, xz, zstd, lzo, lz4); default: none for erofs, gzip for squashfs. */
  compression?: string;
  /** `ID=_any` in extension-release: the image fits every distribution. */
  anyId?: boolean;
  /** Every timestamp in the image. */
  epoch: number;
  /** Where the image goes. */
  outDir: string;
  /** Scratch space, removed afterwards. */
  workDir: string;
  /** Every path the base's rpmdb records. */
  baseFiles: ReadonlyMap<string, BaseFile>;
  /** Finding classes that refuse the image instead of being listed. */
  strict: readonly FindingClass[];
  /** The base's SELinux file_contexts: the image's labels (EROFS: mkfs.erofs reads it and the files beside it). */
  fileContexts?: string;
  /** The same rules parsed, for squashfs: only with mksquashfs 4.6 or later (pseudo-file xattrs). */
  labels?: FileContexts;
  /** Use fakeroot even as root (tests: both ways must give the same bytes). */
  fakeroot?: boolean;
}

interface Attribute {
  path: string;
  uid: number;
  gid: number;
  /** null for a symlink. */
  mode: number | null;
  caps: string;
}

/** chown clears setuid bits and capabilities: the mode is set again after it, then the caps. */
async function applyAttributes(attributes: Attribute[]): Promise<void> {
  for (const a of attributes) {
    await lchown(a.path, a.uid, a.gid);
    if (a.mode !== null) await chmod(a.path, a.mode);
    if (a.caps) await run('setcap', [a.caps, a.path]);
  }
}

/** applyAttributes and mkfs inside fakeroot; argv[2] is the manifest written by buildSysext. */
const APPLY_SCRIPT = `import { chmod, lchown, readFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
const { attributes, mkfs } = JSON.parse(await readFile(process.argv[2], 'utf8'));
for (const a of attributes) {
  await lchown(a.path, a.uid, a.gid);
  if (a.mode !== null) await chmod(a.path, a.mode);
  if (a.caps) execFileSync('setcap', [a.caps, a.path], { stdio: ['ignore', 'ignore', 'inherit'] });
}
execFileSync(mkfs[0], mkfs.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] });
`;

export interface BuiltSysext {
  name: string;
  arch: string;
  version: string;
  file: string;
  sha256: string;
  extensionRelease: string;
  files: HeaderFile[];
  /** What the user must handle (warnings only: an error refuses the image). */
  findings: Finding[];
}

/** Reads every file entry of the packages' headers with one rpm call. */
export async function readHeaderFiles(files: string[]): Promise<HeaderFile[]> {
  if (files.length === 0) return [];
  const out = await run('rpm', ['-qp', '--nosignature', '--nodigest', '--qf', QUERY_FORMAT, ...files], { env: { LC_ALL: 'C' } });
  return parseHeaderFiles(out.stdout);
}

export async function buildSysext(req: SysextRequest): Promise<BuiltSysext> {
  const files = await readHeaderFiles(req.packages.map((p) => p.file));
  const problems: string[] = [];
  const placed: { f: HeaderFile; target: string }[] = [];
  for (const f of files) {
    const p = place(f);
    if ('error' in p) problems.push(p.error);
    else if ('target' in p) placed.push({ f, target: p.target });
  }
  const scripts = parseScripts((await run('rpm', ['-qp', '--nosignature', '--nodigest', '--qf', SCRIPTS_FORMAT, ...req.packages.map((p) => p.file)], { env: { LC_ALL: 'C' } })).stdout);
  const findings = checkAgainstBase(placed.map((p) => p.f), req.baseFiles, scripts, req.strict);

  await rm(req.workDir, { recursive: true, force: true });
  try {
    return await assemble(req, placed, files, findings, problems);
  } finally {
    await rm(req.workDir, { recursive: true, force: true });
  }
}

/** Unpacks the payloads, maps the owners (the image's own sysusers.d is in them), then builds. */
async function assemble(req: SysextRequest, placed: { f: HeaderFile; target: string }[], files: HeaderFile[], findings: Finding[], problems: string[]): Promise<BuiltSysext> {
  const scope = { arch: req.arch, extension: req.name };
  const payloads = join(req.workDir, 'payload');
  const tree = join(req.workDir, 'tree');
  await mkdir(tree, { recursive: true, mode: 0o755 });
  for (const [i, p] of req.packages.entries()) {
    const dir = join(payloads, String(i));
    await mkdir(dir, { recursive: true });
    // rpm2archive only converts the payload: no scriptlet can run.
    const tar = join(payloads, `${i}.tar`);
    await run('rpm2archive', ['-n', '-'], { inputFile: p.file, stdout: { file: tar } });
    await run('tar', ['-x', '-f', tar, '-C', dir, '--no-same-owner', '--delay-directory-restore']);
    // A read-only packaged directory (0555) would keep its files from moving into the tree; the
    // header's modes are applied there afterwards.
    await run('chmod', ['-R', 'u+rwX', dir]);
  }
  const index = new Map(req.packages.map((p, i) => [p.nevra, i]));
  const payloadPath = (f: HeaderFile) => join(payloads, String(index.get(f.nevra)), '.' + f.path);
  const sysusers = await Promise.all(placed
    .filter(({ f }) => f.path.startsWith('/usr/lib/sysusers.d/') && f.path.endsWith('.conf') && fileType(f.mode) === 'file')
    .map(async ({ f }) => ({ path: f.path, text: await readFile(payloadPath(f), 'utf8') })));
  const owners = resolveOwners(placed.map((p) => p.f), req, parseSysusers(sysusers), req.strict);
  findings.push(...owners.findings);
  for (const f of findings) if (f.severity === 'error') problems.push(f.message);
  if (problems.length > 0) throw new ComposeError([...new Set(problems)].map((message) => ({ ...scope, message })));
  const uid = (u: string) => owners.users.get(u)!;
  const gid = (g: string) => owners.groups.get(g)!;
  const needsPrivilege = placed.some(({ f }) => uid(f.user) !== 0 || gid(f.group) !== 0 || f.caps !== '');

  // Sorted so that parents exist before children and the result never depends on header order.
  placed.sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0));
  const done = new Set<string>();
  for (const { f, target } of placed) {
    if (done.has(target)) continue;
    done.add(target);
    const dest = join(tree, target);
    await mkdir(dirname(dest), { recursive: true, mode: 0o755 });
    const type = fileType(f.mode);
    if (type === 'dir') await mkdir(dest, { recursive: true });
    else if (type === 'symlink') await symlink(f.linkTo, dest);
    else await rename(payloadPath(f), dest);
  }
  // The release file names the extension; systemd refuses an image whose name disagrees.
  const release = extensionRelease({ osRelease: req.osRelease, ...(req.anyId && { anyId: true }), architecture: sysextArchitecture(req.arch, req.packages.map((p) => p.arch)) });
  const releaseDir = join(tree, 'usr/lib/extension-release.d');
  await mkdir(releaseDir, { recursive: true, mode: 0o755 });
  await writeFile(join(releaseDir, `extension-release.${req.name}`), release, { mode: 0o644 });
  // Modes first (any user may set them on its own files), deepest first: a read-only directory
  // would refuse its children.
  const attributes: Attribute[] = [];
  for (const { f, target } of [...placed].reverse()) {
    const dest = join(tree, target);
    const link = fileType(f.mode) === 'symlink';
    if (!link) await chmod(dest, f.mode & 0o7777);
    if (needsPrivilege) attributes.push({ path: dest, uid: uid(f.user)!, gid: gid(f.group)!, mode: link ? null : f.mode & 0o7777, caps: f.caps });
  }
  await chmod(tree, 0o755);
  if (needsPrivilege) {
    // Under fakeroot, a path nobody chowned shows the real (unprivileged) owner: the rest is root's.
    const listed = new Set(attributes.map((a) => a.path));
    const rest = (await readdir(tree, { recursive: true })).map((p) => join(tree, p)).filter((p) => !listed.has(p));
    for (const path of [tree, ...rest.sort()]) attributes.push({ path, uid: 0, gid: 0, mode: null, caps: '' });
  }

  await mkdir(req.outDir, { recursive: true });
  const file = join(req.outDir, imageName(req.name, req.version, req.osRelease['VERSION_ID'] ?? '', req.arch));
  await rm(file, { force: true });
  const epoch = String(req.epoch);
  // Extended attributes come from the header only (capabilities) or the base's file_contexts: the
  // build host's own (its SELinux labels on the scratch tree) must not reach the image.
  const capabilities = placed.some(({ f }) => f.caps !== '');
  const pseudo = join(req.workDir, 'labels.pseudo');
  if (req.format === 'squashfs' && req.labels) {
    const entries = [{ path: '/', mode: 0o40755 }];
    for (const rel of await readdir(tree, { recursive: true })) entries.push({ path: `/${rel}`, mode: (await lstat(join(tree, rel))).mode });
    await writeFile(pseudo, labelPseudoFile(req.labels, entries));
  }
  // With labels, only capabilities come from the tree's own xattrs (never the build host's labels).
  const squashfsXattrs = req.labels ? ['-pf', pseudo, '-xattrs-include', '^security\\.capability$'] : capabilities ? [] : ['-no-xattrs'];
  const mkfs = req.format === 'erofs'
    ? ['mkfs.erofs', '--quiet', `-T${epoch}`, `-U${fixedUuid(req)}`, ...(needsPrivilege ? [] : ['--all-root']), ...(capabilities || req.fileContexts ? [] : ['-x-1']), ...(req.fileContexts ? [`--file-contexts=${req.fileContexts}`] : []), ...(req.compression ? [`-z${req.compression}`] : []), file, tree]
    : ['mksquashfs', tree, file, '-noappend', '-quiet', '-no-progress', '-all-time', epoch, '-mkfs-time', epoch, ...(req.compression ? ['-comp', req.compression] : []), ...squashfsXattrs, ...(needsPrivilege ? [] : ['-all-root'])];
  if (!needsPrivilege) await run(mkfs[0]!, mkfs.slice(1));
  else if (process.getuid?.() === 0 && !req.fakeroot) {
    await applyAttributes(attributes);
    await run(mkfs[0]!, mkfs.slice(1));
  } else {
    // Without root, owners and capabilities exist only inside one fakeroot session: a small
    // script of ours applies them and runs mkfs in it.
    const manifest = join(req.workDir, 'attributes.json');
    const script = join(req.workDir, 'apply.mjs');
    await writeFile(manifest, JSON.stringify({ attributes, mkfs }));
    await writeFile(script, APPLY_SCRIPT);
    await run('fakeroot', ['--', process.execPath, script, manifest]);
  }
  return { name: req.name, arch: req.arch, version: req.version, file, sha256: await sha256File(file), extensionRelease: release, files, findings };
}

/** The same extension, version and architecture always get the same filesystem UUID. */
function fixedUuid(req: SysextRequest): string {
  const h = createHash('sha256').update(`${req.name}\0${req.version}\0${req.arch}\0${req.packages.map((p) => p.nevra).sort().join(',')}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Users and groups from the base's passwd and group files (the first entry of a name wins). */
export async function readBaseIds(dir: string): Promise<{ users: Map<string, number>; groups: Map<string, number> }> {
  const read = async (names: string[]) => {
    const ids = new Map<string, number>();
    for (const n of names) {
      const text = await readFile(join(dir, n), 'utf8').catch(() => '');
      for (const [k, v] of parseIds(text)) if (!ids.has(k)) ids.set(k, v);
    }
    return ids;
  };
  return { users: await read(['passwd']), groups: await read(['group']) };
}


