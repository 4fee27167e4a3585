// A repo whose repomd.xml never ends: dnf's helper runs under RLIMIT_FSIZE, so the file it writes
// stops at the limit and the solve fails with the repo named and the limit said, in bounded time.
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ComposeError } from '../src/errors.js';
import { parseRepoPair } from '../src/inputs/repos.js';
import { DnfSolver } from '../src/solve/dnf.js';
import { makeRootfs } from './fixtures/base.js';
import { writeForever } from './fixtures/http.js';

let dir: string;
let server: Server;
let base: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ce-hostile-repo-'));
  server = createServer((req, res) => {
    if (!req.url?.endsWith('/repodata/repomd.xml')) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'text/xml' });
    res.write('<?xml version="1.0" encoding="UTF-8"?>\n<repomd xmlns="http://linux.duke.edu/metadata/repo">\n');
    writeForever(res, Buffer.from('<!-- padding -->\n'.repeat(4096)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

/** Every file under `root` with its size. */
async function sizes(root: string): Promise<Array<[string, number]>> {
  const out: Array<[string, number]> = [];
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const path = join(e.parentPath ?? (e as unknown as { path: string }).path, e.name);
    out.push([path, (await stat(path)).size]);
  }
  return out;
}

test('an endless repomd.xml: no file dnf writes passes the limit, and the solve fails naming the repo', async () => {
  const root = await makeRootfs(join(dir, 'root'), { rpms: [] });
  const helperHome = join(dir, 'helper');
  const limit = 8 << 20;
  const solver = new DnfSolver('dnf4', helperHome, { helpers: 1, threads: 1 }, limit);
  // Where dnf writes while it downloads (it removes the file when the download fails).
  const seen = new Map<string, number>();
  const watch = setInterval(() => {
    for (const where of [helperHome, join(dir, 'cache'), join(dir, 'work')]) {
      void sizes(where).then((found) => found.forEach(([path, size]) => seen.set(path, Math.max(size, seen.get(path) ?? 0))), () => undefined);
    }
  }, 5);
  const started = Date.now();
  let err: unknown;
  try {
    await solver.solve({
      plan: { arch: 'x86_64', releasever: '40', weakDeps: false, repos: ['endless'], extensions: [{ name: 'tiny', kind: 'os-extension', requested: ['tiny'], specs: ['tiny'], repos: ['endless'] }] },
      repos: [parseRepoPair(`endless=${base}/repo`)],
      vars: {},
      root,
      workDir: join(dir, 'work'),
      cacheDir: join(dir, 'cache'),
    });
  } catch (e) {
    err = e;
  } finally {
    clearInterval(watch);
    await solver.close();
  }
  const ms = Date.now() - started;
  expect(err).toBeInstanceOf(ComposeError);
  const { problems } = err as ComposeError;
  expect(problems).toHaveLength(1);
  expect(problems[0]!.message).toBe(
    `repository endless could not be loaded: its metadata (repodata/repomd.xml) could not be downloaded from ${base}/repo: ` +
      `Curl error (23): Failed writing received data to disk/application ` +
      `(a file dnf writes is limited to ${limit} bytes: a repo file that large, or a full disk)`,
  );
  expect(ms).toBeLessThan(30_000);
  const written = [...(await sizes(helperHome)), ...(await sizes(join(dir, 'cache'))), ...(await sizes(join(dir, 'work')))];
  expect(written.filter(([, size]) => size > limit)).toEqual([]);
  // While it ran too: dnf4 downloads repomd.xml into <cachedir>/<repo>-<hash>/tmpdir.*/ and
  // removes that when the download fails.
  expect([...seen].filter(([, size]) => size > limit)).toEqual([]);
  expect(written.filter(([path]) => path.includes('/tmpdir.'))).toEqual([]);
});
