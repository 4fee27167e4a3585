// Pushing images and the index, for both entry points: the action (through publish.ts, which adds
// workflow artifacts and its outputs) and the CLI's `publish` and `merge`. Nothing here imports
// @actions/*, so the CLI's bundle stays free of them.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ComposeError, escapeControl, UsageError } from '../errors.js';
import { resolveAuth, secretsToMask } from '../tools/registry-auth.js';
import { defaultCreated } from './oci-image.js';
import { currentState, pushArchImage, signUnchanged, type PushedImage } from './oci-push.js';
import { createSigner, describeReferrer, type BundleSigner, type SigningInputs } from './signing.js';
import type { AttachedReferrer } from './oci-referrers.js';
import { mergeImages, type MergedIndex } from './merge.js';
import { inspectManifest, type RegistryOptions, type Repository } from '../tools/skopeo.js';
import { archTag, checkTag, parseRepository } from './reference.js';
import { referrersTag } from './oci-referrers.js';
import { removeDeadScratch } from '../tools/leftovers.js';
import { attachReferrers, listReferrers, type Attachment } from './oci-referrers.js';

/** `labels` input: `key=value`, one per line; blank lines and lines starting with `#` are skipped. */
export function parseLabels(input: string): Record<string, string> {
  const labels: Record<string, string> = Object.create(null); // a key such as `__proto__` is a key
  for (const raw of input.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new UsageError(`labels: "${escapeControl(line)}" is not key=value`);
    const [key, value] = [line.slice(0, eq).trim(), line.slice(eq + 1).trim()];
    // Labels end up in the image config and manifest, and in every tool that prints them.
    if (!LABEL_KEY.test(key)) throw new UsageError(`labels: invalid key "${escapeControl(key)}": use letters, digits and . _ - / (like org.example.team)`);
    if (LABEL_CONTROL.test(value)) throw new UsageError(`labels: the value of ${key} holds a control character: "${escapeControl(value)}"`);
    labels[key] = value;
  }
  return labels;
}

const LABEL_KEY = /^[A-Za-z0-9_][A-Za-z0-9._\/-]*$/;
const LABEL_CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export interface RegistryInputs {
  /** `image`: repository without tag, e.g. ghcr.io/org/extensions. */
  image?: string;
  tags: string[];
  labels?: Record<string, string>;
  registryUsername?: string;
  registryPassword?: string;
  authFile?: string;
  skipUnchanged?: boolean;
  /**
   * org.opencontainers.image.source and .revision; default: the GitHub repository and commit
   * (GITHUB_SERVER_URL, GITHUB_REPOSITORY, GITHUB_SHA), when set.
   */
  source?: string;
  revision?: string;
  /** Default: SOURCE_DATE_EPOCH, else the Unix epoch (see oci-image.ts). */
  created?: Date;
  /** false only for a plain-HTTP registry (tests). */
  tlsVerify?: boolean;
  /** Sign every pushed image and the index (sign: true, sign-key); undefined: no signing. */
  signing?: SigningInputs;
  /** Called with every secret before anything runs: the action passes core.setSecret. */
  mask?: (secret: string) => void;
  /** Called with the private directory of a written auth file: the action saves it for its post step. */
  onAuthDir?: (dir: string) => void;
  log?: (message: string) => void;
  env?: NodeJS.ProcessEnv;
}

/** One composed architecture, as the engine reports it. */
export interface ComposedArch {
  arch: string;
  outputDir: string;
  stateChecksum: string;
}

function githubSource(env: NodeJS.ProcessEnv): { source?: string; revision?: string } {
  const { GITHUB_SERVER_URL: server = 'https://github.com', GITHUB_REPOSITORY: repo, GITHUB_SHA: sha } = env;
  return { ...(repo && { source: `${server}/${repo}` }), ...(sha && { revision: sha }) };
}

/** The registry, its access and a cleanup; secrets are masked before the auth file is written. */
async function registryAccess(inputs: RegistryInputs): Promise<{ image: Repository; access: RegistryOptions; cleanup(): Promise<void> }> {
  if (!inputs.image) throw new UsageError('image is required to push (e.g. image: ghcr.io/${{ github.repository_owner }}/extensions)');
  const image = parseRepository(inputs.image);
  if (inputs.tags.length === 0) throw new UsageError('tags: at least one tag is needed');
  inputs.tags.forEach((t) => checkTag(t));
  if (inputs.registryPassword) for (const s of secretsToMask(inputs.registryUsername ?? '', inputs.registryPassword)) inputs.mask?.(s);
  const { authFile, owned } = await resolveAuth(image.registry, {
    username: inputs.registryUsername, password: inputs.registryPassword, authFile: inputs.authFile,
  }, inputs.env?.['RUNNER_TEMP'] || undefined);
  if (owned) inputs.onAuthDir?.(owned.dir);
  return { image, access: { authFile, tlsVerify: inputs.tlsVerify }, cleanup: async () => owned?.cleanup() };
}

/** The signer, made (and a key file checked) before anything is pushed; its password masked first. */
async function signerFor(inputs: RegistryInputs): Promise<BundleSigner | undefined> {
  if (!inputs.signing) return undefined;
  if (inputs.signing.keyPassword) inputs.mask?.(inputs.signing.keyPassword);
  return createSigner(inputs.signing);
}

function logReferrers(log: (m: string) => void, prefix: string, imageName: string, subject: string, referrers: AttachedReferrer[]): void {
  for (const r of referrers) log(`${prefix}attached ${describeReferrer(r)} ${imageName}@${r.digest} (referrers tag ${referrersTag(subject)})`);
}

/** Whether the output directory holds this state (an unchanged architecture may not have been written). */
export async function holdsState(arch: ComposedArch): Promise<boolean> {
  const text = await readFile(join(arch.outputDir, 'metadata.json'), 'utf8').catch(() => undefined);
  if (text === undefined) return false;
  try {
    return (JSON.parse(text) as { stateChecksum?: string }).stateChecksum === arch.stateChecksum;
  } catch {
    return false;
  }
}

/** Each architecture as `IMAGE:TAG-ARCH` for every tag (upload: oci, and the CLI's publish). */
export async function pushImages(arches: ComposedArch[], inputs: RegistryInputs): Promise<PushedImage[]> {
  const log = inputs.log ?? (() => {});
  const env = inputs.env ?? process.env;
  const signer = await signerFor(inputs);
  const { image, access, cleanup } = await registryAccess(inputs);
  for (const dir of await removeDeadScratch()) log(`removed ${dir}, left by a run that died`);
  const images: PushedImage[] = [];
  try {
    const created = inputs.created ?? defaultCreated(env);
    for (const a of arches) {
      if (!(await holdsState(a))) {
        // Not written because unchanged: fine when the registry already has this state.
        const states = await Promise.all(inputs.tags.map((t) => currentState(image, archTag(t, a.arch), access)));
        if (states.every((s) => s === a.stateChecksum)) {
          const remote = await inspectManifest(image, archTag(inputs.tags[0]!, a.arch), access);
          const digest = remote?.digest ?? '';
          log(`${a.arch}: unchanged, ${image.name}:${archTag(inputs.tags[0]!, a.arch)} already has state ${a.stateChecksum}`);
          // Its SBOMs are not on disk: an unsigned image gets its signature only.
          const created = (inputs.created ?? defaultCreated(env)).toISOString().replace(/\.\d{3}Z$/, 'Z');
          const referrers = remote ? await signUnchanged(image, remote, signer, [], access, created) : [];
          logReferrers(log, `${a.arch}: `, image.name, digest, referrers);
          images.push({ arch: a.arch, digest, ref: `${image.name}@${digest}`, tags: [], changed: false, stateChecksum: a.stateChecksum, referrers });
          continue;
        }
        throw new ComposeError([{
          arch: a.arch,
          message: `unchanged since previous-state, so ${a.outputDir} was not written and there is no image to push; restore the output directory (actions/cache) or run without previous-state`,
        }]);
      }
      const pushed = await pushArchImage(a.outputDir, image, {
        tags: inputs.tags, access, skipUnchanged: inputs.skipUnchanged, labels: inputs.labels, created, ...githubSource(env), signer,
        ...(inputs.source && { source: inputs.source }), ...(inputs.revision && { revision: inputs.revision }),
      });
      log(pushed.changed ? `${a.arch}: pushed ${pushed.ref} as ${pushed.tags.join(', ')}` : `${a.arch}: unchanged, nothing pushed (${pushed.ref})`);
      logReferrers(log, `${a.arch}: `, image.name, pushed.digest, pushed.referrers);
      images.push(pushed);
    }
  } finally {
    await cleanup();
  }
  return images;
}

/** One index over the `TAG-ARCH` images, pushed under the plain tags (mode: merge, and the CLI's merge). */
export async function pushIndex(archesToMerge: string[], inputs: RegistryInputs): Promise<MergedIndex> {
  const log = inputs.log ?? (() => {});
  const signer = await signerFor(inputs);
  const { image, access, cleanup } = await registryAccess(inputs);
  for (const dir of await removeDeadScratch()) log(`removed ${dir}, left by a run that died`);
  try {
    const index = await mergeImages(image, { tags: inputs.tags, arches: archesToMerge, access, skipUnchanged: inputs.skipUnchanged, signer });
    log(index.changed
      ? `pushed ${index.ref} as ${inputs.tags.join(', ')}: ${index.images.map((i) => `${i.arch} ${i.digest}`).join(', ')}`
      : `unchanged: ${inputs.tags.join(', ')} already ${index.ref}`);
    logReferrers(log, '', image.name, index.digest, index.referrers);
    return index;
  } finally {
    await cleanup();
  }
}

/**
 * Attaches files as referrers of a manifest already in the repository (an image or the index), by
 * digest: what is known only after the push, such as its provenance attestation.
 */
export async function attachToPushed(digest: string, attachments: Attachment[], created: Date, inputs: RegistryInputs): ReturnType<typeof attachReferrers> {
  const { image, access, cleanup } = await registryAccess(inputs);
  try {
    const manifest = await inspectManifest(image, digest, access);
    if (!manifest) throw new ComposeError([{ message: `${image.name}@${digest} is gone from the registry: nothing to attach to` }]);
    const subject = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size };
    const referrers = await attachReferrers(image, subject, attachments, access, created.toISOString().replace(/\.\d{3}Z$/, 'Z'));
    for (const r of referrers) inputs.log?.(`attached ${r.artifactType} ${image.name}@${r.digest} to ${image.name}@${digest} (referrers tag ${referrersTag(digest)})`);
    return referrers;
  } finally {
    await cleanup();
  }
}

/** The referrers tag index' entries of a manifest in the repository (none when it has no referrers). */
export async function referrersOf(digest: string, inputs: RegistryInputs): ReturnType<typeof listReferrers> {
  const { image, access, cleanup } = await registryAccess(inputs);
  try {
    return await listReferrers(image, digest, access);
  } finally {
    await cleanup();
  }
}
