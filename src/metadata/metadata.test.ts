import { readFileSync } from 'node:fs';
import { fixture, hex, shuffled } from './fixtures.js';
import { buildMetadata, serializeMetadata, type Metadata } from './metadata.js';
import { checkSchema, type Schema } from './schema-check.js';

const schema = JSON.parse(readFileSync(new URL('../../schema/metadata.schema.json', import.meta.url), 'utf8')) as Schema;
const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

describe('buildMetadata', () => {
  const m = buildMetadata(fixture());

  it('records the base, the plan and the repos', () => {
    expect(m).toMatchObject({
      schemaVersion: 1,
      generator: { name: 'compose-extensions', version: '0.1.0' },
      arch: 'x86_64',
      stateChecksum: `sha256:${hex('state')}`,
      inputFingerprint: `sha256:${hex('input')}`,
      base: {
        source: 'ostree',
        ref: 'fedora/x86_64/coreos/stable',
        commit: hex('commit'),
        version: '42.20250401.3.0',
        osRelease: { ID: 'fedora', VERSION_ID: '42' },
        packageCount: 3,
      },
      releasever: '42',
      weakDeps: false,
    });
    expect(m.base).not.toHaveProperty('digest');
    expect(m.repos.map((r) => r.id)).toEqual(['fedora', 'updates', 'usbguard-copr']);
    expect(m.repos[2]).toEqual({ id: 'usbguard-copr', url: 'https://example.org/copr/usbguard/', revision: null, repomdSha256: hex('copr') });
  });

  it('lists extensions by name with their own closures', () => {
    expect(Object.keys(m.extensions)).toEqual(['kernel-devel', 'usbguard']);
    expect(m.extensions['kernel-devel']).toEqual({
      kind: 'development',
      requested: ['kernel-devel', 'kernel-headers'],
      matchBaseEvr: 'kernel',
      specs: ['kernel-devel-6.14.0-63.fc42', 'kernel-headers-6.14.0-63.fc42'],
      repos: ['fedora', 'updates'],
      packages: ['kernel-devel-6.14.0-63.fc42.x86_64', 'kernel-headers-6.14.0-63.fc42.x86_64'],
    });
    expect(m.extensions.usbguard!.matchBaseEvr).toBeNull();
  });

  it('lists every package, development ones included, sorted by nevra, with its file', () => {
    expect(m.packages.map((p) => p.nevra)).toEqual([
      'kernel-devel-6.14.0-63.fc42.x86_64',
      'kernel-headers-6.14.0-63.fc42.x86_64',
      'protobuf-2:3.19.6-11.fc42.x86_64',
      'usbguard-1.1.3-2.fc42.x86_64',
      'usbguard-selinux-1.1.3-2.fc42.noarch',
    ]);
    expect(m.packages[2]).toEqual({
      name: 'protobuf',
      epoch: 2,
      version: '3.19.6',
      release: '11.fc42',
      arch: 'x86_64',
      nevra: 'protobuf-2:3.19.6-11.fc42.x86_64',
      filename: 'protobuf-2:3.19.6-11.fc42.x86_64.rpm',
      sha256: hex('file:protobuf-2:3.19.6-11.fc42.x86_64'),
      size: 1000 + 'protobuf-2:3.19.6-11.fc42.x86_64'.length,
      repo: 'fedora',
      extensions: ['usbguard'],
    });
  });

  it('fills os-release defaults and leaves out an absent fingerprint', () => {
    const f = fixture();
    f.base.osRelease = {};
    delete f.base.version;
    delete f.inputFingerprint;
    const r = buildMetadata(f);
    expect(r.base.osRelease).toEqual({ ID: 'linux', VERSION_ID: null });
    expect(r.base.version).toBeNull();
    expect(r).not.toHaveProperty('inputFingerprint');
    expect(checkSchema(schema, JSON.parse(serializeMetadata(r)))).toEqual([]);
  });

  it('records a digest for an image base and neither id for a rootfs', () => {
    const image = fixture();
    Object.assign(image.base, { source: 'image', ref: 'quay.io/fedora/fedora-coreos:stable', digest: `sha256:${hex('m')}` });
    expect(buildMetadata(image).base).toMatchObject({ source: 'image', digest: `sha256:${hex('m')}` });
    expect(buildMetadata(image).base).not.toHaveProperty('commit');
    const rootfs = fixture();
    Object.assign(rootfs.base, { source: 'rootfs', ref: '/srv/root' });
    const b = buildMetadata(rootfs).base;
    expect(b).not.toHaveProperty('commit');
    expect(b).not.toHaveProperty('digest');
  });

  it('records the index digest and the ostree.commit and version labels of an image base, in schema', () => {
    const image = fixture();
    Object.assign(image.base, {
      source: 'image',
      ref: 'quay.io/fedora/fedora-coreos:stable',
      digest: `sha256:${hex('m')}`,
      indexDigest: `sha256:${hex('i')}`,
      ostreeCommit: hex('c'),
      imageVersion: '42.20250901.3.0',
      commit: hex('not recorded'),
    });
    const m = buildMetadata(image);
    expect(Object.keys(m.base)).toEqual(['source', 'ref', 'digest', 'indexDigest', 'ostreeCommit', 'imageVersion', 'version', 'osRelease', 'packageCount']);
    expect(m.base).toMatchObject({ indexDigest: `sha256:${hex('i')}`, ostreeCommit: hex('c'), imageVersion: '42.20250901.3.0' });
    expect(checkSchema(schema, JSON.parse(serializeMetadata(m)))).toEqual([]);
    // Image fields are never recorded for another kind of base.
    const ostreeBase = fixture();
    Object.assign(ostreeBase.base, { indexDigest: `sha256:${hex('i')}`, ostreeCommit: hex('c'), imageVersion: '1' });
    const b = buildMetadata(ostreeBase).base;
    for (const key of ['indexDigest', 'ostreeCommit', 'imageVersion', 'digest']) expect(b).not.toHaveProperty(key);
    // The schema rejects a malformed label value.
    const bad = JSON.parse(serializeMetadata(m));
    bad.base.ostreeCommit = 'abc';
    expect(checkSchema(schema, bad)).toEqual([expect.stringMatching(/ostreeCommit/)]);
  });

  it('refuses a package without a file, or a file outside the arch directory', () => {
    const f = fixture();
    delete f.files['usbguard-1.1.3-2.fc42.x86_64'];
    expect(() => buildMetadata(f)).toThrow(/usbguard-1\.1\.3/);
    for (const filename of ['/etc/passwd', '../x.rpm', 'a/../../x.rpm', '', 'a//b.rpm']) {
      const g = fixture();
      g.files['usbguard-1.1.3-2.fc42.x86_64']!.filename = filename;
      expect(() => buildMetadata(g)).toThrow(/unsafe filename/);
    }
  });
});

describe('serializeMetadata', () => {
  const text = serializeMetadata(buildMetadata(fixture()));

  it('is 2-space JSON with a trailing newline and a fixed key order', () => {
    expect(text.endsWith('}\n')).toBe(true);
    expect(text).toContain('\n  "schemaVersion": 1,\n');
    expect(Object.keys(JSON.parse(text))).toEqual([
      'schemaVersion', 'generator', 'arch', 'stateChecksum', 'inputFingerprint', 'base',
      'releasever', 'weakDeps', 'repos', 'extensions', 'packages',
    ]);
  });

  it('is byte-identical whatever the order of the inputs', () => {
    expect(serializeMetadata(buildMetadata(shuffled(fixture())))).toBe(text);
  });

  it('is byte-identical for a document whose keys were reordered', () => {
    const reordered = Object.fromEntries(Object.entries(JSON.parse(text) as object).reverse()) as Metadata;
    reordered.base = Object.fromEntries(Object.entries(reordered.base).reverse()) as Metadata['base'];
    expect(serializeMetadata(reordered)).toBe(text);
  });
});

describe('schema/metadata.schema.json', () => {
  const doc = JSON.parse(serializeMetadata(buildMetadata(fixture()))) as Record<string, unknown>;

  it('is draft 2020-12 with an $id', () => {
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.$id).toMatch(/^https:\/\/.+\/metadata\.schema\.json$/);
  });

  it('describes every field', () => {
    const undescribed: string[] = [];
    const walk = (s: Schema, path: string) => {
      if (typeof s.description !== 'string' || !s.description) undescribed.push(path);
      for (const [k, sub] of Object.entries((s.properties ?? {}) as Record<string, Schema>)) walk(sub, `${path}.${k}`);
      if (s.items) walk(s.items as Schema, `${path}[]`);
      if (typeof s.additionalProperties === 'object') walk(s.additionalProperties as Schema, `${path}.*`);
    };
    walk(schema, '$');
    expect(undescribed).toEqual([]);
  });

  it('accepts what buildMetadata produces', () => {
    expect(checkSchema(schema, doc)).toEqual([]);
  });

  const mutations: [string, (d: any) => void, RegExp][] = [
    ['a missing top-level field', (d) => delete d.stateChecksum, /\$: missing stateChecksum/],
    ['a missing nested field', (d) => delete d.packages[1].sha256, /\$\.packages\[1\]: missing sha256/],
    ['an extra top-level field', (d) => (d.timestamp = '2025-01-01'), /unexpected property timestamp/],
    ['an extra field in an extension', (d) => (d.extensions.usbguard.note = 'x'), /\$\.extensions\.usbguard: unexpected property note/],
    ['a wrong type', (d) => (d.weakDeps = 'no'), /\$\.weakDeps: expected boolean, got string/],
    ['a non-integer epoch', (d) => (d.packages[0].epoch = 1.5), /epoch: expected integer/],
    ['a negative size', (d) => (d.packages[0].size = -1), /size: below 0/],
    ['a bad checksum', (d) => (d.stateChecksum = 'md5:abc'), /stateChecksum: .* does not match/],
    ['an unknown base source', (d) => (d.base.source = 'tarball'), /base\.source: "tarball" not in enum/],
    ['a wrong schemaVersion', (d) => (d.schemaVersion = 2), /schemaVersion: expected 1/],
    ['an escaping filename', (d) => (d.packages[0].filename = '../evil.rpm'), /filename: .* does not match/],
    ['a null where a string is required', (d) => (d.repos[0].url = null), /url: expected string, got null/],
  ];
  it.each(mutations)('rejects %s', (_, mutate, message) => {
    const bad = clone(doc);
    mutate(bad);
    const errors = checkSchema(schema, bad);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(message);
  });

  it('refuses a schema keyword the checker does not implement', () => {
    expect(() => checkSchema({ type: 'string', maxLength: 3 }, 'abcd')).toThrow(/unsupported keyword maxLength/);
  });
});
