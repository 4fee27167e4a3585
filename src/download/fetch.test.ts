import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ComposeError } from '../errors.js';
import type { RepoState, ResolvedPackage } from '../solve/types.js';
import { createSigningKey, signRpms, tamperRpm, type SigningKey } from '../../test/fixtures/gpg.js';
import { serveDirectory, type StaticServer } from '../../test/fixtures/http.js';
import { buildRpms } from '../../test/fixtures/rpms.js';
import { fetchPackages, mapLimit, type FetchOptions } from './fetch.js';

let dir: string;
let rpmDir: string;
let server: StaticServer;
let key: SigningKey;
let otherKey: SigningKey;
let n = 0;
const fresh = (name: string) => join(dir, `${name}-${n++}`);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ce-fetch-test-'));
  const built = join(dir, 'rpms');
  const rpms = await buildRpms(
    [
      { name: 'alpha', version: '1.0', release: '1', noarch: true },
      { name: 'beta', version: '2.0', release: '3', noarch: true },
      { name: 'gamma', version: '1.0', release: '1', noarch: true },
      { name: 'signed-good', version: '1.0', release: '1', noarch: true },
      { name: 'signed-tampered', version: '1.0', release: '1', noarch: true, summary: 'tamperme' },
      { name: 'other-signed', version: '1.0', release: '1', noarch: true },
    ],
    ['x86_64'],
    built,
  );
  rpmDir = join(built, 'x86_64');
  key = await createSigningKey(dir);
  await signRpms(key, rpms['x86_64']!.filter((f) => basename(f).startsWith('signed-')));
  await tamperRpm(join(rpmDir, 'signed-tampered-1.0-1.noarch.rpm'), 'tamperme');
  await mkdir(join(dir, 'other'));
  otherKey = await createSigningKey(join(dir, 'other'));
  await signRpms(otherKey, rpms['x86_64']!.filter((f) => basename(f).startsWith('other-signed-')));
  await copyFile(key.publicKey, join(built, 'RPM-GPG-KEY-fixture'));
  server = await serveDirectory(built);
});
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** A package as the solver would describe it: served over http, with the checksum of the file. */
async function resolved(name: string, repo = 'web', overrides: Partial<ResolvedPackage> = {}): Promise<ResolvedPackage> {
  const file = `${name}.noarch.rpm`;
  const data = await readFile(join(rpmDir, file));
  const [, pkgName, version, release] = /^(.+)-([^-]+)-([^-]+)$/.exec(name)!;
  return {
    name: pkgName!, epoch: 0, version: version!, release: release!, arch: 'noarch', nevra: `${name}.noarch`, repo,
    location: file, checksum: { type: 'sha256', value: sha256(data) }, size: data.length,
    extensions: ['ext'],
    ...overrides,
  };
}

function repoState(id: string, gpg?: { keys: string[] }, urls = [`${server.url}/x86_64/`]): RepoState {
  return { id, url: urls[0] ?? '', urls, repomdSha256: '0'.repeat(64), gpgcheck: Boolean(gpg), gpgkeys: gpg?.keys ?? [] };
}
const web = () => [repoState('web')];

const options = (cacheDir: string, extra: Partial<FetchOptions> = {}): FetchOptions => ({
  arch: 'x86_64', cacheDir, workDir: fresh('work'), ...extra,
});

async function composeError(promise: Promise<unknown>): Promise<ComposeError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ComposeError);
  return err as ComposeError;
}

const requestsOf = (from: number) => server.requests.slice(from).filter((r) => r.endsWith('.rpm')).sort();

describe('fetchPackages', () => {
  test('downloads into <cache>/packages, verifies, reports progress; a second run uses the cache', async () => {
    const cacheDir = fresh('cache');
    const pkgs = [await resolved('alpha-1.0-1'), await resolved('beta-2.0-3')];
    const progress: [number, number, number][] = [];
    const before = server.requests.length;
    const fetched = await fetchPackages(pkgs, [repoState('web')], options(cacheDir, { onProgress: (...a) => progress.push(a) }));
    expect(requestsOf(before)).toEqual(['/x86_64/alpha-1.0-1.noarch.rpm', '/x86_64/beta-2.0-3.noarch.rpm']);
    for (const [i, pkg] of pkgs.entries()) {
      const file = join(cacheDir, 'packages', `sha256-${pkg.checksum.value}.rpm`);
      expect(fetched[i]).toEqual({ ...pkg, file, sha256: pkg.checksum.value, url: `${server.url}/x86_64/${pkg.location}` });
      expect(sha256(await readFile(file))).toBe(pkg.checksum.value);
    }
    expect(progress.map(([done, total]) => [done, total])).toEqual([[1, 2], [2, 2]]);
    expect(progress[1]![2]).toBe(pkgs[0]!.size + pkgs[1]!.size);
    expect((await readdir(join(cacheDir, 'packages'))).sort()).toEqual(pkgs.map((p) => `sha256-${p.checksum.value}.rpm`).sort());

    const again = server.requests.length;
    expect(await fetchPackages(pkgs, [repoState('web')], options(cacheDir))).toEqual(fetched);
    expect(server.requests.slice(again)).toEqual([]);
  });

  test('a package another architecture cached after this one listed the cache is not fetched again', async () => {
    const cacheDir = fresh('cache');
    const [alpha, beta] = [await resolved('alpha-1.0-1'), await resolved('beta-2.0-3')];
    // beta is held back until x86_64 has cached alpha, so aarch64's listing of the cache is older than alpha.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const betaBytes = await readFile(join(rpmDir, 'beta-2.0-3.noarch.rpm'));
    const slow = createServer((_req, res) => void held.then(() => res.end(betaBytes)));
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    try {
      const before = server.requests.length;
      const slowUrl = `http://127.0.0.1:${(slow.address() as AddressInfo).port}/`;
      const aarch64 = fetchPackages([{ ...beta, repo: 'slow' }, alpha], [repoState('web'), repoState('slow', undefined, [slowUrl])], options(cacheDir, { arch: 'aarch64', concurrency: 1 }));
      await fetchPackages([alpha], [repoState('web')], options(cacheDir));
      release();
      expect((await aarch64).map((p) => p.nevra)).toEqual([beta.nevra, alpha.nevra]);
      expect(requestsOf(before)).toEqual(['/x86_64/alpha-1.0-1.noarch.rpm']);
    } finally {
      release();
      await new Promise((resolve) => slow.close(resolve));
    }
  });

  test('a package larger than what is kept in memory is streamed to the cache, hashed on the way', async () => {
    // Not an RPM: only the bytes and their checksum matter here. 3 MiB arrive in many chunks.
    const data = randomBytes(3 << 20);
    await writeFile(join(rpmDir, 'big-1.0-1.noarch.rpm'), data);
    const pkg = await resolved('big-1.0-1');
    const sha512 = createHash('sha512').update(data).digest('hex');
    const [fetched] = await fetchPackages([{ ...pkg, checksum: { type: 'sha512', value: sha512 } }], web(), options(fresh('cache')));
    expect(fetched!.sha256).toBe(sha256(data));
    expect((await readFile(fetched!.file)).equals(data)).toBe(true);
    expect(await readdir(dirname(fetched!.file))).toEqual([basename(fetched!.file)]);
  });

  test("the repo's size only sizes the read buffer: a cached or local package is hashed whole whatever size it claims", async () => {
    const data = randomBytes(3 << 20);
    await writeFile(join(rpmDir, 'sized-1.0-1.noarch.rpm'), data);
    const pkg = await resolved('sized-1.0-1');
    const cacheDir = fresh('cache');
    const [fetched] = await fetchPackages([pkg], [repoState('web')], options(cacheDir));
    const before = server.requests.length;
    // A partial read would not match the checksum: the cached copy would be fetched again, the local one fail.
    for (const size of [0, 100, 2 ** 40, Number.NaN]) {
      expect(await fetchPackages([{ ...pkg, size }], [repoState('web')], options(cacheDir))).toEqual([{ ...fetched, size }]);
      const local = { ...pkg, size, path: join(rpmDir, 'sized-1.0-1.noarch.rpm'), url: undefined };
      expect((await fetchPackages([local], [repoState('web')], options(fresh('cache'))))[0]!.sha256).toBe(sha256(data));
    }
    expect(requestsOf(before)).toEqual([]);
  });

  test('a damaged cached copy is downloaded again, and replaced', async () => {
    const cacheDir = fresh('cache');
    const pkg = await resolved('alpha-1.0-1');
    const [fetched] = await fetchPackages([pkg], [repoState('web')], options(cacheDir));
    await writeFile(fetched!.file, 'damaged');
    const before = server.requests.length;
    expect(await fetchPackages([pkg], [repoState('web')], options(cacheDir))).toEqual([fetched]);
    expect(requestsOf(before)).toEqual(['/x86_64/alpha-1.0-1.noarch.rpm']);
    expect(sha256(await readFile(fetched!.file))).toBe(pkg.checksum.value);
  });

  test('a repo that declares another checksum type is verified with it; sha256 is still computed', async () => {
    const pkg = await resolved('gamma-1.0-1');
    const data = await readFile(join(rpmDir, 'gamma-1.0-1.noarch.rpm'));
    const sha512 = createHash('sha512').update(data).digest('hex');
    const [fetched] = await fetchPackages([{ ...pkg, checksum: { type: 'sha512', value: sha512 } }], web(), options(fresh('cache')));
    expect(fetched!.sha256).toBe(sha256(data));
    expect(basename(fetched!.file)).toBe(`sha512-${sha512}.rpm`);
  });

  test('a local package is read in place, nothing is copied or requested', async () => {
    const cacheDir = fresh('cache');
    const path = join(rpmDir, 'alpha-1.0-1.noarch.rpm');
    const pkg = await resolved('alpha-1.0-1', 'local', { path });
    const before = server.requests.length;
    const [fetched] = await fetchPackages([pkg], [repoState('local')], options(cacheDir));
    expect(fetched!.file).toBe(path);
    expect(await readdir(join(cacheDir, 'packages'))).toEqual([]);
    expect(server.requests.length).toBe(before);
  });

  test('a checksum mismatch names the package and leaves nothing in the cache', async () => {
    const cacheDir = fresh('cache');
    const wrong = sha256('something else');
    const good = await resolved('alpha-1.0-1');
    const bad = await resolved('beta-2.0-3', 'web', { checksum: { type: 'sha256', value: wrong } });
    const err = await composeError(fetchPackages([good, bad], [repoState('web')], options(cacheDir)));
    expect(err.problems).toEqual([
      { arch: 'x86_64', message: `repo web: 1 mirror tried: ${server.url.slice('http://'.length)}/x86_64 checksum mismatch; package beta-2.0-3.noarch not fetched` },
    ]);
    // Only the good package stays; no bad file, no partial download.
    expect(await readdir(join(cacheDir, 'packages'))).toEqual([`sha256-${good.checksum.value}.rpm`]);
  });

  test('a checksum mismatch of a local package leaves the repo file alone', async () => {
    const path = join(rpmDir, 'gamma-1.0-1.noarch.rpm');
    const pkg = await resolved('gamma-1.0-1', 'local', { path, checksum: { type: 'sha256', value: sha256('x') } });
    const err = await composeError(fetchPackages([pkg], [], options(fresh('cache'))));
    expect(err.message).toContain('gamma-1.0-1.noarch from local: sha256 checksum mismatch');
    expect((await stat(path)).isFile()).toBe(true);
  });

  test('an HTTP error is a clear problem and leaves no partial file', async () => {
    const cacheDir = fresh('cache');
    const pkg = await resolved('alpha-1.0-1', 'web', { location: 'missing-1.0-1.noarch.rpm' });
    const err = await composeError(fetchPackages([pkg], [repoState('web')], options(cacheDir)));
    expect(err.problems).toEqual([{ arch: 'x86_64', message: `repo web: 1 mirror tried: ${server.url.slice('http://'.length)}/x86_64 HTTP 404; package alpha-1.0-1.noarch not fetched` }]);
    expect(await readdir(join(cacheDir, 'packages'))).toEqual([]);
  });

  test('architectures fetching the same package into one cache at the same time all succeed', async () => {
    // The engine runs architectures concurrently with one shared cache, so noarch packages meet
    // there. The download stage only moves and checks bytes: a 4 MiB file (fixture RPMs are a few
    // KiB, done before the next download starts) keeps the downloads overlapping.
    const blob = Buffer.alloc(4 << 20, 'x');
    await writeFile(join(rpmDir, 'big-1.0-1.noarch.rpm'), blob);
    const big = await resolved('big-1.0-1');
    const cacheDir = fresh('cache');
    const arches = ['x86_64', 'aarch64', 'ppc64le', 's390x'];
    const before = server.requests.length;
    const runs = await Promise.allSettled(arches.map((arch) => fetchPackages([big], web(), { ...options(cacheDir), arch })));
    expect(runs.map((r) => (r.status === 'fulfilled' ? r.value[0]!.sha256 : String(r.reason)))).toEqual(arches.map(() => sha256(blob)));
    expect(await readdir(join(cacheDir, 'packages'))).toEqual([`sha256-${sha256(blob)}.rpm`]);
    expect(requestsOf(before)).toEqual(['/x86_64/big-1.0-1.noarch.rpm']);
  });

  test('concurrent fetches of the same package share one request, and a failed one fails for each', async () => {
    const cacheDir = fresh('cache');
    const pkgs = [await resolved('alpha-1.0-1'), await resolved('beta-2.0-3')];
    const before = server.requests.length;
    const [x86, arm] = await Promise.all(['x86_64', 'aarch64'].map((arch) => fetchPackages(pkgs, web(), { ...options(cacheDir), arch })));
    expect(requestsOf(before)).toEqual(['/x86_64/alpha-1.0-1.noarch.rpm', '/x86_64/beta-2.0-3.noarch.rpm']);
    expect(arm).toEqual(x86);

    // Settled downloads are forgotten: a later run asks again for what is not in the cache.
    const missing = await resolved('gamma-1.0-1', 'web', { location: 'missing-1.0-1.noarch.rpm' });
    const failing = before + 2;
    const errors = await Promise.all(['x86_64', 'aarch64'].map((arch) => composeError(fetchPackages([missing], web(), { ...options(cacheDir), arch }))));
    const host = server.url.slice('http://'.length);
    expect(errors.map((e) => e.problems)).toEqual(['x86_64', 'aarch64'].map((arch) => [{ arch, message: `repo web: 1 mirror tried: ${host}/x86_64 HTTP 404; package gamma-1.0-1.noarch not fetched` }]));
    expect(server.requests.slice(failing)).toEqual(['/x86_64/missing-1.0-1.noarch.rpm']);
    await composeError(fetchPackages([missing], web(), options(cacheDir)));
    expect(server.requests.slice(failing)).toEqual(['/x86_64/missing-1.0-1.noarch.rpm', '/x86_64/missing-1.0-1.noarch.rpm']);
  });
});

describe('gpgcheck', () => {
  const keyUrl = () => `file://${key.publicKey}`;

  test('a signed package verifies with the repo key, from a file or over http', async () => {
    const pkg = await resolved('signed-good-1.0-1', 'signed');
    for (const keys of [[keyUrl()], [`${server.url}/RPM-GPG-KEY-fixture`]]) {
      const [fetched] = await fetchPackages([pkg], [repoState('signed', { keys })], options(fresh('cache')));
      expect(fetched!.nevra).toBe('signed-good-1.0-1.noarch');
    }
  });

  test('unsigned, signed with a key the repo does not name, and a bad signature are three messages', async () => {
    const pkgs = await Promise.all(['signed-good-1.0-1', 'signed-tampered-1.0-1', 'alpha-1.0-1', 'other-signed-1.0-1'].map((n) => resolved(n, 'signed')));
    const err = await composeError(fetchPackages(pkgs, [repoState('signed', { keys: [keyUrl()] })], options(fresh('cache'))));
    const messages = err.problems.map((p) => p.message).sort();
    expect(messages).toHaveLength(3);
    expect(messages[0]).toBe('alpha-1.0-1.noarch from signed is not signed (gpgcheck is on)');
    expect(messages[1]).toMatch(new RegExp(`^other-signed-1\\.0-1\\.noarch from signed is signed with key [0-9a-f]{8}, which is not among the repo's gpgkeys \\(${keyUrl().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\) \\(gpgcheck is on\\)$`));
    expect(messages[2]).toMatch(/^signed-tampered-1\.0-1\.noarch from signed has a bad signature \(key [0-9a-f]{8}\): the file was changed after it was signed \(gpgcheck is on\)$/);
  });

  test('an unsigned package in a repo without gpgcheck is fine', async () => {
    const unsigned = await resolved('alpha-1.0-1', 'signed');
    await expect(fetchPackages([unsigned], [repoState('signed')], options(fresh('cache')))).resolves.toHaveLength(1);
  });

  test('a gpgcheck repo without a gpgkey fails, even for a well-signed package', async () => {
    const pkg = await resolved('signed-good-1.0-1', 'signed');
    const err = await composeError(fetchPackages([pkg], [repoState('signed', { keys: [] })], options(fresh('cache'))));
    expect(err.problems).toEqual([{ arch: 'x86_64', message: 'repo signed has gpgcheck on but no gpgkey to check with' }]);
  });

  test('a key that cannot be fetched fails', async () => {
    const pkg = await resolved('signed-good-1.0-1', 'signed');
    const missing = `${server.url}/RPM-GPG-KEY-missing`;
    const err = await composeError(fetchPackages([pkg], [repoState('signed', { keys: [missing] })], options(fresh('cache'))));
    expect(err.problems).toEqual([{ arch: 'x86_64', message: `repo signed: cannot import gpgkey ${missing}: HTTP 404` }]);
  });
});

describe('mapLimit', () => {
  test('never has more than `limit` in flight, reaches it, and keeps the order', async () => {
    let inFlight = 0;
    let most = 0;
    const items = Array.from({ length: 12 }, (_, i) => i);
    const result = await mapLimit(items, 3, async (i) => {
      most = Math.max(most, ++inFlight);
      await sleep((i * 7) % 5); // finish out of order
      inFlight--;
      return i * 10;
    });
    expect(most).toBe(3);
    expect(result).toEqual(items.map((i) => i * 10));
  });

  test('a limit above the item count, no items, and a limit below 1', async () => {
    expect(await mapLimit([1, 2], 10, async (i) => i + 1)).toEqual([2, 3]);
    expect(await mapLimit([], 4, async (i: number) => i)).toEqual([]);
    expect(await mapLimit([1, 2], 0, async (i) => i + 1)).toEqual([2, 3]);
  });
});
