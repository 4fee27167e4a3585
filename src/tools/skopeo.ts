// skopeo adapter: reads manifests and copies one image's blobs into a `dir:` directory. Credentials
// only ever reach skopeo through an auth file (--authfile), never as arguments.
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
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
  const at = name.indexOf('@');
  const withoutDigest = at < 0 ? name : name.slice(0, at);
  const digest = at < 0 ? undefined : name.slice(at + 1);
  const colon = withoutDigest.lastIndexOf(':');
  const repository = colon > withoutDigest.lastIndexOf('/') ? withoutDigest.slice(0, colon) : withoutDigest;
  if (!/^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::\d+)?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(repository)) {
    throw new UsageError(`image ${input}: not a valid image reference`);
  }
  if (digest !== undefined && !/^sha256:[0-9a-f]{64}$/.test(digest)) throw new UsageError(`image ${input}: digest must be sha256:<64 hex digits>`);
  const first = repository.split('/')[0]!;
  const registry = repository.includes('/') && (/[.:]/.test(first) || first === 'localhost') ? first : 'docker.io';
  return { transport: 'docker', ref: `docker://${name}`, repository, registry, ...(digest && { digest }) };
}

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
const NOT_FOUND = /manifest unknown|name unknown|no descriptor found for reference|repository name not known/i;
const AUTH_REFUSED = /unauthorized|authentication required|invalid username\/password|access to the resource is denied|\b401\b/i;

/** Runs skopeo; a missing image or refused credentials become a RegistryError, other failures a ToolError. */
async function skopeo(name: ImageName, display: string, args: string[]): Promise<string> {
  if (name.transport !== 'docker') {
    const path = name.ref.slice(name.transport.length + 1).replace(/:[^/:]*$/, '');
    if (!(await stat(path).catch(() => undefined))) throw new RegistryError('not-found', `image ${display} not found`);
  }
  const r = await run('skopeo', args, { allowFailure: true, env: { LC_ALL: 'C' } });
  if (r.exitCode === 0) return r.stdout;
  const message = lastLines(r.stderr || r.stdout, 5);
  if (AUTH_REFUSED.test(message)) {
    throw new RegistryError('auth-refused', `authentication to ${name.registry ?? display} refused; check the credentials`);
  }
  if (NOT_FOUND.test(message)) throw new RegistryError('not-found', `image ${display} not found`);
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

/** For ensureTools: the tool, how to tell it is there, and its packages. */
export const SKOPEO_REQUIREMENT = { name: 'skopeo', probe: ['skopeo', ['--version']] as [string, string[]], fedoraPackage: 'skopeo', debianPackage: 'skopeo' };
