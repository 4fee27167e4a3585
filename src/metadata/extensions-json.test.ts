import { buildExtensionsJson, serializeExtensionsJson } from './extensions-json.js';
import { fixture } from './fixtures.js';

describe('buildExtensionsJson', () => {
  it('writes the arch-filtered extensions.yaml with pinned specs, as rpm-ostree does', () => {
    expect(buildExtensionsJson(fixture().plan, { usbguard: ['x86_64', 'aarch64'] })).toEqual({
      extensions: {
        'kernel-devel': {
          packages: ['kernel-headers-6.14.0-63.fc42', 'kernel-devel-6.14.0-63.fc42'],
          'match-base-evr': 'kernel',
          kind: 'development',
        },
        usbguard: {
          packages: ['usbguard', 'usbguard-selinux'],
          architectures: ['x86_64', 'aarch64'],
          kind: 'os-extension',
        },
      },
      repos: ['fedora', 'updates', 'usbguard-copr'],
    });
  });

  it('leaves out repos when there are none, and unset optional fields', () => {
    const plan = fixture().plan;
    plan.extensions = plan.extensions.map((e) => ({ ...e, repos: [], matchBaseEvr: undefined }));
    const doc = buildExtensionsJson(plan);
    expect(doc).not.toHaveProperty('repos');
    expect(Object.keys(doc.extensions['kernel-devel']!)).toEqual(['packages', 'kind']);
  });

  it('serialises like serde_json::to_writer_pretty, extensions sorted by name, specs in file order', () => {
    const plan = fixture().plan;
    const text = serializeExtensionsJson(buildExtensionsJson(plan));
    expect(serializeExtensionsJson(buildExtensionsJson({ ...plan, extensions: [...plan.extensions].reverse() }))).toBe(text);
    expect(text).toBe(
      [
        '{',
        '  "extensions": {',
        '    "kernel-devel": {',
        '      "packages": [',
        '        "kernel-headers-6.14.0-63.fc42",',
        '        "kernel-devel-6.14.0-63.fc42"',
        '      ],',
        '      "match-base-evr": "kernel",',
        '      "kind": "development"',
        '    },',
        '    "usbguard": {',
        '      "packages": [',
        '        "usbguard",',
        '        "usbguard-selinux"',
        '      ],',
        '      "kind": "os-extension"',
        '    }',
        '  },',
        '  "repos": [',
        '    "fedora",',
        '    "updates",',
        '    "usbguard-copr"',
        '  ]',
        '}',
      ].join('\n'),
    );
  });
});
