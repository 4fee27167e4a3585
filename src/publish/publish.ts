// What the action does after composing (mode: compose) or instead of it (mode: merge): action
// inputs in, action outputs out. Images and the index are pushed by images.ts, which the CLI's
// publish and merge call too; workflow artifacts are the action's alone.
import { UsageError } from '../errors.js';
import { uploadArtifacts, type ArtifactOptions, type UploadedArtifact } from './artifact.js';
import { holdsState, pushImages, pushIndex, type ComposedArch, type RegistryInputs } from './images.js';
import type { PushedImage } from './oci-push.js';
import type { MergedIndex } from './merge.js';
import type { AttachedReferrer } from './oci-referrers.js';
import { loadSigningKey, SIGN_PREDICATE } from './signing.js';

export { parseLabels, type ComposedArch } from './images.js';

export type UploadMode = 'artifact' | 'oci' | 'both' | 'none';

export function parseUpload(input: string): UploadMode {
  const value = input.trim() || 'none';
  if (!['artifact', 'oci', 'both', 'none'].includes(value)) throw new UsageError(`upload must be artifact, oci, both or none, got "${input}"`);
  return value as UploadMode;
}

export interface PublishInputs extends RegistryInputs {
  upload: UploadMode;
  artifactName?: string;
  retentionDays?: number;
  /** For tests. */
  artifactClient?: ArtifactOptions['client'];
  /** attest: true — the token for the attestations API (see provenance.ts; checked by checkAttest first). */
  attest?: { token: string };
}

export interface PublishResult {
  artifacts: UploadedArtifact[];
  images: PushedImage[];
  index?: MergedIndex;
  /**
   * With upload oci and skip-unchanged: whether anything was pushed (the action's `changed`
   * output). Otherwise undefined: the compose result decides.
   */
  changed?: boolean;
  /** Action outputs by name; one architecture gives plain values, several a JSON object by arch. */
  outputs: Record<string, string>;
}

export function perArch(entries: [string, string][]): string {
  if (entries.length === 0) return '';
  return entries.length === 1 ? entries[0]![1] : JSON.stringify(Object.fromEntries(entries));
}

/** Signing applies to pushed images, and a key file must be usable: checked before composing, too. */
export async function checkSigning(inputs: PublishInputs): Promise<void> {
  if (!inputs.signing) return;
  if (inputs.upload !== 'oci' && inputs.upload !== 'both') throw new UsageError('sign and sign-key sign pushed images: they need upload: oci or both');
  if (inputs.signing.keyFile) await loadSigningKey(inputs.signing.keyFile, inputs.signing.keyPassword);
}

const signatureOf = (referrers: AttachedReferrer[]): string => referrers.find((r) => r.predicateType === SIGN_PREDICATE)?.digest ?? '';

/** mode: compose — upload and/or push what this job composed. */
export async function publishComposed(arches: ComposedArch[], inputs: PublishInputs): Promise<PublishResult> {
  const log = inputs.log ?? (() => {});
  const env = inputs.env ?? process.env;
  const result: PublishResult = { artifacts: [], images: [], outputs: {} };
  await checkSigning(inputs);
  if (inputs.upload === 'none') return result;

  if (inputs.upload === 'artifact' || inputs.upload === 'both') {
    const present: ComposedArch[] = [];
    for (const a of arches) {
      if (await holdsState(a)) present.push(a);
      else log(`${a.arch}: unchanged and not written to ${a.outputDir}; no artifact uploaded`);
    }
    result.artifacts = await uploadArtifacts(present.map((a) => ({ arch: a.arch, dir: a.outputDir })), {
      name: inputs.artifactName, retentionDays: inputs.retentionDays, client: inputs.artifactClient, env,
    });
    for (const u of result.artifacts) log(`${u.arch}: artifact ${u.name} (id ${u.id}) ${u.url}`);
    result.outputs['artifact-id'] = perArch(result.artifacts.map((u) => [u.arch, String(u.id)]));
    result.outputs['artifact-url'] = perArch(result.artifacts.map((u) => [u.arch, u.url]));
    result.outputs['artifact-digest'] = perArch(result.artifacts.map((u) => [u.arch, u.digest]));
  }

  if (inputs.upload === 'oci' || inputs.upload === 'both') {
    result.images = await pushImages(arches, inputs);
    result.outputs['image-digest'] = perArch(result.images.map((i) => [i.arch, i.digest]));
    result.outputs['image-ref'] = perArch(result.images.map((i) => [i.arch, i.ref]));
    if (inputs.signing) result.outputs['signature-digest'] = perArch(result.images.map((i) => [i.arch, signatureOf(i.referrers)]));
    if (inputs.skipUnchanged) result.changed = result.images.some((i) => i.changed);
  }
  return result;
}

/** mode: merge — one index over the `TAG-ARCH` images the compose jobs pushed. */
export async function publishMerge(archesToMerge: string[], inputs: PublishInputs): Promise<PublishResult> {
  const index = await pushIndex(archesToMerge, inputs);
  return {
    artifacts: [],
    images: [],
    index,
    changed: index.changed,
    outputs: {
      'image-digest': index.digest, 'image-ref': index.ref, 'state-checksum': index.stateChecksum, changed: String(index.changed),
      ...(inputs.signing && { 'signature-digest': signatureOf(index.referrers) }),
    },
  };
}
