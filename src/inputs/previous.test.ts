import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveDirectory, serveHostile, type HostileServer, type StaticServer } from '../../test/fixtures/http.js';
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

describe('a hostile previous-metadata server', () => {
  let hostile: HostileServer;
  let base: string;
  beforeAll(async () => {
    hostile = await serveHostile();
    base = hostile.url;
  });
  afterAll(() => hostile.close());
  const limits = { idleTimeoutMs: 300, maxBytes: 4 << 20 };
  const timed = async (source: string) => {
    const started = Date.now();
    const err = await loadPrevious(source, ['x86_64'], {}, limits).then(() => undefined, (e: Error) => e);
    return { message: err?.message, ms: Date.now() - started };
  };

  test('an endless body stops at the size limit, memory bounded', async () => {
    const r = await timed(`${base}/endless.json`);
    expect(r.message).toBe(`previous metadata ${base}/endless.json: larger than the limit of ${4 << 20} bytes`);
    expect(r.ms).toBeLessThan(5000);
  });

  test('a byte every 50 ms fails the minimum rate', async () => {
    const r = await timed(`${base}/trickle.json`);
    expect(r.message).toMatch(new RegExp(`^previous metadata ${base}/trickle.json: fewer than 1000 bytes/s over 0.3 s \\(\\d bytes; the minimum rate\\)$`));
    expect(r.ms).toBeLessThan(1500);
  });

  test('a server that never answers: no data', async () => {
    const r = await timed(`${base}/stall.json`);
    expect(r.message).toBe(`previous metadata ${base}/stall.json: no data for 0.3 s`);
    expect(r.ms).toBeLessThan(1500);
  });

  test('a local file is bounded too (/dev/zero)', async () => {
    const r = await timed('/dev/zero');
    expect(r.message).toBe(`previous metadata /dev/zero: larger than the limit of ${4 << 20} bytes`);
  });
});
