// Registry credentials for skopeo, for pulling a base image and pushing ours: a containers
// auth.json (containers-auth.json(5)) with mode 0600 in a private directory
// `<tmpdir>/compose-extensions-secrets-<pid>-<host>-…`. Removed after use; on any exit of the
// process (signals included, see signals.ts) by a synchronous 'exit' listener; after a SIGKILL by
// the next run, which removes such directories whose process is gone; in the action, also by the
// post step.
import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { lstat, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { UsageError } from '../errors.js';
import { deadLeftovers, ownedStem } from './leftovers.js';

export const SECRETS_PREFIX = 'compose-extensions-secrets-';
/** The name of earlier versions, still accepted by removeAuthDir (an action's post step). */
const LEGACY_PREFIX = 'ce-auth-';
const FILE = 'auth.json';

/** Auth directories of this process not removed yet. */
const live = new Set<string>();
let exitHook = false;

/** Removes every auth directory of this process, synchronously (from an 'exit' listener). */
export function removeSecretsNow(): void {
  for (const dir of live) {
    try {
      if (isAuthDirSync(dir)) rmSync(dir, { recursive: true, force: true });
    } catch {
      // the exit goes on; the next run removes it
    }
    live.delete(dir);
  }
}

function isAuthDirSync(dir: string): boolean {
  const info = lstatSync(dir, { throwIfNoEntry: false });
  return Boolean(info?.isDirectory()) && readdirSync(dir).every((e) => e === FILE);
}

/**
 * Removes the auth directories that runs killed outright (SIGKILL) left in `parent`: those of this
 * host whose process is gone. Returns them.
 */
export async function removeStaleSecrets(parent = tmpdir()): Promise<string[]> {
  const dead = await deadLeftovers(parent, SECRETS_PREFIX);
  const removed: string[] = [];
  for (const dir of dead) {
    if (await removeAuthDir(dir).then(() => true, () => false)) removed.push(dir);
  }
  return removed;
}

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
  await removeStaleSecrets(parent);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', removeSecretsNow);
  }
  const dir = await mkdtemp(join(parent, ownedStem(SECRETS_PREFIX)));
  live.add(dir);
  const path = join(dir, FILE);
  const auth = { auths: { [registry]: { auth: basic(username, password) } } };
  await writeFile(path, JSON.stringify(auth), { mode: 0o600, flag: 'wx' });
  return {
    path,
    dir,
    cleanup: async () => {
      await removeAuthDir(dir);
      live.delete(dir);
    },
  };
}

/**
 * Removes a directory made by {@link writeAuthFile}, and only such a directory: the post step
 * gets the path back from saved state, so it checks the name and contents before deleting.
 */
export async function removeAuthDir(dir: string): Promise<void> {
  if (![SECRETS_PREFIX, LEGACY_PREFIX].some((p) => basename(dir).startsWith(p))) throw new Error(`refusing to remove ${dir}: not an auth directory of compose-extensions`);
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
