// The base registry's password never outlives the process that was given it: the real CLI, given a
// password on stdin, is stopped while it reads an image base from a registry that never answers.
// SIGINT, SIGTERM and SIGHUP: it exits with 130, 143, 129 and no auth file remains, nor its skopeo.
// SIGKILL: the auth file remains, and the next run removes it at its start. Runs dist/cli.js (or
// the bundle named by CE_CLI_BUNDLE, to try a change before dist/ is rebuilt).
import { execa, type ResultPromise } from 'execa';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './fixtures/runner.js';

const CLI = process.env['CE_CLI_BUNDLE'] ?? join(ROOT, 'dist/cli.js');
const PASSWORD = 'pw-3f9c1d7e-never-on-disk';
const ENCODED = Buffer.from(`ci:${PASSWORD}`).toString('base64');

let dir: string;
let registry: Server;
let host: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ce-secrets-'));
  // A registry that accepts connections and never answers: the CLI stays in the base read.
  registry = createServer(() => undefined);
  await new Promise<void>((resolve) => registry.listen(0, '127.0.0.1', resolve));
  host = `127.0.0.1:${(registry.address() as AddressInfo).port}`;
  await mkdir(join(dir, 'repos'));
  await writeFile(join(dir, 'repos', 'fixture.repo'), `[fixture]\nname=fixture\nbaseurl=http://${host}/repo\ngpgcheck=0\n`);
  await writeFile(join(dir, 'extensions.yaml'), 'repos: [fixture]\nextensions:\n  tools:\n    packages: [tool]\n');
});
afterAll(async () => {
  registry.closeAllConnections();
  await new Promise((resolve) => registry.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

/** A fresh TMPDIR for each run, so that what it leaves there is all there is to look at. */
async function start(tmp: string): Promise<{ child: ResultPromise }> {
  await mkdir(tmp, { recursive: true });
  // Wrapped: awaiting the subprocess itself would wait for its end.
  return { child: execa(process.execPath, [
    CLI, 'compose', '--config', join(dir, 'extensions.yaml'), '--base-image', `${host}/private:1`,
    '--base-registry-username', 'ci', '--base-registry-password-stdin', '--arch', 'x86_64',
    '--repos-dir', join(dir, 'repos'), '--cache-dir', join(tmp, 'cache'), '--output', join(tmp, 'out'),
  ], { input: `${PASSWORD}\n`, reject: false, env: { TMPDIR: tmp, HOME: tmp } }) };
}

const secretDirs = async (tmp: string) => (await readdir(tmp)).filter((n) => n.startsWith('compose-extensions-secrets-')).map((n) => join(tmp, n));

async function waitForSecret(tmp: string, child: ResultPromise): Promise<string> {
  for (let i = 0; i < 300; i++) {
    const [found] = await secretDirs(tmp);
    if (found && (await stat(join(found, 'auth.json')).catch(() => undefined))) return found;
    if (child.exitCode !== null) throw new Error(`the CLI exited early: ${String((await child).stderr)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('no auth file appeared');
}

/** Every file under `root` whose content holds the password, plain or encoded. */
async function holdingSecret(root: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name);
    const text = await readFile(path, 'latin1').catch(() => '');
    if (text.includes(PASSWORD) || text.includes(ENCODED)) found.push(path);
  }
  return found;
}

/** Processes whose command line names `path` (a skopeo still holding the auth file). */
async function processesNaming(path: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(path)) found.push(`${pid}: ${cmdline.replace(/\0/g, ' ')}`);
  }
  return found;
}

test.each([
  ['SIGINT', 130],
  ['SIGTERM', 143],
  ['SIGHUP', 129],
] as const)('%s: exit code %i, no auth file left, no password anywhere in TMPDIR', async (signal, code) => {
  const tmp = join(dir, signal);
  const { child } = await start(tmp);
  const secret = await waitForSecret(tmp, child);
  expect((await stat(join(secret, 'auth.json'))).mode & 0o777).toBe(0o600);
  expect(await holdingSecret(tmp)).toEqual([join(secret, 'auth.json')]); // the one place, while in use
  child.kill(signal);
  const result = await child;
  expect(result.exitCode).toBe(code);
  expect(String(result.stderr)).toContain(`error: stopped by ${signal}`);
  expect(String(result.stderr) + String(result.stdout)).not.toContain(PASSWORD);
  expect(await secretDirs(tmp)).toEqual([]);
  expect(await holdingSecret(tmp)).toEqual([]);
  // skopeo, started with the auth file's path, went with it.
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(await processesNaming(secret)).toEqual([]);
}, 60_000);

test('SIGKILL leaves the auth file; the next run removes it at its start', async () => {
  const tmp = join(dir, 'SIGKILL');
  const { child } = await start(tmp);
  const secret = await waitForSecret(tmp, child);
  child.kill('SIGKILL');
  await child;
  // skopeo may outlive a SIGKILLed parent for a moment; it is not what this test is about.
  for (const line of await processesNaming(secret)) process.kill(Number(line.split(':')[0]), 'SIGKILL');
  expect(await secretDirs(tmp)).toEqual([secret]);
  const next = await execa(process.execPath, [CLI, '--version'], { reject: false, env: { TMPDIR: tmp, HOME: tmp } });
  expect(next.exitCode).toBe(0);
  expect(await secretDirs(tmp)).toEqual([]);
  expect(await holdingSecret(tmp)).toEqual([]);
}, 60_000);

test("a live run's auth file is not another run's to remove", async () => {
  const tmp = join(dir, 'concurrent');
  const { child } = await start(tmp);
  try {
    const secret = await waitForSecret(tmp, child);
    const other = await execa(process.execPath, [CLI, '--version'], { reject: false, env: { TMPDIR: tmp, HOME: tmp } });
    expect(other.exitCode).toBe(0);
    expect(await secretDirs(tmp)).toEqual([secret]);
  } finally {
    child.kill('SIGTERM');
    await child;
  }
}, 60_000);
