// attest: true through the bundled action, with the real @actions/attest and Sigstore client: the
// job's OIDC token, Fulcio, Rekor or GitHub's timestamp authority and the attestations API are
// loopback services (fixtures/github-sigstore.ts) reached through an intercepting proxy, the image
// goes to a real registry. The bundle the API received is verified with @sigstore/verify against
// the services' trust material, and found again in the registry as a referrer of the image.
import { bundleFromJSON } from '@sigstore/bundle';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BASE_REF, buildFixtureDistro, type FixtureDistro } from './fixtures/distro.js';
import { ISSUER, READ_ONLY_TOKEN, startGitHubSigstore, type GitHubSigstore, type WorkflowClaims } from './fixtures/github-sigstore.js';
import { startRegistry, type TestRegistry } from './fixtures/registry.js';
import { runStep } from './fixtures/runner.js';

const CLAIMS: WorkflowClaims = {
  sub: 'repo:fixture-org/extensions:ref:refs/heads/main',
  repository: 'fixture-org/extensions',
  repository_owner: 'fixture-org',
  repository_id: '4242',
  repository_owner_id: '4141',
  repository_visibility: 'public',
  ref: 'refs/heads/main',
  sha: '0123456789abcdef0123456789abcdef01234567',
  workflow_ref: 'fixture-org/extensions/.github/workflows/publish.yml@refs/heads/main',
  job_workflow_ref: 'fixture-org/extensions/.github/workflows/publish.yml@refs/heads/main',
  event_name: 'push',
  runner_environment: 'github-hosted',
  run_id: '777',
  run_attempt: '2',
};
const GITHUB_TOKEN = 'ghs_fixture-token-not-in-any-log';
const PASSWORD = 'pa55-attest';
const BUNDLE_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const SLSA = 'https://slsa.dev/provenance/v1';

let distro: FixtureDistro;
let dir: string;
let registry: TestRegistry;
let github: GitHubSigstore;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ce-e2e-attest-'));
  [distro, registry, github] = await Promise.all([
    buildFixtureDistro(),
    startRegistry({ auth: { user: 'ci', password: PASSWORD } }),
    startGitHubSigstore(join(dir, 'github'), CLAIMS),
  ]);
  await writeFile(join(dir, 'extensions.yaml'), 'repos: [fedora]\nextensions:\n  usbguard:\n    packages: [usbguard]\n');
});
afterAll(async () => {
  await Promise.all([registry?.stop(), github?.stop(), distro?.cleanup()]);
});

const image = () => `${registry.host}/fixture/extensions`;
const registryInputs = () => ({ image: image(), tags: 'stable', 'registry-username': 'ci', 'registry-password': PASSWORD, 'tls-verify': 'false' });
const composeInputs = (arch: string) => ({
  config: join(dir, 'extensions.yaml'), 'ostree-repo': distro.ostreeRepo, 'base-rev': BASE_REF, architectures: arch,
  'repos-dir': distro.reposDir, 'cache-dir': join(dir, 'cache'), output: join(dir, `out-${arch}`),
});

/** The registry's API, as a client with the credentials reads it. */
async function registryGet(path: string, accept = '*/*'): Promise<Response> {
  const response = await fetch(`http://${registry.host}/v2/fixture/extensions/${path}`, {
    headers: { authorization: `Basic ${Buffer.from(`ci:${PASSWORD}`).toString('base64')}`, accept },
  });
  expect(response.status).toBe(200);
  return response;
}

interface Statement {
  _type: string;
  subject: { name: string; digest: { sha256: string } }[];
  predicateType: string;
  predicate: {
    buildDefinition: { buildType: string; externalParameters: { workflow: { ref: string; repository: string; path: string } }; resolvedDependencies: { uri: string; digest: { gitCommit: string } }[] };
    runDetails: { builder: { id: string }; metadata: { invocationId: string } };
  };
}

/** Verifies the bundle as `gh attestation verify` would (identity, issuer, log or timestamp) and returns its statement. */
function verify(json: unknown, witness: 'rekor' | 'tsa'): Statement {
  const bundle = bundleFromJSON(json);
  const verifier = new Verifier(toTrustMaterial(github.trustedRoot), {
    ctlogThreshold: 1, ...(witness === 'rekor' ? { tlogThreshold: 1, tsaThreshold: 0 } : { tlogThreshold: 0, tsaThreshold: 1 }),
  });
  const signer = verifier.verify(toSignedEntity(bundle), { subjectAlternativeName: CLAIMS.sub, extensions: { issuer: ISSUER } });
  expect(signer.identity?.subjectAlternativeName).toBe(CLAIMS.sub);
  expect(bundle.content.$case).toBe('dsseEnvelope');
  const envelope = (bundle.content as { dsseEnvelope: { payload: Buffer; payloadType: string } }).dsseEnvelope;
  expect(envelope.payloadType).toBe('application/vnd.in-toto+json');
  return JSON.parse(envelope.payload.toString('utf8')) as Statement;
}

function expectProvenance(statement: Statement, digest: string): void {
  expect(statement.predicateType).toBe(SLSA);
  expect(statement.subject).toEqual([{ name: image(), digest: { sha256: digest.replace('sha256:', '') } }]);
  const { buildDefinition, runDetails } = statement.predicate;
  expect(buildDefinition.externalParameters.workflow).toEqual({ ref: 'refs/heads/main', repository: 'https://github.com/fixture-org/extensions', path: '.github/workflows/publish.yml' });
  expect(buildDefinition.resolvedDependencies).toEqual([{ uri: 'git+https://github.com/fixture-org/extensions@refs/heads/main', digest: { gitCommit: CLAIMS.sha } }]);
  expect(runDetails.builder.id).toBe(`https://github.com/${CLAIMS.job_workflow_ref}`);
  expect(runDetails.metadata.invocationId).toBe('https://github.com/fixture-org/extensions/actions/runs/777/attempts/2');
}

/** The bundle as a referrer of `digest`: listed in the referrers tag index, and its layer is the stored bundle. */
async function expectReferrer(digest: string, stored: unknown, referrerDigest?: string): Promise<void> {
  const index = await (await registryGet(`manifests/${digest.replace(':', '-')}`, 'application/vnd.oci.image.index.v1+json')).json() as {
    manifests: { digest: string; artifactType: string; annotations: Record<string, string> }[];
  };
  const bundles = index.manifests.filter((m) => m.artifactType === BUNDLE_TYPE);
  expect(bundles).toHaveLength(1);
  expect(bundles[0]!.digest).toBe(referrerDigest);
  expect(bundles[0]!.annotations).toMatchObject({ 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': SLSA });
  const manifest = await (await registryGet(`manifests/${bundles[0]!.digest}`, 'application/vnd.oci.image.manifest.v1+json')).json() as {
    artifactType: string; subject: { digest: string }; layers: { digest: string; mediaType: string }[];
  };
  expect(manifest.artifactType).toBe(BUNDLE_TYPE);
  expect(manifest.subject.digest).toBe(digest);
  expect(manifest.layers.map((l) => l.mediaType)).toEqual([BUNDLE_TYPE]);
  expect(await (await registryGet(`blobs/${manifest.layers[0]!.digest}`)).json()).toEqual(stored);
}

test('a compose job in a public repository attests its image: Fulcio and Rekor, stored through the API, attached as a referrer, verified', async () => {
  const before = github.requests.length;
  const run = await runStep(dir, 'action.js', {
    ...composeInputs('x86_64'), upload: 'oci', ...registryInputs(), attest: 'true', 'github-token': GITHUB_TOKEN,
  }, await github.env('public'));
  expect(run.log).not.toContain('::error');
  expect(run.exitCode).toBe(0);
  expect(run.log).not.toContain(GITHUB_TOKEN);
  expect(run.masked).toContain(GITHUB_TOKEN);
  const digest = run.outputs['image-digest']!;
  expect(github.attestations).toHaveLength(1);
  const stored = github.attestations[0]!;
  expect(run.outputs['attestation-id']).toBe(String(stored.id));
  expect(run.outputs['attestation-url']).toBe(`https://github.com/fixture-org/extensions/attestations/${stored.id}`);
  expect(run.summary).toContain(`x86_64: provenance attestation [${stored.id}](https://github.com/fixture-org/extensions/attestations/${stored.id})`);
  expect(run.log).toContain(`x86_64: provenance attestation https://github.com/fixture-org/extensions/attestations/${stored.id} for ${image()}@${digest}`);
  expect([stored.owner, stored.repo, stored.authorization]).toEqual(['fixture-org', 'extensions', `token ${GITHUB_TOKEN}`]);

  expectProvenance(verify(stored.bundle, 'rekor'), digest);
  // Public repository: the public-good instance, as @actions/attest decides from the event.
  const served = github.requests.slice(before).filter((r) => r.method === 'POST' && !r.host.startsWith('127.0.0.1'));
  expect(served.map((r) => `${r.host}${r.path} ${r.status}`)).toEqual(['fulcio.sigstore.dev/api/v2/signingCert 201', 'rekor.sigstore.dev/api/v1/log/entries 201']);
  expect(github.refused).toEqual([]);

  const referrer = /attached application\/vnd\.dev\.sigstore\.bundle\.v0\.3\+json \S+@(sha256:[0-9a-f]{64})/.exec(run.log)?.[1];
  await expectReferrer(digest, stored.bundle, referrer);
  // The SBOM referrer pushed with the image is still listed beside it.
  const index = await (await registryGet(`manifests/${digest.replace(':', '-')}`, 'application/vnd.oci.image.index.v1+json')).json() as { manifests: { artifactType: string }[] };
  expect(index.manifests.map((m) => m.artifactType).sort()).toEqual(['application/spdx+json', BUNDLE_TYPE]);
});

test('an unchanged image is attested when it has no provenance yet, and then no more', async () => {
  const inputs = { ...composeInputs('aarch64'), upload: 'oci', ...registryInputs(), 'skip-unchanged': 'true', 'github-token': GITHUB_TOKEN };
  const env = await github.env('public');
  const plain = await runStep(dir, 'action.js', inputs, env);
  expect(plain.exitCode).toBe(0);
  expect(plain.outputs['attestation-id']).toBeUndefined();
  const digest = plain.outputs['image-digest']!;
  const before = github.attestations.length;

  // attest turned on later: nothing to push, but the image has no provenance.
  const late = await runStep(dir, 'action.js', { ...inputs, attest: 'true' }, env);
  expect(late.log).not.toContain('::error');
  expect(late.outputs['changed']).toBe('false');
  expect(late.outputs['image-digest']).toBe(digest);
  expect(github.attestations).toHaveLength(before + 1);
  const stored = github.attestations[before]!;
  expect(late.outputs['attestation-id']).toBe(String(stored.id));
  expectProvenance(verify(stored.bundle, 'rekor'), digest);
  await expectReferrer(digest, stored.bundle, /attached application\/vnd\.dev\.sigstore\.bundle\.v0\.3\+json \S+@(sha256:[0-9a-f]{64})/.exec(late.log)?.[1]);

  const again = await runStep(dir, 'action.js', { ...inputs, attest: 'true' }, env);
  expect(again.exitCode).toBe(0);
  expect(github.attestations).toHaveLength(before + 1);
  expect(again.outputs['attestation-id']).toBe('');
  expect(again.log).toContain(`aarch64: unchanged, its provenance attestation is attached already (${image()}@${digest})`);
});

test('a token without attestations: write: the step fails naming the permission', async () => {
  const run = await runStep(dir, 'action.js', {
    mode: 'merge', architectures: 'aarch64', ...registryInputs(), attest: 'true', 'github-token': READ_ONLY_TOKEN,
  }, await github.env('public'));
  expect(run.exitCode).toBe(1);
  // The index was pushed (its outputs are set) before the attestation failed.
  expect(run.log).toContain(
    `::error::provenance attestation of ${image()}@${run.outputs['image-digest']} failed: Failed to persist attestation: Resource not accessible by integration - https://docs.github.com/rest/repos/attestations#create-an-attestation (does the job have \`permissions: attestations: write\`?)`,
  );
});

test('the merge job in a private repository attests the index: GitHub\'s Fulcio and timestamp authority', async () => {
  const before = github.requests.length;
  const stored = github.attestations.length;
  const run = await runStep(dir, 'action.js', {
    mode: 'merge', architectures: 'x86_64', ...registryInputs(), attest: 'true', 'github-token': GITHUB_TOKEN,
  }, await github.env('private'));
  expect(run.log).not.toContain('::error');
  expect(run.exitCode).toBe(0);
  expect(github.attestations).toHaveLength(stored + 1);
  const attestation = github.attestations[stored]!;
  expect(run.outputs['attestation-id']).toBe(String(attestation.id));
  expect(run.summary).toContain(`Provenance attestation of the index: <a href="https://github.com/fixture-org/extensions/attestations/${attestation.id}">`);
  const index = run.outputs['image-digest']!;
  expectProvenance(verify(attestation.bundle, 'tsa'), index);
  const hosts = github.requests.slice(before).filter((r) => r.method === 'POST' && !r.host.startsWith('127.0.0.1')).map((r) => `${r.host}${r.path} ${r.status}`);
  expect(hosts).toEqual(['fulcio.githubapp.com/api/v2/signingCert 201', 'timestamp.githubapp.com/api/v1/timestamp 201']);
  const referrer = /attached application\/vnd\.dev\.sigstore\.bundle\.v0\.3\+json \S+@(sha256:[0-9a-f]{64})/.exec(run.log)?.[1];
  await expectReferrer(index, attestation.bundle, referrer);
});

test('without the id-token permission the job fails at once, naming the permissions', async () => {
  const env = await github.env('public');
  const run = await runStep(dir, 'action.js', {
    ...composeInputs('aarch64'), upload: 'oci', ...registryInputs(), attest: 'true', 'github-token': GITHUB_TOKEN,
  }, { ...env, ACTIONS_ID_TOKEN_REQUEST_URL: '', ACTIONS_ID_TOKEN_REQUEST_TOKEN: '' });
  expect(run.exitCode).toBe(1);
  expect(run.log).toContain(
    '::error::attest: true needs the job\'s OIDC token, which GitHub gives only with `permissions: id-token: write` (and `attestations: write` to store the attestation, `packages: write` to push): ACTIONS_ID_TOKEN_REQUEST_URL is not set',
  );
  // Before composing: nothing was resolved or written.
  expect(run.log).not.toContain('resolved');
  expect(run.outputs['state-checksum']).toBeUndefined();
});

test('attest without a push is a usage error', async () => {
  const run = await runStep(dir, 'action.js', { ...composeInputs('aarch64'), upload: 'artifact', attest: 'true', 'github-token': GITHUB_TOKEN }, await github.env('public'));
  expect(run.exitCode).toBe(1);
  expect(run.log).toContain('::error::attest: true attests the pushed images: it needs upload: oci (or both), or mode: merge');
  expect(run.outputs['state-checksum']).toBeUndefined();
});
