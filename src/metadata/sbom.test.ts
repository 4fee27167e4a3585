import { cyclonedxValidator, schemaErrors, spdxValidator } from '../../test/fixtures/sbom-schemas.js';
import { fixture, hex, shuffled, type Fixture } from './fixtures.js';
import { buildSboms, derivedUuid, isSpdxExpression, rpmPurl, sbomChoice, sbomFormats, sourceDateEpoch, type RpmHeader, type SbomInput } from './sbom.js';

type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const HEADERS: Record<string, RpmHeader> = {
  'usbguard-1.1.3-2.fc42.x86_64': { license: 'GPL-2.0-or-later', vendor: 'Fedora Project' },
  'usbguard-selinux-1.1.3-2.fc42.noarch': { license: 'GPLv2+ and BSD', vendor: null },
  'protobuf-2:3.19.6-11.fc42.x86_64': { license: 'BSD-3-Clause', vendor: 'Fedora Project' },
  'kernel-devel-6.14.0-63.fc42.x86_64': { license: '((GPL-2.0-only WITH Linux-syscall-note) OR BSD-2-Clause) AND MIT', vendor: 'Fedora Project' },
  'kernel-headers-6.14.0-63.fc42.x86_64': { license: null, vendor: 'Fedora Project' },
};

const input = (f: Fixture = fixture(), epoch = 0): SbomInput => ({ ...f, headers: HEADERS, sourceDateEpoch: epoch });
const docs = (i: SbomInput) => Object.fromEntries(buildSboms(i, ['spdx', 'cyclonedx']).map((s) => [s.format, JSON.parse(s.content) as Doc]));

describe('rpmPurl', () => {
  const os = { ID: 'fedora', VERSION_ID: '42' };
  it('follows the purl-spec rpm type: vendor namespace, sorted qualifiers, epoch only when set', () => {
    expect(rpmPurl({ name: 'usbguard', epoch: 0, version: '1.1.3', release: '2.fc42', arch: 'x86_64' }, os)).toBe('pkg:rpm/fedora/usbguard@1.1.3-2.fc42?arch=x86_64&distro=fedora-42');
    expect(rpmPurl({ name: 'protobuf', epoch: 2, version: '3.19.6', release: '11.fc42', arch: 'x86_64' }, os)).toBe('pkg:rpm/fedora/protobuf@3.19.6-11.fc42?arch=x86_64&distro=fedora-42&epoch=2');
  });
  it('percent-encodes what the spec reserves and names RHEL redhat', () => {
    expect(rpmPurl({ name: 'libstdc++', epoch: 0, version: '0^2024', release: '1.el9', arch: 'noarch' }, { ID: 'rhel', VERSION_ID: '9.4' })).toBe('pkg:rpm/redhat/libstdc%2B%2B@0%5E2024-1.el9?arch=noarch&distro=rhel-9.4');
    expect(rpmPurl({ name: 'a', epoch: 0, version: '1', release: '1', arch: 'x86_64' }, { ID: 'Linux', VERSION_ID: null })).toBe('pkg:rpm/linux/a@1-1?arch=x86_64&distro=Linux');
  });
});

test('isSpdxExpression tells SPDX expressions from old Fedora License tags', () => {
  for (const ok of ['MIT', 'GPL-2.0-or-later', 'GPL-2.0+', '(MIT OR Apache-2.0) AND BSD-3-Clause', 'GPL-2.0-only WITH Linux-syscall-note', 'LicenseRef-Fedora-Public-Domain']) expect([ok, isSpdxExpression(ok)]).toEqual([ok, true]);
  for (const bad of ['GPLv2+ and BSD', 'Public Domain', 'MIT OR', '(MIT', 'MIT)', 'AND MIT', '', 'MIT/X11']) expect([bad, isSpdxExpression(bad)]).toEqual([bad, false]);
});

test('sbomChoice and sbomFormats', () => {
  expect(sbomChoice(undefined, '--sbom')).toBe('spdx');
  expect(sbomChoice('both', '--sbom')).toBe('both');
  expect(() => sbomChoice('xml', '--sbom')).toThrow('--sbom must be spdx, cyclonedx, both or none, got "xml"');
  expect(sbomFormats('both')).toEqual(['spdx', 'cyclonedx']);
  expect(sbomFormats('none')).toEqual([]);
  expect(sourceDateEpoch(undefined)).toBe(0);
  expect(sourceDateEpoch('1700000000')).toBe(1700000000);
  expect(sourceDateEpoch('soon')).toBe(0);
});

describe('SPDX 2.3', () => {
  const { spdx } = docs(input());

  it('is valid against the official schema', () => {
    expect(schemaErrors(spdxValidator(), spdx)).toEqual([]);
  });

  it('has one package per RPM with purl, sha256, license, supplier, file and repo', () => {
    const rpms = spdx.packages.filter((p: Doc) => p.SPDXID.startsWith('SPDXRef-RPM-'));
    expect(rpms.map((p: Doc) => p.externalRefs[0].referenceLocator)).toEqual([
      'pkg:rpm/fedora/kernel-devel@6.14.0-63.fc42?arch=x86_64&distro=fedora-42',
      'pkg:rpm/fedora/kernel-headers@6.14.0-63.fc42?arch=x86_64&distro=fedora-42',
      'pkg:rpm/fedora/protobuf@3.19.6-11.fc42?arch=x86_64&distro=fedora-42&epoch=2',
      'pkg:rpm/fedora/usbguard@1.1.3-2.fc42?arch=x86_64&distro=fedora-42',
      'pkg:rpm/fedora/usbguard-selinux@1.1.3-2.fc42?arch=noarch&distro=fedora-42',
    ]);
    const protobuf = rpms.find((p: Doc) => p.name === 'protobuf');
    expect(protobuf).toEqual({
      name: 'protobuf',
      SPDXID: expect.stringMatching(/^SPDXRef-RPM-protobuf-2-3\.19\.6-11\.fc42\.x86-64-[0-9a-f]{8}$/),
      versionInfo: '2:3.19.6-11.fc42',
      packageFileName: 'protobuf-2:3.19.6-11.fc42.x86_64.rpm',
      supplier: 'Organization: Fedora Project',
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      checksums: [{ algorithm: 'SHA256', checksumValue: hex('file:protobuf-2:3.19.6-11.fc42.x86_64') }],
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: 'BSD-3-Clause',
      copyrightText: 'NOASSERTION',
      sourceInfo: 'from repo fedora',
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: 'pkg:rpm/fedora/protobuf@3.19.6-11.fc42?arch=x86_64&distro=fedora-42&epoch=2' }],
      primaryPackagePurpose: 'LIBRARY',
    });
  });

  it('keeps a License tag that is no SPDX expression as extracted licensing info', () => {
    const selinux = spdx.packages.find((p: Doc) => p.name === 'usbguard-selinux');
    expect(selinux.supplier).toBe('NOASSERTION');
    expect(selinux.licenseDeclared).toMatch(/^LicenseRef-GPLv2--and-BSD-[0-9a-f]{8}$/);
    expect(spdx.hasExtractedLicensingInfos).toEqual([{ licenseId: selinux.licenseDeclared, extractedText: 'GPLv2+ and BSD', name: 'GPLv2+ and BSD', comment: 'the RPM License tag, not an SPDX expression' }]);
    expect(spdx.packages.find((p: Doc) => p.name === 'kernel-headers').licenseDeclared).toBe('NOASSERTION');
  });

  it('describes each extension, containing its closure and depending on the base', () => {
    const base = spdx.packages.find((p: Doc) => p.SPDXID === 'SPDXRef-Base');
    expect(base).toEqual({
      name: 'fedora/x86_64/coreos/stable',
      SPDXID: 'SPDXRef-Base',
      versionInfo: '42.20250401.3.0',
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      checksums: [{ algorithm: 'SHA256', checksumValue: hex('commit') }],
      primaryPackagePurpose: 'OPERATING_SYSTEM',
      description: `the ostree base fedora/x86_64/coreos/stable (commit ${hex('commit')}); 3 packages installed`,
    });
    expect(spdx.packages.find((p: Doc) => p.SPDXID === 'SPDXRef-OperatingSystem')).toEqual({
      name: 'fedora',
      SPDXID: 'SPDXRef-OperatingSystem',
      versionInfo: '42',
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      primaryPackagePurpose: 'OPERATING_SYSTEM',
      description: 'the distribution the packages are built for (os-release ID fedora, VERSION_ID 42)',
    });
    const name = (id: string) => (id === 'SPDXRef-DOCUMENT' ? 'DOCUMENT' : id === 'SPDXRef-Base' ? 'BASE' : spdx.packages.find((p: Doc) => p.SPDXID === id).name);
    const rel = spdx.relationships.map((r: Doc) => `${name(r.spdxElementId)} ${r.relationshipType} ${name(r.relatedSpdxElement)}`);
    expect(rel).toEqual([
      'DOCUMENT DESCRIBES kernel-devel',
      'DOCUMENT DESCRIBES usbguard',
      'BASE DESCENDANT_OF fedora',
      'fedora CONTAINS kernel-devel',
      'fedora CONTAINS kernel-headers',
      'fedora CONTAINS protobuf',
      'fedora CONTAINS usbguard',
      'fedora CONTAINS usbguard-selinux',
      'kernel-devel CONTAINS kernel-devel',
      'kernel-devel CONTAINS kernel-headers',
      'kernel-devel DEPENDS_ON BASE',
      'usbguard CONTAINS protobuf',
      'usbguard CONTAINS usbguard',
      'usbguard CONTAINS usbguard-selinux',
      'usbguard DEPENDS_ON BASE',
    ]);
  });

  it('names the generator and the state checksum; the namespace derives from the state', () => {
    expect(spdx.creationInfo).toEqual({ created: '1970-01-01T00:00:00Z', creators: ['Tool: compose-extensions-0.1.0'], comment: `stateChecksum sha256:${hex('state')}` });
    expect(spdx.documentNamespace).toBe(`https://spdx.org/spdxdocs/compose-extensions-x86_64-${derivedUuid('spdx', 'x86_64', hex('state'))}`);
    expect(spdx.annotations.map((a: Doc) => a.comment)).toEqual([`stateChecksum=sha256:${hex('state')}`, `inputFingerprint=sha256:${hex('input')}`]);
  });
});

describe('CycloneDX 1.6', () => {
  const { cyclonedx } = docs(input());

  it('is valid against the official schema', () => {
    expect(schemaErrors(cyclonedxValidator(), cyclonedx)).toEqual([]);
  });

  it('the schema check fails on what the schema forbids', () => {
    const broken = JSON.parse(JSON.stringify(cyclonedx)) as Doc;
    broken.components[3].hashes[0].alg = 'SHA256';
    expect(schemaErrors(cyclonedxValidator(), broken)).toContainEqual(expect.stringContaining('/components/3/hashes/0/alg must be equal to one of the allowed values'));
    const spdxBroken = { ...docs(input()).spdx, dataLicense: undefined };
    expect(schemaErrors(spdxValidator(), spdxBroken)).toEqual([expect.stringContaining("must have required property 'dataLicense'")]);
  });

  it('has one component per RPM with purl, sha256, license, supplier and repo', () => {
    const rpms = cyclonedx.components.filter((c: Doc) => c.type === 'library');
    expect(rpms).toHaveLength(5);
    expect(rpms.find((c: Doc) => c.name === 'protobuf')).toEqual({
      type: 'library',
      'bom-ref': 'pkg:rpm/fedora/protobuf@3.19.6-11.fc42?arch=x86_64&distro=fedora-42&epoch=2',
      supplier: { name: 'Fedora Project' },
      name: 'protobuf',
      version: '2:3.19.6-11.fc42',
      hashes: [{ alg: 'SHA-256', content: hex('file:protobuf-2:3.19.6-11.fc42.x86_64') }],
      licenses: [{ expression: 'BSD-3-Clause' }],
      purl: 'pkg:rpm/fedora/protobuf@3.19.6-11.fc42?arch=x86_64&distro=fedora-42&epoch=2',
      properties: [
        { name: 'compose-extensions:filename', value: 'protobuf-2:3.19.6-11.fc42.x86_64.rpm' },
        { name: 'compose-extensions:repo', value: 'fedora' },
      ],
    });
    expect(rpms.find((c: Doc) => c.name === 'usbguard-selinux').licenses).toEqual([{ license: { name: 'GPLv2+ and BSD' } }]);
  });

  it('makes each extension depend on its closure and on the base', () => {
    expect(cyclonedx.dependencies).toEqual([
      { ref: 'compose', dependsOn: ['extension:kernel-devel', 'extension:usbguard'] },
      { ref: 'extension:kernel-devel', dependsOn: ['pkg:rpm/fedora/kernel-devel@6.14.0-63.fc42?arch=x86_64&distro=fedora-42', 'pkg:rpm/fedora/kernel-headers@6.14.0-63.fc42?arch=x86_64&distro=fedora-42', 'base'] },
      { ref: 'extension:usbguard', dependsOn: ['pkg:rpm/fedora/protobuf@3.19.6-11.fc42?arch=x86_64&distro=fedora-42&epoch=2', 'pkg:rpm/fedora/usbguard@1.1.3-2.fc42?arch=x86_64&distro=fedora-42', 'pkg:rpm/fedora/usbguard-selinux@1.1.3-2.fc42?arch=noarch&distro=fedora-42', 'base'] },
    ]);
    expect(cyclonedx.components[0]).toMatchObject({ type: 'operating-system', 'bom-ref': 'base', hashes: [{ alg: 'SHA-256', content: hex('commit') }] });
    expect(cyclonedx.serialNumber).toBe(`urn:uuid:${derivedUuid('cyclonedx', 'x86_64', hex('state'))}`);
    expect(cyclonedx.metadata.properties).toContainEqual({ name: 'compose-extensions:stateChecksum', value: `sha256:${hex('state')}` });
  });

  it('describes an image base by its digest', () => {
    const f = fixture();
    f.base = { ...f.base, source: 'image', ref: 'quay.io/fedora/fedora-coreos:stable', commit: undefined, digest: `sha256:${hex('digest')}` };
    const d = docs(input(f));
    expect(schemaErrors(cyclonedxValidator(), d.cyclonedx)).toEqual([]);
    expect(schemaErrors(spdxValidator(), d.spdx)).toEqual([]);
    expect(d.spdx.packages[0].checksums).toEqual([{ algorithm: 'SHA256', checksumValue: hex('digest') }]);
  });
});

test('an empty compose (allow-empty): valid documents that describe the base', () => {
  const f = fixture();
  f.plan.extensions = [];
  f.solve = { ...f.solve, packages: [], closures: {} };
  f.files = {};
  const d = docs(input(f));
  expect(schemaErrors(spdxValidator(), d.spdx)).toEqual([]);
  expect(schemaErrors(cyclonedxValidator(), d.cyclonedx)).toEqual([]);
  expect(d.spdx.relationships).toEqual([
    { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: 'SPDXRef-Base' },
    { spdxElementId: 'SPDXRef-Base', relationshipType: 'DESCENDANT_OF', relatedSpdxElement: 'SPDXRef-OperatingSystem' },
  ]);
  expect(d.cyclonedx.components.map((c: Doc) => c['bom-ref'])).toEqual(['base']);
});

test('same input, same bytes, whatever the order; SOURCE_DATE_EPOCH sets the time', () => {
  const a = buildSboms(input(), ['spdx', 'cyclonedx']);
  expect(buildSboms(input(shuffled(fixture())), ['spdx', 'cyclonedx'])).toEqual(a);
  const later = docs(input(fixture(), 1700000000));
  expect(later.spdx.creationInfo.created).toBe('2023-11-14T22:13:20Z');
  expect(later.cyclonedx.metadata.timestamp).toBe('2023-11-14T22:13:20Z');
  expect(a.map((s) => [s.filename, s.mediaType])).toEqual([['sbom.spdx.json', 'application/spdx+json'], ['sbom.cdx.json', 'application/vnd.cyclonedx+json']]);
});
