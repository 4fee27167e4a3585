import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { spawn } from 'node:child_process';
import { removeAuthDir, removeSecretsNow, removeStaleSecrets, resolveAuth, secretsToMask, writeAuthFile } from './registry-auth.js';
import { AUTH_DIR_STATE, runPost } from '../action/cleanup.js';

let parent: string;
beforeAll(async () => {
  parent = await mkdtemp(join(tmpdir(), 'ce-auth-test-'));
});
afterAll(async () => {
  await rm(parent, { recursive: true, force: true });
});

test('the auth file is containers-auth.json, mode 0600 in a private directory, and cleanup removes it', async () => {
  const auth = await writeAuthFile('ghcr.io', 'ci', 'p4ss:word', parent);
  expect((await stat(auth.path)).mode & 0o777).toBe(0o600);
  expect((await stat(auth.dir)).mode & 0o777).toBe(0o700);
  expect(JSON.parse(await readFile(auth.path, 'utf8'))).toEqual({ auths: { 'ghcr.io': { auth: Buffer.from('ci:p4ss:word').toString('base64') } } });
  await auth.cleanup();
  await expect(stat(auth.dir)).rejects.toThrow(/ENOENT/);
  await auth.cleanup(); // the post step may run after the main step already cleaned up
});

test('secrets to mask include the encoded form that the file holds', () => {
  expect(secretsToMask('ci', 'pw')).toEqual(['pw', Buffer.from('ci:pw').toString('base64')]);
});

test('removeAuthDir removes only what writeAuthFile made', async () => {
  const other = join(parent, 'not-ours');
  await mkdir(other);
  await expect(removeAuthDir(other)).rejects.toThrow(/refusing/);
  const auth = await writeAuthFile('ghcr.io', 'ci', 'pw', parent);
  await writeFile(join(auth.dir, 'extra'), '');
  await expect(removeAuthDir(auth.dir)).rejects.toThrow(/refusing/);
  expect((await stat(auth.path)).isFile()).toBe(true);
});

test('credential inputs: both or neither, not together with an auth file', async () => {
  await expect(resolveAuth('ghcr.io', { username: 'ci' }, parent)).rejects.toThrow(UsageError);
  await expect(resolveAuth('ghcr.io', { password: 'pw' }, parent)).rejects.toThrow(UsageError);
  await expect(resolveAuth('ghcr.io', { username: 'ci', password: 'pw', authFile: '/x' }, parent)).rejects.toThrow(/not both/);
  await expect(resolveAuth('ghcr.io', { authFile: join(parent, 'missing.json') }, parent)).rejects.toThrow(/not a file/);
  expect(await resolveAuth('ghcr.io', {}, parent)).toEqual({});
  const existing = join(parent, 'auth.json');
  await writeFile(existing, '{}', { mode: 0o644 });
  await expect(resolveAuth('ghcr.io', { authFile: existing }, parent)).rejects.toThrow(`auth file ${existing} is readable by others (mode 644): chmod 600 it`);
  await chmod(existing, 0o600);
  expect(await resolveAuth('ghcr.io', { authFile: existing }, parent)).toEqual({ authFile: existing });
  const fresh = await resolveAuth('ghcr.io', { username: 'ci', password: 'pw' }, parent);
  expect(fresh.owned?.path).toBe(fresh.authFile);
  await fresh.owned!.cleanup();
});

test('the post step removes the auth directory saved in the action state', async () => {
  const auth = await writeAuthFile('ghcr.io', 'ci', 'pw', parent);
  process.env[`STATE_${AUTH_DIR_STATE.push}`] = auth.dir;
  try {
    await runPost();
    await expect(stat(auth.dir)).rejects.toThrow(/ENOENT/);
  } finally {
    delete process.env[`STATE_${AUTH_DIR_STATE.push}`];
  }
  await runPost(); // nothing saved: nothing to do
});

test("auth directories are named by process and host; a dead process's are removed, a live one's kept", async () => {
  const own = await writeAuthFile('ghcr.io', 'ci', 'pw', parent);
  expect(own.dir).toMatch(new RegExp(`/compose-extensions-secrets-${process.pid}-[0-9a-f]{8}-`));
  const gone = spawn('true');
  await new Promise((resolve) => gone.on('exit', resolve));
  const stem = own.dir.split('/').pop()!.replace(`-${process.pid}-`, `-${gone.pid}-`);
  const dead = join(parent, stem);
  await mkdir(dead);
  await writeFile(join(dead, 'auth.json'), '{}', { mode: 0o600 });
  const notOurs = join(parent, stem.replace(/-[0-9a-f]{8}-/, '-00000000-')); // another host's
  await mkdir(notOurs);
  expect(await removeStaleSecrets(parent)).toEqual([dead]);
  await expect(stat(dead)).rejects.toThrow(/ENOENT/);
  expect((await stat(own.dir)).isDirectory()).toBe(true);
  expect((await stat(notOurs)).isDirectory()).toBe(true);
  // What an exit (a signal included) runs: every auth directory of this process goes, synchronously.
  removeSecretsNow();
  await expect(stat(own.dir)).rejects.toThrow(/ENOENT/);
  await own.cleanup(); // afterwards, nothing left to do
});
