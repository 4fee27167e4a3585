// The base as the CLI and the action name it: one of an OSTree repo with a ref, a root filesystem,
// or a container image; local paths made absolute, URLs and image references kept as they are.
import { resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { parseImageName } from '../tools/skopeo.js';
import { resolveAuth, type CredentialInputs } from '../tools/registry-auth.js';
import type { BaseSpec } from './types.js';
import { isUrl } from './remote.js';

export interface BaseChoice {
  ostreeRepo?: string;
  baseRev?: string;
  rootfs?: string;
  baseImage?: string;
  baseSha256?: string;
}

/** `name` turns a field into the flag or input a user typed (`--base-image` or `base-image`). */
export function selectBase(choice: BaseChoice, name: (field: 'ostree-repo' | 'base-rev' | 'rootfs' | 'base-image' | 'base-sha256') => string): BaseSpec {
  const { ostreeRepo, baseRev, rootfs, baseImage, baseSha256 } = choice;
  const given = [ostreeRepo || baseRev ? name('ostree-repo') : '', rootfs ? name('rootfs') : '', baseImage ? name('base-image') : ''].filter(Boolean);
  if (given.length > 1) throw new UsageError(`give one base: ${given.join(', ')} were all set`);
  if (baseSha256 && !/^[0-9a-f]{64}$/i.test(baseSha256)) throw new UsageError(`${name('base-sha256')} must be 64 hex digits`);
  const local = (p: string) => (isUrl(p) ? p : resolve(p));
  if (baseImage) return { kind: 'image', ref: baseImage, ...(baseSha256 && { sha256: baseSha256.toLowerCase() }) };
  if (baseSha256 && !(rootfs && isUrl(rootfs))) throw new UsageError(`${name('base-sha256')} applies to a base downloaded from a URL (${name('rootfs')} URL or ${name('base-image')} URL)`);
  if (rootfs) return { kind: 'rootfs', path: local(rootfs), ...(baseSha256 && { sha256: baseSha256.toLowerCase() }) };
  if (ostreeRepo && baseRev) return { kind: 'ostree', repo: local(ostreeRepo), ref: baseRev };
  if (ostreeRepo || baseRev) throw new UsageError(`${name('ostree-repo')} and ${name('base-rev')} go together`);
  throw new UsageError(`a base is required: ${name('ostree-repo')} with ${name('base-rev')}, ${name('rootfs')}, or ${name('base-image')}`);
}

/**
 * Runs `fn` with the base's registry access set up: an auth file from credentials (written 0600,
 * removed afterwards; `onAuthDir` lets the action's post step remove it too) or a given one.
 */
export async function withBaseRegistry<T>(
  spec: BaseSpec,
  access: CredentialInputs & { tlsVerify?: boolean; onAuthDir?: (dir: string) => void },
  /** `release` removes an auth file we wrote as soon as the base needs no more reading. */
  fn: (spec: BaseSpec, release: () => Promise<void>) => Promise<T>,
): Promise<T> {
  if (spec.kind !== 'image') {
    if (access.username || access.password || access.authFile) throw new UsageError('registry credentials for the base apply to a base image only');
    return fn(spec, async () => {});
  }
  const image = isUrl(spec.ref) ? undefined : parseImageName(spec.ref);
  const { authFile, owned } = await resolveAuth(image?.registry ?? '', access);
  if (owned) access.onAuthDir?.(owned.dir);
  let released: Promise<void> | undefined;
  const release = () => (released ??= owned?.cleanup() ?? Promise.resolve());
  try {
    return await fn({ ...spec, registry: { ...(authFile && { authFile }), ...(access.tlsVerify === false && { tlsVerify: false }) } }, release);
  } finally {
    await release();
  }
}
