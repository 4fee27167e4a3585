import { crossArchMismatches, pinMismatches, type ArchExtensions } from './checks.js';

const ext = (packages: string[], extra: Partial<ArchExtensions['extensions'][string]> = {}) => ({
  kind: 'os-extension' as const, requested: [], packages, size: 0, ...extra,
});

test('the same extension at different versions on two architectures is reported', () => {
  const found = crossArchMismatches([
    { arch: 'x86_64', extensions: { usbguard: ext(['usbguard-1.1.3-1.x86_64', 'libqb-2.0-1.x86_64', 'x86-only-1-1.x86_64']) } },
    { arch: 'aarch64', extensions: { usbguard: ext(['usbguard-1.1.2-1.aarch64', 'libqb-2.0-1.aarch64']) } },
    { arch: 's390x', extensions: {} },
  ]);
  expect(found).toEqual([{ extension: 'usbguard', package: 'usbguard', versions: { x86_64: ['1.1.3-1'], aarch64: ['1.1.2-1'] } }]);
});

test('consistent architectures give nothing', () => {
  expect(crossArchMismatches([
    { arch: 'x86_64', extensions: { a: ext(['a-1-1.x86_64', 'doc-1-1.noarch']) } },
    { arch: 'aarch64', extensions: { a: ext(['a-1-1.aarch64', 'doc-1-1.noarch']) } },
  ])).toEqual([]);
});

test('a pinned package must have exactly the base EVR', () => {
  const arches: ArchExtensions[] = [
    { arch: 'x86_64', extensions: { kdev: ext(['kernel-devel-6.1-1.x86_64'], { requested: ['kernel-devel'], matchBaseEvr: 'kernel', pinnedEvr: '6.1-1' }) } },
    { arch: 'aarch64', extensions: { kdev: ext(['kernel-devel-6.2-1.aarch64'], { requested: ['kernel-devel'], matchBaseEvr: 'kernel', pinnedEvr: '6.1-1' }) } },
    { arch: 's390x', extensions: { kdev: ext([], { requested: ['kernel-devel'], matchBaseEvr: 'kernel', pinnedEvr: '6.1-1' }) } },
  ];
  expect(pinMismatches(arches)).toEqual([
    { arch: 'aarch64', extension: 'kdev', package: 'kernel-devel', expected: '6.1-1', found: ['6.2-1'] },
    { arch: 's390x', extension: 'kdev', package: 'kernel-devel', expected: '6.1-1', found: [] },
  ]);
});
