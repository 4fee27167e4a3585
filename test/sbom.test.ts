// SBOMs of a real compose (rpmbuild, dnf, createrepo_c, ostree): valid against the official
// schemas, every RPM in the output present with its purl and the sha256 of the file on disk.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compose, type ComposeOptions } from '../src/engine.js';
import type { Metadata } from '../src/metadata/metadata.js';
import { run } from '../src/tools/exec.js';
import { composeOptions, FIXTURE_CONFIG } from './fixtures/compose.js';
import { fixtureWorkspace } from './fixtures/distro.js';
import { cyclonedxValidator, schemaErrors, spdxValidator } from './fixtures/sbom-schemas.js';

type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ws = fixtureWorkspace('ce-sbom-');

async function composeWith(output: string, sbom: ComposeOptions['sbom']): Promise<void> {
  await compose(await composeOptions(ws.distro, ws.dir, FIXTURE_CONFIG, { output, ...(sbom && { sbom }) }));
}

const sha256 = async (file: string) => createHash('sha256').update(await readFile(file)).digest('hex');

test('both SBOMs of every architecture: valid, every RPM with its purl, sha256, license and vendor', async () => {
  const output = join(ws.dir, 'both');
  await composeWith(output, 'both');
  for (const arch of ['x86_64', 'aarch64']) {
    const archDir = join(output, arch);
    const spdx = JSON.parse(await readFile(join(archDir, 'sbom.spdx.json'), 'utf8')) as Doc;
    const cdx = JSON.parse(await readFile(join(archDir, 'sbom.cdx.json'), 'utf8')) as Doc;
    expect(schemaErrors(spdxValidator(), spdx)).toEqual([]);
    expect(schemaErrors(cyclonedxValidator(), cdx)).toEqual([]);

    // What is on disk, read by rpm itself, independently of the compose.
    const files = (await readdir(archDir)).filter((f) => f.endsWith('.rpm')).sort();
    expect(files.length).toBeGreaterThan(3);
    const expected = await Promise.all(files.map(async (f) => {
      const { stdout } = await run('rpm', ['-qp', '--nosignature', '--qf', '%{NAME}|%{EPOCHNUM}|%{VERSION}|%{RELEASE}|%{ARCH}', join(archDir, f)]);
      const [name, epoch, version, release, rpmArch] = stdout.split('|') as [string, string, string, string, string];
      const purl = `pkg:rpm/fixture/${name}@${version}-${release}?arch=${rpmArch}&distro=fixture-40${epoch === '0' ? '' : `&epoch=${epoch}`}`;
      return { purl, sha256: await sha256(join(archDir, f)) };
    }));
    const spdxRpms = spdx.packages.filter((p: Doc) => p.externalRefs).map((p: Doc) => ({ purl: p.externalRefs[0].referenceLocator, sha256: p.checksums[0].checksumValue }));
    const cdxRpms = cdx.components.filter((c: Doc) => c.purl).map((c: Doc) => ({ purl: c.purl, sha256: c.hashes[0].content }));
    const byPurl = (a: { purl: string }, b: { purl: string }) => (a.purl < b.purl ? -1 : 1);
    expect([...spdxRpms].sort(byPurl)).toEqual([...expected].sort(byPurl));
    expect([...cdxRpms].sort(byPurl)).toEqual([...expected].sort(byPurl));
    expect(expected.map((e) => e.purl)).toContain(`pkg:rpm/fixture/needs-epochy@1.0-1?arch=${arch}&distro=fixture-40`);

    const usbguard = spdx.packages.find((p: Doc) => p.name === 'usbguard' && p.externalRefs);
    expect([usbguard.licenseDeclared, usbguard.supplier]).toEqual(['GPL-2.0-or-later', 'Organization: Fixture Vendor']);
    expect(spdx.packages.find((p: Doc) => p.name === 'libqb')).toMatchObject({ licenseDeclared: 'MIT', supplier: 'NOASSERTION' });
    const metadata = JSON.parse(await readFile(join(archDir, 'metadata.json'), 'utf8')) as Metadata;
    expect(spdx.packages.find((p: Doc) => p.SPDXID === 'SPDXRef-Base').checksums).toEqual([{ algorithm: 'SHA256', checksumValue: metadata.base.commit }]);
    expect(metadata.base.commit).toMatch(/^[0-9a-f]{64}$/);
    expect(spdx.creationInfo.comment).toBe(`stateChecksum ${metadata.stateChecksum}`);
    expect(cdx.components.find((c: Doc) => c.name === 'usbguard' && c.type === 'library')).toMatchObject({ supplier: { name: 'Fixture Vendor' }, licenses: [{ expression: 'GPL-2.0-or-later' }] });
  }
});

test('the default writes SPDX only, the same bytes as before; none writes no SBOM', async () => {
  const spdxOnly = join(ws.dir, 'spdx');
  await composeWith(spdxOnly, undefined);
  expect(existsSync(join(spdxOnly, 'x86_64', 'sbom.cdx.json'))).toBe(false);
  expect(await readFile(join(spdxOnly, 'x86_64', 'sbom.spdx.json'))).toEqual(await readFile(join(ws.dir, 'both', 'x86_64', 'sbom.spdx.json')));
  const none = join(ws.dir, 'none');
  await composeWith(none, 'none');
  expect((await readdir(join(none, 'x86_64'))).filter((f) => f.startsWith('sbom'))).toEqual([]);
});
