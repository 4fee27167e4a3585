// Exclusive run locks (the output directory, the cache directory) and the owner records of a run's
// temporary directories: who holds them, and whether that process is still alive.
import { randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { link, mkdir, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { ComposeError } from '../errors.js';

/** Who holds a lock or owns a directory. */
export interface Holder {
  pid: number;
  host: string;
  /** ISO time the holding run started. */
  started: string;
  /** Tells two records of one pid apart. */
  token: string;
  /** Linux: the boot and the process's start time in clock ticks, so that a reused pid is not taken for the holder. */
  bootId?: string;
  procStart?: string;
  /** Linux: the pid namespace, so that a holder in another container (same host name) is not judged by our pids. */
  pidNs?: string;
}

function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/<pid>/stat (after the command name, which may contain spaces and parentheses). */
function procStart(pid: number | 'self'): string | undefined {
  const stat = readProc(`/proc/${pid}/stat`);
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

function pidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
}

let self: Holder | undefined;

/** This process, as a lock holder: one record per process. */
export function currentHolder(): Holder {
  self ??= {
    pid: process.pid,
    host: hostname(),
    started: new Date().toISOString(),
    token: randomBytes(8).toString('hex'),
    ...optional('bootId', readProc('/proc/sys/kernel/random/boot_id')?.trim()),
    ...optional('procStart', procStart('self')),
    ...optional('pidNs', pidNamespace()),
  };
  return self;
}

function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value ? ({ [key]: value } as Record<K, string>) : {};
}

/**
 * True when the holder is certainly gone: on this host, and its process has exited, or the machine
 * rebooted, or its pid now belongs to a younger process. A holder on another host, or in another
 * pid namespace (a container sharing the host name), is never presumed dead: the lock file names
 * it, for a person to judge.
 */
export function holderIsDead(holder: Holder): boolean {
  if (holder.host !== hostname()) return false;
  const { bootId: boot, pidNs } = currentHolder();
  if (holder.bootId && boot && holder.bootId !== boot) return true;
  if (holder.pidNs && pidNs && holder.pidNs !== pidNs) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
  const start = holder.procStart && procStart(holder.pid);
  return Boolean(start && start !== holder.procStart);
}

export function describeHolder(h: Holder): string {
  return `pid ${h.pid} on host ${h.host}, started ${h.started}`;
}

function parseHolder(text: string): Holder | undefined {
  try {
    const h = JSON.parse(text) as Holder;
    return Number.isInteger(h.pid) && typeof h.host === 'string' && typeof h.token === 'string' ? h : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Creates `path` with `text` only if it does not exist, never visible half-written: the record is
 * written under a private name and hard-linked into place (link fails if the name is taken).
 */
async function createExclusive(path: string, text: string, token: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${token}.tmp`;
  await writeFile(tmp, text, { mode: 0o644 });
  try {
    await link(tmp, path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
    await writeFile(path, text, { flag: 'wx', mode: 0o644 }); // a filesystem without hard links
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

export interface Lock {
  /** A lock of a holder that died was taken over: its leftovers are to be removed. */
  tookOver: boolean;
  release(): Promise<void>;
}

export interface LockOptions {
  /** What the lock protects, for messages: `the output directory /x`. */
  what: string;
  /** Wait for a live holder instead of failing at once. */
  wait: boolean;
  onWait?: (holder: Holder) => void;
  pollMs?: number;
}

/** An unreadable record this old (a crash between create and write) is no one's. */
const UNREADABLE_GRACE_MS = 5000;

/** Takes the lock file `path`, exclusively. A lock whose holder is dead is taken over. */
export async function acquireLock(path: string, options: LockOptions): Promise<Lock> {
  const me = currentHolder();
  const text = JSON.stringify(me);
  let tookOver = false;
  let waited = false;
  for (;;) {
    try {
      await createExclusive(path, text, me.token);
      return { tookOver, release: () => releaseLock(path, text) };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        await mkdir(dirname(path), { recursive: true });
        continue;
      }
      if (code !== 'EEXIST') throw err;
    }
    const held = await readFile(path, 'utf8').catch(() => undefined);
    if (held === undefined) continue; // released meanwhile
    const holder = parseHolder(held);
    const age = await stat(path).then((s) => Date.now() - s.mtimeMs, () => 0);
    if (holder ? holderIsDead(holder) : age > UNREADABLE_GRACE_MS) {
      tookOver = (await takeOver(path, held, me.token)) || tookOver;
      continue;
    }
    if (!options.wait) {
      const who = holder ? describeHolder(holder) : 'a run that is starting';
      throw new ComposeError([{
        message: `${options.what} is locked by another compose-extensions run (${who}); pass --wait-lock to wait for it, or remove ${path} if that run is gone`,
      }]);
    }
    if (!waited && holder) options.onWait?.(holder);
    waited = true;
    await new Promise((r) => setTimeout(r, options.pollMs ?? 250));
  }
}

/**
 * Moves the dead holder's record aside and checks that it was that record: a racer that took the
 * lock over first must keep its new one, which is linked back.
 */
async function takeOver(path: string, held: string, token: string): Promise<boolean> {
  const aside = `${path}.stale-${token}`;
  try {
    await rename(path, aside);
  } catch {
    return false;
  }
  const moved = await readFile(aside, 'utf8').catch(() => '');
  if (moved !== held) await link(aside, path).catch(() => {});
  await unlink(aside).catch(() => {});
  return moved === held;
}

async function releaseLock(path: string, text: string): Promise<void> {
  // Only our own record: after a takeover by mistake, never another run's.
  if ((await readFile(path, 'utf8').catch(() => undefined)) === text) await unlink(path).catch(() => {});
}

/** Lock files' private temporaries (`<lock>.<pid>.<token>.tmp`, `<lock>.stale-<token>`) left by dead processes. */
export async function removeDeadLockTemps(path: string): Promise<void> {
  const dir = dirname(path);
  const base = path.slice(dir.length + 1);
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith(`${base}.`)) continue;
    const tmp = /^(\d+)\.[0-9a-f]+\.tmp$/.exec(name.slice(base.length + 1));
    const dead = tmp ? holderIsDead({ pid: Number(tmp[1]), host: hostname(), started: '', token: '' }) : name.startsWith(`${base}.stale-`);
    if (dead) await rm(join(dir, name), { force: true });
  }
}

export const WORK_DIR_PREFIX = 'compose-extensions-';

/** Where a run writes a cache file under a temporary name before renaming it into place. */
const CACHE_PARTIALS: [string, RegExp][] = [
  ['packages', /\.part-\d+-\d+$/],
  ['packages', /^\.dnf-\d+-\d+$/], // dnf's downloader writes there before files are checked and named
  ['', /^package-origins\.json\.[0-9a-f]+\.part$/],
  ['resolved', /\.[0-9a-f]+\.part$/],
  [join('bases', 'archives'), /^\.partial-/],
];

/**
 * After taking over the cache lock from a run that died: its half-written cache files. Any
 * partial file is that run's, as nothing else writes there without the lock.
 */
export async function removeCachePartials(cacheDir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const [sub, pattern] of CACHE_PARTIALS) {
    const dir = join(cacheDir, sub);
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (!pattern.test(name)) continue;
      await rm(join(dir, name), { recursive: true, force: true });
      removed.push(join(sub, name));
    }
  }
  return removed;
}

/** The lock file in the output and the cache directory. */
export const LOCK_FILE = '.compose-extensions.lock';

export interface RunLocks {
  /** Per directory locked: whether a dead holder's lock was taken over. */
  tookOver: Map<string, boolean>;
  release(): Promise<void>;
}

/**
 * Locks each directory, in the order given (every run takes them in the same order, so two waiting
 * runs cannot deadlock). On failure the locks already taken are released.
 */
export async function lockDirs(dirs: { dir: string; what: string }[], wait: boolean, onWait: (what: string, holder: Holder) => void): Promise<RunLocks> {
  const taken: Lock[] = [];
  const tookOver = new Map<string, boolean>();
  const release = async () => {
    for (const lock of taken.reverse()) await lock.release();
  };
  try {
    for (const { dir, what } of dirs) {
      const path = join(dir, LOCK_FILE);
      await removeDeadLockTemps(path);
      const lock = await acquireLock(path, { what, wait, onWait: (h) => onWait(what, h) });
      taken.push(lock);
      tookOver.set(dir, lock.tookOver);
    }
  } catch (err) {
    await release();
    throw err;
  }
  return { tookOver, release };
}
