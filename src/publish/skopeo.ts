// skopeo, the only thing that talks to registries. Credentials reach it only as an auth file
// (`--authfile`/`--dest-authfile`), never `--creds` on the command line.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ToolError } from '../errors.js';
import { lastLines, run } from '../tools/exec.js';
import { digestOf, registryFlags, type RegistryOptions } from '../tools/skopeo.js';
import { MEDIA } from './oci-layout.js';
import { dockerRef, type ImageName } from './reference.js';

/** The same access rules as reading a base image: loopback registries are never TLS-verified. */
export type RegistryAccess = RegistryOptions;

const RETRIES = ['--retry-times', '3'];
const MANIFEST_TYPES = new Set<string>([MEDIA.manifest, 'application/vnd.docker.distribution.manifest.v2+json']);
// Words, not status numbers, which could match inside a digest.
const NOT_FOUND = /manifest unknown|name unknown|\(Not Found\)/i;
const DENIED = /unauthori[sz]ed|authentication required|denied|forbidden/i;

/** What a failed registry operation means, without repeating skopeo's whole command line. */
function registryError(action: string, ref: string, stderr: string): ToolError {
  const detail = lastLines(stderr, 5);
  const hint = DENIED.test(stderr)
    ? ' Check registry-username and registry-password (or auth-file); for ghcr.io the job needs `permissions: packages: write`.'
    : '';
  return new ToolError(`${action} ${ref} failed: ${detail}${hint}`);
}

export interface RemoteManifest {
  /** The manifest's bytes as the registry serves them; their sha256 is the digest. */
  raw: string;
  digest: string;
  size: number;
  mediaType: string;
  json: { mediaType?: string; annotations?: Record<string, string>; manifests?: unknown[] };
}

/** The manifest at a tag or digest, or undefined when there is none. */
export async function inspectManifest(image: ImageName, tag: string, access: RegistryAccess): Promise<RemoteManifest | undefined> {
  const ref = dockerRef(image, tag);
  const r = await run('skopeo', ['inspect', '--raw', ...RETRIES, ...registryFlags(image.registry, access), ref], { allowFailure: true });
  if (r.exitCode !== 0) {
    if (NOT_FOUND.test(r.stderr) && !DENIED.test(r.stderr)) return undefined;
    throw registryError('reading', ref, r.stderr);
  }
  const json = JSON.parse(r.stdout) as RemoteManifest['json'];
  return { raw: r.stdout, digest: digestOf(r.stdout), size: Buffer.byteLength(r.stdout), mediaType: json.mediaType ?? '', json };
}

export const isImageManifest = (m: RemoteManifest): boolean => MANIFEST_TYPES.has(m.mediaType);

export interface RemoteConfig {
  architecture?: string;
  variant?: string;
  os?: string;
  config?: { Labels?: Record<string, string> | null };
}

/** The image configuration at a tag (for an index, this platform's image), or undefined when there is none. */
export async function inspectConfig(image: ImageName, tag: string, access: RegistryAccess): Promise<RemoteConfig | undefined> {
  const ref = dockerRef(image, tag);
  const r = await run('skopeo', ['inspect', '--config', '--raw', ...RETRIES, ...registryFlags(image.registry, access), ref], { allowFailure: true });
  if (r.exitCode !== 0) {
    if (NOT_FOUND.test(r.stderr) && !DENIED.test(r.stderr)) return undefined;
    throw registryError('reading', ref, r.stderr);
  }
  return JSON.parse(r.stdout) as RemoteConfig;
}

/**
 * Copies `oci:LAYOUT:REF` to each tag and returns the digest the registry stored. Digests are
 * preserved (skopeo fails rather than convert), so it is the layout's own manifest digest.
 * `indexOnly` pushes an index without its images, which must already be in the repository.
 */
export async function copyToTags(
  layout: string,
  ref: string,
  image: ImageName,
  tags: readonly string[],
  access: RegistryAccess,
  options: { indexOnly?: boolean } = {},
): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), 'ce-push-'));
  try {
    // The source is always our own local layout, so no signature policy applies; saying so keeps the
    // push independent of /etc/containers/policy.json, which minimal containers lack.
    const policy = join(work, 'policy.json');
    await writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    let digest = '';
    for (const tag of tags) {
      const dest = dockerRef(image, tag);
      const digestFile = join(work, 'digest');
      const r = await run('skopeo', [
        '--policy', policy, 'copy', '--quiet', '--preserve-digests', ...RETRIES,
        ...(options.indexOnly ? ['--multi-arch', 'index-only'] : []),
        ...registryFlags(image.registry, access, 'dest-'),
        '--digestfile', digestFile,
        `oci:${layout}:${ref}`, dest,
      ], { allowFailure: true });
      if (r.exitCode !== 0) throw registryError('pushing to', dest, r.stderr);
      const pushed = (await readFile(digestFile, 'utf8')).trim();
      if (digest && pushed !== digest) throw new ToolError(`pushing to ${dest} stored ${pushed}, but the other tags got ${digest}`);
      digest = pushed;
    }
    return digest;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
