// The user's own .repo files, as their dnf would use them: metalinks and mirrorlists with bad
// mirrors, several baseurls, basic auth, proxies (options and environment), a private CA, client
// certificates, gpg keys over https, repo variables. Every case composes for real against loopback
// servers, and no secret may appear in any file under the output or the cache, nor in the log.
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compose, type ComposeOptions, type Logger } from '../src/engine.js';
import { ComposeError } from '../src/errors.js';
import type { Metadata } from '../src/metadata/metadata.js';
import { commitToOstree, makeRootfs } from './fixtures/base.js';
import { createSigningKey, signRpms } from './fixtures/gpg.js';
import {
  makeTls, proxyOnlyUrl, refusingUrl, startMirror, startMirrorManager, startProxy,
  type Mirror, type MirrorOptions, type Server, type TlsMaterial,
} from './fixtures/network.js';
import { buildRpms, createRepo } from './fixtures/rpms.js';

let dir: string;
let repoRoot: string;
let signedRoot: string;
let ostreeRepo: string;
let tls: TlsMaterial;
const servers: Server[] = [];
let n = 0;
const fresh = (name: string) => join(dir, `${name}-${n++}`);
const SECRET = 's3cr3t-Pa55';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ce-repos-'));
  const built = join(dir, 'rpms');
  const rpms = await buildRpms(
    [
      { name: 'basepkg', version: '1.0', release: '1' },
      { name: 'tool-a', version: '1.0', release: '1', requires: ['libtool-a', 'basepkg'] },
      { name: 'libtool-a', version: '2.0', release: '1' },
      { name: 'signed-tool', version: '1.0', release: '1', noarch: true },
      { name: 'shared-doc', version: '1.0', release: '1', noarch: true },
    ],
    ['x86_64', 'aarch64'],
    built,
  );
  const files = rpms['x86_64']!;
  const armFiles = rpms['aarch64']!.filter((f) => f.includes('.aarch64.'));
  repoRoot = join(dir, 'repo');
  signedRoot = join(dir, 'signed');
  await mkdir(repoRoot);
  await mkdir(signedRoot);
  for (const f of [...files, ...armFiles].filter((f) => !f.includes('signed-tool'))) await copyFile(f, join(repoRoot, f.split('/').pop()!));
  const key = await createSigningKey(dir);
  const signed = files.filter((f) => f.includes('signed-tool'));
  await signRpms(key, signed);
  for (const f of signed) await copyFile(f, join(signedRoot, f.split('/').pop()!));
  await copyFile(key.publicKey, join(signedRoot, 'RPM-GPG-KEY-fixture'));
  await Promise.all([createRepo(repoRoot), createRepo(signedRoot)]);
  const root = await makeRootfs(join(dir, 'root'), { rpms: files.filter((f) => f.includes('basepkg')) });
  ostreeRepo = join(dir, 'ostree');
  await commitToOstree(ostreeRepo, 'fixture/x86_64/base', root, '40.1');
  const armRoot = await makeRootfs(join(dir, 'arm-root'), { rpms: armFiles.filter((f) => f.includes('basepkg')) });
  await commitToOstree(ostreeRepo, 'fixture/aarch64/base', armRoot, '40.1');
  tls = await makeTls(join(dir, 'tls'));
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const serve = async (root = repoRoot, options: MirrorOptions = {}): Promise<Mirror> => {
  const mirror = await startMirror(root, options);
  servers.push(mirror);
  return mirror;
};

const CONFIG = 'repos: [net]\nextensions:\n  tools:\n    packages: [tool-a]\n';
const TOOLS = ['libtool-a-2.0-1.x86_64.rpm', 'tool-a-1.0-1.x86_64.rpm'];

interface Composed {
  output: string;
  cacheDir: string;
  log: string[];
  metadata: Metadata;
  rpms: string[];
  reused: boolean;
}

function collectingLogger(lines: string[]): Logger {
  const scoped = { stage() {}, info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m), end() {} };
  return { info: (m) => lines.push(m), warn: (m) => lines.push(m), scope: () => scoped };
}

/** Composes `config` with `repoFile` as the only .repo file; `again` reuses the cache and output of an earlier run. */
async function composeWith(repoFile: string, extra: Partial<ComposeOptions> = {}, again?: Composed): Promise<Composed> {
  const reposDir = fresh('repos.d');
  await mkdir(reposDir);
  await writeFile(join(reposDir, 'net.repo'), repoFile);
  const config = join(reposDir, '..', `extensions-${n++}.yaml`);
  await writeFile(config, extra.config ?? CONFIG);
  const output = again?.output ?? fresh('out');
  const cacheDir = again?.cacheDir ?? fresh('cache');
  const log: string[] = [];
  const logger = collectingLogger(log);
  const result = await compose({
    base: { kind: 'ostree', repo: ostreeRepo, ref: 'fixture/${basearch}/base' },
    arches: ['x86_64'], reposDir, repoPairs: [], weakDeps: true, previousState: [], varsDirs: [], dnfConf: join(dir, 'no-dnf.conf'),
    ...extra, config, output, cacheDir, log: extra.log ? { ...logger, secret: extra.log.secret } : logger,
  });
  const metadata = JSON.parse(await readFile(join(output, 'x86_64', 'metadata.json'), 'utf8')) as Metadata;
  const rpms = (await readdir(join(output, 'x86_64'))).filter((f) => f.endsWith('.rpm')).sort();
  return { output, cacheDir, log, metadata, rpms, reused: result.arches[0]!.reused };
}

async function composeFails(repoFile: string, extra: Partial<ComposeOptions> = {}): Promise<{ err: ComposeError; log: string[] }> {
  const log: string[] = [];
  const err = await composeWith(repoFile, { ...extra, log: collectingLogger(log) }).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ComposeError);
  return { err: err as ComposeError, log };
}

/** Every file below `root` (a missing root has none). */
async function filesBelow(root: string): Promise<string[]> {
  const entries = await readdir(root, { withFileTypes: true, recursive: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** Fails naming the file when any file below the output or the cache, or any log line, holds `secret`. */
async function expectNoSecret(run: Composed, secret = SECRET): Promise<void> {
  const holding: string[] = [];
  for (const file of [...(await filesBelow(run.output)), ...(await filesBelow(run.cacheDir))]) {
    const bytes = await readFile(file).catch(() => Buffer.alloc(0));
    if (bytes.includes(secret) || bytes.includes(Buffer.from(secret).toString('base64'))) holding.push(file);
  }
  expect(holding).toEqual([]);
  expect(run.log.filter((l) => l.includes(secret))).toEqual([]);
}

const rpmRequests = (s: Server) => s.requests.filter((r) => r.path.endsWith('.rpm') && r.status === 200).map((r) => r.path.split('/').pop()).sort();

describe('mirrors: every URL dnf knows, failing over', () => {
  test('a metalink whose first mirror refuses: packages come from the next one; a rerun reuses the solve', async () => {
    const good = await serve();
    const mm = await startMirrorManager({ net: { repomd: join(repoRoot, 'repodata/repomd.xml'), mirrors: [await refusingUrl(), good.url] } });
    servers.push(mm);
    const metalink = `${mm.url}/metalink?repo=net`;
    const run = await composeWith(`[net]\nname=net\nmetalink=${metalink}\ngpgcheck=0\n`);
    expect(run.rpms).toEqual(TOOLS);
    expect(rpmRequests(good)).toEqual(TOOLS);
    // The repo as the user defined it, not one of its mirrors; dnf's downloader does not say which mirror served a file.
    expect(run.metadata.repos).toMatchObject([{ id: 'net', url: metalink }]);
    expect(run.metadata.packages.map((p) => p.url)).toEqual([undefined, undefined]);
    // Metalink repos are checked through dnf too: unchanged, the recorded solve is taken.
    const again = await composeWith(`[net]\nname=net\nmetalink=${metalink}\ngpgcheck=0\n`, {}, run);
    expect(again.reused).toBe(true);
    expect(again.rpms).toEqual(TOOLS);
  });

  test('a metalink whose first mirror is still syncing (404) and one with an ftp:// mirror first', async () => {
    const syncing = await serve(repoRoot, { status: () => 404 });
    const good = await serve();
    const mm = await startMirrorManager({
      syncing: { repomd: join(repoRoot, 'repodata/repomd.xml'), mirrors: [syncing.url, good.url] },
      ftp: { repomd: join(repoRoot, 'repodata/repomd.xml'), mirrors: ['ftp://127.0.0.1:1/pub', good.url] },
    });
    servers.push(mm);
    for (const name of ['syncing', 'ftp']) {
      const run = await composeWith(`[net]\nname=net\nmetalink=${mm.url}/metalink?repo=${name}\n`);
      expect(run.rpms).toEqual(TOOLS);
    }
    expect(syncing.requests.length).toBeGreaterThan(0);
  });

  test('a mirrorlist whose first entry is dead', async () => {
    const good = await serve();
    const mm = await startMirrorManager({ net: { repomd: join(repoRoot, 'repodata/repomd.xml'), mirrors: [await refusingUrl(), good.url] } });
    servers.push(mm);
    const run = await composeWith(`[net]\nname=net\nmirrorlist=${mm.url}/mirrorlist?repo=net\n`);
    expect(run.rpms).toEqual(TOOLS);
    expect(rpmRequests(good)).toEqual(TOOLS);
  });

  test('two baseurls, the first dead: our own client fails over, and records where each package came from', async () => {
    const good = await serve();
    const dead = await refusingUrl();
    const run = await composeWith(`[net]\nname=net\nbaseurl=${dead}/ ${good.url}/\n`);
    expect(run.rpms).toEqual(TOOLS);
    expect(run.metadata.repos).toMatchObject([{ id: 'net', url: `${dead}/` }]);
    expect(run.metadata.packages.map((p) => p.url)).toEqual(TOOLS.map((f) => `${good.url}/${f}`));
    // A rerun takes the packages from the cache, and says the same of them.
    const warm = await composeWith(`[net]\nname=net\nbaseurl=${dead}/ ${good.url}/\n`, {}, { ...run, output: fresh('out') });
    expect(warm.metadata.packages).toEqual(run.metadata.packages);
  });

  test('a dead repo is one error naming the mirrors tried, for either client', async () => {
    // The metadata is there (the solve works); every package is missing on every mirror.
    const missing = () => serve(repoRoot, { status: (path) => (path.endsWith('.rpm') ? 404 : undefined) });
    const [a, b] = [await missing(), await missing()];
    const host = (m: Mirror) => m.url.slice('http://'.length);
    const direct = await composeFails(`[net]\nname=net\nbaseurl=${a.url}/ ${b.url}/\n`);
    expect(direct.err.problems).toEqual([{
      arch: 'x86_64',
      message: `repo net: 2 mirrors tried: ${host(a)} HTTP 404, ${host(b)} HTTP 404; 2 packages (libtool-a-2.0-1.x86_64, tool-a-1.0-1.x86_64) not fetched`,
    }]);
    // timeout= is a transfer option: dnf's downloader fetches, and is summed up the same way.
    const viaDnf = await composeFails(`[net]\nname=net\nbaseurl=${a.url}/ ${b.url}/\ntimeout=10\n`);
    expect(viaDnf.err.problems).toEqual([{
      arch: 'x86_64',
      message: `repo net: 2 mirrors tried: ${host(a)} HTTP 404, ${host(b)} HTTP 404; 2 packages (libtool-a-2.0-1.x86_64, tool-a-1.0-1.x86_64) not fetched`,
    }]);
  });
});

test('a noarch package both architectures need is fetched once by dnf\'s downloader', async () => {
  const good = await serve();
  const mm = await startMirrorManager({ net: { repomd: join(repoRoot, 'repodata/repomd.xml'), mirrors: [good.url] } });
  servers.push(mm);
  const config = 'repos: [net]\nextensions:\n  docs:\n    packages: [shared-doc, tool-a]\n';
  const run = await composeWith(`[net]\nname=net\nmetalink=${mm.url}/metalink?repo=net\n`, { config, arches: ['x86_64', 'aarch64'] });
  expect(run.rpms).toContain('shared-doc-1.0-1.noarch.rpm');
  expect(good.requests.filter((r) => r.path.endsWith('shared-doc-1.0-1.noarch.rpm') && r.status === 200)).toHaveLength(1);
  expect(good.requests.filter((r) => r.path.endsWith('tool-a-1.0-1.aarch64.rpm') && r.status === 200)).toHaveLength(1);
});

describe('credentials', () => {
  test('username= and password= (Artifactory, Nexus): fetched with them, written nowhere', async () => {
    const mirror = await serve(repoRoot, { auth: { username: 'builder', password: SECRET } });
    const run = await composeWith(`[net]\nname=net\nbaseurl=${mirror.url}/\nusername=builder\npassword=${SECRET}\n`);
    expect(run.rpms).toEqual(TOOLS);
    expect(rpmRequests(mirror)).toEqual(TOOLS);
    await expectNoSecret(run);
  });

  test('user-info in a baseurl: fetched with it, recorded without it', async () => {
    const mirror = await serve(repoRoot, { auth: { username: 'builder', password: SECRET } });
    const withCredentials = mirror.url.replace('http://', `http://builder:${SECRET}@`);
    const run = await composeWith(`[net]\nname=net\nbaseurl=${withCredentials}/\n`);
    expect(run.rpms).toEqual(TOOLS);
    expect(run.metadata.repos).toMatchObject([{ id: 'net', url: `${mirror.url}/` }]);
    await expectNoSecret(run);
    await expectNoSecret(run, `builder:${SECRET}`);
  });

  test('user-info in a gpgkey URL, gpgcheck on: the key is fetched with it', async () => {
    const mirror = await serve(signedRoot, { auth: { username: 'builder', password: SECRET } });
    const withCredentials = mirror.url.replace('http://', `http://builder:${SECRET}@`);
    const config = 'repos: [net]\nextensions:\n  signed:\n    packages: [signed-tool]\n';
    const run = await composeWith(`[net]\nname=net\nbaseurl=${withCredentials}/\ngpgcheck=1\ngpgkey=${withCredentials}/RPM-GPG-KEY-fixture\n`, { config });
    expect(run.rpms).toEqual(['signed-tool-1.0-1.noarch.rpm']);
    await expectNoSecret(run);
  });

  test('credentials in a repo variable: dnf fetches, nothing keeps them, the log masks them', async () => {
    const mirror = await serve(repoRoot, { auth: { username: 'builder', password: SECRET } });
    const masked: string[] = [];
    process.env['DNF_VAR_mirror'] = mirror.url.replace('http://', `http://builder:${SECRET}@`);
    try {
      const run = await composeWith('[net]\nname=net\nbaseurl=$mirror/\n', {
        log: { ...collectingLogger([]), secret: (v) => masked.push(v) },
      });
      expect(run.rpms).toEqual(TOOLS);
      expect(masked).toContain(SECRET);
      await expectNoSecret(run);
    } finally {
      delete process.env['DNF_VAR_mirror'];
    }
  });

  test('wrong credentials: the error names the repo, never the password', async () => {
    const mirror = await serve(repoRoot, { auth: { username: 'builder', password: SECRET } });
    const { err, log } = await composeFails(`[net]\nname=net\nbaseurl=${mirror.url.replace('http://', 'http://builder:wrong-Pa55@')}/\n`);
    expect(err.message).toContain('net');
    expect(err.message).not.toContain('wrong-Pa55');
    expect(log.join('\n')).not.toContain('wrong-Pa55');
  });
});

describe('proxies', () => {
  test('proxy= in the .repo file, the mirror reachable only through it', async () => {
    const mirror = await serve();
    const proxy = await startProxy();
    servers.push(proxy);
    const run = await composeWith(`[net]\nname=net\nbaseurl=${proxyOnlyUrl(mirror)}/\nproxy=${proxy.url}\n`);
    expect(run.rpms).toEqual(TOOLS);
    expect(proxy.log.filter((l) => l.endsWith('.rpm')).map((l) => l.split('/').pop()).sort()).toEqual(TOOLS);
  });

  test('proxy_username/proxy_password', async () => {
    const mirror = await serve();
    const proxy = await startProxy({ auth: { username: 'px', password: SECRET } });
    servers.push(proxy);
    const run = await composeWith(`[net]\nname=net\nbaseurl=${proxyOnlyUrl(mirror)}/\nproxy=${proxy.url}\nproxy_username=px\nproxy_password=${SECRET}\n`);
    expect(run.rpms).toEqual(TOOLS);
    expect(proxy.log.some((l) => l.endsWith('tool-a-1.0-1.x86_64.rpm'))).toBe(true);
    await expectNoSecret(run);
  });

  test("proxy= in dnf.conf's [main] applies to every repo; the rest of dnf.conf does not change the solve", async () => {
    const mirror = await serve();
    const proxy = await startProxy();
    servers.push(proxy);
    const dnfConf = join(fresh('conf'), 'dnf.conf');
    await mkdir(join(dnfConf, '..'));
    await writeFile(dnfConf, `[main]\ngpgcheck=1\nskip_if_unavailable=True\nbest=True\nproxy=${proxy.url}\n`);
    const run = await composeWith(`[net]\nname=net\nbaseurl=${proxyOnlyUrl(mirror)}/\n`, { dnfConf });
    expect(run.rpms).toEqual(TOOLS);
    expect(proxy.log.filter((l) => l.endsWith('.rpm')).length).toBe(2);
  });

  test('an upper-case HTTP_PROXY alone is honoured too (curl ignores it)', async () => {
    const mirror = await serve();
    const proxy = await startProxy();
    servers.push(proxy);
    const saved = [process.env['http_proxy'], process.env['HTTP_PROXY']];
    delete process.env['http_proxy'];
    process.env['HTTP_PROXY'] = proxy.url;
    try {
      const run = await composeWith(`[net]\nname=net\nbaseurl=${proxyOnlyUrl(mirror)}/\n`);
      expect(run.rpms).toEqual(TOOLS);
      expect(proxy.log.filter((l) => l.endsWith('.rpm')).length).toBe(2);
    } finally {
      delete process.env['HTTP_PROXY'];
      if (saved[0] !== undefined) process.env['http_proxy'] = saved[0];
      if (saved[1] !== undefined) process.env['HTTP_PROXY'] = saved[1];
    }
  });

  test('http_proxy from the environment sends a plain repo through dnf and its proxy', async () => {
    const mirror = await serve();
    const proxy = await startProxy();
    servers.push(proxy);
    const saved = process.env['http_proxy'];
    process.env['http_proxy'] = proxy.url;
    try {
      const run = await composeWith(`[net]\nname=net\nbaseurl=${proxyOnlyUrl(mirror)}/\n`);
      expect(run.rpms).toEqual(TOOLS);
      expect(proxy.log.filter((l) => l.endsWith('.rpm')).length).toBe(2);
    } finally {
      if (saved === undefined) delete process.env['http_proxy'];
      else process.env['http_proxy'] = saved;
    }
  });
});

describe('TLS', () => {
  test('sslcacert= (an internal CA), and sslverify=0', async () => {
    const mirror = await serve(repoRoot, { tls });
    const run = await composeWith(`[net]\nname=net\nbaseurl=${mirror.url}/\nsslcacert=${tls.caCert}\n`);
    expect(run.rpms).toEqual(TOOLS);
    const unverified = await composeWith(`[net]\nname=net\nbaseurl=${mirror.url}/\nsslverify=0\n`);
    expect(unverified.rpms).toEqual(TOOLS);
  });

  test('sslclientcert=/sslclientkey= (RHEL CDN entitlement) against a server that requires a client certificate', async () => {
    const mirror = await serve(repoRoot, { tls, requireClientCert: true });
    const run = await composeWith(
      `[net]\nname=net\nbaseurl=${mirror.url}/\nsslcacert=${tls.caCert}\nsslclientcert=${tls.clientCert}\nsslclientkey=${tls.clientKey}\n`,
    );
    expect(run.rpms).toEqual(TOOLS);
    expect(rpmRequests(mirror)).toEqual(TOOLS);
  });

  test('gpgkey=https://… behind a private CA: the key comes through dnf and the signature is checked', async () => {
    const mirror = await serve(signedRoot, { tls });
    const config = 'repos: [net]\nextensions:\n  signed:\n    packages: [signed-tool]\n';
    const repo = `[net]\nname=net\nbaseurl=${mirror.url}/\nsslcacert=${tls.caCert}\ngpgcheck=1\ngpgkey=${mirror.url}/RPM-GPG-KEY-fixture\n`;
    const run = await composeWith(repo, { config });
    expect(run.rpms).toEqual(['signed-tool-1.0-1.noarch.rpm']);
    expect(mirror.requests.some((r) => r.path.endsWith('RPM-GPG-KEY-fixture') && r.status === 200)).toBe(true);
  });
});

describe('repo variables', () => {
  test('from a vars directory ($contentdir), and $releasever_major/$releasever_minor on every dnf', async () => {
    const mirror = await serve(repoRoot, { prefix: '/pub/fixture/40/1' });
    const vars = fresh('vars');
    await mkdir(vars);
    await writeFile(join(vars, 'contentdir'), 'pub/fixture\n');
    const origin = mirror.url.slice(0, mirror.url.indexOf('/pub/'));
    const run = await composeWith(`[net]\nname=net\nbaseurl=${origin}/$contentdir/$releasever_major/$releasever_minor/\n`, {
      varsDirs: [vars], releasever: '40.1',
    });
    expect(run.rpms).toEqual(TOOLS);
    expect(run.metadata.repos).toMatchObject([{ url: `${mirror.url}/` }]);
  });

  test('DNF_VAR_ from the environment wins over a vars file', async () => {
    const mirror = await serve(repoRoot, { prefix: '/env' });
    const vars = fresh('vars');
    await mkdir(vars);
    await writeFile(join(vars, 'where'), 'file\n');
    process.env['DNF_VAR_where'] = 'env';
    try {
      const origin = mirror.url.slice(0, mirror.url.indexOf('/env'));
      const run = await composeWith(`[net]\nname=net\nbaseurl=${origin}/$where/\n`, { varsDirs: [vars] });
      expect(run.rpms).toEqual(TOOLS);
    } finally {
      delete process.env['DNF_VAR_where'];
    }
  });
});
