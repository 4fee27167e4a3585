import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, formatProblem, type ConfigProblem } from '../errors.js';
import { KNOWN_ARCHITECTURES, parseExtensionsYaml, readExtensionsYaml, type ExtensionsConfig } from './extensions-yaml.js';

// Real files from fedora-coreos-config and openshift/os, their sources named in the README beside them.
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const REAL_WORLD = join(REPO_ROOT, 'test/fixtures/real-world/extensions-yaml');

/** YAML from an indented template literal: drops the first newline and the common indentation. */
function yaml(s: string): string {
  const lines = s.replace(/^\n/, '').split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => /^ */.exec(l)![0].length));
  return lines.map((l) => l.slice(indent)).join('\n');
}

function problemsOf(text: string, file = 'f.yaml'): ConfigProblem[] {
  try {
    parseExtensionsYaml(text, file);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

/** The single problem in `text`, as `line:col: path: message`. */
function problemOf(text: string): string {
  const problems = problemsOf(text);
  expect(problems.map(formatProblem)).toHaveLength(1);
  return formatProblem(problems[0]);
}

describe('real-world files', () => {
  const read = (name: string) => readExtensionsYaml(join(REAL_WORLD, name));
  const byName = (cfg: ExtensionsConfig) => new Map(cfg.extensions.map((e) => [e.name, e]));

  test('fedora-coreos-config', async () => {
    const cfg = await read('fedora-coreos-config-extensions.yaml');
    expect(cfg.repos).toEqual([]);
    expect(cfg.extensions.map((e) => e.name)).toEqual(['usbguard', 'kernel', 'sandboxed-containers']);
    const exts = byName(cfg);
    expect(exts.get('usbguard')).toEqual({
      name: 'usbguard', kind: 'os-extension', packages: ['usbguard'], architectures: undefined,
      matchBaseEvr: undefined, repos: [], line: 10, col: 3,
    });
    expect(exts.get('kernel')).toMatchObject({ kind: 'development', matchBaseEvr: 'kernel', line: 15 });
    expect(exts.get('sandboxed-containers')).toMatchObject({ architectures: ['x86_64'], packages: ['kata-containers'] });
  });

  test('openshift CentOS Stream 10', async () => {
    const cfg = await read('openshift-os-extensions-centos-10.yaml');
    expect(cfg.repos).toEqual(['c10s-sig-nfv', 'c10s-baseos-mirror', 'c10s-appstream-mirror', 'c10s-nfv-mirror', 'c10s-rt-mirror']);
    expect(cfg.extensions).toHaveLength(8);
    const exts = byName(cfg);
    expect(exts.has('sandboxed-containers')).toBe(false); // commented out in this file
    expect(exts.get('kernel-rt')).toMatchObject({ architectures: ['x86_64'], repos: ['c10s-nfv'], matchBaseEvr: 'kernel', line: 56 });
    expect(exts.get('ipsec')?.packages).toContain('openvswitch3.5-ipsec');
  });

  test('openshift CentOS Stream 9', async () => {
    const cfg = await read('openshift-os-extensions-centos-9.yaml');
    expect(cfg.extensions).toHaveLength(9);
    const exts = byName(cfg);
    expect(exts.get('sandboxed-containers')).toMatchObject({ architectures: ['x86_64'], repos: ['c9s-sig-virtualization'] });
    expect(exts.get('kernel-64k')).toMatchObject({ kind: 'os-extension', architectures: ['aarch64'], repos: [] });
  });

  test('openshift RHEL 10.2', async () => {
    const cfg = await read('openshift-os-extensions-rhel-10.2.yaml');
    expect(cfg.extensions).toHaveLength(10);
    // A RHEL 9.8 repo in the RHEL 10.2 list, on purpose (kata-containers not yet built for 10.2).
    expect(cfg.repos).toContain('rhel-9.8-server-ose-5.0');
    const exts = byName(cfg);
    expect(exts.get('sandboxed-containers')?.architectures).toEqual(['x86_64', 's390x']);
    expect(exts.get('two-node-ha')).toMatchObject({ packages: ['pacemaker', 'pcs', 'fence-agents-all'], line: 99, col: 3 });
  });

  test('openshift RHEL 9.8', async () => {
    const cfg = await read('openshift-os-extensions-rhel-9.8.yaml');
    expect(cfg.file).toBe(join(REAL_WORLD, 'openshift-os-extensions-rhel-9.8.yaml'));
    expect(cfg.repos).toHaveLength(4);
    expect(cfg.extensions.map((e) => e.name)).toEqual([
      'ipsec', 'usbguard', 'kerberos', 'kernel-devel', 'kernel', 'kernel-rt', 'sandboxed-containers', 'kernel-64k', 'sysstat', 'two-node-ha',
    ]);
    expect(cfg.extensions.filter((e) => e.kind === 'development').map((e) => e.name)).toEqual(['kernel']);
  });

  test('historical RHEL 8.6 is rejected for its `modules`', async () => {
    const err = await read('openshift-os-extensions-rhel-8.6-historical.yaml').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([
      expect.objectContaining({ line: 56, col: 5, path: 'extensions.sandboxed-containers.modules', message: expect.stringMatching(/removed modularity support/) }),
    ]);
  });
});

describe('valid input', () => {
  test('defaults, file order and key positions', () => {
    const cfg = parseExtensionsYaml(
      yaml(`
        extensions:
          zz:
            packages: [a]
          "42":
            packages: [b]
            kind: development
            repos:
              # null, like rpm-ostree: every entry commented out
      `),
      'f.yaml',
    );
    expect(cfg).toEqual({
      file: 'f.yaml',
      repos: [],
      extensions: [
        { name: 'zz', kind: 'os-extension', packages: ['a'], architectures: undefined, matchBaseEvr: undefined, repos: [], line: 2, col: 3 },
        { name: '42', kind: 'development', packages: ['b'], architectures: undefined, matchBaseEvr: undefined, repos: [], line: 4, col: 3 },
      ],
      locations: { 'extensions.zz.packages[0]': { line: 3, col: 16 }, 'extensions.42.packages[0]': { line: 5, col: 16 } },
    });
  });

  test('KNOWN_ARCHITECTURES', () => {
    expect(KNOWN_ARCHITECTURES).toEqual(['x86_64', 'aarch64', 'ppc64le', 's390x', 'riscv64']);
  });
});

describe('problems', () => {
  test('unknown architecture, in the documented format', () => {
    const text = yaml(`
      # Fedora extensions
      repos:
        - fedora
        - updates
      extensions:
        usbguard:
          packages:
            - usbguard
        kernel-rt:
          packages: [kernel-rt-core]
          architectures:
          - x86-64
    `);
    expect(problemsOf(text, 'fedora.yaml').map(formatProblem)).toEqual([
      'fedora.yaml:12:7: extensions.kernel-rt.architectures[0]: unknown architecture "x86-64"; known: x86_64, aarch64, ppc64le, s390x, riscv64',
    ]);
  });

  test('unknown key without a near miss lists the valid keys', () => {
    expect(problemsOf('extensions: {a: {packages: [a], colour: red}}\nfoo: 1\n').map(formatProblem)).toEqual([
      'f.yaml:1:33: extensions.a.colour: unknown key `colour`; valid keys: packages, kind, architectures, match-base-evr, repos',
      'f.yaml:2:1: foo: unknown key `foo`; valid keys: extensions, repos',
    ]);
  });

  test.each([
    ['architecture', 'architectures'],
    ['match-base-ver', 'match-base-evr'],
    ['package', 'packages'],
    ['matchBaseEvr', 'match-base-evr'],
    ['Kind', 'kind'],
    ['arch', 'architectures'],
  ])('suggests `%s` → `%s`', (typo, meant) => {
    const text = yaml(`
      extensions:
        foo:
          packages: [a]
          ${typo}: x
    `);
    expect(problemOf(text)).toBe(`f.yaml:4:5: extensions.foo.${typo}: unknown key \`${typo}\` (did you mean \`${meant}\`?)`);
  });

  test('suggests at the top level too, without also calling the meant key missing', () => {
    expect(problemOf('extension: {}\n')).toBe('f.yaml:1:1: extension: unknown key `extension` (did you mean `extensions`?)');
    expect(problemOf('extensions:\n  foo:\n    package: [a]\n')).toBe(
      'f.yaml:3:5: extensions.foo.package: unknown key `package` (did you mean `packages`?)',
    );
  });

  test('`modules`, top-level and per extension, explains that modularity is gone', () => {
    const problems = problemsOf(yaml(`
      modules:
        enable: [virt:rhel]
      extensions:
        kata:
          modules: {install: [virt]}
          packages: [kata-containers]
    `));
    expect(problems.map((p) => [p.line, p.col, p.path])).toEqual([
      [1, 1, 'modules'],
      [5, 5, 'extensions.kata.modules'],
    ]);
    for (const p of problems) {
      expect(p.message).toBe(
        '`modules` is not supported: rpm-ostree removed modularity support in 2024; ' +
          'list the packages in `packages` and enable non-modular repos that provide them instead',
      );
    }
  });

  test('duplicate extension names name both positions, and checking goes on', () => {
    const problems = problemsOf(yaml(`
      extensions:
        foo:
          packages: [a]
        bar:
          packages: [b]
        foo:
          packages: [c]
          architectures: [arm64]
    `));
    // The duplicate is dropped whole (rpm-ostree would silently keep it instead of the first).
    expect(problems.map(formatProblem)).toEqual(['f.yaml:6:3: extensions.foo: duplicate extension `foo`; first defined at line 2']);
    expect(problemsOf('extensions:\n  foo: {packages: [a]}\n  foo: {packages: [b]}\n  baz: {packages: []}\n')).toHaveLength(2);
  });

  test('duplicate keys inside an extension and at the top level', () => {
    expect(problemsOf('repos: []\nextensions:\n  foo:\n    packages: [a]\n    packages: [b]\nrepos: [x]\n').map(formatProblem)).toEqual([
      'f.yaml:5:5: extensions.foo.packages: duplicate key `packages`; first defined at line 4',
      'f.yaml:6:1: repos: duplicate key `repos`; first defined at line 1',
    ]);
  });

  test('missing, empty and null `packages`', () => {
    expect(problemOf('extensions:\n  foo:\n    kind: development\n')).toBe(
      'f.yaml:2:3: extensions.foo.packages: missing required key `packages`',
    );
    expect(problemOf('extensions:\n  foo:\n    packages: []\n')).toBe(
      'f.yaml:3:15: extensions.foo.packages: `packages` is empty; list at least one package',
    );
    // A key without a value points at the key.
    expect(problemOf('extensions:\n  foo:\n    packages:\n')).toBe(
      'f.yaml:3:5: extensions.foo.packages: `packages` is empty; list at least one package',
    );
  });

  test('non-string, empty and blank packages', () => {
    expect(problemsOf('extensions:\n  foo:\n    packages: [1.10, "  ", {a: b}]\n').map(formatProblem)).toEqual([
      'f.yaml:3:16: extensions.foo.packages[0]: package must be a string, not number 1.1 (quote it to make it a string)',
      'f.yaml:3:22: extensions.foo.packages[1]: package must not be empty',
      'f.yaml:3:28: extensions.foo.packages[2]: package must be a string, not a map',
    ]);
    expect(problemOf('extensions:\n  foo:\n    packages:\n      - a\n      -\n')).toMatch(
      /^f\.yaml:5:\d+: extensions\.foo\.packages\[1\]: package must be a string, not an empty value$/,
    );
  });

  test('`packages` given as a string', () => {
    expect(problemOf('extensions:\n  foo:\n    packages: kernel\n')).toBe(
      'f.yaml:3:15: extensions.foo.packages: `packages` must be a list of packages, not the string "kernel"',
    );
  });

  test('unknown kind lists the valid ones', () => {
    expect(problemOf('extensions:\n  foo:\n    packages: [a]\n    kind: devel\n')).toBe(
      'f.yaml:4:11: extensions.foo.kind: unknown kind "devel"; valid kinds: os-extension, development',
    );
  });

  test('empty `architectures` would disable the extension everywhere', () => {
    expect(problemOf('extensions:\n  foo:\n    packages: [a]\n    architectures: []\n')).toBe(
      'f.yaml:4:20: extensions.foo.architectures: `architectures` is empty; remove the key to apply the extension to all architectures',
    );
  });

  test('repo id listed twice, blank repo id', () => {
    expect(problemsOf('repos:\n  - a\n  - b\n  - a\n  - ""\nextensions: {foo: {packages: [p]}}\n').map(formatProblem)).toEqual([
      'f.yaml:4:5: repos[2]: repo id "a" is listed twice; first listed at line 2',
      'f.yaml:5:5: repos[3]: repo id must not be empty',
    ]);
    expect(problemOf('extensions:\n  foo:\n    packages: [p]\n    repos: [r, r]\n')).toBe(
      'f.yaml:4:16: extensions.foo.repos[1]: repo id "r" is listed twice; first listed at line 4',
    );
  });

  test('package listed twice in one extension, reported beside other entry errors', () => {
    expect(problemsOf('extensions:\n  foo:\n    packages:\n      - kernel\n      - 7\n      - kernel\n').map(formatProblem)).toEqual([
      'f.yaml:5:9: extensions.foo.packages[1]: package must be a string, not number 7 (quote it to make it a string)',
      'f.yaml:6:9: extensions.foo.packages[2]: package "kernel" is listed twice; first listed at line 4',
    ]);
  });

  test('match-base-evr must be a plain package name', () => {
    expect(problemOf('extensions:\n  foo:\n    packages: [a]\n    match-base-evr: kernel >= 5.14\n')).toBe(
      'f.yaml:4:21: extensions.foo.match-base-evr: `match-base-evr` must be a plain package name such as "kernel" (no spaces, versions or operators), not "kernel >= 5.14"',
    );
    expect(problemOf('extensions:\n  foo:\n    packages: [a]\n    match-base-evr: ""\n')).toBe(
      'f.yaml:4:21: extensions.foo.match-base-evr: `match-base-evr` must not be empty',
    );
  });

  test('extension names must be non-empty strings', () => {
    expect(problemsOf('extensions:\n  "": {packages: [a]}\n  ~: {packages: [b]}\n  ? [x]\n  : {packages: [c]}\n  ok: {packages: [d]}\n').map(formatProblem)).toEqual([
      'f.yaml:2:3: extensions: extension name must not be empty',
      'f.yaml:3:3: extensions: extension name must not be empty',
      'f.yaml:4:5: extensions: extension name must be a string, not a list',
    ]);
  });

  test('an extension that is not a map', () => {
    expect(problemsOf('extensions:\n  foo:\n  bar: [a]\n').map(formatProblem)).toEqual([
      'f.yaml:2:3: extensions.foo: an extension must be a map with at least `packages`, not an empty value',
      'f.yaml:3:8: extensions.bar: an extension must be a map with at least `packages`, not a list',
    ]);
  });

  test('empty document, non-map top level, missing or empty `extensions`', () => {
    const empty = 'f.yaml:1:1: empty document; expected a map with an `extensions` key';
    expect(problemOf('')).toBe(empty);
    expect(problemOf('# only a comment\n')).toBe(empty);
    expect(problemOf('- a\n')).toBe('f.yaml:1:1: the top level must be a map with `extensions` (and optionally `repos`), not a list');
    expect(problemOf('repos: []\n')).toBe('f.yaml:1:1: extensions: missing required key `extensions`');
    expect(problemOf('extensions: {}\n')).toBe('f.yaml:1:13: extensions: `extensions` defines no extension');
    expect(problemOf('extensions:\n')).toBe(
      'f.yaml:1:1: extensions: `extensions` must be a map of extension names to extensions, not an empty value',
    );
  });

  test('YAML syntax errors are located', () => {
    expect(problemOf('extensions:\n  foo:\n    packages: [a\n  bar: {}\n')).toMatch(/^f\.yaml:4:3: YAML syntax error: Flow sequence .* end with a \]$/);
    expect(problemOf('extensions:\n\tfoo: {}\n')).toBe('f.yaml:2:1: YAML syntax error: Tabs are not allowed as indentation');
  });

  test('every problem of a file at once, in file order', () => {
    const problems = problemsOf(yaml(`
      repos: [fedora, fedora]
      extensions:
        usbguard:
          package: [usbguard]
        kernel-rt:
          kind: os
          architectures: [x86_64, amd64]
          packages: [kernel-rt-core, kernel-rt-core]
          match-base-evr: kernel-0:6.1
        usbguard:
          packages: [usbguard]
    `));
    expect(problems.map((p) => `${p.line}:${p.col} ${p.path}`)).toEqual([
      '1:17 repos[1]',
      '4:5 extensions.usbguard.package',
      '6:11 extensions.kernel-rt.kind',
      '7:29 extensions.kernel-rt.architectures[1]',
      '8:32 extensions.kernel-rt.packages[1]',
      '9:21 extensions.kernel-rt.match-base-evr',
      '10:3 extensions.usbguard',
    ]);
    expect(problems.every((p) => p.file === 'f.yaml')).toBe(true);
  });

  test('the ConfigError message lists every problem', () => {
    expect(() => parseExtensionsYaml('extensions: {foo: {packages: []}, bar: {kind: x, packages: [a]}}\n', 'e.yaml')).toThrow(
      /^2 problems in configuration:\n {2}e\.yaml:1:30: extensions\.foo\.packages: .*\n {2}e\.yaml:1:47: extensions\.bar\.kind: /,
    );
  });

  test('an unreadable file', async () => {
    const err = await readExtensionsYaml('/nonexistent/extensions.yaml').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([
      { file: '/nonexistent/extensions.yaml', line: 1, col: 1, path: '', message: 'cannot read extensions file: file not found' },
    ]);
  });
});
