import { UsageError } from '../errors.js';
import { attestationUrl, checkAttest } from './provenance.js';

const OIDC = { ACTIONS_ID_TOKEN_REQUEST_URL: 'https://pipelines.example/token?api-version=2.0', ACTIONS_ID_TOKEN_REQUEST_TOKEN: 't' };

test('checkAttest: a push, the OIDC token request variables and an API token are all needed', () => {
  expect(() => checkAttest(true, 'ghs_x', OIDC)).not.toThrow();
  expect(() => checkAttest(false, 'ghs_x', OIDC)).toThrow(new UsageError('attest: true attests the pushed images: it needs upload: oci (or both), or mode: merge'));
  const noToken = 'attest: true needs the job\'s OIDC token, which GitHub gives only with `permissions: id-token: write` (and `attestations: write` to store the attestation, `packages: write` to push): ACTIONS_ID_TOKEN_REQUEST_URL is not set';
  expect(() => checkAttest(true, 'ghs_x', {})).toThrow(new UsageError(noToken));
  expect(() => checkAttest(true, 'ghs_x', { ...OIDC, ACTIONS_ID_TOKEN_REQUEST_TOKEN: '' })).toThrow(new UsageError(noToken));
  expect(() => checkAttest(true, '', OIDC)).toThrow(new UsageError('attest: true needs github-token (default: the job\'s GITHUB_TOKEN) to store the attestation'));
});

test('attestationUrl: the repository\'s attestation page, on GitHub Enterprise too', () => {
  expect(attestationUrl('123', { GITHUB_REPOSITORY: 'org/repo' })).toBe('https://github.com/org/repo/attestations/123');
  expect(attestationUrl('7', { GITHUB_SERVER_URL: 'https://acme.ghe.com', GITHUB_REPOSITORY: 'org/repo' })).toBe('https://acme.ghe.com/org/repo/attestations/7');
});
