// Image names, tags and platforms: checked before anything is built or pushed, so a typo fails at
// once with the input's name instead of deep inside skopeo.
import { UsageError } from '../errors.js';
import { repositoryRegistry, splitReference, type Repository } from '../tools/skopeo.js';

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

const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** `image` input: a repository without tag or digest (tags come from `tags`). */
export function parseRepository(input: string): Repository {
  const name = input.trim();
  const { tag, digest } = splitReference(name);
  if (digest !== undefined) throw new UsageError(`image: "${name}" has a digest; give the repository only (e.g. ghcr.io/org/extensions) and the tags in \`tags\``);
  if (tag !== undefined) throw new UsageError(`image: "${name}" has a tag; give the repository only (e.g. ghcr.io/org/extensions) and the tags in \`tags\``);
  const registry = repositoryRegistry(name);
  if (!registry) throw new UsageError(`image: "${name}" is not a repository name like ghcr.io/org/extensions (lower case, no tag)`);
  return { name, registry };
}

export function checkTag(tag: string, what = 'tags'): string {
  if (!TAG.test(tag)) throw new UsageError(`${what}: "${tag}" is not a valid tag (letters, digits, _ . -, at most 128, not starting with . or -)`);
  return tag;
}

/** The tag a matrix job pushes its architecture under, for the merge job to find. */
export function archTag(tag: string, arch: string): string {
  return checkTag(`${tag}-${arch}`, 'tags');
}
