// Signatures and SBOM attestations of pushed images, in cosign's OCI 1.1 "new bundle format" as
// cosign v3.0 writes it (cmd/cosign/cli/sign/sign.go, specs/BUNDLE_SPEC.md): a Sigstore bundle v0.3
// holding a DSSE envelope (payload type application/vnd.in-toto+json) of an in-toto v1 statement
// whose one subject is the manifest's `sha256` digest; predicateType https://sigstore.dev/cosign/sign/v1
// with an empty predicate for the signature, the SBOM document itself for an attestation
// (https://spdx.dev/Document, https://cyclonedx.org/bom, as `cosign attest --type` names them).
// The bundle is pushed as a referrer of the manifest (oci-referrers.ts) with artifactType = the
// bundle media type and the annotations dev.sigstore.bundle.content / .predicateType.
//
// Signing itself is @sigstore/sign's: DSSEBundleBuilder computes the PAE and builds the bundle;
// FulcioSigner + RekorWitness + TSAWitness for keyless, and for a key file a small Signer over
// node:crypto (no transparency log: a private key has no identity for Rekor to vouch for).
import { createHash, createPrivateKey, createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { ToolError, UsageError } from '../errors.js';

export const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
export const INTOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';
/** Per SBOM media type (metadata/sbom.ts), the predicate type `cosign attest --type spdxjson|cyclonedx` writes. */
export const SBOM_PREDICATES: Record<string, string> = {
  'application/spdx+json': 'https://spdx.dev/Document',
  'application/vnd.cyclonedx+json': 'https://cyclonedx.org/bom',
};
export const ANNOTATION_CONTENT = 'dev.sigstore.bundle.content';
export const ANNOTATION_PREDICATE = 'dev.sigstore.bundle.predicateType';

/** Public-good sigstore: where keyless signing goes unless told otherwise. */
export const PUBLIC_GOOD = {
  fulcioURL: 'https://fulcio.sigstore.dev',
  rekorURL: 'https://rekor.sigstore.dev',
  tsaURL: 'https://timestamp.sigstore.dev',
} as const;

/** A sigstore service URL input: '' or undefined for the default, `none` (timestamp authority only) for none. */
export function sigstoreURL(name: string, input: string | undefined, allowNone = false): string | undefined {
  const value = input?.trim();
  if (!value) return undefined;
  if (allowNone && value === 'none') return '';
  if (!/^https?:\/\/\S+$/.test(value)) throw new UsageError(`${name}: "${value}" is not an http(s) URL${allowNone ? ' (or none)' : ''}`);
  return value.replace(/\/+$/, '');
}

/**
 * The in-toto v1 statement about one manifest, key order as cosign's protojson writes it (the
 * subject's empty annotations included). Pure: the same digest and predicate give the same bytes.
 */
export function statement(subjectDigest: string, predicateType: string, predicate: unknown = {}): Buffer {
  const [algorithm, hex] = subjectDigest.split(':');
  if (algorithm !== 'sha256' || !/^[0-9a-f]{64}$/.test(hex ?? '')) throw new Error(`not a sha256 digest: ${subjectDigest}`);
  return Buffer.from(JSON.stringify({
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ digest: { sha256: hex }, annotations: {} }],
    predicateType,
    predicate,
  }));
}

/** A bundle's layer title, as cosign names it: `sha256-<hex of the bundle>.sigstore.json`. */
export const bundleTitle = (bundle: Buffer | string): string => `sha256-${createHash('sha256').update(bundle).digest('hex')}.sigstore.json`;

/** How to sign: a key file, or keyless with an OIDC token (the action's, or a file's in the CLI). */
export interface SigningInputs {
  /** PEM PKCS#8 EC P-256 private key file, mode 0600 or stricter. */
  keyFile?: string;
  /** Its password when encrypted (SIGN_KEY_PASSWORD). */
  keyPassword?: string;
  /** Keyless: where the OIDC identity token comes from. */
  identityToken?: () => Promise<string>;
  fulcioURL?: string;
  rekorURL?: string;
  /** Empty string: no timestamp authority (the transparency log's entry time stands alone). */
  tsaURL?: string;
}

export interface BundleSigner {
  kind: 'key' | 'keyless';
  /** A Sigstore bundle (JSON) over a DSSE envelope of the statement. */
  sign(statement: Buffer): Promise<string>;
}

/** Checks and reads a private key file: owner-only mode, PEM PKCS#8, EC P-256; every problem as a UsageError. */
export async function loadSigningKey(path: string, password?: string): Promise<KeyObject> {
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) throw new UsageError(`sign-key: ${path} is not a file`);
  if ((info.mode & 0o077) !== 0) {
    throw new UsageError(`sign-key: ${path} has mode ${(info.mode & 0o777).toString(8).padStart(4, '0')}; a private key must be readable by its owner only (chmod 600 ${path})`);
  }
  const pem = await readFile(path, 'utf8');
  if (pem.includes('-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----')) {
    throw new UsageError(`sign-key: ${path} is a cosign-encrypted key; give a PEM PKCS#8 key (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256, see README)`);
  }
  const encrypted = pem.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----');
  if (encrypted && !password) throw new UsageError(`sign-key: ${path} is encrypted: set SIGN_KEY_PASSWORD to its password`);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem', ...(encrypted && { passphrase: password }) });
  } catch {
    throw new UsageError(encrypted
      ? `sign-key: ${path} could not be decrypted: wrong SIGN_KEY_PASSWORD?`
      : `sign-key: ${path} is not a PEM private key (PKCS#8, -----BEGIN PRIVATE KEY-----)`);
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    const what = key.asymmetricKeyType === 'ec' ? `an EC ${key.asymmetricKeyDetails?.namedCurve} key` : `a ${key.asymmetricKeyType} key`;
    throw new UsageError(`sign-key: ${path} is ${what}; an EC P-256 key is needed (what cosign verify --key expects)`);
  }
  return key;
}

/** The public key's hint in the bundle: base64 of the sha256 of its DER SubjectPublicKeyInfo. */
export function keyHint(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ format: 'der', type: 'spki' })).digest('base64');
}

/** @sigstore/sign's errors say what failed, their cause why (`error retrieving identity token`: a 401, say). */
export function signingFailure(err: unknown): Error {
  const messages: string[] = [];
  for (let e: unknown = err; e !== undefined && messages.length < 4; e = (e as { cause?: unknown }).cause) {
    const text = e instanceof Error ? e.message : String(e);
    if (text && !messages.some((m) => m.includes(text))) messages.push(text);
    if (!(e instanceof Error)) break;
  }
  return new ToolError(`signing failed: ${messages.join(': ')}`);
}

const wrap = (sign: (s: Buffer) => Promise<string>) => async (s: Buffer): Promise<string> => {
  try {
    return await sign(s);
  } catch (err) {
    throw signingFailure(err);
  }
};

/** Ready to sign; a key file is checked now, before anything is pushed. */
export async function createSigner(inputs: SigningInputs): Promise<BundleSigner> {
  // Loaded only when signing: imported statically they added 70 ms and 30 MB to every CLI run
  // (`--version`, Node 20); lazily, about 10 ms.
  const { DSSEBundleBuilder, FulcioSigner, RekorWitness, TSAWitness } = await import('@sigstore/sign');
  const { bundleToJSON } = await import('@sigstore/bundle');
  if (inputs.keyFile) {
    const key = await loadSigningKey(inputs.keyFile, inputs.keyPassword);
    const publicKey = createPublicKey(key);
    const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
    const hint = keyHint(publicKey);
    const signer = {
      // ECDSA over SHA-256, DER-encoded as sigstore expects; `data` is the DSSE PAE.
      sign: async (data: Buffer) => ({ signature: cryptoSign('sha256', data, key), key: { $case: 'publicKey' as const, publicKey: pem, hint } }),
    };
    const builder = new DSSEBundleBuilder({ signer, witnesses: [] });
    return { kind: 'key', sign: wrap(async (s) => JSON.stringify(bundleToJSON(await builder.create({ data: s, type: INTOTO_PAYLOAD_TYPE })))) };
  }
  if (!inputs.identityToken) throw new Error('createSigner: neither a key file nor an identity token');
  const getToken = inputs.identityToken;
  const tsaURL = inputs.tsaURL ?? PUBLIC_GOOD.tsaURL;
  const builder = new DSSEBundleBuilder({
    signer: new FulcioSigner({ fulcioBaseURL: inputs.fulcioURL || PUBLIC_GOOD.fulcioURL, identityProvider: { getToken } }),
    witnesses: [
      // An `intoto` entry: Rekor v1 and cosign accept it as they do `dsse`, and a private or test
      // Rekor (@sigstore/mock) records it verifiably as proposed.
      new RekorWitness({ rekorBaseURL: inputs.rekorURL || PUBLIC_GOOD.rekorURL, entryType: 'intoto', fetchOnConflict: true }),
      ...(tsaURL ? [new TSAWitness({ tsaBaseURL: tsaURL })] : []),
    ],
  });
  return { kind: 'keyless', sign: wrap(async (s) => JSON.stringify(bundleToJSON(await builder.create({ data: s, type: INTOTO_PAYLOAD_TYPE })))) };
}

/** Whether a subject's referrers already hold a signature bundle (skip-unchanged re-signs nothing). */
export function hasSignature(entries: { artifactType?: string; annotations?: Record<string, string> }[]): boolean {
  return entries.some((e) => e.artifactType === BUNDLE_MEDIA_TYPE && e.annotations?.[ANNOTATION_PREDICATE] === SIGN_PREDICATE);
}

/** A bundle as a referrer attachment, annotated as cosign annotates it. */
export function bundleAttachment(bundle: string, predicateType: string): { bytes: string; title: string; mediaType: string; annotations: Record<string, string> } {
  return {
    bytes: bundle,
    title: bundleTitle(bundle),
    mediaType: BUNDLE_MEDIA_TYPE,
    annotations: { [ANNOTATION_CONTENT]: 'dsse-envelope', [ANNOTATION_PREDICATE]: predicateType },
  };
}

/**
 * The signature of a manifest, and an attestation per SBOM (given as its media type and bytes)
 * whose predicate is the SBOM document.
 */
export async function signingAttachments(
  signer: BundleSigner,
  subjectDigest: string,
  sboms: { mediaType: string; bytes: Buffer | string }[] = [],
): Promise<ReturnType<typeof bundleAttachment>[]> {
  const out = [bundleAttachment(await signer.sign(statement(subjectDigest, SIGN_PREDICATE)), SIGN_PREDICATE)];
  for (const sbom of sboms) {
    const predicateType = SBOM_PREDICATES[sbom.mediaType];
    if (!predicateType) continue;
    const predicate = JSON.parse(sbom.bytes.toString()) as unknown;
    out.push(bundleAttachment(await signer.sign(statement(subjectDigest, predicateType, predicate)), predicateType));
  }
  return out;
}

/** How a referrer is named in the log. */
export function describeReferrer(r: { artifactType: string; predicateType?: string }): string {
  if (r.predicateType === SIGN_PREDICATE) return 'signature';
  if (r.predicateType) return `attestation ${r.predicateType}`;
  return `${r.artifactType} SBOM`;
}
