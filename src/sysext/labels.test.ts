import { lstat, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../tools/exec.js';
import { erofsLabel } from '../../test/fixtures/erofs.js';
import { labelPseudoFile, labelsInPseudoFiles, lookupLabel, parseFileContexts, parseMksquashfsVersion, type FileContexts } from './labels.js';

const ctx = (t: string) => `system_u:object_r:${t}:s0`;
/** Ordering, exact paths, file types, <<none>>, a POSIX class, .local, and both substitution files. */
const POLICY = {
  fileContexts: [
    `/usr(/.*)?\t${ctx('usr_t')}`,
    `/usr/bin(/.*)?\t${ctx('bin_t')}`,
    `/usr/bin/special\t${ctx('special_t')}`,
    `/usr/bin/spec.*\t${ctx('later_regex_t')}`,
    `/usr/share/d(/.*)?\t-d\t${ctx('dir_only_t')}`,
    `/usr/share/d/.*\t--\t${ctx('file_only_t')}`,
    `/usr/share/d/.*\t-l\t${ctx('link_only_t')}`,
    `/usr/share/none\t<<none>>`,
    `/usr/share/v[[:digit:]]+\t${ctx('digits_t')}`,
    // Literal prefixes: an optional last character, an escaped dot; a top-level alternation, which
    // libselinux only tries under the stem before it (/srv), so /usr/share/alt stays usr_t.
    `/usr/share/optionalx?/f\t${ctx('optional_t')}`,
    `/srv/nothing|/usr/share/alt\t${ctx('alt_t')}`,
    `/usr/share/dot\\.d(/.*)?\t${ctx('dot_t')}`,
    `/target/lib(/.*)?\t${ctx('lib_t')}`,
    `/target/chain(/.*)?\t${ctx('chain_t')}`,
    '# a comment',
    '',
  ].join('\n'),
  local: `/usr/share/local\t${ctx('local_t')}\n`,
  subs: '/usr/lib64 /target/lib\n/usr/share/first /usr/share/middle\n',
  subsDist: '/usr/share/middle /target/chain\n/usr/share/lib64 /usr/lib64\n/ /ignored\n',
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ce-labels-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function walk(root: string, rel = ''): Promise<{ path: string; mode: number }[]> {
  const out = [{ path: rel || '/', mode: (await lstat(join(root, rel))).mode }];
  if ((await lstat(join(root, rel))).isDirectory()) {
    for (const name of (await readdir(join(root, rel))).sort()) out.push(...(await walk(root, `${rel}/${name}`)));
  }
  return out;
}

test("every path gets the label libselinux gives it through mkfs.erofs --file-contexts", async () => {
  const tree = join(dir, 'tree');
  for (const d of ['usr/bin', 'usr/share/d/sub', 'usr/lib64/x', 'usr/share/first/y', 'usr/share/v12', 'usr/share/optional', 'usr/share/dot.d', 'srv']) await mkdir(join(tree, d), { recursive: true });
  for (const f of ['usr/bin/tool', 'usr/bin/special', 'usr/bin/specific', 'usr/share/d/file', 'usr/share/none', 'usr/share/local', 'usr/lib64/x/lib.so', 'usr/share/first/y/z', 'usr/share/vx', 'usr/share/lib64', 'usr/share/optional/f', 'usr/share/alt', 'usr/share/dot.d/g', 'usr/share/dotxd', 'srv/nothing']) await writeFile(join(tree, f), f);
  await symlink('file', join(tree, 'usr/share/d/link'));
  const policy = join(dir, 'policy');
  await mkdir(policy);
  await writeFile(join(policy, 'file_contexts'), POLICY.fileContexts);
  await writeFile(join(policy, 'file_contexts.local'), POLICY.local);
  await writeFile(join(policy, 'file_contexts.subs'), POLICY.subs);
  await writeFile(join(policy, 'file_contexts.subs_dist'), POLICY.subsDist);
  const image = join(dir, 'labels.raw');
  await run('mkfs.erofs', ['--quiet', `--file-contexts=${join(policy, 'file_contexts')}`, image, tree]);

  const fc = parseFileContexts(POLICY) as FileContexts;
  const ours: Record<string, string | undefined> = {};
  const theirs: Record<string, string | undefined> = {};
  for (const { path, mode } of await walk(tree)) {
    ours[path] = lookupLabel(fc, path, mode);
    theirs[path] = await erofsLabel(image, path);
  }
  expect(ours).toEqual(theirs);
  // The fixture reaches every rule (a rule no path reaches would test nothing).
  expect(Object.values(ours).sort()).toEqual([
    ctx('alt_t'), ctx('bin_t'), ctx('bin_t'), ctx('chain_t'), ctx('chain_t'), ctx('chain_t'), ctx('digits_t'), ctx('dir_only_t'), ctx('dir_only_t'), ctx('dot_t'), ctx('dot_t'),
    ctx('file_only_t'), ctx('later_regex_t'), ctx('lib_t'), ctx('lib_t'), ctx('lib_t'), ctx('link_only_t'), ctx('local_t'), ctx('optional_t'), ctx('special_t'),
    ctx('usr_t'), ctx('usr_t'), ctx('usr_t'), ctx('usr_t'), ctx('usr_t'), ctx('usr_t'), ctx('usr_t'), undefined, undefined, undefined,
  ]);
});

test('pseudo definitions label each path (0t text, odd bytes octal), quoted, sorted; unlabelled paths have none', () => {
  const fc = parseFileContexts({ fileContexts: `/usr(/.*)?\t${ctx('usr_t')}\n/usr/none\t<<none>>\n/usr/odd\tu:r:a\\b"é:s0\n` }) as FileContexts;
  expect(labelPseudoFile(fc, [{ path: '/usr/a "b"', mode: 0o100644 }, { path: '/usr', mode: 0o40755 }, { path: '/usr/none', mode: 0o100644 }, { path: '/', mode: 0o40755 }, { path: '/usr/odd', mode: 0o100644 }])).toBe(
    `"/usr" x security.selinux=0t${ctx('usr_t')}\n` +
    `"/usr/a \\"b\\"" x security.selinux=0t${ctx('usr_t')}\n` +
    '"/usr/odd" x security.selinux=0tu:r:a\\134b\\042\\303\\251:s0\n',
  );
});

test('a line libselinux would read but we cannot reproduce is named', () => {
  expect(parseFileContexts({ fileContexts: `/usr(/.*)?\t${ctx('usr_t')}\n/usr/(?<=x)[\t${ctx('x_t')}\n`, local: '/usr/x -q y\n' })).toEqual({
    errors: [
      'file_contexts:2: Invalid regular expression: /^/usr/(?<=x)[$/: Unterminated character class',
      'file_contexts.local:1: not a file_contexts line: "/usr/x -q y"',
    ],
  });
});

test('mksquashfs versions: pseudo-file xattrs from 4.6', () => {
  expect(parseMksquashfsVersion('mksquashfs version 4.5.1 (2022/03/17)\ncopyright')).toEqual([4, 5, 1]);
  expect(parseMksquashfsVersion('mksquashfs version 4.6 (2023/03/21)')).toEqual([4, 6, 0]);
  expect(labelsInPseudoFiles([4, 5, 1])).toBe(false);
  expect(labelsInPseudoFiles([4, 6, 1])).toBe(true);
  expect(labelsInPseudoFiles([5, 0, 0])).toBe(true);
  expect(labelsInPseudoFiles(undefined)).toBe(false);
});
