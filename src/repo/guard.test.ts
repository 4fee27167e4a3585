import type { RepoDefinition } from '../inputs/repos.js';
import { basePath, overlapMessages, repoPaths } from './guard.js';

const repo = (baseurl: string): RepoDefinition => ({ id: 'r', origin: 'x.repo:1', options: { baseurl } });

describe('overlapMessages', () => {
  const inputs = [{ label: 'the cache directory', path: '/data/cache' }, { label: 'the file:// repo "r"', path: '/srv/repo/x86_64' }];
  test.each([
    ['/data/cache', ['the output directory /data/cache is the cache directory /data/cache']],
    ['/data', ['the output directory /data contains the cache directory /data/cache']],
    ['/data/cache/out', ['the output directory /data/cache/out is inside the cache directory /data/cache']],
    ['/srv', ['the output directory /srv contains the file:// repo "r" /srv/repo/x86_64']],
    ['/', ['the output directory / contains the cache directory /data/cache', 'the output directory / contains the file:// repo "r" /srv/repo/x86_64']],
  ])('%s', (output, expected) => {
    expect(overlapMessages(output, inputs)).toEqual(expected.map((m) => `${m}: choose an output directory outside every input and the cache`));
  });

  test.each(['/data/cache2', '/data/cach', '/srv/repo/x86', '/srv/repo/aarch64', '/out'])('%s is apart', (output) => {
    expect(overlapMessages(output, inputs)).toEqual([]);
  });
});

describe('repoPaths', () => {
  test('expands $basearch per architecture; several URLs; http ignored', () => {
    expect(repoPaths(repo('file:///srv/$basearch/os http://x/$basearch file:///mirror/${basearch}'), ['x86_64', 'aarch64'])).toEqual([
      '/srv/x86_64/os', '/srv/aarch64/os', '/mirror/x86_64', '/mirror/aarch64',
    ]);
  });

  test('$releasever when known, else the directory above it stands in', () => {
    expect(repoPaths(repo('file:///srv/$releasever/$basearch'), ['x86_64'], '41')).toEqual(['/srv/41/x86_64']);
    expect(repoPaths(repo('file:///srv/fedora-$releasever/$basearch'), ['x86_64'])).toEqual(['/srv']);
    expect(repoPaths(repo('file:///$releasever'), ['x86_64'])).toEqual(['/']);
  });

  test('a repo without a file:// baseurl has none', () => {
    expect(repoPaths({ id: 'm', origin: 'x', options: { mirrorlist: 'file:///x' } }, ['x86_64'])).toEqual([]);
  });
});

test('basePath: local bases only', () => {
  expect(basePath({ kind: 'ostree', repo: '/repo', ref: 'r' })).toEqual({ label: 'the base OSTree repository', path: '/repo' });
  expect(basePath({ kind: 'ostree', repo: 'https://x/repo', ref: 'r' })).toBeUndefined();
  expect(basePath({ kind: 'rootfs', path: '/root.tar' })).toEqual({ label: 'the base root filesystem', path: '/root.tar' });
  expect(basePath({ kind: 'rootfs', path: 'http://x/root.tar' })).toBeUndefined();
  expect(basePath({ kind: 'image', ref: 'oci:/images/fcos:stable' })).toEqual({ label: 'the base image', path: '/images/fcos' });
  expect(basePath({ kind: 'image', ref: 'oci-archive:/images/fcos.ociarchive' })).toEqual({ label: 'the base image', path: '/images/fcos.ociarchive' });
  expect(basePath({ kind: 'image', ref: 'quay.io/fedora/fedora-coreos:stable' })).toBeUndefined();
});
