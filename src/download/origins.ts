// Where each cached package was downloaded from, so that metadata.json says the same of a package
// whether this run fetched it or an earlier one did (and an image built from either has one digest).
// One small JSON file beside the package cache, read once per process, merged and replaced atomically.
import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const FILE = 'package-origins.json';
/** Per cache directory: package cache file name → URL (user-info removed). */
const known = new Map<string, Promise<Map<string, string>>>();
/** Writes of one cache directory, one after another. */
const writing = new Map<string, Promise<void>>();

async function read(cache: string): Promise<Map<string, string>> {
  try {
    const parsed = JSON.parse(await readFile(join(cache, FILE), 'utf8')) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
      return new Map(Object.entries(parsed as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string'));
    }
  } catch {
    // none yet, or damaged: origins are a record, never a reason to fail
  }
  return new Map();
}

function loaded(cache: string): Promise<Map<string, string>> {
  let map = known.get(cache);
  if (!map) known.set(cache, (map = read(cache)));
  return map;
}

export async function originOf(cache: string, name: string): Promise<string | undefined> {
  return (await loaded(cache)).get(name);
}

/** Adds entries and writes the file again, merged with what another process may have written. */
export function recordOrigins(cache: string, entries: [string, string][]): Promise<void> {
  if (entries.length === 0) return Promise.resolve();
  const previous = writing.get(cache) ?? Promise.resolve();
  const next = previous.then(async () => {
    const mine = await loaded(cache);
    for (const [name, url] of entries) mine.set(name, url);
    const merged = await read(cache);
    for (const [name, url] of mine) merged.set(name, url);
    const path = join(cache, FILE);
    const partial = `${path}.${randomBytes(6).toString('hex')}.part`;
    await writeFile(partial, JSON.stringify(Object.fromEntries([...merged].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))));
    await rename(partial, path);
  });
  writing.set(cache, next.catch(() => {}));
  return next;
}
