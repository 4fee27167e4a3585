// Signing with a key file: the statement cosign writes, keys made by openssl as the README says,
// every unusable key refused with its reason, and bundles that @sigstore/verify accepts for the
// public key only, and not once a byte changed.
import { execa } from 'execa';
import { createPublicKey } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleFromJSON } from '@sigstore/bundle';
import { verifyWithKey } from '../../test/fixtures/bundles.js';
import {
  ANNOTATION_CONTENT, ANNOTATION_PREDICATE, BUNDLE_MEDIA_TYPE, bundleAttachment, createSigner, describeReferrer, hasSignature, keyHint, loadSigningKey,
  SIGN_PREDICATE, sigstoreURL, statement,
} from './signing.js';

let dir: string;
let key: string;
let pub: string;
const PASSWORD = 'key-pa55word';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ce-signing-'));
  key = join(dir, 'key.pem');
  // README's recipe.
  await execa('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
  await chmod(key, 0o600);
  pub = join(dir, 'key.pub');
  await execa('openssl', ['pkey', '-in', key, '-pubout', '-out', pub]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const DIGEST = `sha256:${'ab'.repeat(32)}`;

test('statement: an in-toto v1 statement about the digest, as cosign sign writes it', () => {
  expect(statement(DIGEST, SIGN_PREDICATE).toString()).toBe(
    `{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"${'ab'.repeat(32)}"},"annotations":{}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{}}`,
  );
  expect(() => statement('sha512:00', SIGN_PREDICATE)).toThrow('not a sha256 digest: sha512:00');
});

test('a key-file bundle verifies with the public key; a changed byte or another key does not', async () => {
  const signer = await createSigner({ keyFile: key });
  expect(signer.kind).toBe('key');
  const json = await signer.sign(statement(DIGEST, SIGN_PREDICATE));
  const parsed = JSON.parse(json) as { mediaType: string; dsseEnvelope: { payload: string; payloadType: string } };
  expect(parsed.mediaType).toBe(BUNDLE_MEDIA_TYPE);
  expect(parsed.dsseEnvelope.payloadType).toBe('application/vnd.in-toto+json');
  expect(Buffer.from(parsed.dsseEnvelope.payload, 'base64').toString()).toBe(statement(DIGEST, SIGN_PREDICATE).toString());
  verifyWithKey(bundleFromJSON(parsed), await readFile(pub, 'utf8'));

  // One byte of the statement changed: the signature no longer holds.
  const tampered = structuredClone(parsed);
  const payload = Buffer.from(tampered.dsseEnvelope.payload, 'base64');
  payload[payload.length - 3] ^= 1;
  tampered.dsseEnvelope.payload = payload.toString('base64');
  const pubPem = await readFile(pub, 'utf8');
  expect(() => verifyWithKey(bundleFromJSON(tampered), pubPem)).toThrow('signature verification failed');

  const other = join(dir, 'other.pem');
  await execa('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', other]);
  const otherPub = (await execa('openssl', ['pkey', '-in', other, '-pubout'])).stdout;
  // The bundle names its key by hint; trust in another key has no key of that hint.
  expect(() => verifyWithKey(bundleFromJSON(parsed), otherPub)).toThrow(`key not found: ${keyHint(createPublicKey(pubPem))}`);
});

test('an encrypted key: refused without SIGN_KEY_PASSWORD or with a wrong one, used with the right one', async () => {
  const encrypted = join(dir, 'encrypted.pem');
  await execa('openssl', ['pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-in', key, '-out', encrypted, '-passout', 'env:SIGN_KEY_PASSWORD'], { env: { SIGN_KEY_PASSWORD: PASSWORD } });
  await chmod(encrypted, 0o600);
  await expect(loadSigningKey(encrypted)).rejects.toThrow(`sign-key: ${encrypted} is encrypted: set SIGN_KEY_PASSWORD to its password`);
  await expect(loadSigningKey(encrypted, 'wrong')).rejects.toThrow(`sign-key: ${encrypted} could not be decrypted: wrong SIGN_KEY_PASSWORD?`);
  const signer = await createSigner({ keyFile: encrypted, keyPassword: PASSWORD });
  verifyWithKey(bundleFromJSON(JSON.parse(await signer.sign(statement(DIGEST, SIGN_PREDICATE)))), await readFile(pub, 'utf8'));
});

test('unusable key files are refused with the reason', async () => {
  const open = join(dir, 'open.pem');
  await writeFile(open, await readFile(key), { mode: 0o644 });
  await chmod(open, 0o644);
  await expect(loadSigningKey(open)).rejects.toThrow(`sign-key: ${open} has mode 0644; a private key must be readable by its owner only (chmod 600 ${open})`);
  const rsa = join(dir, 'rsa.pem');
  await execa('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', rsa]);
  await chmod(rsa, 0o600);
  await expect(loadSigningKey(rsa)).rejects.toThrow(`sign-key: ${rsa} is a rsa key; an EC P-256 key is needed (what cosign verify --key expects)`);
  const p384 = join(dir, 'p384.pem');
  await execa('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-out', p384]);
  await chmod(p384, 0o600);
  await expect(loadSigningKey(p384)).rejects.toThrow(`sign-key: ${p384} is an EC secp384r1 key; an EC P-256 key is needed (what cosign verify --key expects)`);
  const junk = join(dir, 'junk.pem');
  await writeFile(junk, 'not a key\n', { mode: 0o600 });
  await expect(loadSigningKey(junk)).rejects.toThrow(`sign-key: ${junk} is not a PEM private key (PKCS#8, -----BEGIN PRIVATE KEY-----)`);
  await expect(loadSigningKey(join(dir, 'missing.pem'))).rejects.toThrow(`sign-key: ${join(dir, 'missing.pem')} is not a file`);
});

test('bundle attachments carry cosign\'s annotations; a signature is recognised among referrers', () => {
  const a = bundleAttachment('{"x":1}', SIGN_PREDICATE);
  expect(a).toEqual({
    bytes: '{"x":1}',
    title: `sha256-${'5041bf1f713df204784353e82f6a4a535931cb64f1f4b4a5aeaffcb720918b22'}.sigstore.json`,
    mediaType: BUNDLE_MEDIA_TYPE,
    annotations: { [ANNOTATION_CONTENT]: 'dsse-envelope', [ANNOTATION_PREDICATE]: SIGN_PREDICATE },
  });
  expect(hasSignature([{ artifactType: BUNDLE_MEDIA_TYPE, annotations: a.annotations }])).toBe(true);
  expect(hasSignature([{ artifactType: BUNDLE_MEDIA_TYPE, annotations: { [ANNOTATION_PREDICATE]: 'https://spdx.dev/Document' } }, { artifactType: 'application/spdx+json' }])).toBe(false);
  expect(describeReferrer({ artifactType: BUNDLE_MEDIA_TYPE, predicateType: SIGN_PREDICATE })).toBe('signature');
  expect(describeReferrer({ artifactType: BUNDLE_MEDIA_TYPE, predicateType: 'https://spdx.dev/Document' })).toBe('attestation https://spdx.dev/Document');
  expect(describeReferrer({ artifactType: 'application/spdx+json' })).toBe('application/spdx+json SBOM');
});

test('sigstoreURL: default, none for the TSA, an http(s) URL, else a usage error', () => {
  expect(sigstoreURL('sigstore-rekor-url', '')).toBeUndefined();
  expect(sigstoreURL('sigstore-tsa-url', 'none', true)).toBe('');
  expect(sigstoreURL('sigstore-rekor-url', 'https://rekor.example/')).toBe('https://rekor.example');
  expect(() => sigstoreURL('sigstore-rekor-url', 'none')).toThrow('sigstore-rekor-url: "none" is not an http(s) URL');
  expect(() => sigstoreURL('sigstore-tsa-url', 'ftp://x', true)).toThrow('sigstore-tsa-url: "ftp://x" is not an http(s) URL (or none)');
});
