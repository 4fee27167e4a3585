// Signing end to end against a real registry (docker-registry on 127.0.0.1, real skopeo) and a
// loopback sigstore (@sigstore/mock's Fulcio, Rekor and TSA): the CLI's publish and merge sign with
// a key file or keyless, and each signature and SBOM attestation is found again from the registry
// by the image's digest alone and verified with @sigstore/verify, as a consumer would.
import { execa } from 'execa';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compose } from '../src/engine.js';
import { main, type Io } from '../src/cli/main.js';
import { parseRepository } from '../src/publish/reference.js';
import { inspectManifest } from '../src/tools/skopeo.js';
import { findBundles, verifyKeyless, verifyWithKey } from './fixtures/bundles.js';
import { BASE_REF, buildFixtureDistro, type FixtureDistro } from './fixtures/distro.js';
import { startRegistry, type TestRegistry } from './fixtures/registry.js';
import { runStep } from './fixtures/runner.js';
import { startSigstore, type TestSigstore } from './fixtures/sigstore.js';

const ARCHES = ['x86_64', 'aarch64'];
const SIGN = 'https://sigstore.dev/cosign/sign/v1';
const SPDX = 'https://spdx.dev/Document';
const CDX = 'https://cyclonedx.org/bom';

let distro: FixtureDistro;
let registry: TestRegistry;
let sigstore: TestSigstore;
let dir: string;
let output: string;
let key: string;
let pub: string;
const savedEnv = { ...process.env };

beforeAll(async () => {
  [distro, registry, sigstore] = await Promise.all([buildFixtureDistro(), startRegistry(), startSigstore()]);
  dir = await mkdtemp(join(tmpdir(), 'ce-sign-'));
  const config = join(dir, 'extensions.yaml');
  await writeFile(config, 'repos: [fedora]\nextensions:\n  usbguard:\n    packages: [usbguard]\n');
  output = join(dir, 'out');
  await compose({
    config, base: { kind: 'ostree', repo: distro.ostreeRepo, ref: BASE_REF }, arches: ARCHES, reposDir: distro.reposDir,
    repoPairs: [], weakDeps: true, cacheDir: join(dir, 'cache'), previousState: [], output, sbom: 'both',
  });
  key = join(dir, 'cosign.key');
  pub = join(dir, 'cosign.pub');
  await execa('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
  await chmod(key, 0o600);
  await execa('openssl', ['pkey', '-in', key, '-pubout', '-out', pub]);
}, 600_000);

afterAll(async () => {
  process.env = savedEnv;
  await Promise.all([registry?.stop(), sigstore?.stop(), distro?.cleanup()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  out: string;
  err: string;
}

async function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => out.push(t), err: (t) => err.push(t) };
  const clean = Object.fromEntries(Object.entries(savedEnv).filter(([k]) => !k.startsWith('GITHUB_') && !k.startsWith('ACTIONS_') && k !== 'SIGN_KEY_PASSWORD'));
  process.env = { ...clean, SOURCE_DATE_EPOCH: '1700000000', ...env };
  try {
    const code = await main(args, io);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    process.env = savedEnv;
  }
}

interface Referrer {
  artifactType: string;
  digest: string;
  predicateType?: string;
}
interface PublishJson {
  images: { arch: string; digest: string; changed: boolean; referrers: Referrer[] }[];
}

const sbomJson = async (arch: string, file: string) => JSON.parse(await readFile(join(output, arch, file), 'utf8')) as unknown;

test('publish --sign-key: every image signed and its SBOMs attested, found by digest and verified with the public key', async () => {
  const name = `${registry.host}/key/extensions`;
  const run = await cli(['publish', '--output', output, '--image', name, '--tag', 'stable', '--sign-key', key, '--tls-verify', 'false', '--json']);
  expect(run.err).not.toContain('error');
  expect(run.code).toBe(0);
  const json = JSON.parse(run.out) as PublishJson;
  const image = parseRepository(name);
  const publicKey = await readFile(pub, 'utf8');
  for (const pushed of json.images) {
    expect(pushed.referrers.map((r) => [r.artifactType, r.predicateType])).toEqual([
      ['application/spdx+json', undefined], ['application/vnd.cyclonedx+json', undefined],
      ['application/vnd.dev.sigstore.bundle.v0.3+json', SIGN], ['application/vnd.dev.sigstore.bundle.v0.3+json', SPDX],
      ['application/vnd.dev.sigstore.bundle.v0.3+json', CDX],
    ]);
    const signature = pushed.referrers.find((r) => r.predicateType === SIGN)!;
    expect(run.err).toContain(`${pushed.arch}: attached signature ${name}@${signature.digest} (referrers tag ${pushed.digest.replace(':', '-')})`);

    // A consumer knows only the digest.
    const bundles = await findBundles(image, pushed.digest, { tlsVerify: false });
    expect(bundles.map((b) => b.statement.predicateType)).toEqual([SIGN, SPDX, CDX]);
    expect(bundles.map((b) => b.digest)).toEqual(pushed.referrers.slice(2).map((r) => r.digest));
    for (const b of bundles) {
      verifyWithKey(b.bundle, publicKey);
      expect(b.statement._type).toBe('https://in-toto.io/Statement/v1');
      expect(b.statement.subject).toEqual([{ digest: { sha256: pushed.digest.slice('sha256:'.length) }, annotations: {} }]);
      expect(b.manifest.subject.digest).toBe(pushed.digest);
      expect(b.manifest.annotations).toMatchObject({ 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': b.statement.predicateType });
      expect(b.entry.annotations).toMatchObject({ 'dev.sigstore.bundle.predicateType': b.statement.predicateType });
      expect(b.manifest.layers[0]!.annotations?.['org.opencontainers.image.title']).toMatch(/^sha256-[0-9a-f]{64}\.sigstore\.json$/);
      expect(b.bundle.verificationMaterial.content.$case).toBe('publicKey');
    }
    expect(bundles[0]!.statement.predicate).toEqual({});
    expect(bundles[1]!.statement.predicate).toEqual(await sbomJson(pushed.arch, 'sbom.spdx.json'));
    expect(bundles[2]!.statement.predicate).toEqual(await sbomJson(pushed.arch, 'sbom.cdx.json'));
  }
});

test('merge --sign-key signs the index; with --skip-unchanged a second merge and publish sign nothing again', async () => {
  const name = `${registry.host}/key/extensions`;
  const common = ['--image', name, '--tag', 'stable', '--sign-key', key, '--tls-verify', 'false', '--json'];
  const merge = await cli(['merge', '--arch', 'x86_64', '--arch', 'aarch64', ...common]);
  expect(merge.code).toBe(0);
  const index = (JSON.parse(merge.out) as { index: { digest: string; referrers: Referrer[] } }).index;
  expect(index.referrers.map((r) => r.predicateType)).toEqual([SIGN]);
  const image = parseRepository(name);
  const [signature] = await findBundles(image, index.digest, { tlsVerify: false });
  verifyWithKey(signature!.bundle, await readFile(pub, 'utf8'));
  expect(signature!.statement.subject[0]!.digest.sha256).toBe(index.digest.slice('sha256:'.length));
  expect(signature!.manifest.subject).toMatchObject({ mediaType: 'application/vnd.oci.image.index.v1+json', digest: index.digest });

  const tagIndex = async (digest: string) => (await inspectManifest(image, digest.replace(':', '-'), { tlsVerify: false }))!.digest;
  const before = await tagIndex(index.digest);
  const again = await cli(['merge', '--arch', 'x86_64', '--arch', 'aarch64', '--skip-unchanged', ...common]);
  expect(JSON.parse(again.out)).toMatchObject({ changed: false, index: { referrers: [] } });
  expect(await tagIndex(index.digest)).toBe(before);

  const publish = await cli(['publish', '--output', output, '--skip-unchanged', ...common]);
  expect(publish.code).toBe(0);
  expect((JSON.parse(publish.out) as PublishJson).images.map((i) => [i.changed, i.referrers])).toEqual([[false, []], [false, []]]);
});

test('an image pushed unsigned gets its signature (and attestations) from a later --skip-unchanged run, once', async () => {
  const name = `${registry.host}/late/extensions`;
  const base = ['publish', '--output', output, '--arch', 'x86_64', '--image', name, '--tag', 'stable', '--tls-verify', 'false', '--json'];
  const first = JSON.parse((await cli(base)).out) as PublishJson;
  expect(first.images[0]!.referrers.map((r) => r.artifactType)).toEqual(['application/spdx+json', 'application/vnd.cyclonedx+json']);
  const signed = JSON.parse((await cli([...base, '--skip-unchanged', '--sign-key', key])).out) as PublishJson;
  expect(signed.images[0]).toMatchObject({ changed: false, digest: first.images[0]!.digest });
  expect(signed.images[0]!.referrers.map((r) => r.predicateType)).toEqual([SIGN, SPDX, CDX]);
  // The SBOM referrers stay listed beside the bundles.
  const entries = (await inspectManifest(parseRepository(name), first.images[0]!.digest.replace(':', '-'), { tlsVerify: false }))!.json.manifests as Referrer[];
  expect(entries.map((e) => e.digest)).toEqual([...first.images[0]!.referrers, ...signed.images[0]!.referrers].map((r) => r.digest));
  const third = JSON.parse((await cli([...base, '--skip-unchanged', '--sign-key', key])).out) as PublishJson;
  expect(third.images[0]!.referrers).toEqual([]);
});

test('keyless from the CLI with --oidc-token-file: a Fulcio certificate for the token\'s subject, logged and timestamped', async () => {
  const token = join(dir, 'token');
  await writeFile(token, `${sigstore.token}\n`, { mode: 0o600 });
  const name = `${registry.host}/keyless/extensions`;
  const run = await cli([
    'publish', '--output', output, '--arch', 'aarch64', '--image', name, '--tag', 'stable', '--tls-verify', 'false', '--json',
    '--oidc-token-file', token, '--sigstore-fulcio-url', sigstore.fulcioURL, '--sigstore-rekor-url', sigstore.rekorURL, '--sigstore-tsa-url', sigstore.tsaURL,
  ]);
  expect(run.err).not.toContain('error');
  expect(run.code).toBe(0);
  const pushed = (JSON.parse(run.out) as PublishJson).images[0]!;
  const bundles = await findBundles(parseRepository(name), pushed.digest, { tlsVerify: false });
  expect(bundles.map((b) => b.statement.predicateType)).toEqual([SIGN, SPDX, CDX]);
  for (const b of bundles) {
    expect(verifyKeyless(b.bundle, sigstore.trustMaterial(), sigstore.claims.sub)).toBe(sigstore.claims.sub);
    expect(b.bundle.verificationMaterial.content.$case).toBe('certificate');
    expect(b.bundle.verificationMaterial.tlogEntries).toHaveLength(1);
    expect(b.bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps).toHaveLength(1);
  }
  expect(() => verifyKeyless(bundles[0]!.bundle, sigstore.trustMaterial(), 'repo:someone/else:ref:refs/heads/main')).toThrow(
    `certificate identity error - expected repo:someone/else:ref:refs/heads/main, got ${sigstore.claims.sub}`,
  );
});

test('keyless with a Fulcio that refuses: exit 1, the reason said', async () => {
  const token = join(dir, 'token-refused');
  await writeFile(token, sigstore.token, { mode: 0o600 });
  const run = await cli([
    'publish', '--output', output, '--arch', 'x86_64', '--image', `${registry.host}/refused-fulcio/extensions`, '--tls-verify', 'false',
    '--oidc-token-file', token, '--sigstore-fulcio-url', `${sigstore.url}/nowhere`, '--sigstore-rekor-url', sigstore.rekorURL, '--sigstore-tsa-url', 'none',
  ]);
  expect(run.code).toBe(1);
  expect(run.err.split('\n').at(-1)).toBe('error: signing failed: error creating signing certificate - (404) Not Found');
});

describe('bad signing usage: exit 2 before anything is pushed', () => {
  const name = () => `${registry.host}/refused/extensions`;
  const publish = (...args: string[]) => ['publish', '--output', output, '--image', name(), '--tls-verify', 'false', ...args];

  test('a key file others can read', async () => {
    const open = join(dir, 'open.key');
    await writeFile(open, await readFile(key), { mode: 0o644 });
    await chmod(open, 0o644);
    const run = await cli(publish('--sign-key', open));
    expect(run.code).toBe(2);
    expect(run.err.split('\n')[0]).toBe(`error: sign-key: ${open} has mode 0644; a private key must be readable by its owner only (chmod 600 ${open})`);
    expect(await inspectManifest(parseRepository(name()), 'latest-x86_64', { tlsVerify: false })).toBeUndefined();
  });

  test('an encrypted key without SIGN_KEY_PASSWORD; with it, signed (and the password in no output)', async () => {
    const password = 'enc-pa55word-xyz';
    const encrypted = join(dir, 'encrypted.key');
    await execa('openssl', ['pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-in', key, '-out', encrypted, '-passout', 'env:PW'], { env: { PW: password } });
    await chmod(encrypted, 0o600);
    const refused = await cli(publish('--sign-key', encrypted));
    expect(refused.code).toBe(2);
    expect(refused.err.split('\n')[0]).toBe(`error: sign-key: ${encrypted} is encrypted: set SIGN_KEY_PASSWORD to its password`);
    const ok = await cli(publish('--arch', 'x86_64', '--sign-key', encrypted, '--json'), { SIGN_KEY_PASSWORD: password });
    expect(ok.code).toBe(0);
    expect(ok.out + ok.err).not.toContain(password);
    const pushed = (JSON.parse(ok.out) as PublishJson).images[0]!;
    const [signature] = await findBundles(parseRepository(name()), pushed.digest, { tlsVerify: false });
    verifyWithKey(signature!.bundle, await readFile(pub, 'utf8'));
  });

  test.each([
    [['--sign-key', 'k', '--oidc-token-file', 't'], 'error: use --sign-key or --oidc-token-file, not both'],
    [['--sign-key', 'k', '--sigstore-rekor-url', 'https://rekor.example'], 'error: --sigstore-rekor-url is for keyless signing: give --oidc-token-file too'],
    [['--oidc-token-file', '/nonexistent/token'], 'error: --oidc-token-file: cannot read /nonexistent/token'],
    [['--oidc-token-file', 't', '--sigstore-fulcio-url', 'fulcio.example'], 'error: --sigstore-fulcio-url: "fulcio.example" is not an http(s) URL'],
  ])('%j', async (args, message) => {
    const run = await cli(publish(...args));
    expect(run.code).toBe(2);
    expect(run.err.split('\n')[0]).toBe(message);
  });
});

test('the action (dist/action.js) composing with upload: oci and sign: true: the image signed keyless and its SBOM attested', async () => {
  const name = `${registry.host}/action-compose/extensions`;
  const out = join(dir, 'action-out');
  const step = await runStep(dir, 'action.js', {
    config: join(dir, 'extensions.yaml'), 'ostree-repo': distro.ostreeRepo, 'base-rev': BASE_REF, architectures: 'x86_64',
    'repos-dir': distro.reposDir, 'cache-dir': join(dir, 'cache'), output: out, upload: 'oci', image: name, tags: 'stable', 'tls-verify': 'false',
    sign: 'true', 'sigstore-fulcio-url': sigstore.fulcioURL, 'sigstore-rekor-url': sigstore.rekorURL, 'sigstore-tsa-url': sigstore.tsaURL,
  }, sigstore.oidcEnv);
  expect(step.log).not.toContain('::error');
  expect(step.exitCode).toBe(0);
  const digest = step.outputs['image-digest']!;
  const bundles = await findBundles(parseRepository(name), digest, { tlsVerify: false });
  expect(bundles.map((b) => b.statement.predicateType)).toEqual([SIGN, SPDX]);
  expect(bundles[0]!.digest).toBe(step.outputs['signature-digest']);
  for (const b of bundles) expect(verifyKeyless(b.bundle, sigstore.trustMaterial(), sigstore.claims.sub)).toBe(sigstore.claims.sub);
  expect(bundles[1]!.statement.predicate).toEqual(JSON.parse(await readFile(join(out, 'x86_64', 'sbom.spdx.json'), 'utf8')));
  expect(step.log).toContain(`x86_64: attached attestation https://spdx.dev/Document ${name}@${bundles[1]!.digest}`);
  expect(step.summary).toContain(`x86_64: image \`${name}@${digest}\`, signature \`${bundles[0]!.digest}\``);
});

test('the action refuses signing without an image push, before composing', async () => {
  const step = await runStep(dir, 'action.js', {
    config: join(dir, 'extensions.yaml'), 'ostree-repo': distro.ostreeRepo, 'base-rev': BASE_REF, architectures: 'x86_64',
    'repos-dir': distro.reposDir, output: join(dir, 'unused-out'), upload: 'artifact', 'sign-key': key,
  });
  expect(step.exitCode).toBe(1);
  expect(step.log).toContain('::error::sign and sign-key sign pushed images: they need upload: oci or both');
  expect(step.summary).toBe('');
});

describe('the action (dist/action.js), mode: merge', () => {
  const inputs = () => ({
    mode: 'merge', architectures: 'x86_64, aarch64', image: `${registry.host}/key/extensions`, tags: 'stable', 'tls-verify': 'false',
  });

  test('sign: true signs the index keyless with the job\'s OIDC token (audience sigstore)', async () => {
    const asked = sigstore.audiences.length;
    const step = await runStep(dir, 'action.js', {
      ...inputs(), sign: 'true', 'sigstore-fulcio-url': sigstore.fulcioURL, 'sigstore-rekor-url': sigstore.rekorURL, 'sigstore-tsa-url': sigstore.tsaURL,
    }, sigstore.oidcEnv);
    expect(step.log).not.toContain('::error');
    expect(step.exitCode).toBe(0);
    expect(sigstore.audiences.slice(asked)).toEqual(['sigstore']);
    const digest = step.outputs['image-digest']!;
    const bundles = await findBundles(parseRepository(`${registry.host}/key/extensions`), digest, { tlsVerify: false });
    // The key-file signature of the merge test was replaced by this one (same kind).
    expect(bundles).toHaveLength(1);
    expect(bundles[0]!.digest).toBe(step.outputs['signature-digest']);
    expect(verifyKeyless(bundles[0]!.bundle, sigstore.trustMaterial(), sigstore.claims.sub)).toBe(sigstore.claims.sub);
    expect(step.log).toContain(`attached signature ${registry.host}/key/extensions@${step.outputs['signature-digest']}`);
    expect(step.summary).toContain(`, signature <code>${step.outputs['signature-digest']}</code>`);
  });

  test('sign: true without the OIDC token variables: the permission it needs, named', async () => {
    const step = await runStep(dir, 'action.js', { ...inputs(), sign: 'true' }, { ACTIONS_ID_TOKEN_REQUEST_URL: '', ACTIONS_ID_TOKEN_REQUEST_TOKEN: '' });
    expect(step.exitCode).toBe(1);
    expect(step.log).toContain("::error::sign: true needs the workflow's OIDC token: give the job `permissions: id-token: write` (or use sign-key)");
  });

  test('sign-key with a password: masked before anything runs', async () => {
    const password = 'masked-pa55-abc';
    const encrypted = join(dir, 'action.key');
    await execa('openssl', ['pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-in', key, '-out', encrypted, '-passout', 'env:PW'], { env: { PW: password } });
    await chmod(encrypted, 0o600);
    const step = await runStep(dir, 'action.js', { ...inputs(), 'sign-key': encrypted }, { SIGN_KEY_PASSWORD: password });
    expect(step.exitCode).toBe(0);
    expect(step.masked).toContain(password);
    expect(step.log).not.toContain(password);
    const [signature] = await findBundles(parseRepository(`${registry.host}/key/extensions`), step.outputs['image-digest']!, { tlsVerify: false });
    verifyWithKey(signature!.bundle, await readFile(pub, 'utf8'));
  });
});
