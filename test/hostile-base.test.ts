// A base at a URL served by a hostile server: an endless body, a trickle, silence. Each fails
// promptly with a message naming the URL and the limit, and leaves no partial file.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { archiveLimit, DISK_RESERVE, fetchArchive, prepareBase } from '../src/base/remote.js';
import { ownedStem } from '../src/tools/leftovers.js';
import { serveHostile, type HostileServer } from './fixtures/http.js';

let dir: string;
let hostile: HostileServer;
let base: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ce-hostile-base-'));
  hostile = await serveHostile();
  base = hostile.url;
});
afterAll(async () => {
  await hostile?.close();
  await rm(dir, { recursive: true, force: true });
});

const limits = { idleTimeoutMs: 300, maxBytes: 8 << 20 };
async function failing(promise: Promise<unknown>): Promise<{ message: string; ms: number }> {
  const started = Date.now();
  const err = (await promise.then(() => undefined, (e: Error) => e))!;
  expect(err).toBeDefined();
  return { message: err.message, ms: Date.now() - started };
}

test('an endless rootfs URL stops at the size limit and leaves no partial file', async () => {
  const cacheDir = join(dir, 'endless');
  const r = await failing(prepareBase({ kind: 'rootfs', path: `${base}/endless.tar` }, ['x86_64'], { cacheDir, limits }));
  expect(r.message).toBe(`downloading ${base}/endless.tar failed: larger than the limit of ${8 << 20} bytes`);
  expect(r.ms).toBeLessThan(5000);
  expect(await readdir(join(cacheDir, 'archives'))).toEqual([]);
});

test('an OCI archive URL sent a byte every 50 ms fails the minimum rate', async () => {
  const cacheDir = join(dir, 'trickle');
  const r = await failing(prepareBase({ kind: 'image', ref: `${base}/trickle.ociarchive` }, ['x86_64'], { cacheDir, limits }));
  expect(r.message).toMatch(new RegExp(`^downloading ${base}/trickle.ociarchive failed: fewer than 1000 bytes/s over 0.3 s \\(\\d bytes; the minimum rate\\)$`));
  expect(r.ms).toBeLessThan(1500);
  expect(await readdir(join(cacheDir, 'archives'))).toEqual([]);
});

test('a server that never answers: no data, once (not after retries)', async () => {
  const r = await failing(fetchArchive(`${base}/silent.tar`, { cacheDir: join(dir, 'silent'), limits }));
  expect(r.message).toBe(`downloading ${base}/silent.tar failed: no data for 0.3 s`);
  expect(r.ms).toBeLessThan(1500);
});

test('the limit is the free space less a reserve when that is smaller', async () => {
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize - DISK_RESERVE;
  expect(await archiveLimit(dir, Number.MAX_SAFE_INTEGER)).toEqual({ maxBytes: Math.max(0, free), byDisk: true });
  expect(await archiveLimit(dir, 1000)).toEqual({ maxBytes: 1000, byDisk: false });
});

test("a killed run's partial download is removed by the next run; a live run's is kept", async () => {
  const cacheDir = join(dir, 'leftover');
  const archives = join(cacheDir, 'archives');
  await mkdir(archives, { recursive: true });
  // A process that has exited: its pid is dead.
  const gone = spawn('true');
  await new Promise((resolve) => gone.on('exit', resolve));
  const dead = `${ownedStem('.partial-', gone.pid!)}abc`;
  const live = `${ownedStem('.partial-', process.ppid)}def`; // jest's parent: alive
  const foreign = '.partial-1-00000000-ghi'; // another host's
  for (const name of [dead, live, foreign]) await writeFile(join(archives, name), 'partial');
  await failing(fetchArchive(`${base}/silent.tar`, { cacheDir, limits }));
  expect((await readdir(archives)).sort()).toEqual([foreign, live].sort());
});

test('an OSTree repo URL whose server never answers: the pull stops at its deadline', async () => {
  const started = Date.now();
  const r = await failing(prepareBase({ kind: 'ostree', repo: `${base}/ostree-repo`, ref: 'fixture/${basearch}/base' }, ['x86_64'], {
    cacheDir: join(dir, 'ostree'), limits: { deadlineMs: 1500 },
  }));
  expect(r.message).toBe(`pulling fixture/x86_64/base from OSTree repo ${base}/ostree-repo failed: not complete within 1.5 s (the time limit)`);
  expect(Date.now() - started).toBeLessThan(5000);
});
