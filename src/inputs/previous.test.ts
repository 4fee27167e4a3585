import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveDirectory, type StaticServer } from '../../test/fixtures/http.js';
import { loadPrevious } from './previous.js';

let dir: string;
let server: StaticServer;
const meta = (arch: string, packages: string[]) => JSON.stringify({ schemaVersion: 1, arch, extensions: { a: { kind: 'os-extension', packages } } });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ce-previous-'));
  for (const arch of ['x86_64', 'aarch64']) {
    await mkdir(join(dir, 'out', arch), { recursive: true });
    await writeFile(join(dir, 'out', arch, 'metadata.json'), meta(arch, [`a-1-1.${arch}`]));
    await writeFile(join(dir, `metadata-${arch}.json`), meta(arch, [`a-2-1.${arch}`]));
  }
  await writeFile(join(dir, 'broken.json'), '{nope');
  await writeFile(join(dir, 'other.json'), '{"hello": 1}');
  server = await serveDirectory(dir);
});
afterAll(() => server.close());

test('an earlier output directory gives one per architecture; a new architecture has none', async () => {
  const prev = await loadPrevious(join(dir, 'out'), ['x86_64', 'aarch64', 's390x']);
  expect([...prev.keys()]).toEqual(['x86_64', 'aarch64']);
  expect(prev.get('aarch64')!.extensions['a']!.packages).toEqual(['a-1-1.aarch64']);
});

test('${arch} in a path or URL names one file per architecture', async () => {
  const local = await loadPrevious(join(dir, 'metadata-${arch}.json'), ['x86_64', 'aarch64']);
  expect(local.get('x86_64')!.extensions['a']!.packages).toEqual(['a-2-1.x86_64']);
  const remote = await loadPrevious(`${server.url}/metadata-\${basearch}.json`, ['aarch64']);
  expect(remote.get('aarch64')!.extensions['a']!.packages).toEqual(['a-2-1.aarch64']);
});

test('a single file applies to the architecture it names', async () => {
  const prev = await loadPrevious(`${server.url}/out/aarch64/metadata.json`, ['x86_64', 'aarch64']);
  expect([...prev.keys()]).toEqual(['aarch64']);
});

test('unreadable, missing or foreign documents are usage errors', async () => {
  await expect(loadPrevious(join(dir, 'broken.json'), ['x86_64'])).rejects.toThrow(`previous metadata ${join(dir, 'broken.json')} is not JSON`);
  await expect(loadPrevious(join(dir, 'other.json'), ['x86_64'])).rejects.toThrow('is not a compose-extensions metadata.json');
  await expect(loadPrevious(join(dir, 'nothing.json'), ['x86_64'])).rejects.toThrow('not found');
  await expect(loadPrevious(`${server.url}/nothing.json`, ['x86_64'])).rejects.toThrow('not found');
});
