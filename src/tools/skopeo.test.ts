import { UsageError } from '../errors.js';
import { classifyFailure, digestOf, isLoopback, parseImageName, repositoryRegistry, splitReference } from './skopeo.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseImageName', () => {
  test.each([
    ['quay.io/fedora/fedora-coreos:stable', { ref: 'docker://quay.io/fedora/fedora-coreos:stable', repository: 'quay.io/fedora/fedora-coreos', registry: 'quay.io' }],
    ['docker://quay.io/fedora/fedora-coreos:stable', { ref: 'docker://quay.io/fedora/fedora-coreos:stable', repository: 'quay.io/fedora/fedora-coreos', registry: 'quay.io' }],
    [`quay.io/openshift-release-dev/ocp-v4.0-art-dev@${D}`, { repository: 'quay.io/openshift-release-dev/ocp-v4.0-art-dev', digest: D }],
    [`registry.example.com:5000/a/b:tag@${D}`, { repository: 'registry.example.com:5000/a/b', registry: 'registry.example.com:5000', digest: D }],
    ['127.0.0.1:5000/fixture', { repository: '127.0.0.1:5000/fixture', registry: '127.0.0.1:5000' }],
    ['localhost/bootc/image:1', { repository: 'localhost/bootc/image', registry: 'localhost' }],
    ['fedora:41', { repository: 'fedora', registry: 'docker.io' }],
    ['library/fedora', { repository: 'library/fedora', registry: 'docker.io' }],
  ])('%s', (input, expected) => {
    expect(parseImageName(input)).toMatchObject({ transport: 'docker', ...expected });
  });

  test('oci: and oci-archive: are passed on as they are', () => {
    expect(parseImageName('oci:/srv/layout:stable')).toEqual({ transport: 'oci', ref: 'oci:/srv/layout:stable' });
    expect(parseImageName('oci-archive:/tmp/fcos.ociarchive')).toEqual({ transport: 'oci-archive', ref: 'oci-archive:/tmp/fcos.ociarchive' });
  });

  test.each([
    ['containers-storage:quay.io/x', /containers-storage: transport is not supported/],
    ['docker-archive:/tmp/x.tar', /docker-archive: transport is not supported/],
    ['oci:', /the path is missing/],
    ['Quay.io/x/Y', /not a valid image reference/],
    ['quay.io/x/y@sha256:12', /digest must be sha256/],
    ['quay.io/x/y@md5:abc', /digest must be sha256/],
  ])('%s is refused', (input, message) => {
    expect(() => parseImageName(input)).toThrow(message);
    expect(() => parseImageName(input)).toThrow(UsageError);
  });
});

test('loopback registries', () => {
  for (const host of ['127.0.0.1:5000', '127.1.2.3', 'localhost:5000', 'localhost', '[::1]:5000']) expect(isLoopback(host)).toBe(true);
  for (const host of ['quay.io', '10.0.0.1:5000', 'localhost.example.com', '127.0.0.1.nip.io', undefined]) expect(isLoopback(host)).toBe(false);
});

test('digests are of the exact bytes', () => {
  expect(digestOf('')).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  expect(digestOf('{}')).not.toBe(digestOf('{}\n'));
});

test('one reference grammar: repository names and their registries', () => {
  expect(splitReference(`quay.io:443/a/b:1@${D}`)).toEqual({ repository: 'quay.io:443/a/b', tag: '1', digest: D });
  expect(splitReference('localhost:5000/a')).toEqual({ repository: 'localhost:5000/a' });
  expect(repositoryRegistry('ghcr.io/org/extensions')).toBe('ghcr.io');
  expect(repositoryRegistry('[::1]:5000/ext')).toBe('[::1]:5000');
  expect(repositoryRegistry('org/extensions')).toBe('docker.io');
  for (const bad of ['', 'ghcr.io/Org/ext', 'ghcr.io/org//x', 'ghcr.io/org/ext/', 'bad_host.io:x/a']) expect(repositoryRegistry(bad)).toBeUndefined();
});

test('one classifier of skopeo failures: refused credentials before a missing image', () => {
  expect(classifyFailure('reading manifest latest in 127.0.0.1:5000/x: manifest unknown')).toBe('not-found');
  expect(classifyFailure('initializing source docker://q.io/x:1: reading manifest 1 in q.io/x: unauthorized: authentication required')).toBe('auth-refused');
  expect(classifyFailure('denied: requested access to the resource is denied (Not Found)')).toBe('auth-refused');
  expect(classifyFailure('unexpected status from HEAD request: 403 Forbidden')).toBe('auth-refused');
  expect(classifyFailure('open /srv/layout/index.json: permission denied')).toBeUndefined();
  expect(classifyFailure(`copying blob ${D}: connection refused`)).toBeUndefined();
});
