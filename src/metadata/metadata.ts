import type { BaseInfo } from '../base/types.js';
import type { ExtensionKind } from '../inputs/extensions-yaml.js';
import type { PackageId } from '../tools/rpm.js';
import { byString, sorted, type ComposedArch } from './state.js';

export interface MetadataInput extends ComposedArch {
  generator: { name: string; version: string };
  stateChecksum: string;
  inputFingerprint?: string;
  /** System extension images written beside the repo (src/sysext/). */
  sysext?: MetadataSysext[];
}

export interface MetadataSysext {
  extension: string;
  version: string;
  /** Relative to the architecture directory: `sysext/<name>-<version>-<VERSION_ID>-<arch>.raw`. */
  path: string;
  sha256: string;
  format: 'erofs' | 'squashfs';
}

export interface MetadataExtension {
  kind: ExtensionKind;
  requested: string[];
  matchBaseEvr: string | null;
  specs: string[];
  repos: string[];
  /** The extension's own closure, NEVRA strings. */
  packages: string[];
}

export interface MetadataPackage extends PackageId {
  filename: string;
  sha256: string;
  size: number;
  repo: string;
  /** Where the file was fetched from, user-info removed; absent when dnf's downloader fetched it. */
  url?: string;
  extensions: string[];
}

/** metadata.json; described field by field in schema/metadata.schema.json. */
export interface Metadata {
  schemaVersion: 1;
  generator: { name: string; version: string };
  arch: string;
  stateChecksum: string;
  inputFingerprint?: string;
  base: Pick<BaseInfo, 'source' | 'ref' | 'commit' | 'digest' | 'indexDigest' | 'ostreeCommit' | 'imageVersion'> & {
    version: string | null;
    osRelease: { ID: string; VERSION_ID: string | null };
    packageCount: number;
  };
  releasever: string;
  weakDeps: boolean;
  repos: { id: string; url: string; revision: string | null; repomdSha256: string }[];
  extensions: Record<string, MetadataExtension>;
  packages: MetadataPackage[];
  sysext?: MetadataSysext[];
}

/** A filename from elsewhere must stay inside the arch directory. */
function checkFilename(nevra: string, filename: string): string {
  if (!filename || filename.startsWith('/') || filename.split('/').some((s) => s === '..' || s === '')) {
    throw new Error(`metadata: unsafe filename ${JSON.stringify(filename)} for ${nevra}`);
  }
  return filename;
}

export function buildMetadata(input: MetadataInput): Metadata {
  const { plan, base, solve, files } = input;
  return normaliseMetadata({
    schemaVersion: 1,
    generator: input.generator,
    arch: plan.arch,
    stateChecksum: input.stateChecksum,
    inputFingerprint: input.inputFingerprint,
    base: {
      source: base.source,
      ref: base.ref,
      commit: base.source === 'ostree' ? base.commit : undefined,
      digest: base.source === 'image' ? base.digest : undefined,
      indexDigest: base.source === 'image' ? base.indexDigest : undefined,
      ostreeCommit: base.source === 'image' ? base.ostreeCommit : undefined,
      imageVersion: base.source === 'image' ? base.imageVersion : undefined,
      version: base.version ?? null,
      // os-release(5): ID defaults to "linux"; VERSION_ID may be absent.
      osRelease: { ID: base.osRelease.ID ?? 'linux', VERSION_ID: base.osRelease.VERSION_ID ?? null },
      packageCount: base.packages.length,
    },
    releasever: plan.releasever,
    weakDeps: plan.weakDeps,
    repos: solve.repos.map((r) => ({ id: r.id, url: r.url, revision: r.revision ?? null, repomdSha256: r.repomdSha256 })),
    extensions: Object.fromEntries(
      plan.extensions.map((e) => [
        e.name,
        {
          kind: e.kind,
          requested: e.requested,
          matchBaseEvr: e.matchBaseEvr ?? null,
          specs: e.specs,
          repos: e.repos,
          packages: solve.closures[e.name] ?? [],
        },
      ]),
    ),
    packages: solve.packages.map((p) => {
      const file = files[p.nevra];
      if (!file) throw new Error(`metadata: no file recorded for ${p.nevra}`);
      const { url: _ignored, ...fields } = p as typeof p & { url?: string }; // only where the file came from, as the download stage says
      return { ...fields, filename: checkFilename(p.nevra, file.filename), sha256: file.sha256, ...(file.url && { url: file.url }) };
    }),
    ...(input.sysext !== undefined && { sysext: input.sysext }),
  });
}

/**
 * Rebuilds the document with a fixed key order and sorted lists and maps, so equal content always
 * serialises to equal bytes, however it was assembled.
 */
function normaliseMetadata(m: Metadata): Metadata {
  const b = m.base;
  return {
    schemaVersion: m.schemaVersion,
    generator: { name: m.generator.name, version: m.generator.version },
    arch: m.arch,
    stateChecksum: m.stateChecksum,
    ...(m.inputFingerprint !== undefined && { inputFingerprint: m.inputFingerprint }),
    base: {
      source: b.source,
      ref: b.ref,
      ...(b.commit !== undefined && { commit: b.commit }),
      ...(b.digest !== undefined && { digest: b.digest }),
      ...(b.indexDigest !== undefined && { indexDigest: b.indexDigest }),
      ...(b.ostreeCommit !== undefined && { ostreeCommit: b.ostreeCommit }),
      ...(b.imageVersion !== undefined && { imageVersion: b.imageVersion }),
      version: b.version,
      osRelease: { ID: b.osRelease.ID, VERSION_ID: b.osRelease.VERSION_ID },
      packageCount: b.packageCount,
    },
    releasever: m.releasever,
    weakDeps: m.weakDeps,
    repos: [...m.repos]
      .sort((x, y) => byString(x.id, y.id))
      .map((r) => ({ id: r.id, url: r.url, revision: r.revision, repomdSha256: r.repomdSha256 })),
    extensions: Object.fromEntries(
      Object.keys(m.extensions)
        .sort(byString)
        .map((name) => {
          const e = m.extensions[name]!;
          return [
            name,
            {
              kind: e.kind,
              requested: sorted(e.requested),
              matchBaseEvr: e.matchBaseEvr,
              specs: sorted(e.specs),
              repos: sorted(e.repos),
              packages: sorted(e.packages),
            },
          ];
        }),
    ),
    packages: [...m.packages]
      .sort((x, y) => byString(x.nevra, y.nevra))
      .map((p) => ({
        name: p.name,
        epoch: p.epoch,
        version: p.version,
        release: p.release,
        arch: p.arch,
        nevra: p.nevra,
        filename: p.filename,
        sha256: p.sha256,
        size: p.size,
        repo: p.repo,
        ...(p.url !== undefined && { url: p.url }),
        extensions: sorted(p.extensions),
      })),
    ...(m.sysext !== undefined && {
      sysext: [...m.sysext]
        .sort((x, y) => byString(x.path, y.path))
        .map((i) => ({ extension: i.extension, version: i.version, path: i.path, sha256: i.sha256, format: i.format })),
    }),
  };
}

/** Stable 2-space JSON with a trailing newline. */
export function serializeMetadata(m: Metadata): string {
  return `${JSON.stringify(normaliseMetadata(m), null, 2)}\n`;
}
