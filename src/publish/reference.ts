// Image names, tags and platforms: checked before anything is built or pushed, so a typo fails at
// once with the input's name instead of deep inside skopeo.
import { UsageError } from '../errors.js';

/** RPM basearch → OCI platform (the GOARCH names every registry and runtime uses). */
const PLATFORMS: Record<string, OciPlatform> = {
  x86_64: { os: 'linux', architecture: 'amd64' },
  aarch64: { os: 'linux', architecture: 'arm64', variant: 'v8' },
  ppc64le: { os: 'linux', architecture: 'ppc64le' },
  s390x: { os: 'linux', architecture: 's390x' },
  riscv64: { os: 'linux', architecture: 'riscv64' },
};

export interface OciPlatform {
  os: 'linux';
  architecture: string;
  variant?: string;
}

export function platformFor(arch: string): OciPlatform {
  const platform = PLATFORMS[arch];
  if (!platform) throw new UsageError(`no container platform is known for architecture "${arch}"; known: ${Object.keys(PLATFORMS).join(', ')}`);
  return { ...platform };
}

// The distribution spec's grammar, lower-case path components, optional registry host[:port].
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$/;
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export interface ImageName {
  /** As given, e.g. `ghcr.io/org/extensions`. */
  name: string;
  /** The registry host, the key of its credentials in an auth file (`docker.io` for Docker Hub). */
  registry: string;
}

/** `image` input: a repository without tag or digest (tags come from `tags`). */
export function parseImageName(input: string): ImageName {
  const name = input.trim();
  if (/[@]/.test(name)) throw new UsageError(`image: "${name}" has a digest; give the repository only (e.g. ghcr.io/org/extensions) and the tags in \`tags\``);
  const parts = name.split('/');
  const first = parts[0] ?? '';
  // Docker's rule: the first component is a registry when it has a dot or port, or is localhost.
  const hasRegistry = parts.length > 1 && (/[.:]/.test(first) || first === 'localhost' || first.startsWith('['));
  const path = hasRegistry ? parts.slice(1) : parts;
  const last = path[path.length - 1] ?? '';
  if (last.includes(':')) throw new UsageError(`image: "${name}" has a tag; give the repository only (e.g. ghcr.io/org/extensions) and the tags in \`tags\``);
  if (!name || (hasRegistry && !HOST.test(first)) || path.length === 0 || !path.every((c) => COMPONENT.test(c))) {
    throw new UsageError(`image: "${name}" is not a repository name like ghcr.io/org/extensions (lower case, no tag)`);
  }
  return { name, registry: hasRegistry ? first : 'docker.io' };
}

export function checkTag(tag: string, what = 'tags'): string {
  if (!TAG.test(tag)) throw new UsageError(`${what}: "${tag}" is not a valid tag (letters, digits, _ . -, at most 128, not starting with . or -)`);
  return tag;
}

/** The tag a matrix job pushes its architecture under, for the merge job to find. */
export function archTag(tag: string, arch: string): string {
  return checkTag(`${tag}-${arch}`, 'tags');
}

export const dockerRef = (image: ImageName, tagOrDigest: string): string =>
  `docker://${image.name}${tagOrDigest.startsWith('sha256:') ? '@' : ':'}${tagOrDigest}`;
