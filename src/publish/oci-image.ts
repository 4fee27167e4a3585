// One OCI image per architecture, laid out the way RHCOS's extensions image is, so the same
// consumers work: the repository at /usr/share/rpm-ostree/extensions/ (what OpenShift's
// machine-config daemon copies out with `podman create` + `podman cp`), and in the last layer the
// flat name → evr.arch map at /usr/share/rpm-ostree/extensions.json (what release tooling extracts
// with `oc image extract IMAGE[-1]`) with our metadata.json beside it.
//
// Reproducible: same output directory, labels and `created` give the same digest. Layers are
// written by GNU tar with names sorted, times, owners and modes fixed, and no pax header that
// carries a PID or a time, then compressed with `gzip -n` (no name, no time); nothing reads the
// clock. Without a Docker engine, the layout is written directly.
import { lstat, mkdir, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { scratchDir } from '../tools/leftovers.js';
import { ComposeError, UsageError } from '../errors.js';
import type { Metadata } from '../metadata/metadata.js';
import { run } from '../tools/exec.js';
import { GENERATOR } from '../version.js';
import { extensionsMap } from './extensions-map.js';
import { initLayout, MEDIA, moveBlob, putBlob, sha256File, writeIndex, type Descriptor } from './oci-layout.js';
import { platformFor, type OciPlatform } from './reference.js';

export const EXTENSIONS_DIR = 'usr/share/rpm-ostree/extensions';
export const EXTENSIONS_MAP = 'usr/share/rpm-ostree/extensions.json';
export const METADATA_FILE = 'usr/share/rpm-ostree/metadata.json';

/** Our own labels; the `labels` input cannot override them (skip-unchanged and merge rely on them). */
export const LABEL_PREFIX = 'io.github.compose-extensions.';
export const LABELS = {
  created: 'org.opencontainers.image.created',
  source: 'org.opencontainers.image.source',
  revision: 'org.opencontainers.image.revision',
  version: 'org.opencontainers.image.version',
  title: 'org.opencontainers.image.title',
  arch: `${LABEL_PREFIX}arch`,
  state: `${LABEL_PREFIX}state-checksum`,
  baseRef: `${LABEL_PREFIX}base-ref`,
  baseCommit: `${LABEL_PREFIX}base-commit`,
  baseDigest: `${LABEL_PREFIX}base-digest`,
  generator: `${LABEL_PREFIX}generator`,
} as const;

/**
 * Never started: `podman create` (how the machine-config daemon unpacks the image) needs a
 * command, and there is nothing to run in a repository. If someone does run it, it fails with
 * "executable not found" and changes nothing.
 */
export const IMAGE_CMD = ['/usr/bin/true'];

export interface ImageOptions {
  /** Extra labels (the `labels` input), also set as manifest annotations; may override the OCI ones. */
  labels?: Record<string, string>;
  /** `org.opencontainers.image.created` and the config's `created`; default: see {@link defaultCreated}. */
  created?: Date;
  /** `org.opencontainers.image.source`, e.g. https://github.com/org/repo. */
  source?: string;
  /** `org.opencontainers.image.revision`, e.g. the commit SHA of the workflow run. */
  revision?: string;
  /** Parent directory of the layout; default the system temp dir. */
  workDir?: string;
}

export interface BuiltImage {
  arch: string;
  platform: OciPlatform;
  /** The OCI layout directory, holding one image under the ref name {@link BuiltImage.ref}. */
  layout: string;
  ref: string;
  /** Manifest digest, which the registry reports after the push. */
  digest: string;
  manifest: Descriptor;
  labels: Record<string, string>;
  stateChecksum: string;
}

/**
 * SOURCE_DATE_EPOCH (reproducible-builds.org) when set, else the Unix epoch: never the clock, so a
 * rebuild of the same input has the same digest. The action may pass the commit time instead.
 */
export function defaultCreated(env: NodeJS.ProcessEnv = process.env): Date {
  const epoch = env['SOURCE_DATE_EPOCH'];
  if (epoch !== undefined && epoch !== '') {
    if (!/^\d+$/.test(epoch)) throw new UsageError(`SOURCE_DATE_EPOCH must be a whole number of seconds, got "${epoch}"`);
    return new Date(Number(epoch) * 1000);
  }
  return new Date(0);
}

const isoSeconds = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

export async function readMetadata(archDir: string): Promise<{ metadata: Metadata; bytes: Buffer }> {
  const file = join(archDir, 'metadata.json');
  const bytes = await readFile(file).catch((err: NodeJS.ErrnoException) => {
    throw new ComposeError([{ message: `${file}: ${err.code === 'ENOENT' ? 'not found; is this an architecture directory of the output?' : err.message}` }]);
  });
  let metadata: Metadata;
  try {
    metadata = JSON.parse(bytes.toString('utf8')) as Metadata;
  } catch (err) {
    throw new ComposeError([{ message: `${file}: not JSON: ${(err as Error).message}` }]);
  }
  if (metadata?.schemaVersion !== 1 || typeof metadata.arch !== 'string' || typeof metadata.stateChecksum !== 'string' || !Array.isArray(metadata.packages)) {
    throw new ComposeError([{ message: `${file}: not a compose-extensions metadata.json (schemaVersion 1)` }]);
  }
  return { metadata, bytes };
}

export function imageLabels(metadata: Metadata, options: Pick<ImageOptions, 'labels' | 'source' | 'revision'>, created: Date): Record<string, string> {
  const extra = options.labels ?? {};
  for (const key of Object.keys(extra)) {
    if (key.startsWith(LABEL_PREFIX)) throw new UsageError(`labels: ${key} is set by compose-extensions itself`);
    if (!key) throw new UsageError('labels: a label needs a name');
  }
  const { base } = metadata;
  const os = base.osRelease?.ID ?? 'linux';
  const version = base.version ?? base.osRelease?.VERSION_ID ?? undefined;
  // An image base records the OSTree commit inside the image (when it has one) beside its digest.
  const commit = base.commit ?? (base as { ostreeCommit?: string }).ostreeCommit;
  const labels: Record<string, string> = {
    [LABELS.created]: isoSeconds(created),
    ...(options.source && { [LABELS.source]: options.source }),
    ...(options.revision && { [LABELS.revision]: options.revision }),
    ...(version && { [LABELS.version]: version }),
    [LABELS.title]: `${os}${version ? ` ${version}` : ''} extensions (${metadata.arch})`,
    ...extra,
    [LABELS.arch]: metadata.arch,
    [LABELS.state]: metadata.stateChecksum,
    [LABELS.baseRef]: base.ref,
    ...(commit && { [LABELS.baseCommit]: commit }),
    ...(base.digest && { [LABELS.baseDigest]: base.digest }),
    [LABELS.generator]: `${metadata.generator?.name ?? GENERATOR.name} ${metadata.generator?.version ?? GENERATOR.version}`,
  };
  // Sorted keys: the same labels always serialise to the same bytes.
  return Object.fromEntries(Object.keys(labels).sort().map((k) => [k, labels[k]!]));
}

/** A reproducible gzip'd tar of `root`'s `usr/` tree; returns the file and its uncompressed digest (diff_id). */
async function layer(root: string, out: string): Promise<{ file: string; diffId: string; size: number }> {
  const tar = `${out}.tar`;
  await run('tar', [
    '--create', `--file=${tar}`, '--format=posix', '--sort=name', '--mtime=@0',
    '--owner=0', '--group=0', '--numeric-owner', '--mode=u=rwX,go=rX',
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
    // The repository is linked into the staging tree: follow that link (and no others exist in
    // our output); write hard-linked files as separate files so the layer never depends on links.
    '--dereference', '--hard-dereference',
    '-C', root, 'usr',
  ]);
  const diffId = await sha256File(tar);
  await run('gzip', ['-n', '-6', tar]);
  const file = `${tar}.gz`;
  return { file, diffId, size: (await lstat(file)).size };
}

/** Builds the image of one architecture's output directory into a fresh OCI layout. */
export async function buildImage(archDir: string, options: ImageOptions = {}): Promise<BuiltImage> {
  const source = await realpath(archDir);
  const { metadata, bytes } = await readMetadata(source);
  const platform = platformFor(metadata.arch);
  const created = options.created ?? defaultCreated();
  const labels = imageLabels(metadata, options, created);
  const layout = await scratchDir(`image-${metadata.arch}`, options.workDir);
  const build = join(layout, '.build');
  try {
    await initLayout(layout);
    const repoRoot = join(build, 'repo');
    await mkdir(join(repoRoot, 'usr/share/rpm-ostree'), { recursive: true });
    await symlink(source, join(repoRoot, EXTENSIONS_DIR));
    const metaRoot = join(build, 'meta');
    await mkdir(join(metaRoot, 'usr/share/rpm-ostree'), { recursive: true });
    await writeFile(join(metaRoot, EXTENSIONS_MAP), JSON.stringify(extensionsMap(metadata), null, 2) + '\n');
    await writeFile(join(metaRoot, METADATA_FILE), bytes);

    const layers: Descriptor[] = [];
    const diffIds: string[] = [];
    for (const [root, name] of [[repoRoot, 'repo'], [metaRoot, 'meta']] as const) {
      const l = await layer(root, join(build, name));
      layers.push(await moveBlob(layout, MEDIA.layerGzip, l.file, l.size));
      diffIds.push(l.diffId);
    }
    const when = isoSeconds(created);
    const by = `${GENERATOR.name} ${GENERATOR.version}`;
    const config = {
      created: when,
      architecture: platform.architecture,
      ...(platform.variant && { variant: platform.variant }),
      os: platform.os,
      config: { Cmd: IMAGE_CMD, Labels: labels },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: [
        { created: when, created_by: `${by}: /${EXTENSIONS_DIR}/ (${metadata.arch} repository)` },
        { created: when, created_by: `${by}: /${EXTENSIONS_MAP}, /${METADATA_FILE}` },
      ],
    };
    const configDescriptor = await putBlob(layout, MEDIA.config, JSON.stringify(config));
    const manifest = { schemaVersion: 2, mediaType: MEDIA.manifest, config: configDescriptor, layers, annotations: labels };
    const manifestDescriptor = await putBlob(layout, MEDIA.manifest, JSON.stringify(manifest));
    const ref = metadata.arch;
    await writeIndex(layout, [{ ref, descriptor: { ...manifestDescriptor, platform } }]);
    return { arch: metadata.arch, platform, layout, ref, digest: manifestDescriptor.digest, manifest: manifestDescriptor, labels, stateChecksum: metadata.stateChecksum };
  } catch (err) {
    await rm(layout, { recursive: true, force: true });
    throw err;
  } finally {
    await rm(build, { recursive: true, force: true });
  }
}
