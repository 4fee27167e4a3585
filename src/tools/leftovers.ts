// Files and directories a run owns by name, `<prefix><pid>-<host>-…`, so that what a killed run
// (SIGKILL, a power cut) left behind is recognised and removed by the next run, and what a live
// run on this host, or any run on another host or container sharing the directory, owns is not.
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

/** This host (container) in a name: pids are only meaningful on the host that made them. */
const HOST = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);

/** The name stem for something this process owns: `<prefix><pid>-<host>-`. */
export const ownedStem = (prefix: string, pid = process.pid): string => `${prefix}${pid}-${HOST}-`;

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

/** Paths in `dir` named `<prefix><pid>-<host>-…` for this host whose process is gone. */
export async function deadLeftovers(dir: string, prefix: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const found: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = /^(\d+)-([0-9a-f]{8})-/.exec(name.slice(prefix.length));
    if (!m || m[2] !== HOST) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && !processAlive(pid)) found.push(join(dir, name));
  }
  return found;
}

/** Removes what {@link deadLeftovers} finds; failures are ignored (a later run tries again). */
export async function removeDeadLeftovers(dir: string, prefix: string): Promise<string[]> {
  const dead = await deadLeftovers(dir, prefix);
  await Promise.all(dead.map((path) => rm(path, { recursive: true, force: true }).catch(() => undefined)));
  return dead;
}

/** Scratch directories of one step (a push, an image layout, an rpm home): `compose-extensions-tmp-<pid>-<host>-<what>-…`. */
const SCRATCH_PREFIX = 'compose-extensions-tmp-';

export const scratchDir = (what: string, parent = tmpdir()): Promise<string> => mkdtemp(join(parent, `${ownedStem(SCRATCH_PREFIX)}${what}-`));

/** Removes the scratch directories of runs that died (SIGKILL mid-push leaves a whole image layout). */
export const removeDeadScratch = (parent = tmpdir()): Promise<string[]> => removeDeadLeftovers(parent, SCRATCH_PREFIX);
