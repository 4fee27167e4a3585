// SLSA build provenance of the pushed images (attest: true), action-only. @actions/attest builds the
// statement from the job's OIDC token claims, signs it with a Fulcio certificate for the workflow's
// identity (logged in Rekor for a public repository; for a private one GitHub's Sigstore instance,
// timestamped by its TSA: the library picks by the event's repository visibility, as
// actions/attest-build-provenance does), and stores the bundle through the repository's
// attestations API, where `gh attestation verify` finds it. The bundle is also attached to the image
// as an OCI referrer, as actions/attest does with push-to-registry (artifactType and annotations as
// @sigstore/oci writes them), so it travels with the image. The CLI never imports this module.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ComposeError, UsageError } from '../errors.js';
import { attachToPushed, referrersOf, type RegistryInputs } from './images.js';
import type { MergedIndex } from './merge.js';
import type { PushedImage } from './oci-push.js';
import { perArch, type PublishInputs } from './publish.js';
import { scratchDir } from '../tools/leftovers.js';

export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
export const BUNDLE_TITLE = 'provenance.sigstore.json';

export interface Provenance {
  /** The architecture of the attested image; none for the index. */
  arch?: string;
  /** `IMAGE@DIGEST`, the attested manifest. */
  subject: string;
  /** Its id in the repository's attestations, and the page that shows it. */
  attestationId: string;
  url: string;
  /** The Rekor log index (public repositories only). */
  tlogIndex?: string;
  /** The digest of the bundle's referrer artifact in the image repository. */
  referrer?: string;
}

/**
 * Everything that would make attestation fail after a long compose, checked before it: a push to
 * attest, the OIDC token only `permissions: id-token: write` grants, and a token for the API.
 */
export function checkAttest(pushes: boolean, token: string, env: NodeJS.ProcessEnv): void {
  if (!pushes) throw new UsageError('attest: true attests the pushed images: it needs upload: oci (or both), or mode: merge');
  if (!env['ACTIONS_ID_TOKEN_REQUEST_URL'] || !env['ACTIONS_ID_TOKEN_REQUEST_TOKEN']) {
    throw new UsageError(
      'attest: true needs the job\'s OIDC token, which GitHub gives only with `permissions: id-token: write` (and `attestations: write` to store the attestation, `packages: write` to push): ACTIONS_ID_TOKEN_REQUEST_URL is not set',
    );
  }
  if (!token) throw new UsageError('attest: true needs github-token (default: the job\'s GITHUB_TOKEN) to store the attestation');
}

/** `https://github.com/OWNER/REPO/attestations/ID`, as actions/attest-build-provenance reports it. */
export function attestationUrl(id: string, env: NodeJS.ProcessEnv): string {
  return `${env['GITHUB_SERVER_URL'] || 'https://github.com'}/${env['GITHUB_REPOSITORY'] ?? ''}/attestations/${id}`;
}

/** The GitHub API says 403 "Resource not accessible by integration" without naming the permission. */
function hint(message: string): string {
  return /Resource not accessible|\b403\b/.test(message) ? `${message} (does the job have \`permissions: attestations: write\`?)` : message;
}

export interface AttestOptions extends RegistryInputs {
  token: string;
}

/** Attests one pushed manifest (an architecture's image or the index) and attaches the bundle to it. */
export async function attestPushed(name: string, digest: string, options: AttestOptions, arch?: string): Promise<Provenance> {
  const env = options.env ?? process.env;
  const subject = `${name}@${digest}`;
  // Lazily: @actions/attest and the Sigstore client load only when attesting.
  const { attestProvenance } = await import('@actions/attest');
  let attestation: Awaited<ReturnType<typeof attestProvenance>>;
  try {
    attestation = await attestProvenance({ subjects: [{ name, digest: { sha256: digest.replace(/^sha256:/, '') } }], token: options.token });
  } catch (err) {
    throw new ComposeError([{ ...(arch && { arch }), message: `provenance attestation of ${subject} failed: ${hint(err instanceof Error ? err.message : String(err))}` }]);
  }
  if (!attestation.attestationID) throw new ComposeError([{ ...(arch && { arch }), message: `provenance attestation of ${subject}: the attestations API returned no id` }]);
  const url = attestationUrl(String(attestation.attestationID), env);
  options.log?.(`${arch ? `${arch}: ` : ''}provenance attestation ${url} for ${subject}`);
  const dir = await scratchDir('provenance');
  try {
    const path = join(dir, BUNDLE_TITLE);
    await writeFile(path, JSON.stringify(attestation.bundle));
    const [referrer] = await attachToPushed(digest, [{
      path,
      title: BUNDLE_TITLE,
      mediaType: attestation.bundle.mediaType,
      annotations: { 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': SLSA_PROVENANCE_V1 },
    }], new Date(), options);
    return {
      ...(arch && { arch }),
      subject,
      attestationId: String(attestation.attestationID),
      url,
      ...(attestation.tlogID !== undefined && { tlogIndex: String(attestation.tlogID) }),
      ...(referrer && { referrer: referrer.digest }),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const repositoryOf = (ref: string) => ref.slice(0, ref.lastIndexOf('@'));

export interface Attested {
  provenance: Provenance[];
  /** attestation-id and attestation-url, by architecture as image-digest is. */
  outputs: Record<string, string>;
}

export const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

/**
 * Whether an image not pushed by this run (unchanged) still needs its attestation: the run that
 * pushed it did not attest (attest was off, or the attestation failed after the push).
 */
async function unattested(digest: string, inputs: PublishInputs): Promise<boolean> {
  if (!digest) return false;
  const referrers = await referrersOf(digest, inputs);
  return !referrers.some((r) => r.artifactType === BUNDLE_MEDIA_TYPE && r.annotations?.['dev.sigstore.bundle.predicateType'] === SLSA_PROVENANCE_V1);
}

/** mode: compose — every image this job pushed, and an unchanged one without a provenance referrer. */
export async function attestImages(images: PushedImage[], inputs: PublishInputs): Promise<Attested> {
  if (!inputs.attest) return { provenance: [], outputs: {} };
  const provenance: Provenance[] = [];
  for (const i of images) {
    if (!i.changed && !(await unattested(i.digest, inputs))) {
      inputs.log?.(`${i.arch}: unchanged, its provenance attestation is attached already (${i.ref})`);
      continue;
    }
    provenance.push(await attestPushed(repositoryOf(i.ref), i.digest, { ...inputs, token: inputs.attest.token }, i.arch));
  }
  return {
    provenance,
    outputs: {
      'attestation-id': perArch(provenance.map((p) => [p.arch!, p.attestationId])),
      'attestation-url': perArch(provenance.map((p) => [p.arch!, p.url])),
    },
  };
}

/** mode: merge — the index (each architecture's image was attested by its compose job). */
export async function attestIndex(index: MergedIndex, inputs: PublishInputs): Promise<Attested> {
  if (!inputs.attest) return { provenance: [], outputs: {} };
  if (!index.changed && !(await unattested(index.digest, inputs))) {
    inputs.log?.(`unchanged, the index's provenance attestation is attached already (${index.ref})`);
    return { provenance: [], outputs: {} };
  }
  const p = await attestPushed(repositoryOf(index.ref), index.digest, { ...inputs, token: inputs.attest.token });
  return { provenance: [p], outputs: { 'attestation-id': p.attestationId, 'attestation-url': p.url } };
}
