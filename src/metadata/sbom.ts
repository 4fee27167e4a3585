// SBOMs of one architecture, SPDX 2.3 and CycloneDX 1.6 JSON, from the same inputs as metadata.json
// plus what the RPM headers say (license, vendor). Pure and deterministic: equal inputs give equal
// bytes; identifiers derive from the state checksum, the time from SOURCE_DATE_EPOCH.
import { createHash } from 'node:crypto';
import { buildMetadata, type Metadata, type MetadataInput, type MetadataPackage } from './metadata.js';
import { UsageError } from '../errors.js';
import { byString } from './state.js';

export type SbomFormat = 'spdx' | 'cyclonedx';
export const SBOM_CHOICES = ['spdx', 'cyclonedx', 'both', 'none'] as const;
export type SbomChoice = (typeof SBOM_CHOICES)[number];

export const SBOM_FILES: Record<SbomFormat, string> = { spdx: 'sbom.spdx.json', cyclonedx: 'sbom.cdx.json' };
export const SBOM_MEDIA_TYPES: Record<SbomFormat, string> = { spdx: 'application/spdx+json', cyclonedx: 'application/vnd.cyclonedx+json' };

/** The `sbom` input or `--sbom` value; default spdx. */
export function sbomChoice(value: string | undefined, what: string): SbomChoice {
  const v = value || 'spdx';
  if (!(SBOM_CHOICES as readonly string[]).includes(v)) throw new UsageError(`${what} must be spdx, cyclonedx, both or none, got "${v}"`);
  return v as SbomChoice;
}

export function sbomFormats(choice: SbomChoice): SbomFormat[] {
  return choice === 'both' ? ['spdx', 'cyclonedx'] : choice === 'none' ? [] : [choice];
}

/** What an RPM header says beyond its NEVRA; null where the tag is absent. */
export interface RpmHeader {
  license: string | null;
  vendor: string | null;
}

export interface SbomInput extends MetadataInput {
  /** nevra → header fields of the fetched file. */
  headers: Record<string, RpmHeader>;
  /** Seconds since the epoch (SOURCE_DATE_EPOCH); 0 when unset, so that output is reproducible. */
  sourceDateEpoch: number;
}

export interface SbomFile {
  format: SbomFormat;
  filename: string;
  mediaType: string;
  content: string;
}

export function buildSboms(input: SbomInput, formats: SbomFormat[]): SbomFile[] {
  const m = buildMetadata(input);
  return formats.map((format) => ({
    format,
    filename: SBOM_FILES[format],
    mediaType: SBOM_MEDIA_TYPES[format],
    content: `${JSON.stringify(format === 'spdx' ? buildSpdx(m, input) : buildCycloneDx(m, input), null, 2)}\n`,
  }));
}

/** SOURCE_DATE_EPOCH as seconds; 0 when unset or not a non-negative integer. */
export function sourceDateEpoch(value: string | undefined): number {
  return value !== undefined && /^\d+$/.test(value.trim()) ? Number(value.trim()) : 0;
}

const isoSeconds = (epoch: number) => new Date(epoch * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** A name-based UUID (RFC 4122 layout, version 5 bits) from the given parts. */
export function derivedUuid(...parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\0')).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

// purl-spec: namespace is the vendor (lowercased); Red Hat's own SBOMs use "redhat" for RHEL.
const PURL_VENDORS: Record<string, string> = { rhel: 'redhat' };

export function purlVendor(osId: string): string {
  const id = osId.toLowerCase();
  return PURL_VENDORS[id] ?? id;
}

/** Percent-encodes all but the purl-spec's unreserved characters. */
const purlEncode = (s: string) =>
  Array.from(new TextEncoder().encode(s), (b) => {
    const c = String.fromCharCode(b);
    return /[A-Za-z0-9.\-_~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }).join('');

/**
 * `pkg:rpm/<vendor>/<name>@<version>-<release>?arch=…&distro=…&epoch=…`, qualifiers in the
 * canonical (sorted) order; epoch only when not 0, distro `<ID>-<VERSION_ID>`.
 */
export function rpmPurl(p: Pick<MetadataPackage, 'name' | 'epoch' | 'version' | 'release' | 'arch'>, os: Metadata['base']['osRelease']): string {
  const qualifiers: [string, string][] = [['arch', p.arch]];
  qualifiers.push(['distro', os.VERSION_ID ? `${os.ID}-${os.VERSION_ID}` : os.ID]);
  if (p.epoch) qualifiers.push(['epoch', String(p.epoch)]);
  const q = qualifiers.map(([k, v]) => `${k}=${purlEncode(v)}`).join('&');
  return `pkg:rpm/${purlEncode(purlVendor(os.ID))}/${purlEncode(p.name)}@${purlEncode(`${p.version}-${p.release}`)}?${q}`;
}

const evr = (p: MetadataPackage) => `${p.epoch ? `${p.epoch}:` : ''}${p.version}-${p.release}`;

/**
 * Whether `s` is syntactically an SPDX license expression (ids, AND/OR/WITH, parentheses).
 * Fedora's License tags are SPDX expressions since 2023; older ones ("GPLv2+ and BSD") are not.
 */
export function isSpdxExpression(s: string): boolean {
  const tokens = s.match(/\(|\)|[^\s()]+/g) ?? [];
  if (tokens.length === 0 || /[^\s()A-Za-z0-9.+:\-]/.test(s)) return false;
  let depth = 0;
  let wantOperand = true;
  for (const t of tokens) {
    if (t === '(') {
      if (!wantOperand) return false;
      depth++;
    } else if (t === ')') {
      if (wantOperand || --depth < 0) return false;
    } else if (t === 'AND' || t === 'OR' || t === 'WITH') {
      if (wantOperand) return false;
      wantOperand = true;
    } else {
      if (!wantOperand || !/^[A-Za-z0-9.\-]+\+?$|^(DocumentRef-[A-Za-z0-9.\-]+:)?LicenseRef-[A-Za-z0-9.\-]+$/.test(t)) return false;
      wantOperand = false;
    }
  }
  return depth === 0 && !wantOperand;
}

const spdxIdPart = (s: string) => s.replace(/[^A-Za-z0-9.\-]/g, '-');

/** An SPDX element id; a hash suffix keeps ids distinct when characters had to be replaced. */
function spdxRef(kind: string, name: string): string {
  const safe = spdxIdPart(name);
  const suffix = safe === name ? '' : `-${createHash('sha256').update(name).digest('hex').slice(0, 8)}`;
  return `SPDXRef-${kind}-${safe}${suffix}`;
}

function baseChecksum(b: Metadata['base']): string | undefined {
  const id = b.commit ?? b.digest?.replace(/^sha256:/, '');
  return id && /^[0-9a-f]{64}$/.test(id) ? id : undefined;
}

function baseDescription(b: Metadata['base']): string {
  const ids = [b.commit && `commit ${b.commit}`, b.digest && `digest ${b.digest}`, b.ostreeCommit && `ostree commit ${b.ostreeCommit}`].filter(Boolean);
  return `the ${b.source} base ${b.ref}${ids.length ? ` (${ids.join(', ')})` : ''}; ${b.packageCount} packages installed`;
}

const generatorName = (m: Metadata) => `${m.generator.name}-${m.generator.version}`;

export function buildSpdx(m: Metadata, input: Pick<SbomInput, 'headers' | 'sourceDateEpoch'>): Record<string, unknown> {
  const created = isoSeconds(input.sourceDateEpoch);
  const tool = `Tool: ${generatorName(m)}`;
  const extracted = new Map<string, string>();
  const licenseOf = (raw: string | null | undefined): string => {
    if (!raw) return 'NOASSERTION';
    if (isSpdxExpression(raw)) return raw;
    const ref = `LicenseRef-${spdxIdPart(raw)}-${createHash('sha256').update(raw).digest('hex').slice(0, 8)}`;
    extracted.set(ref, raw);
    return ref;
  };
  const baseRef = 'SPDXRef-Base';
  const baseSum = baseChecksum(m.base);
  const basePackage = {
    name: m.base.ref,
    SPDXID: baseRef,
    ...(m.base.version && { versionInfo: m.base.version }),
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    ...(baseSum && { checksums: [{ algorithm: 'SHA256', checksumValue: baseSum }] }),
    primaryPackagePurpose: 'OPERATING_SYSTEM',
    description: baseDescription(m.base),
  };
  // The distribution the RPMs are built for (os-release ID and VERSION_ID, as in their purls), apart
  // from the base, an instance of it: scanners such as Trivy take the packages an operating
  // system CONTAINS as that distribution's packages, which is what selects the advisories.
  const osRef = 'SPDXRef-OperatingSystem';
  const osPackage = {
    name: m.base.osRelease.ID,
    SPDXID: osRef,
    ...(m.base.osRelease.VERSION_ID && { versionInfo: m.base.osRelease.VERSION_ID }),
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    primaryPackagePurpose: 'OPERATING_SYSTEM',
    description: `the distribution the packages are built for (os-release ID ${m.base.osRelease.ID}${m.base.osRelease.VERSION_ID ? `, VERSION_ID ${m.base.osRelease.VERSION_ID}` : ''})`,
  };
  const extensionRefs = Object.keys(m.extensions).map((name) => [name, spdxRef('Extension', name)] as const);
  const extensionPackages = extensionRefs.map(([name, ref]) => ({
    name,
    SPDXID: ref,
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    primaryPackagePurpose: 'APPLICATION',
    description: `${m.extensions[name]!.kind} extension "${name}" for ${m.arch}: ${m.extensions[name]!.requested.join(', ')}`,
  }));
  const rpmRefs = new Map(m.packages.map((p) => [p.nevra, spdxRef('RPM', p.nevra)]));
  const rpmPackages = m.packages.map((p) => {
    const h = input.headers[p.nevra];
    return {
      name: p.name,
      SPDXID: rpmRefs.get(p.nevra)!,
      versionInfo: evr(p),
      packageFileName: p.filename,
      supplier: h?.vendor ? `Organization: ${h.vendor}` : 'NOASSERTION',
      downloadLocation: p.url ?? 'NOASSERTION',
      filesAnalyzed: false,
      checksums: [{ algorithm: 'SHA256', checksumValue: p.sha256 }],
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: licenseOf(h?.license),
      copyrightText: 'NOASSERTION',
      sourceInfo: `from repo ${p.repo}`,
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: rpmPurl(p, m.base.osRelease) }],
      primaryPackagePurpose: 'LIBRARY',
    };
  });
  const relationships = [
    // A document describes at least one element: the base, when no extension applies (allow-empty).
    ...(extensionRefs.length > 0 ? extensionRefs.map(([, ref]) => ref) : [baseRef]).map((ref) => ({ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: ref })),
    { spdxElementId: baseRef, relationshipType: 'DESCENDANT_OF', relatedSpdxElement: osRef },
    ...m.packages.map((p) => ({ spdxElementId: osRef, relationshipType: 'CONTAINS', relatedSpdxElement: rpmRefs.get(p.nevra)! })),
    ...extensionRefs.flatMap(([name, ref]) => [
      ...m.extensions[name]!.packages.map((nevra) => ({ spdxElementId: ref, relationshipType: 'CONTAINS', relatedSpdxElement: rpmRefs.get(nevra)! })),
      { spdxElementId: ref, relationshipType: 'DEPENDS_ON', relatedSpdxElement: baseRef },
    ]),
  ];
  const hex = m.stateChecksum.replace(/^sha256:/, '');
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: `${m.generator.name} ${m.arch} ${m.stateChecksum}`,
    documentNamespace: `https://spdx.org/spdxdocs/${m.generator.name}-${m.arch}-${derivedUuid('spdx', m.arch, hex)}`,
    creationInfo: { created, creators: [tool], comment: `stateChecksum ${m.stateChecksum}` },
    packages: [basePackage, osPackage, ...extensionPackages, ...rpmPackages],
    relationships,
    ...(extracted.size > 0 && {
      hasExtractedLicensingInfos: [...extracted]
        .sort(([a], [b]) => byString(a, b))
        .map(([licenseId, text]) => ({ licenseId, extractedText: text, name: text, comment: 'the RPM License tag, not an SPDX expression' })),
    }),
    annotations: [
      { annotator: tool, annotationDate: created, annotationType: 'OTHER', comment: `stateChecksum=${m.stateChecksum}` },
      ...(m.inputFingerprint ? [{ annotator: tool, annotationDate: created, annotationType: 'OTHER', comment: `inputFingerprint=${m.inputFingerprint}` }] : []),
    ],
  };
}

export function buildCycloneDx(m: Metadata, input: Pick<SbomInput, 'headers' | 'sourceDateEpoch'>): Record<string, unknown> {
  const prop = (name: string, value: string) => ({ name: `compose-extensions:${name}`, value });
  const baseRef = 'base';
  const baseSum = baseChecksum(m.base);
  const base = {
    type: 'operating-system',
    'bom-ref': baseRef,
    name: m.base.ref,
    ...(m.base.version && { version: m.base.version }),
    description: baseDescription(m.base),
    ...(baseSum && { hashes: [{ alg: 'SHA-256', content: baseSum }] }),
    properties: [
      prop('base-source', m.base.source),
      ...(m.base.commit ? [prop('base-commit', m.base.commit)] : []),
      ...(m.base.digest ? [prop('base-digest', m.base.digest)] : []),
      ...(m.base.ostreeCommit ? [prop('base-ostree-commit', m.base.ostreeCommit)] : []),
    ],
  };
  const extRef = (name: string) => `extension:${name}`;
  const purls = new Map(m.packages.map((p) => [p.nevra, rpmPurl(p, m.base.osRelease)]));
  const extensions = Object.entries(m.extensions).map(([name, e]) => ({
    type: 'application',
    'bom-ref': extRef(name),
    name,
    description: `${e.kind} extension "${name}" for ${m.arch}: ${e.requested.join(', ')}`,
    properties: [prop('kind', e.kind)],
  }));
  const rpms = m.packages.map((p) => {
    const h = input.headers[p.nevra];
    return {
      type: 'library',
      'bom-ref': purls.get(p.nevra)!,
      ...(h?.vendor && { supplier: { name: h.vendor } }),
      name: p.name,
      version: evr(p),
      hashes: [{ alg: 'SHA-256', content: p.sha256 }],
      ...(h?.license && { licenses: isSpdxExpression(h.license) ? [{ expression: h.license }] : [{ license: { name: h.license } }] }),
      purl: purls.get(p.nevra)!,
      ...(p.url && { externalReferences: [{ type: 'distribution', url: p.url }] }),
      properties: [prop('filename', p.filename), prop('repo', p.repo)],
    };
  });
  const hex = m.stateChecksum.replace(/^sha256:/, '');
  return {
    $schema: 'http://cyclonedx.org/schema/bom-1.6.schema.json',
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    serialNumber: `urn:uuid:${derivedUuid('cyclonedx', m.arch, hex)}`,
    version: 1,
    metadata: {
      timestamp: isoSeconds(input.sourceDateEpoch),
      tools: { components: [{ type: 'application', name: m.generator.name, version: m.generator.version }] },
      component: { type: 'application', 'bom-ref': 'compose', name: `${m.generator.name} ${m.arch}`, version: m.stateChecksum },
      properties: [
        prop('arch', m.arch),
        prop('stateChecksum', m.stateChecksum),
        ...(m.inputFingerprint ? [prop('inputFingerprint', m.inputFingerprint)] : []),
      ],
    },
    components: [base, ...extensions, ...rpms],
    dependencies: [
      { ref: 'compose', dependsOn: Object.keys(m.extensions).map(extRef) },
      ...Object.entries(m.extensions).map(([name, e]) => ({ ref: extRef(name), dependsOn: [...e.packages.map((n) => purls.get(n)!), baseRef] })),
    ],
  };
}
