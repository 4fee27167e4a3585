import { diffArch, diffPackages, archDiffIsEmpty } from './diff.js';

test('added, removed, upgraded and downgraded, by name and arch', () => {
  const d = diffPackages(
    ['a-1.0-1.x86_64', 'b-2.0-1.x86_64', 'c-1:1.0-1.noarch', 'gone-1-1.x86_64', 'same-1-1.x86_64'],
    ['a-1.1-1.x86_64', 'b-1.9-5.x86_64', 'c-2.0-1.noarch', 'new-3-1.x86_64', 'same-1-1.x86_64'],
  );
  expect(d).toEqual({
    added: [{ name: 'new', arch: 'x86_64', to: '3-1' }],
    removed: [{ name: 'gone', arch: 'x86_64', from: '1-1' }],
    upgraded: [{ name: 'a', arch: 'x86_64', from: '1.0-1', to: '1.1-1' }],
    // 1:1.0 → 0:2.0 is a downgrade: the epoch wins.
    downgraded: [{ name: 'b', arch: 'x86_64', from: '2.0-1', to: '1.9-5' }, { name: 'c', arch: 'noarch', from: '1:1.0-1', to: '2.0-1' }],
  });
});

test('an extra installonly version is an addition, not an upgrade', () => {
  const d = diffPackages(['kernel-devel-6.1-1.x86_64'], ['kernel-devel-6.1-1.x86_64', 'kernel-devel-6.2-1.x86_64']);
  expect(d.upgraded).toEqual([{ name: 'kernel-devel', arch: 'x86_64', from: '6.1-1', to: '6.2-1' }]);
  expect(d.added).toEqual([{ name: 'kernel-devel', arch: 'x86_64', to: '6.1-1' }]);
});

test('per extension, with extensions added and removed; unchanged ones left out', () => {
  const d = diffArch(
    'aarch64',
    { extensions: { keep: { packages: ['k-1-1.aarch64'] }, old: { packages: ['o-1-1.aarch64'] }, up: { packages: ['u-1-1.aarch64'] } } },
    { extensions: { keep: { packages: ['k-1-1.aarch64'] }, fresh: { packages: ['f-1-1.aarch64'] }, up: { packages: ['u-2-1.aarch64'] } } },
  );
  expect(d.addedExtensions).toEqual(['fresh']);
  expect(d.removedExtensions).toEqual(['old']);
  expect(Object.keys(d.extensions)).toEqual(['fresh', 'old', 'up']);
  expect(d.extensions['up']!.upgraded).toEqual([{ name: 'u', arch: 'aarch64', from: '1-1', to: '2-1' }]);
  expect(archDiffIsEmpty(diffArch('x', { extensions: { a: { packages: ['a-1-1.x'] } } }, { extensions: { a: { packages: ['a-1-1.x'] } } }))).toBe(true);
});

test('in code-unit order, as metadata.json sorts, whatever the locale', () => {
  // A locale's collation (localeCompare) would put alpha before Zlib.
  const d = diffPackages([], ['alpha-1-1.x86_64', 'Zlib-1-1.x86_64']);
  expect(d.added.map((p) => p.name)).toEqual(['Zlib', 'alpha']);
});
