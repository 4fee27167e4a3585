// skopeo, the only thing that talks to registries: reads manifests and copies a base image's blobs
// into a `dir:` directory; pushes our own images and indexes. Credentials only ever reach skopeo
// through an auth file (--authfile, --dest-authfile), never as arguments.
import { createHash } from 'node:crypto';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { scratchDir } from './leftovers.js';
import { ToolError, UsageError } from '../errors.js';
import { lastLines, run } from './exec.js';

export interface RegistryOptions {
  /**
   * containers-auth.json(5) file, mode 0600. Without one skopeo looks in its standard places
   * ($REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json).
   */
  authFile?: string;
  /**
   * false: plain http or unverified TLS for this registry. Loopback registries are always reached
   * this way (no one can intercept them); registries.conf `insecure = true` is honoured by skopeo.
   */
  tlsVerify?: boolean;
}

export type Transport = 'docker' | 'oci' | 'oci-archive';

export interface ImageName {
  transport: Transport;
  /** As skopeo takes it: `docker://quay.io/fedora/fedora-coreos:stable`, `oci:/path:tag`. */
  ref: string;
  /** docker: the repository without tag or digest (`quay.io/fedora/fedora-coreos`). */
  repository?: string;
  /** docker: the registry host, for messages and auth files (`quay.io`, `docker.io` for short names). */
  registry?: string;
  /** docker: the digest the reference already pins, if any. */
  digest?: string;
}

/** Thrown for the failures users can fix: a missing image or refused credentials. */
export class RegistryError extends Error {
  override name = 'RegistryError';
  constructor(readonly reason: 'not-found' | 'auth-refused', message: string) {
    super(message);
  }
}

const OTHER_TRANSPORTS = new Set(['containers-storage', 'dir', 'docker-archive', 'docker-daemon', 'ostree', 'sif', 'tarball']);

/**
 * `docker://…`, `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, or a bare `registry/name[:tag][@digest]`
 * (read as docker://). Other transports are refused: only these name one image unambiguously.
 */
export function parseImageName(input: string): ImageName {
  const transport = /^([a-z-]+):(?!\/\/)/.exec(input)?.[1];
  if (transport === 'oci' || transport === 'oci-archive') {
    if (input.length === transport.length + 1) throw new UsageError(`image ${input}: the path is missing`);
    return { transport, ref: input };
  }
  if (transport && OTHER_TRANSPORTS.has(transport)) {
    throw new UsageError(`image ${input}: the ${transport}: transport is not supported; use docker://, oci: or oci-archive:`);
  }
  const name = input.startsWith('docker://') ? input.slice('docker://'.length) : input;
  const { repository, digest } = splitReference(name);
  const registry = repositoryRegistry(repository);
  if (!registry) throw new UsageError(`image ${input}: not a valid image reference`);
  if (digest !== undefined && !/^sha256:[0-9a-f]{64}$/.test(digest)) throw new UsageError(`image ${input}: digest must be sha256:<64 hex digits>`);
  return { transport: 'docker', ref: `docker://${name}`, repository, registry, ...(digest && { digest }) };
}

/** `registry/name[:tag][@digest]` cut into its parts, unchecked: a tag is a colon after the last slash. */
export function splitReference(name: string): { repository: string; tag?: string; digest?: string } {
  const at = name.indexOf('@');
  const withoutDigest = at < 0 ? name : name.slice(0, at);
  const colon = withoutDigest.lastIndexOf(':');
  const hasTag = colon > withoutDigest.lastIndexOf('/');
  return {
    repository: hasTag ? withoutDigest.slice(0, colon) : withoutDigest,
    ...(hasTag && { tag: withoutDigest.slice(colon + 1) }),
    ...(at >= 0 && { digest: name.slice(at + 1) }),
  };
}

// The distribution spec's grammar: an optional registry host[:port], then lower-case path components.
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$/;
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

/**
 * The registry of a repository name (`quay.io/fedora/fedora-coreos`), the key of its credentials in
 * an auth file (`docker.io` for a short name), or undefined when the name is not valid.
 */
export function repositoryRegistry(repository: string): string | undefined {
  const parts = repository.split('/');
  const first = parts[0]!;
  // Docker's rule: the first component is a registry when it has a dot or port, or is localhost.
  const hasRegistry = parts.length > 1 && (/[.:]/.test(first) || first === 'localhost' || first.startsWith('['));
  const path = hasRegistry ? parts.slice(1) : parts;
  if ((hasRegistry && !HOST.test(first)) || !path.every((c) => COMPONENT.test(c))) return undefined;
  return hasRegistry ? first : 'docker.io';
}

/** A repository we push to: the name as given (`ghcr.io/org/extensions`) and its registry. */
export interface Repository {
  name: string;
  registry: string;
}

export const dockerRef = (image: Repository, tagOrDigest: string): string =>
  `docker://${image.name}${tagOrDigest.startsWith('sha256:') ? '@' : ':'}${tagOrDigest}`;

/** True for registries on this machine: 127.0.0.0/8, ::1 and localhost. */
export function isLoopback(registry: string | undefined): boolean {
  const host = (registry ?? '').replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export const digestOf = (raw: string | Buffer): string => `sha256:${createHash('sha256').update(raw).digest('hex')}`;

/** skopeo's auth and TLS flags for one registry (`prefix` for copy's source or destination side). */
export function registryFlags(registry: string | undefined, options: RegistryOptions, prefix: '' | 'src-' | 'dest-' = ''): string[] {
  const args: string[] = [];
  if (options.authFile) args.push(`--${prefix}authfile`, options.authFile);
  if (options.tlsVerify === false || isLoopback(registry)) args.push(`--${prefix}tls-verify=false`);
  return args;
}

function registryArgs(name: ImageName, options: RegistryOptions, prefix: '' | 'src-'): string[] {
  return name.transport === 'docker' ? registryFlags(name.registry, options, prefix) : options.authFile ? [`--${prefix}authfile`, options.authFile] : [];
}

// Only what says the image is absent: "no such file" may as well be skopeo's own policy.json.
// Mostly words: a status number could match inside a digest (not 401 between non-word characters).
// `denied:` is the registry's error code; a local file's "permission denied" is no login problem.
const NOT_FOUND = /manifest unknown|name unknown|no descriptor found for reference|repository name not known|\(Not Found\)/i;
const AUTH_REFUSED = /unauthori[sz]ed|authentication required|invalid username\/password|\bdenied:|access to the resource is denied|forbidden|\b401\b/i;

/** What a failed skopeo run says, when it is something users fix: refused credentials before a missing image. */
export function classifyFailure(output: string): 'auth-refused' | 'not-found' | undefined {
  if (AUTH_REFUSED.test(output)) return 'auth-refused';
  if (NOT_FOUND.test(output)) return 'not-found';
  return undefined;
}

/** Runs skopeo; a missing image or refused credentials become a RegistryError, other failures a ToolError. */
async function skopeo(name: ImageName, display: string, args: string[]): Promise<string> {
  if (name.transport !== 'docker') {
    const path = name.ref.slice(name.transport.length + 1).replace(/:[^/:]*$/, '');
    if (!(await stat(path).catch(() => undefined))) throw new RegistryError('not-found', `image ${display} not found`);
  }
  const r = await run('skopeo', args, { allowFailure: true, env: { LC_ALL: 'C' } });
  if (r.exitCode === 0) return r.stdout;
  const message = lastLines(r.stderr || r.stdout, 5);
  const reason = classifyFailure(message);
  if (reason === 'auth-refused') {
    throw new RegistryError('auth-refused', `authentication to ${name.registry ?? display} refused; check the credentials`);
  }
  if (reason === 'not-found') throw new RegistryError('not-found', `image ${display} not found`);
  throw new ToolError(`skopeo could not read image ${display}: ${message.replace(/^time=\S+ level=\w+ msg=/gm, '')}`);
}

/** The manifest or index exactly as stored (its sha256 is the digest). */
export async function inspectRaw(name: ImageName, display: string, options: RegistryOptions): Promise<string> {
  return skopeo(name, display, ['inspect', '--raw', '--retry-times=2', ...registryArgs(name, options, ''), name.ref]);
}

export interface Platform {
  /** GOARCH: amd64, arm64, ppc64le, s390x, riscv64. */
  architecture: string;
  variant?: string;
}

/**
 * Copies one image into a `dir:` directory: manifest.json as stored, config and layer blobs as
 * files named by their hex digest, compressed as they were. `platform` picks from an index.
 */
export async function copyToDir(name: ImageName, display: string, dest: string, options: RegistryOptions & { platform?: Platform }): Promise<void> {
  const p = options.platform;
  const override = p ? ['--override-os', 'linux', '--override-arch', p.architecture, ...(p.variant ? ['--override-variant', p.variant] : [])] : [];
  await skopeo(name, display, [...override, 'copy', '--quiet', '--retry-times=2', ...registryArgs(name, options, 'src-'), name.ref, `dir:${dest}`]);
}

// Pushing and inspecting our own images (publish/).

const RETRIES = ['--retry-times', '3'];
const MANIFEST_TYPES = new Set<string>(['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json']);

/** What a failed registry operation means, without repeating skopeo's whole command line. */
function registryError(action: string, ref: string, stderr: string): ToolError {
  const detail = lastLines(stderr, 5);
  const hint = classifyFailure(stderr) === 'auth-refused'
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
export async function inspectManifest(image: Repository, tag: string, access: RegistryOptions): Promise<RemoteManifest | undefined> {
  const ref = dockerRef(image, tag);
  const r = await run('skopeo', ['inspect', '--raw', ...RETRIES, ...registryFlags(image.registry, access), ref], { allowFailure: true });
  if (r.exitCode !== 0) {
    if (classifyFailure(r.stderr) === 'not-found') return undefined;
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
export async function inspectConfig(image: Repository, tag: string, access: RegistryOptions): Promise<RemoteConfig | undefined> {
  const ref = dockerRef(image, tag);
  const r = await run('skopeo', ['inspect', '--config', '--raw', ...RETRIES, ...registryFlags(image.registry, access), ref], { allowFailure: true });
  if (r.exitCode !== 0) {
    if (classifyFailure(r.stderr) === 'not-found') return undefined;
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
  image: Repository,
  tags: readonly string[],
  access: RegistryOptions,
  options: { indexOnly?: boolean } = {},
): Promise<string> {
  const work = await scratchDir('push');
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

/** For ensureTools: the tool, how to tell it is there, and its packages. */
export const SKOPEO_REQUIREMENT = { name: 'skopeo', probe: ['skopeo', ['--version']] as [string, string[]], fedoraPackage: 'skopeo', debianPackage: 'skopeo' };
