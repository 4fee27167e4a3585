// The architectures of a compose output directory (`<output>/<arch>/metadata.json`), for publishing
// it later or elsewhere than where it was composed (the CLI's `publish`).
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import type { ComposedArch } from './images.js';

/** Every `<arch>/` with a metadata.json, by name; with `only`, exactly those, each required. */
export async function composedArches(output: string, only: string[] = []): Promise<ComposedArch[]> {
  const entries = await readdir(output, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    throw new UsageError(`${output}: ${err.code === 'ENOENT' ? 'no such directory' : err.message}; give the --output directory of compose`);
  });
  const found = new Map<string, ComposedArch>();
  for (const entry of entries.filter((e) => e.isDirectory()).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const outputDir = join(output, entry.name);
    const text = await readFile(join(outputDir, 'metadata.json'), 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    let metadata: { arch?: unknown; stateChecksum?: unknown };
    try {
      metadata = JSON.parse(text) as typeof metadata;
    } catch {
      throw new UsageError(`${join(outputDir, 'metadata.json')} is not JSON`);
    }
    if (metadata.arch !== entry.name || typeof metadata.stateChecksum !== 'string') {
      throw new UsageError(`${join(outputDir, 'metadata.json')} is not the metadata of a compose for ${entry.name}`);
    }
    found.set(entry.name, { arch: entry.name, outputDir, stateChecksum: metadata.stateChecksum });
  }
  if (only.length === 0) {
    if (found.size === 0) throw new UsageError(`${output} holds no <arch>/metadata.json: give the --output directory of compose`);
    return [...found.values()];
  }
  const missing = only.filter((a) => !found.has(a));
  if (missing.length > 0) {
    throw new UsageError(`${output} has no composed ${missing.join(', ')} (it holds ${[...found.keys()].join(', ') || 'none'})`);
  }
  return [...new Set(only)].map((a) => found.get(a)!);
}
