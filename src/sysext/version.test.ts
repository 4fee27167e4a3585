import { selectVersion } from './version.js';

const closure = [
  { name: 'usbguard', epoch: 0, version: '1.1.3', release: '1.fc41' },
  { name: 'libqb', epoch: 2, version: '2.0', release: '3' },
];

test('the first listed package, or version-package, names the version', () => {
  expect(selectVersion('u', undefined, ['usbguard', 'libqb'], closure)).toEqual({ evr: '1.1.3-1.fc41' });
  expect(selectVersion('u', 'libqb', ['usbguard'], closure)).toEqual({ evr: '2:2.0-3' });
});

test('a version package outside the closure is an error', () => {
  expect(selectVersion('u', 'kernel', ['usbguard'], closure)).toEqual({ error: 'version-package kernel is not among the packages this extension adds to the base' });
  expect(selectVersion('u', undefined, ['/usr/bin/x'], closure)).toEqual({
    error: 'the first package "/usr/bin/x" of u is not a package this extension adds to the base: set version-package: to the package whose version names the image',
  });
});
