// The sysext stage: after the repo is staged, one image per os-extension from its own closure,
// written into the staged architecture directory so it is committed (or discarded) with it.
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { ExtensionsConfig } from '../inputs/extensions-yaml.js';
import type { BaseInfo } from '../base/types.js';
import type { ArchPlan } from '../plan/types.js';
import type { FetchedPackage } from '../download/fetch.js';
import type { SolveResult } from '../solve/types.js';
import { ComposeError, type ComposeProblem } from '../errors.js';
import { run } from '../tools/exec.js';
import { buildSysext, readBaseIds, type BuiltSysext, type SysextFormat } from './build.js';
import { selectVersion } from './version.js';
import { unsafeNamePart } from './layout.js';
import { labelsInPseudoFiles, parseFileContexts, parseMksquashfsVersion, type FileContexts } from './labels.js';
import { sidecarJson, transferFile } from './publish-files.js';
import type { SysextState } from '../metadata/state.js';
import { BASE_FILES_FORMAT, parseBaseFiles, type FindingClass } from './checks.js';
import { accountsDir, PRIVATE_DBPATH } from '../base/tree.js';
import { queryInstalledFormat } from '../tools/rpm.js';

export interface SysextOptions {
  /** true: every os-extension; a list: those extensions. */
  extensions: true | string[];
  format?: SysextFormat;
  compression?: string;
  /** `ID=_any` instead of the base's ID and VERSION_ID. */
  anyId?: boolean;
  /** Finding classes (shadow, scriptlet, sysusers, kmod) that refuse an image instead of being listed. */
  strict?: FindingClass[];
  /** Where a host downloads the images from (`${arch}` replaced), for the sysupdate transfer files. */
  url?: string;
}

export interface SysextImage {
  extension: string;
  version: string;
  /** Relative to the architecture directory. */
  path: string;
  sha256: string;
  format: SysextFormat;
}

export interface WriteSysextsInput {
  options: SysextOptions;
  config: ExtensionsConfig;
  plan: ArchPlan;
  base: BaseInfo;
  solved: SolveResult;
  fetched: FetchedPackage[];
  /** The staged architecture directory. */
  dir: string;
  workDir: string;
  log: { stage(name: string): void; info(message: string): void; warn(message: string): void };
}

/** The os-extensions of an architecture that get an image. */
function wantedExtensions(options: SysextOptions, plan: ArchPlan) {
  return plan.extensions.filter((e) => e.kind === 'os-extension' && (options.extensions === true || options.extensions.includes(e.name)));
}

/** The options as the state checksum sees them: what changes the output, defaults spelled out. */
export function sysextState(options: SysextOptions, plan: ArchPlan): SysextState {
  return {
    extensions: wantedExtensions(options, plan).map((e) => e.name),
    format: options.format ?? 'erofs',
    compression: options.compression ?? null,
    anyId: options.anyId ?? false,
    url: options.url ?? null,
    strict: options.strict ?? [],
  };
}

/**
 * The base's labelling rules for mksquashfs, which cannot read them itself: from 4.6 on, each
 * path's label goes into a pseudo file. Without that, or with a rule we cannot reproduce, a warning.
 */
async function squashfsLabels(fileContexts: string, log: WriteSysextsInput['log']): Promise<FileContexts | undefined> {
  const version = await run('mksquashfs', ['-version'], { allowFailure: true }).then((r) => parseMksquashfsVersion(r.stdout));
  if (!labelsInPseudoFiles(version)) {
    log.warn(`squashfs images carry no SELinux labels: mksquashfs ${version?.join('.') ?? '(version unknown)'} cannot set them (squashfs-tools 4.6 or later can); use erofs, or a newer squashfs-tools, for labelled images`);
    return undefined;
  }
  const read = (suffix: string) => readFile(`${fileContexts}${suffix}`, 'utf8').catch(() => undefined);
  const [main, local, subs, subsDist] = await Promise.all(['', '.local', '.subs', '.subs_dist'].map(read));
  const parsed = parseFileContexts({ fileContexts: main ?? '', ...(local && { local }), ...(subs && { subs }), ...(subsDist && { subsDist }) });
  if ('errors' in parsed) {
    log.warn(`squashfs images carry no SELinux labels: the base's file_contexts has rules this tool cannot apply as libselinux does (${parsed.errors.slice(0, 3).join('; ')}${parsed.errors.length > 3 ? `; and ${parsed.errors.length - 3} more` : ''}); use erofs for labelled images`);
    return undefined;
  }
  return parsed;
}

/** Every timestamp in an image: SOURCE_DATE_EPOCH, else the newest build time of its packages. */
async function epochOf(files: string[]): Promise<number> {
  const env = process.env['SOURCE_DATE_EPOCH'];
  if (env && /^\d+$/.test(env)) return Number(env);
  const out = await run('rpm', ['-qp', '--nosignature', '--nodigest', '--qf', '%{BUILDTIME}\n', ...files], { env: { LC_ALL: 'C' } });
  return Math.max(0, ...out.stdout.split('\n').filter((l) => /^\d+$/.test(l)).map(Number));
}

export async function writeSysexts(input: WriteSysextsInput): Promise<SysextImage[]> {
  const { options, config, plan, base, solved, fetched, dir, workDir, log } = input;
  log.stage('sysext');
  const arch = plan.arch;
  const wanted = wantedExtensions(options, plan);
  const byNevra = new Map(fetched.map((p) => [p.nevra, p]));
  const declared = new Map(config.extensions.map((e) => [e.name, e]));
  const ids = await readBaseIds(accountsDir(base.root));
  const contexts = join(accountsDir(base.root), 'file_contexts');
  const fileContexts = (await stat(contexts).catch(() => undefined))?.isFile() ? contexts : undefined;
  const labels = fileContexts && (options.format ?? 'erofs') === 'squashfs' && wanted.length > 0 ? await squashfsLabels(fileContexts, log) : undefined;
  const baseFiles = wanted.length > 0 ? parseBaseFiles(await queryInstalledFormat(base.root, PRIVATE_DBPATH, BASE_FILES_FORMAT)) : new Map();
  const format = options.format ?? 'erofs';
  const problems: ComposeProblem[] = [];
  const built: BuiltSysext[] = [];
  for (const e of wanted) {
    const closure = (solved.closures[e.name] ?? []).map((n) => byNevra.get(n)!).filter(Boolean);
    const version = selectVersion(e.name, declared.get(e.name)?.versionPackage, e.requested, closure);
    if ('error' in version) {
      problems.push({ arch, extension: e.name, message: version.error });
      continue;
    }
    // Names come from extensions.yaml and the base's os-release: they must not leave sysext/.
    const unsafe = unsafeNamePart({ 'extension name': e.name, version: version.evr.replace(/:/g, '_'), "base's VERSION_ID": base.osRelease['VERSION_ID'] ?? '' });
    if (unsafe) {
      problems.push({ arch, extension: e.name, message: unsafe });
      continue;
    }
    if (closure.length === 0) {
      problems.push({ arch, extension: e.name, message: 'the base already has every package of this extension: no system extension image to build' });
      continue;
    }
    try {
      built.push(await buildSysext({
        name: e.name,
        arch,
        version: version.evr,
        packages: closure.map((p) => ({ nevra: p.nevra, arch: p.arch, file: p.file })),
        osRelease: base.osRelease,
        ...ids,
        format,
        epoch: await epochOf(closure.map((p) => p.file)),
        outDir: join(dir, 'sysext'),
        workDir: join(workDir, e.name),
        baseFiles,
        strict: options.strict ?? [],
        ...(fileContexts && format === 'erofs' && { fileContexts }),
        ...(labels && { labels }),
        ...(options.compression && { compression: options.compression }),
        ...(options.anyId && { anyId: true }),
      }));
    } catch (err) {
      if (err instanceof ComposeError) problems.push(...err.problems);
      else throw err;
    }
  }
  if (problems.length > 0) throw new ComposeError(problems);
  const images: SysextImage[] = [];
  for (const b of built) {
    await chmod(b.file, 0o644);
    images.push({ extension: b.name, version: b.version, path: `sysext/${basename(b.file)}`, sha256: b.sha256, format });
    log.info(`system extension ${basename(b.file)} (${format}, sha256 ${b.sha256})`);
    for (const f of b.findings) log.warn(`${b.name}: ${f.message}`);
    const packages = (solved.closures[b.name] ?? []).map((n) => ({ nevra: n, sha256: byNevra.get(n)!.sha256 }));
    const sidecar = { extension: b.name, arch, version: b.version, image: basename(b.file), sha256: b.sha256, format, base, extensionRelease: b.extensionRelease, packages, findings: b.findings };
    await writeFile(`${b.file}.json`, sidecarJson(sidecar), { mode: 0o644 });
    await writeFile(join(dir, 'sysext', `${b.name}.transfer`), transferFile(b.name, base.osRelease['VERSION_ID'] ?? '', arch, options.url), { mode: 0o644 });
  }
  if (images.length > 0) {
    const sums = images.map((i) => `${i.sha256}  ${basename(i.path)}\n`).sort().join('');
    await writeFile(join(dir, 'sysext', 'SHA256SUMS'), sums, { mode: 0o644 });
  }
  return images;
}
