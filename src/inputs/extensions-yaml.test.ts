import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, formatProblem, type ConfigProblem } from '../errors.js';
import { KNOWN_ARCHITECTURES, MAX_ALIASES, MAX_CONFIG_BYTES, MAX_DEPTH, locateProblems, parseExtensionsYaml, readExtensionsYaml, type ExtensionsConfig } from './extensions-yaml.js';

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
      'f.yaml:1:33: extensions.a.colour: unknown key `colour`; valid keys: packages, kind, architectures, match-base-evr, version-package, repos',
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

  test('version-package must be a plain package name', () => {
    expect(problemOf('extensions:\n  foo:\n    packages: [a]\n    version-package: a >= 1.0\n')).toBe(
      'f.yaml:4:22: extensions.foo.version-package: `version-package` must be a plain package name such as "usbguard" (no spaces, versions or operators), not "a >= 1.0"',
    );
    expect(problemOf('extensions:\n  foo:\n    packages: [a]\n    version-package: [a]\n')).toBe(
      'f.yaml:4:22: extensions.foo.version-package: `version-package` must be a string, not a list',
    );
    expect(parseExtensionsYaml('extensions:\n  foo:\n    packages: [a, b]\n    version-package: b\n', 'f.yaml').extensions[0]).toMatchObject({ name: 'foo', versionPackage: 'b' });
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

describe('globs', () => {
  test('a glob in a development extension is a problem at its position', () => {
    expect(problemsOf('extensions:\n  dev:\n    kind: development\n    packages: [kernel-devel, "kernel-*", foo?, "bar[12]"]\n').map(formatProblem)).toEqual([
      'f.yaml:4:30: extensions.dev.packages[1]: package "kernel-*" is a glob; development extensions take exact package names or NEVRAs: list the packages',
      'f.yaml:4:42: extensions.dev.packages[2]: package "foo?" is a glob; development extensions take exact package names or NEVRAs: list the packages',
      'f.yaml:4:48: extensions.dev.packages[3]: package "bar[12]" is a glob; development extensions take exact package names or NEVRAs: list the packages',
    ]);
  });

  test('names and NEVRAs in a development extension, globs in an os-extension, are accepted', () => {
    const cfg = parseExtensionsYaml(
      'extensions:\n  dev:\n    kind: development\n    packages: [kernel-devel, kernel-headers-0:6.1.0-1.fc40.x86_64]\n  os:\n    packages: ["python3-*"]\n',
      'f.yaml',
    );
    expect(cfg.extensions.map((e) => e.packages)).toEqual([['kernel-devel', 'kernel-headers-0:6.1.0-1.fc40.x86_64'], ['python3-*']]);
  });
});

describe('hostile or huge input stays bounded and is a config problem', () => {
  /** `n` extensions of two packages and one repo each, like a real file repeated. */
  const generated = (n: number, extra = '') =>
    'extensions:\n' +
    Array.from({ length: n }, (_, i) => `  ext-${i}:\n    packages:\n      - pkg-${i}\n      - pkg-${i}-extra\n    repos: [r${i}]\n${extra}`).join('');

  // The key lookups scanned the extensions map for every extension: 20,000 took 43 s. Now linear.
  test('20,000 extensions validate in linear time', () => {
    const start = Date.now();
    const cfg = parseExtensionsYaml(generated(20_000), 'big.yaml');
    expect(Date.now() - start).toBeLessThan(15_000);
    expect(cfg.extensions).toHaveLength(20_000);
    expect(cfg.extensions[19_999]).toMatchObject({ name: 'ext-19999', packages: ['pkg-19999', 'pkg-19999-extra'], line: 99_997 });
    expect(cfg.locations['extensions.ext-19999.repos[0]']).toEqual({ line: 100_001, col: 13 });
  }, 60_000);

  test('20,000 invalid extensions: every problem, in linear time', () => {
    const start = Date.now();
    const problems = problemsOf(generated(20_000, '    kind: bogus\n'));
    expect(Date.now() - start).toBeLessThan(15_000);
    expect(problems).toHaveLength(20_000);
    expect(formatProblem(problems[19_999])).toBe(
      'f.yaml:120001:11: extensions.ext-19999.kind: unknown kind "bogus"; valid kinds: os-extension, development',
    );
  }, 60_000);

  test('a file over the size limit is refused before parsing', async () => {
    expect(MAX_CONFIG_BYTES).toBe(4 * 1024 * 1024);
    const limit = 'f.yaml:1:1: the file is larger than 4 MiB (4194304 bytes), the limit for extensions.yaml';
    expect(problemOf('#'.repeat(MAX_CONFIG_BYTES) + '\n')).toBe(limit);
    // Counted in bytes: 2-byte characters.
    expect(problemOf('#' + 'é'.repeat(MAX_CONFIG_BYTES / 2))).toBe(limit);
    // A device that never ends is read only up to the limit.
    const err = (await readExtensionsYaml('/dev/zero').catch((e: unknown) => e)) as ConfigError;
    expect(err.problems.map(formatProblem)).toEqual([limit.replace('f.yaml', '/dev/zero')]);
    // Just under the limit is read and parsed.
    const dir = await mkdtemp(join(tmpdir(), 'ce-yaml-'));
    try {
      const file = join(dir, 'extensions.yaml');
      const body = 'extensions:\n  a:\n    packages: [a]\n';
      await writeFile(file, body + '#'.repeat(MAX_CONFIG_BYTES - body.length - 1) + '\n');
      expect((await readExtensionsYaml(file)).extensions.map((e) => e.name)).toEqual(['a']);
    } finally {
      await rm(dir, { recursive: true });
    }
  }, 30_000);

  test('deep nesting is refused at its position, never a stack overflow', () => {
    expect(MAX_DEPTH).toBe(32);
    const deep = `nested more than ${MAX_DEPTH} levels deep; extensions.yaml needs 5`;
    // Flow collections: 100,000 levels, where composing used to overflow the stack.
    // The 33rd flow collection, found by the lexer before parsing.
    expect(problemOf('extensions: ' + '['.repeat(100_000) + ']'.repeat(100_000) + '\n')).toBe(`f.yaml:1:45: ${deep}`);
    expect(problemOf('extensions:\n  ' + '{a: '.repeat(50_000) + '1' + '}'.repeat(50_000) + '\n')).toBe(`f.yaml:2:131: ${deep}`);
    // 2 MB of flow nesting: refused quickly.
    const start = Date.now();
    expect(problemOf('extensions: ' + '['.repeat(1_000_000) + ']'.repeat(1_000_000) + '\n')).toBe(`f.yaml:1:45: ${deep}`);
    expect(Date.now() - start).toBeLessThan(5_000);
    // Flow inside block nesting counts both (the parser's tree): the 33rd level is the 30th `[`.
    expect(problemOf('extensions:\n  a:\n    packages: ' + '['.repeat(30) + ']'.repeat(30) + '\n')).toBe(`f.yaml:3:44: ${deep}`);
    // Block maps, 2,000 levels (2 MB of indentation).
    const block = 'extensions:\n' + Array.from({ length: 2000 }, (_, i) => ' '.repeat(i + 2) + 'a:\n').join('');
    expect(block.length).toBeGreaterThan(2_000_000);
    expect(problemOf(block)).toBe(`f.yaml:33:34: ${deep}`);
    // 32 levels are fine for the parser; the schema then says what is wrong.
    const ok = 'extensions: ' + '['.repeat(31) + ']'.repeat(31) + '\n';
    expect(problemOf(ok)).toBe('f.yaml:1:13: extensions: `extensions` must be a map of extension names to extensions, not a list');
  }, 60_000);

  test('an alias bomb is located, not an internal error', () => {
    const lol = ['a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
    for (let i = 1; i < 9; i++) lol.push(`a${i}: &a${i} [${Array(9).fill(`*a${i - 1}`).join(', ')}]`);
    lol.push('extensions:', '  x:', '    packages: *a8', '');
    expect(problemOf(lol.join('\n'))).toBe(
      'f.yaml:2:10: YAML aliases expand too much (a "billion laughs" alias bomb?); write the values out instead',
    );
    // Each alias is resolved by scanning the anchors before it: their number is bounded.
    const many = 'x: &x a\nextensions:\n  a:\n    packages: [' + Array(MAX_ALIASES + 1).fill('*x').join(', ') + ']\n';
    expect(problemOf(many)).toBe(`f.yaml:4:${16 + 4 * MAX_ALIASES}: more than 1000 YAML aliases; write the values out instead`);
    // Anchors too: with many of them, every alias would be a long scan.
    const anchors = 'extensions:\n  a:\n    packages: [' + Array.from({ length: MAX_ALIASES + 1 }, (_, i) => `&a${i} p${i}`).join(', ') + ']\n';
    const at = anchors.indexOf(`&a${MAX_ALIASES} `) - anchors.indexOf('    packages') + 1;
    expect(problemOf(anchors)).toBe(`f.yaml:3:${at}: more than 1000 YAML anchors; write the values out instead`);
    // Aliases within the limits still work.
    const cfg = parseExtensionsYaml('extensions:\n  a:\n    packages: &p [a, b]\n  b:\n    packages: *p\n', 'f.yaml');
    expect(cfg.extensions[1]!.packages).toEqual(['a', 'b']);
  });

  test('multi-document YAML gets one message at the second document', () => {
    expect(problemOf('extensions:\n  a:\n    packages: [a]\n---\nextensions:\n  b:\n    packages: [b]\n')).toBe(
      'f.yaml:4:1: a second YAML document: extensions.yaml holds one document; remove this `---` and what follows, or merge it into the first',
    );
    // A leading `---` and a closing `...` are one document.
    expect(parseExtensionsYaml('---\nextensions:\n  a:\n    packages: [a]\n...\n', 'f.yaml').extensions).toHaveLength(1);
  });

  test('__proto__, constructor and hasOwnProperty are ordinary names', () => {
    const cfg = parseExtensionsYaml(
      yaml(`
        repos: [__proto__, constructor]
        extensions:
          __proto__:
            packages: [__proto__]
            repos: [hasOwnProperty]
          constructor:
            packages: [constructor]
          hasOwnProperty:
            packages: [toString]
            kind: development
      `),
      'f.yaml',
    );
    expect(cfg.repos).toEqual(['__proto__', 'constructor']);
    expect(cfg.extensions.map(({ name, kind, packages, repos }) => ({ name, kind, packages, repos }))).toEqual([
      { name: '__proto__', kind: 'os-extension', packages: ['__proto__'], repos: ['hasOwnProperty'] },
      { name: 'constructor', kind: 'os-extension', packages: ['constructor'], repos: [] },
      { name: 'hasOwnProperty', kind: 'development', packages: ['toString'], repos: [] },
    ]);
    expect(({} as Record<string, unknown>)['packages']).toBeUndefined();
    // Alone, and with its own problems, located like any other.
    expect(parseExtensionsYaml('extensions:\n  __proto__:\n    packages: [a]\n', 'f.yaml').extensions.map((e) => e.name)).toEqual(['__proto__']);
    expect(problemsOf('extensions:\n  __proto__:\n    packages: [a]\n    bogus: 1\n  __proto__:\n    packages: [b]\n').map(formatProblem)).toEqual([
      'f.yaml:4:5: extensions.__proto__.bogus: unknown key `bogus`; valid keys: packages, kind, architectures, match-base-evr, version-package, repos',
      'f.yaml:5:3: extensions.__proto__: duplicate extension `__proto__`; first defined at line 2',
    ]);
    expect(problemOf('extensions:\n  a:\n    packages: [a]\n    __proto__: [x]\n')).toBe(
      'f.yaml:4:5: extensions.a.__proto__: unknown key `__proto__`; valid keys: packages, kind, architectures, match-base-evr, version-package, repos',
    );
  });
});

test('compose problems get the line and column of their extension; others stay as they are', () => {
  const cfg = parseExtensionsYaml('repos: [r]\nextensions:\n  usbguard:\n    packages: [usbguard]\n  kmods:\n    packages: [k]\n', 'extensions.yaml');
  const problems = [
    { arch: 'aarch64', extension: 'kmods', message: 'nothing provides k' },
    { arch: 'x86_64', extension: 'gone', message: 'not in this config' },
    { arch: 'x86_64', message: 'repo r: HTTP 404' },
  ];
  expect(locateProblems(problems, cfg)).toEqual([
    { arch: 'aarch64', extension: 'kmods', message: 'nothing provides k', file: 'extensions.yaml', line: 5, col: 3 },
    problems[1],
    problems[2],
  ]);
  expect(locateProblems(problems, undefined)).toEqual(problems);
});
