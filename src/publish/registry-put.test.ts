import { defaultAuthFiles, parseChallenge, registryEndpoint } from './registry-put.js';

test('registryEndpoint: the API host and the repository path, Docker Hub included', () => {
  expect(registryEndpoint({ name: 'ghcr.io/org/ext', registry: 'ghcr.io' })).toEqual({ host: 'ghcr.io', path: 'org/ext' });
  expect(registryEndpoint({ name: '127.0.0.1:5000/a/b/c', registry: '127.0.0.1:5000' })).toEqual({ host: '127.0.0.1:5000', path: 'a/b/c' });
  expect(registryEndpoint({ name: 'docker.io/org/ext', registry: 'docker.io' })).toEqual({ host: 'registry-1.docker.io', path: 'org/ext' });
  expect(registryEndpoint({ name: 'ext', registry: 'docker.io' })).toEqual({ host: 'registry-1.docker.io', path: 'library/ext' });
});

test('parseChallenge reads a Bearer or Basic WWW-Authenticate header', () => {
  expect(parseChallenge('Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:org/ext:pull"')).toEqual({
    scheme: 'bearer',
    params: { realm: 'https://ghcr.io/token', service: 'ghcr.io', scope: 'repository:org/ext:pull' },
  });
  expect(parseChallenge('Basic realm="test"')).toEqual({ scheme: 'basic', params: { realm: 'test' } });
  expect(parseChallenge('')).toEqual({ scheme: '', params: {} });
});

test('defaultAuthFiles: the places skopeo reads without --authfile, in its order', () => {
  expect(defaultAuthFiles({ HOME: '/h', REGISTRY_AUTH_FILE: '/a.json', XDG_RUNTIME_DIR: '/run/user/1' })).toEqual([
    '/a.json', '/run/user/1/containers/auth.json', '/h/.config/containers/auth.json', '/h/.docker/config.json',
  ]);
  expect(defaultAuthFiles({ HOME: '/h', XDG_CONFIG_HOME: '/c' })).toEqual(['/c/containers/auth.json', '/h/.docker/config.json']);
});
