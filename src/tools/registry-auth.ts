// Registry credentials for skopeo, for pulling a base image and pushing ours: a containers
// auth.json (containers-auth.json(5)) with mode 0600 in a private directory, removed after use and
// again by the action's post step.
import { lstat, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { UsageError } from '../errors.js';

const DIR_PREFIX = 'ce-auth-';
const FILE = 'auth.json';

export interface AuthFile {
  path: string;
  /** The private directory holding it, for the post step to remove (saved as action state). */
  dir: string;
  cleanup(): Promise<void>;
}

const basic = (username: string, password: string): string => Buffer.from(`${username}:${password}`).toString('base64');

/**
 * Everything that would reveal the password if printed: the caller passes each to
 * `core.setSecret` before anything else runs.
 */
export function secretsToMask(username: string, password: string): string[] {
  return [password, basic(username, password)].filter((s) => s.length > 0);
}

/** An auth file with credentials for one registry, readable by this user only. */
export async function writeAuthFile(registry: string, username: string, password: string, parent = tmpdir()): Promise<AuthFile> {
  if (!username || !password) throw new UsageError('registry-username and registry-password go together: set both or neither');
  if (username.includes(':')) throw new UsageError('registry-username cannot contain ":"');
  const dir = await mkdtemp(join(parent, DIR_PREFIX));
  const path = join(dir, FILE);
  const auth = { auths: { [registry]: { auth: basic(username, password) } } };
  await writeFile(path, JSON.stringify(auth), { mode: 0o600, flag: 'wx' });
  return { path, dir, cleanup: () => removeAuthDir(dir) };
}

/**
 * Removes a directory made by {@link writeAuthFile}, and only such a directory: the post step
 * gets the path back from saved state, so it checks the name and contents before deleting.
 */
export async function removeAuthDir(dir: string): Promise<void> {
  if (!basename(dir).startsWith(DIR_PREFIX)) throw new Error(`refusing to remove ${dir}: not an auth directory of compose-extensions`);
  const info = await lstat(dir).catch(() => undefined);
  if (!info) return;
  if (!info.isDirectory()) throw new Error(`refusing to remove ${dir}: not a directory`);
  const entries = await readdir(dir);
  if (entries.some((e) => e !== FILE)) throw new Error(`refusing to remove ${dir}: it holds more than ${FILE}`);
  await rm(dir, { recursive: true, force: true });
}

/** Refuses an auth file that others could read: credentials are kept in files with mode 0600. */
export async function checkAuthFile(path: string): Promise<void> {
  const info = await lstat(path).catch(() => undefined);
  if (!info?.isFile()) throw new UsageError(`auth file ${path} is not a file`);
  if (info.mode & 0o077) {
    throw new UsageError(`auth file ${path} is readable by others (mode ${(info.mode & 0o777).toString(8)}): chmod 600 it`);
  }
}

export interface CredentialInputs {
  username?: string;
  password?: string;
  /** An existing auth file (e.g. from docker/login-action or `podman login`). */
  authFile?: string;
}

/**
 * The auth file to use: a fresh one from username and password, the given one, or none (skopeo's
 * defaults). `owned` says whether the caller must remove it.
 */
export async function resolveAuth(registry: string, inputs: CredentialInputs, parent?: string): Promise<{ authFile?: string; owned?: AuthFile }> {
  const { username, password, authFile } = inputs;
  if ((username || password) && authFile) throw new UsageError('set registry-username and registry-password, or auth-file, not both');
  if (username || password) {
    const owned = await writeAuthFile(registry, username ?? '', password ?? '', parent);
    return { authFile: owned.path, owned };
  }
  if (authFile) {
    await checkAuthFile(authFile);
    return { authFile };
  }
  return {};
}
