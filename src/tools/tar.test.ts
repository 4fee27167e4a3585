import { link, mkdir, mkdtemp, readFile, rm, symlink, truncate, writeFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './exec.js';
import { detectCompression, looksLikeTarball, readTar, type TarEntry } from './tar.js';

let tmp: string;
let src: string;
const LONG_DIR = `usr/lib/${'d'.repeat(90)}/${'e'.repeat(60)}`;
const LONG_TARGET = `../../${'t'.repeat(120)}`;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ce-tar-test-'));
  src = join(tmp, 'src');
  await mkdir(join(src, LONG_DIR), { recursive: true });
  await writeFile(join(src, LONG_DIR, 'file-with-a-long-path'), 'long\n');
  await writeFile(join(src, 'a.txt'), 'A'.repeat(1000));
  await link(join(src, 'a.txt'), join(src, 'b-hardlink'));
  await symlink(LONG_TARGET, join(src, 'long-symlink'));
  await writeFile(join(src, 'é ünïcode name'), 'u');
  await writeFile(join(src, 'empty'), '');
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function archive(format: string, compress: string[] = []): Promise<string> {
  const file = join(tmp, `${format}${compress.join('')}.tar`);
  // ustar cannot hold a 120-character link target.
  const exclude = format === 'ustar' ? ['--exclude=./long-symlink'] : [];
  await run('tar', ['--sort=name', `--format=${format}`, ...exclude, ...compress, '-C', src, '-cf', file, '.']);
  return file;
}

async function entries(file: string, keep: (e: TarEntry) => boolean = () => false) {
  const seen: TarEntry[] = [];
  const out = join(tmp, `out-${Math.random()}`);
  await mkdir(out);
  let i = 0;
  await readTar(file, (e) => {
    seen.push(e);
    return keep(e) ? join(out, String(i++)) : undefined;
  }, { scratch: join(tmp, 'scratch.tar') });
  return { seen, out };
}

const summary = (seen: TarEntry[]) =>
  seen
    .map((e) => ({ ...e, path: e.path.split('/').filter((c) => c && c !== '.').join('/') }))
    .filter((e) => e.path !== '')
    .map((e) => `${e.type} ${e.path}${e.linkname ? ` -> ${e.linkname}` : ''}`);

describe.each(['gnu', 'pax', 'ustar'])('%s format', (format) => {
  test('long names, long link targets, hardlinks, unicode, and contents', async () => {
    const file = await archive(format);
    const { seen, out } = await entries(file, (e) => e.type === 'file');
    expect(summary(seen)).toEqual([
      'file a.txt',
      'hardlink b-hardlink -> ./a.txt',
      'file empty',
      ...(format === 'ustar' ? [] : ['symlink long-symlink -> ' + LONG_TARGET]),
      'dir usr',
      'dir usr/lib',
      `dir usr/lib/${'d'.repeat(90)}`,
      `dir ${LONG_DIR}`,
      `file ${LONG_DIR}/file-with-a-long-path`,
      'file é ünïcode name',
    ]);
    expect(seen.find((e) => e.path.endsWith('a.txt'))!.size).toBe(1000);
    expect(await readFile(join(out, '0'), 'utf8')).toBe('A'.repeat(1000));
    expect(await readFile(join(out, '1'), 'utf8')).toBe('');
    expect(await readFile(join(out, '2'), 'utf8')).toBe('long\n');
    expect(await readFile(join(out, '3'), 'utf8')).toBe('u');
  }, 30_000);
});

test.each([
  ['gzip', ['-z']],
  ['zstd', ['--zstd']],
])('%s-compressed archives read the same as plain ones', async (compression, flags) => {
  const file = await archive('pax', flags);
  expect(await detectCompression(file)).toBe(compression);
  expect(await looksLikeTarball(file)).toBe(true);
  const plain = await archive('pax');
  expect(await detectCompression(plain)).toBe('none');
  expect(summary((await entries(file)).seen)).toEqual(summary((await entries(plain)).seen));
  // The zstd scratch file is removed afterwards.
  await expect(stat(join(tmp, 'scratch.tar'))).rejects.toThrow();
});

test('a truncated archive is an error, not a shorter listing', async () => {
  const file = await archive('pax');
  const cut = join(tmp, 'cut.tar');
  const size = (await stat(file)).size;
  // Within a header, within the last file's padding.
  for (const at of [1536 + 200, size - 1024 - 100]) {
    await run('cp', [file, cut]);
    await truncate(cut, at);
    await expect(entries(cut)).rejects.toThrow(`${cut}: truncated tar archive`);
  }
  // Without the end-of-archive blocks (cut at a block boundary): every entry is still read.
  const bytes = await readFile(file);
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  await run('cp', [file, cut]);
  await truncate(cut, Math.ceil(end / 512) * 512);
  expect(summary((await entries(cut)).seen)).toEqual(summary((await entries(file)).seen));
});

test('contents are never written through a symlink', async () => {
  const file = await archive('pax');
  const trap = join(tmp, 'trap');
  await symlink(join(tmp, 'victim'), trap);
  await expect(readTar(file, (e) => (e.path.endsWith('a.txt') ? trap : undefined), { scratch: join(tmp, 's.tar') })).rejects.toThrow(/ELOOP/);
  await expect(stat(join(tmp, 'victim'))).rejects.toThrow();
});

test('a file that is not a tarball', async () => {
  const file = join(tmp, 'not-a-tar');
  await writeFile(file, 'hello');
  expect(await looksLikeTarball(file)).toBe(false);
  expect(await looksLikeTarball(await archive('gnu'))).toBe(true);
});

test('limit: only the first entries are read, with their positions', async () => {
  const file = await archive('pax', ['-z']);
  const seen: number[] = [];
  await readTar(file, (e) => void seen.push(e.index), { scratch: join(tmp, 's.tar'), limit: 3 });
  expect(seen).toEqual([0, 1, 2]);
  const all = (await entries(file)).seen;
  expect(all.map((e) => e.index)).toEqual(all.map((_, i) => i));
});
