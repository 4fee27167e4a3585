import { UsageError } from '../errors.js';
import { dockerRef } from '../tools/skopeo.js';
import { archTag, checkTag, parseRepository, platformFor } from './reference.js';

test('repository names: the registry host is the credentials key; tags and digests belong elsewhere', () => {
  expect(parseRepository('ghcr.io/org/extensions')).toEqual({ name: 'ghcr.io/org/extensions', registry: 'ghcr.io' });
  expect(parseRepository('127.0.0.1:5000/ext')).toEqual({ name: '127.0.0.1:5000/ext', registry: '127.0.0.1:5000' });
  expect(parseRepository('localhost/a/b')).toMatchObject({ registry: 'localhost' });
  expect(parseRepository('org/extensions')).toMatchObject({ registry: 'docker.io' });
  for (const bad of ['ghcr.io/org/extensions:latest', 'ghcr.io/org/ext@sha256:abc', 'ghcr.io/Org/ext', '', 'ghcr.io/org//x', 'ghcr.io/org/ext/']) {
    expect(() => parseRepository(bad)).toThrow(UsageError);
  }
  expect(() => parseRepository('ghcr.io/org/ext:1')).toThrow(/has a tag/);
});

test('tags, arch tags and references', () => {
  expect(checkTag('41.20250101')).toBe('41.20250101');
  expect(() => checkTag('-x')).toThrow(UsageError);
  expect(() => checkTag('a'.repeat(129))).toThrow(UsageError);
  expect(archTag('latest', 'x86_64')).toBe('latest-x86_64');
  const image = parseRepository('ghcr.io/org/ext');
  expect(dockerRef(image, 'latest')).toBe('docker://ghcr.io/org/ext:latest');
  expect(dockerRef(image, 'sha256:abc')).toBe('docker://ghcr.io/org/ext@sha256:abc');
});

test('RPM basearches map to OCI platforms', () => {
  expect(platformFor('x86_64')).toEqual({ os: 'linux', architecture: 'amd64' });
  expect(platformFor('aarch64')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
  expect(platformFor('ppc64le')).toEqual({ os: 'linux', architecture: 'ppc64le' });
  expect(platformFor('s390x')).toEqual({ os: 'linux', architecture: 's390x' });
  expect(() => platformFor('i686')).toThrow(/no container platform/);
});
