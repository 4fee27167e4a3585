import { execa } from 'execa';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ComposeError } from '../errors.js';
import {
  acquireLock, currentHolder, holderIsDead, LOCK_FILE, lockDirs, removeCachePartials, removeDeadLockTemps, type Holder,
} from './lock.js';

let dir: string;
let n = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ce-lock-test-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));
const fresh = async () => {
  const d = join(dir, `d-${n++}`);
  await mkdir(d);
  return d;
};

/** The pid of a process that has exited: a holder that died. */
async function deadPid(): Promise<number> {
  const child = execa('true');
  await child;
  return child.pid!;
}

function record(overrides: Partial<Holder>): string {
  return JSON.stringify({ ...currentHolder(), token: 'other', ...overrides });
}

describe('holderIsDead', () => {
  test('this process is alive; an exited one on this host is dead', async () => {
    expect(holderIsDead(currentHolder())).toBe(false);
    expect(holderIsDead({ ...currentHolder(), pid: await deadPid() })).toBe(true);
  });

  test('a live pid that started at another time is another process (pid reuse); another boot is dead', () => {
    expect(holderIsDead({ ...currentHolder(), procStart: '1' })).toBe(true);
    expect(holderIsDead({ ...currentHolder(), bootId: 'another-boot' })).toBe(true);
  });

  test('a holder on another host, or in another pid namespace (a container), is never presumed dead', async () => {
    expect(holderIsDead({ ...currentHolder(), pid: await deadPid(), host: 'elsewhere' })).toBe(false);
    expect(currentHolder().pidNs).toMatch(/^pid:\[\d+\]$/);
    expect(holderIsDead({ ...currentHolder(), pid: await deadPid(), pidNs: 'pid:[1]' })).toBe(false);
  });
});

describe('acquireLock', () => {
  test('a second acquisition fails at once, naming the holder; after release it succeeds', async () => {
    const path = join(await fresh(), LOCK_FILE);
    const lock = await acquireLock(path, { what: 'the output directory /x', wait: false });
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual(currentHolder());
    // A record of another live process: this test's parent shell stands in for it.
    await lock.release();
    await writeFile(path, record({ pid: process.ppid, procStart: undefined }));
    const err = await acquireLock(path, { what: 'the output directory /x', wait: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ComposeError);
    expect((err as Error).message).toBe(
      `the output directory /x is locked by another compose-extensions run (pid ${process.ppid} on host ${hostname()}, started ${currentHolder().started}); ` +
        `pass --wait-lock to wait for it, or remove ${path} if that run is gone`,
    );
    await rm(path);
    const again = await acquireLock(path, { what: 'x', wait: false });
    expect(again.tookOver).toBe(false);
    await again.release();
    expect(await readdir(join(path, '..'))).toEqual([]);
  });

  test("a dead holder's lock is taken over, and said so", async () => {
    const path = join(await fresh(), LOCK_FILE);
    await writeFile(path, record({ pid: await deadPid() }));
    const lock = await acquireLock(path, { what: 'x', wait: false });
    expect(lock.tookOver).toBe(true);
    expect(JSON.parse(await readFile(path, 'utf8')).token).toBe(currentHolder().token);
    await lock.release();
  });

  test("another host's lock is not taken over", async () => {
    const path = join(await fresh(), LOCK_FILE);
    await writeFile(path, record({ pid: await deadPid(), host: 'builder-7', started: '2026-01-01T00:00:00.000Z' }));
    await expect(acquireLock(path, { what: 'the cache directory /c', wait: false })).rejects.toThrow(
      /^the cache directory \/c is locked by another compose-extensions run \(pid \d+ on host builder-7, started 2026-01-01T00:00:00.000Z\)/,
    );
  });

  test('an unreadable record is a run starting up, until it is a few seconds old', async () => {
    const path = join(await fresh(), LOCK_FILE);
    await writeFile(path, '');
    await expect(acquireLock(path, { what: 'x', wait: false })).rejects.toThrow('x is locked by another compose-extensions run (a run that is starting)');
    const old = new Date(Date.now() - 60_000);
    await utimes(path, old, old);
    const lock = await acquireLock(path, { what: 'x', wait: false });
    expect(lock.tookOver).toBe(true);
    await lock.release();
  });

  test('waiting: the holder is reported once, and the lock is taken when released', async () => {
    const path = join(await fresh(), LOCK_FILE);
    await writeFile(path, record({ pid: process.ppid, procStart: undefined }));
    const seen: Holder[] = [];
    const waiting = acquireLock(path, { what: 'x', wait: true, pollMs: 20, onWait: (h) => seen.push(h) });
    await new Promise((r) => setTimeout(r, 150));
    await rm(path);
    const lock = await waiting;
    expect(seen.map((h) => h.pid)).toEqual([process.ppid]);
    await lock.release();
  });

  test('release removes only its own record', async () => {
    const path = join(await fresh(), LOCK_FILE);
    const lock = await acquireLock(path, { what: 'x', wait: false });
    await writeFile(path, record({}));
    await lock.release();
    expect(JSON.parse(await readFile(path, 'utf8')).token).toBe('other');
  });

  test('lockDirs releases what it took when a later lock is held', async () => {
    const [a, b] = [await fresh(), await fresh()];
    await writeFile(join(b, LOCK_FILE), record({ host: 'elsewhere' }));
    await expect(lockDirs([{ dir: a, what: 'a' }, { dir: b, what: 'b' }], false, () => {})).rejects.toThrow('b is locked');
    expect(await readdir(a)).toEqual([]);
  });
});

test("removeDeadLockTemps removes dead processes' temporaries and stale records only", async () => {
  const d = await fresh();
  const path = join(d, LOCK_FILE);
  const dead = await deadPid();
  await Promise.all([
    writeFile(`${path}.${dead}.abcd.tmp`, ''),
    writeFile(`${path}.${process.pid}.abcd.tmp`, ''),
    writeFile(`${path}.stale-abcd`, ''),
    writeFile(join(d, 'unrelated'), ''),
  ]);
  await removeDeadLockTemps(path);
  expect((await readdir(d)).sort()).toEqual([`${LOCK_FILE}.${process.pid}.abcd.tmp`, 'unrelated']);
});

test('removeCachePartials removes the partial files a dead run left in the cache, nothing else', async () => {
  const cache = await fresh();
  await mkdir(join(cache, 'packages'));
  await mkdir(join(cache, 'resolved'));
  await mkdir(join(cache, 'bases/archives'), { recursive: true });
  await Promise.all([
    writeFile(join(cache, 'packages/ab.rpm'), ''),
    writeFile(join(cache, 'packages/ab.rpm.part-123-4'), ''),
    writeFile(join(cache, 'resolved/k.json'), ''),
    writeFile(join(cache, 'resolved/k.json.0a1b2c.part'), ''),
    writeFile(join(cache, 'bases/archives/.partial-0f3e'), ''),
    writeFile(join(cache, 'bases/archives/0f3e'), ''),
  ]);
  expect((await removeCachePartials(cache)).sort()).toEqual(['bases/archives/.partial-0f3e', 'packages/ab.rpm.part-123-4', 'resolved/k.json.0a1b2c.part']);
  expect([...(await readdir(join(cache, 'packages'))), ...(await readdir(join(cache, 'resolved'))), ...(await readdir(join(cache, 'bases/archives')))]).toEqual(['ab.rpm', 'k.json', '0f3e']);
});
