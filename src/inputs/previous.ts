// The previous result a run is compared with: metadata.json files, from disk, over http(s), or
// from an image this action published.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UsageError } from '../errors.js';
import type { Closures } from '../report/diff.js';
import type { RegistryOptions } from '../tools/skopeo.js';
import { fetchBuffer, HttpError, reasonOf, type DownloadOptions } from '../tools/http.js';
import { ownedStem, removeDeadLeftovers } from '../tools/leftovers.js';
import { METADATA_FILE } from '../publish/oci-image.js';
import { readImageFile, resolveImage } from '../base/image.js';

/** `${arch}` and `${basearch}` in a location name one file per architecture. */
const PLACEHOLDER = /\$\{(base)?arch\}/;
const PLACEHOLDERS = new RegExp(PLACEHOLDER.source, 'g');

/**
 * A metadata.json file or URL; undefined when absent. Bounded as every small read (64 MiB, 5 min,
 * the minimum rate; see tools/http.ts LIMITS): an endless or trickling answer fails.
 */
async function readLocation(location: string, limits: DownloadOptions): Promise<string | undefined> {
  const url = /^https?:\/\//.test(location) ? location : pathToFileURL(location).href;
  try {
    return (await fetchBuffer(url, limits)).toString('utf8');
  } catch (err) {
    if ((err instanceof HttpError && err.status === 404) || (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UsageError(`previous metadata ${location}: ${reasonOf(err)}`);
  }
}

function parse(text: string, location: string): Closures & { arch?: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new UsageError(`previous metadata ${location} is not JSON`);
  }
  const d = doc as { arch?: unknown; extensions?: Record<string, { packages?: unknown }> };
  const valid =
    d && typeof d === 'object' && d.extensions && typeof d.extensions === 'object' &&
    Object.values(d.extensions).every((e) => Array.isArray(e?.packages) && e.packages.every((p) => typeof p === 'string'));
  if (!valid) throw new UsageError(`previous metadata ${location} is not a compose-extensions metadata.json (no extensions.*.packages)`);
  return { arch: typeof d.arch === 'string' ? d.arch : undefined, extensions: d.extensions as Closures['extensions'] };
}

const PREVIOUS_PREFIX = 'compose-extensions-previous-';

/** Explicit transports only: a bare `name:tag` would be ambiguous with a file name. */
const IMAGE_SOURCE = /^(docker:\/\/|oci:|oci-archive:)/;

/** The previous metadata of each architecture from an image this action published (or its index). */
async function loadFromImage(source: string, arches: string[], options: RegistryOptions): Promise<Map<string, Closures>> {
  const result = new Map<string, Closures>();
  const resolved = await resolveImage(source, options).catch((err: Error) => {
    throw new UsageError(`previous metadata ${source}: ${err.message}`);
  });
  // Named by process and host: one a killed run left is removed by the next.
  await removeDeadLeftovers(tmpdir(), PREVIOUS_PREFIX);
  const work = await mkdtemp(join(tmpdir(), ownedStem(PREVIOUS_PREFIX)));
  try {
    for (const arch of arches) {
      const text = await readImageFile(resolved, arch, METADATA_FILE, join(work, arch), options).catch((err: Error & { reason?: string }) => {
        if (err.reason === 'no-image-for-arch') return undefined; // a new architecture
        throw new UsageError(`previous metadata in ${source} for ${arch}: ${err.message}`);
      });
      if (text !== undefined) result.set(arch, parse(text, `${source} (${arch})`));
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return result;
}

/**
 * Loads the previous result per architecture from `source`: a metadata.json path or http(s) URL
 * (with `${arch}` for one per architecture), an earlier output directory holding
 * `<arch>/metadata.json`, or an image this action published (`docker://…`, `oci:…`,
 * `oci-archive:…`; an index gives one per architecture). An architecture with no previous result
 * is simply not compared (it is new). `limits` overrides the bounds of a file or URL read (tests).
 */
export async function loadPrevious(source: string, arches: string[], registry: RegistryOptions = {}, limits: DownloadOptions = {}): Promise<Map<string, Closures>> {
  if (IMAGE_SOURCE.test(source)) return loadFromImage(source, arches, registry);
  const result = new Map<string, Closures>();
  const isDir = !/^https?:\/\//.test(source) && !PLACEHOLDER.test(source) && (await stat(source).then((s) => s.isDirectory(), () => false));
  if (isDir || PLACEHOLDER.test(source)) {
    for (const arch of arches) {
      const location = isDir ? join(source, arch, 'metadata.json') : source.replace(PLACEHOLDERS, arch);
      const text = await readLocation(location, limits);
      if (text !== undefined) result.set(arch, parse(text, location));
    }
    return result;
  }
  const text = await readLocation(source, limits);
  if (text === undefined) throw new UsageError(`previous metadata ${source} not found`);
  const doc = parse(text, source);
  const arch = doc.arch ?? (arches.length === 1 ? arches[0] : undefined);
  if (!arch) throw new UsageError(`previous metadata ${source} names no architecture: use \${arch} in the location for several`);
  result.set(arch, doc);
  return result;
}
