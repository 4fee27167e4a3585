import type { MetadataPackage } from '../metadata/metadata.js';
import { evra, extensionsMap } from './extensions-map.js';

const pkg = (name: string, epoch: number, version: string, release: string, arch: string): MetadataPackage => ({
  name, epoch, version, release, arch, nevra: '', filename: '', sha256: '', size: 0, repo: '', extensions: [],
});

test('evr.arch carries the epoch only when it is not zero, as coreos-assembler writes it', () => {
  expect(evra(pkg('qemu-img', 15, '6.2.0', '11.el8', 'x86_64'))).toBe('15:6.2.0-11.el8.x86_64');
  expect(evra(pkg('kernel-rt-core', 0, '4.18.0', '372.rt7.el8_6', 'x86_64'))).toBe('4.18.0-372.rt7.el8_6.x86_64');
});

test('the map has one entry per name, sorted, the highest EVR winning whatever the order', () => {
  const packages = [
    pkg('kernel-devel', 0, '6.14.0', '63.fc42', 'x86_64'),
    pkg('usbguard', 0, '1.1.3', '2.fc42', 'x86_64'),
    pkg('kernel-devel', 0, '6.14.2', '1.fc42', 'x86_64'),
    pkg('protobuf', 2, '3.19.6', '11.fc42', 'x86_64'),
  ];
  const expected = { 'kernel-devel': '6.14.2-1.fc42.x86_64', protobuf: '2:3.19.6-11.fc42.x86_64', usbguard: '1.1.3-2.fc42.x86_64' };
  expect(extensionsMap({ packages })).toEqual(expected);
  expect(JSON.stringify(extensionsMap({ packages: [...packages].reverse() }))).toBe(JSON.stringify(expected));
  // An epoch beats any version; equal EVRs: the architecture that sorts last, in either order.
  expect(extensionsMap({ packages: [pkg('a', 1, '1', '1', 'x86_64'), pkg('a', 0, '9', '9', 'x86_64')] })).toEqual({ a: '1:1-1.x86_64' });
  const tie = [pkg('b', 0, '1', '1', 'noarch'), pkg('b', 0, '1', '1', 'x86_64')];
  expect(extensionsMap({ packages: tie })).toEqual({ b: '1-1.x86_64' });
  expect(extensionsMap({ packages: [...tie].reverse() })).toEqual({ b: '1-1.x86_64' });
});
